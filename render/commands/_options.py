"""Command-line option types (one size syntax, positive numbers, counts) and options made from a dataclass's
fields, so a settings class and its options cannot drift apart."""
from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path
from typing import Any, Mapping, Sequence

DEFAULT_SIZE = "1280x720"


def add_field_options(parser: argparse.ArgumentParser, cls: type, helps: Mapping[str, str], *,
                      skip: Sequence[str] = (), choices: Mapping[str, Sequence[str]] | None = None) -> None:
    """One ``--field-name`` option per field of ``cls`` except ``skip``, typed by its default (a string when the
    default is None), with its help from ``helps`` (else the field's name) and the default shown."""
    for spec in fields(cls):
        if spec.name in skip:
            continue
        kind = str if spec.default is None else type(spec.default)
        parser.add_argument("--" + spec.name.replace("_", "-"), type=kind, default=spec.default,
                            choices=(choices or {}).get(spec.name),
                            help=f"{helps.get(spec.name, spec.name.replace('_', ' '))} (default: %(default)s)")


def field_values(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    """The parsed value of every field of ``cls``, by field name."""
    return {spec.name: getattr(args, spec.name) for spec in fields(cls)}


def parse_size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` as two positive integers."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(part.isdigit() and int(part) > 0 for part in parts):
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT in pixels, e.g. 1280x720; got {text!r}")
    return int(parts[0]), int(parts[1])


def positive_float(text: str) -> float:
    """A positive finite number (seconds, frames per second)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (counts that cannot be zero)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return int(text)


def non_negative_int(text: str) -> int:
    """An integer >= 0 (counts)."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return int(text)


def check_output_folder(path: str | Path | None, option: str) -> None:
    """Refuse an output whose folder does not exist before the work that would end in writing it."""
    if path is not None and not Path(path).resolve().parent.is_dir():
        raise FileNotFoundError(f"{option} {str(path)!r}: the folder {str(Path(path).parent)!r} does not exist")


def add_model_options(parser: argparse.ArgumentParser, *, threads: int | None = None,
                      threads_help: str = "CPU threads for torch (default: torch's choice)") -> None:
    """``--model``, ``--device`` and ``--threads``: which network runs where (read by ``_model.model_from``)."""
    parser.add_argument("--model", default="lean", help="shipped model name, checkpoint .pt, package.module:factory (a function returning "
                             "your network) or torch.export .pt2 (default: %(default)s)")
    parser.add_argument("--device", default=None,
                        help="torch device, cpu or cuda[:N] (default: cuda when there is one, else cpu)")
    parser.add_argument("--threads", type=positive_int, default=threads, help=threads_help)


def add_objective_option(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """``--objective SPEC...``: what to maximise or listen through, summed."""
    parser.add_argument("--objective", nargs="+", metavar="SPEC", required=required,
                        help="neurons, summed: TAP (a layer), TAP:CHANNEL or TAP:CHANNEL:FREQ (a neuron); "
                             "`immersions optimize --list-taps` shows the taps")
