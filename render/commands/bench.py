"""``immersions bench layout [...]``: run a benchmark of the package and write its JSON record."""
from __future__ import annotations

import argparse

HELP = "run a benchmark and write benchmarks/results/<name>_<machine>.json"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bench`` command with one subcommand per benchmark."""
    from immersions.layout import benchmark as layout_benchmark

    parser = subparsers.add_parser("bench", help=HELP)
    names = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for name, module in {"layout": layout_benchmark}.items():
        sub = names.add_parser(name, help=module.__doc__.splitlines()[0])
        module.add_arguments(sub)
        sub.set_defaults(func=lambda args, module=module: _run(module, args))


def _run(module, args: argparse.Namespace) -> int:
    """Run one benchmark and say where its record went."""
    print(f"wrote {module.run(args)}")
    return 0
