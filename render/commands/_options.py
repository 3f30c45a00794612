"""Command-line options made from a dataclass's fields, so a settings class and its options cannot drift apart."""
from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Any, Mapping, Sequence


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
