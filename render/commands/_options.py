"""Command-line options shared by commands: those made from a dataclass's fields (so a settings class and its
options cannot drift apart), and the model and objective options of the commands that listen through a network."""
from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Any, Mapping, Sequence

import torch

from immersions.cpc.model import CPC
from immersions.cpc.objectives import Objective, parse_objectives
from immersions.cpc.optimize import check_objective, tap_shapes
from immersions.cpc.train import set_cpu_threads

from ..app_inputs import load_model


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


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--device`` and ``--threads``: which network runs where (see ``model_from``)."""
    parser.add_argument("--model", default="lean", help="shipped model name or checkpoint .pt (default: %(default)s)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="torch device (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")


def add_objective_option(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """``--objective SPEC...``: what to maximise or listen through, summed."""
    parser.add_argument("--objective", nargs="+", metavar="SPEC", required=required,
                        help="neurons, summed: TAP (a layer), TAP:CHANNEL or TAP:CHANNEL:FREQ (a neuron); "
                             "`immersions optimize --list-taps` shows the taps")


def model_from(args: argparse.Namespace) -> CPC:
    """The model of ``add_model_options``' options, on its device, with torch's CPU threads set."""
    set_cpu_threads(args.threads)
    return load_model(args.model).to(args.device)


def objective_from(args: argparse.Namespace, model: CPC) -> Objective:
    """The sum of ``--objective``'s specs, checked against the model's taps."""
    objective = parse_objectives(args.objective or [])
    check_objective(objective, tap_shapes(model))
    return objective
