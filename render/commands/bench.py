"""``immersions bench layout [...]``: run a benchmark of the package and write its JSON record."""
from __future__ import annotations

import argparse

HELP = "run a benchmark and write benchmarks/results/<name>_<machine>.json"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bench`` command with one subcommand per benchmark."""
    from immersions.layout import benchmark_options

    parser = subparsers.add_parser("bench", help=HELP)
    names = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    sub = names.add_parser("layout", help="layout benchmark: repulsion backends, multilevel layouts, peers")
    benchmark_options.add_arguments(sub)
    sub.set_defaults(func=_run_layout)


def _run_layout(args: argparse.Namespace) -> int:
    """Run the layout benchmark and say where its record went."""
    from immersions.layout import benchmark

    print(f"wrote {benchmark.run(args)}")
    return 0
