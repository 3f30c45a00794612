"""``immersions dream CLIP --objective SPEC... --function F OUT_DIR``: DreamSound's functions on a clip."""
from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

from immersions.cpc.settings import FUNCTIONS, DreamSettings

from ._options import add_field_options, add_model_options, add_objective_option, field_values

HELP = "DreamSound: Deep Dream and its filter and target variants on a clip"

_HELP = {
    "function": "deepdream adds the gradient; filter keeps the clip where the gradient has energy; filter-add adds "
                "that filtered clip; target adds the gradient filtered by --target's spectrum",
    "steps": "steps",
    "step_size": "attenuation of what each step adds (deepdream, filter-add, target)",
    "threshold": "hard-cut threshold on the filter's magnitudes over their maximum, in [0, 1]",
    "save_every": "also write the clip after every this many steps (0: only the last)",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``dream`` command; every DreamSettings field is an option."""
    parser = subparsers.add_parser(
        "dream", help=HELP,
        description="Feed a clip back through the network step by step (DreamSound): deepdream adds the "
                    "objective's gradient, filter lets the clip through where the gradient's spectrum is strong, "
                    "filter-add adds that to the clip, target adds the gradient filtered by a target sound's "
                    "spectrum. Writes OUT_DIR/dream.wav (the last step), OUT_DIR/step_NNNN.wav (every --save-every "
                    "steps) and OUT_DIR/scores.json (the objective before every step and after the last).")
    parser.add_argument("clip", type=Path, help="the sound file to start from")
    parser.add_argument("out_dir", type=Path, help="output folder")
    add_objective_option(parser, required=True)
    add_field_options(parser, DreamSettings, _HELP, choices={"function": FUNCTIONS})
    parser.add_argument("--target", type=Path, default=None, help="the target function's sound file")
    parser.add_argument("--seconds", type=float, default=None, help="use only the clip's first SECONDS")
    add_model_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Dream and write the kept steps, the result and the scores."""
    from immersions.cpc.dream import dream

    from ..app_inputs import load_clip
    from ..atomic import write_json, write_wav
    from ._model import model_from, objective_from

    settings = DreamSettings(**field_values(DreamSettings, args))
    if (settings.function == "target") != (args.target is not None):
        raise ValueError("--target is needed by --function target, and only by it")
    model = model_from(args)
    objective = objective_from(args, model)
    rate = model.config.sample_rate
    clip = load_clip(args.clip, rate, seconds=args.seconds)
    target = None if args.target is None else load_clip(args.target, rate)
    result = dream(model, objective, clip, settings, target=target)
    files = {step: write_wav(args.out_dir / f"step_{step:04d}.wav", audio, rate).name
             for step, audio in result.saved.items() if settings.save_every}
    write_wav(args.out_dir / "dream.wav", result.audio, rate)
    write_json(args.out_dir / "scores.json", {
        "clip": str(args.clip), "target": None if args.target is None else str(args.target), "model": args.model,
        "objective": result.objective, "settings": asdict(settings), "sample_rate": rate,
        "scores": result.scores, "files": {str(step): name for step, name in files.items()}})
    print(f"wrote {args.out_dir / 'dream.wav'} and {args.out_dir / 'scores.json'}: {result.objective} "
          f"{result.scores[0]:.4f} -> {result.scores[-1]:.4f} after {settings.steps} steps ({settings.function})")
    return 0
