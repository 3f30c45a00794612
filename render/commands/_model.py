"""The network and objective that ``_options.add_model_options`` and ``add_objective_option`` describe: loaded
only when a command runs, since they bring torch."""
from __future__ import annotations

import argparse

from immersions.cpc.model import CPC
from immersions.cpc.objectives import Objective, parse_objectives
from immersions.cpc.optimize import check_objective, tap_shapes
from immersions.cpc.train import set_cpu_threads

from ..app_inputs import check_device, load_cpc_model


def model_from(args: argparse.Namespace) -> CPC:
    """The model of the options, on its (checked) device, with torch's CPU threads set."""
    set_cpu_threads(args.threads)
    return load_cpc_model(args.model).to(check_device(args.device))


def objective_from(args: argparse.Namespace, model: CPC) -> Objective:
    """The sum of ``--objective``'s specs, checked against the model's taps."""
    objective = parse_objectives(args.objective or [])
    check_objective(objective, tap_shapes(model))
    return objective
