"""``immersions auralise CLIP --objective SPEC... OUT_DIR``: hear a clip through chosen neurons (Choi et al.)."""
from __future__ import annotations

import argparse
from pathlib import Path

from immersions.cpc.settings import AURALISE_METHODS

from ._options import add_model_options, add_objective_option

HELP = "hear a clip through chosen neurons: keep the parts of it that drive them"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``auralise`` command."""
    parser = subparsers.add_parser(
        "auralise", help=HELP,
        description="Auralisation (Choi et al.): the chosen neurons' response is carried back to the clip's "
                    "scaleogram (deconvolution, guided backpropagation or gradient x input), made a time-frequency "
                    "mask, applied to the clip's short-time spectrum and resynthesised with the clip's own phase. "
                    "Writes OUT_DIR/auralised.wav (the clip's length and rate, mono), OUT_DIR/auralised.png (top to "
                    "bottom: the clip's scaleogram, the mask, the result's scaleogram) and OUT_DIR/auralise.json.")
    parser.add_argument("clip", type=Path, help="the sound file to hear through the network")
    parser.add_argument("out_dir", type=Path, help="output folder")
    add_objective_option(parser, required=True)
    parser.add_argument("--method", choices=AURALISE_METHODS, default="deconv",
                        help="how the response is carried back: the deconvnet rule at every ReLU, guided "
                             "backpropagation, or gradient x input (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=None, help="use only the clip's first SECONDS")
    add_model_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Auralise the clip and write the sound, the figure and the settings."""
    from immersions.cpc.auralise import auralise

    from ..app_inputs import read_clip, resample
    from ..atomic import write_json
    from ..hearing import write_auralisation
    from ._model import model_from, objective_from

    model = model_from(args)
    objective = objective_from(args, model)
    original, rate = read_clip(args.clip, seconds=args.seconds)
    clip = resample(original, rate, model.config.sample_rate)
    result = auralise(model, objective, clip, args.method, original=original, original_rate=rate)
    files = write_auralisation(args.out_dir, "auralised", model, clip, result, rate)
    write_json(args.out_dir / "auralise.json", {
        "clip": str(args.clip), "model": args.model, "objective": result.objective, "method": result.method,
        "sample_rate": rate, "samples": len(result.audio), "score": result.score,
        "mask_mean": float(result.mask.mean()), "files": files})
    print(f"wrote {args.out_dir / files['audio']}, {args.out_dir / files['figure']} and "
          f"{args.out_dir / 'auralise.json'}: {result.objective} ({result.method}) scores {result.score:.4f} "
          "on the clip")
    return 0
