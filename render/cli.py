"""The ``immersions`` command line: see and hear what happens inside an audio neural network."""
from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Iterator, Sequence

from . import commands

DESCRIPTION = "immersions: see and hear what happens inside an audio neural network."


def command_modules() -> list[str]:
    """Names of the subcommand modules: each exposes ``register(subparsers)``, whose parser sets
    ``func(args) -> int``, and ``HELP`` (its line in ``immersions --help``). Dropping a module into
    ``render/commands/`` adds a subcommand. A module imports what its work needs (torch, OpenGL) inside its
    functions, so that loading it for the help costs nothing."""
    return sorted(m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_"))


class _Version(argparse.Action):
    """``--version``: the installed package's version, looked up only when asked (importlib.metadata is slow)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("immersions")
        except PackageNotFoundError:
            found = "unknown"
        print(f"immersions {found}")
        parser.exit()


class UsageError(ValueError):
    """A command line argparse refuses; ``main`` reports it like any other bad input, in one line."""

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(message)
        self.prog = prog


class Parser(argparse.ArgumentParser):
    """An ArgumentParser (subcommands' parsers too) whose errors reach ``main`` instead of exiting."""

    def error(self, message: str):
        raise UsageError(self.prog, message)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser: every subcommand with its help line, and the full options of ``command`` (of every
    subcommand when None). Registering only the command that runs keeps ``--help`` and each run from
    importing what the other commands need."""
    parser = Parser(prog="immersions", description=DESCRIPTION)
    parser.add_argument("--version", action=_Version)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in command_modules():
        module = importlib.import_module(f"{commands.__name__}.{name}")
        if command in (None, name) or not hasattr(module, "HELP"):  # without HELP: registered in full
            module.register(subparsers)
        else:
            subparsers.add_parser(name, help=module.HELP)
    return parser


def _command_word(argv: Sequence[str]) -> str:
    """The subcommand named on the command line ("" when none: the top-level options take no values)."""
    return next((word for word in argv if not word.startswith("-")), "")


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill``, ``timeout``, a batch system) ends a command the way Ctrl-C does, so its clean-up runs
    (the finished clips' ``loop.wav`` and ``scores.json``, the window closed) instead of the process vanishing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_word(argv))
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(f"{exc.prog}: error: {exc} (see {exc.prog} --help)", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with _terminate_as_interrupt():
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"immersions {args.command}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, RuntimeError) as exc:
        logging.getLogger("immersions").debug("command failed", exc_info=True)
        print(f"immersions {args.command}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
