"""``immersions levels MODEL --audio FILES_OR_FOLDERS``: measure a model's reference light levels and store them
beside its checkpoint, so that renders light neurons against the model's levels instead of each clip's own."""
from __future__ import annotations

import argparse
from pathlib import Path

from ._options import positive_float

HELP = "measure a model's reference light levels on a set of music clips"


def reference_files(paths: list[Path]) -> list[Path]:
    """The sound files named, and those in the folders named (sorted), in order."""
    from ..app_inputs import AUDIO_SUFFIXES

    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
            if not found:
                raise FileNotFoundError(f"folder {str(path)!r} holds no {'/'.join(AUDIO_SUFFIXES)} files")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"reference audio {str(path)!r} does not exist")
    return files


def run(args: argparse.Namespace) -> int:
    """Hear every reference clip, then write the levels."""
    from ..app import Listener
    from ..app_inputs import load_clip, load_cpc_model
    from ..levels import levels_path, measure_reference_levels, model_digest, save_levels

    files = reference_files(args.audio)
    model = load_cpc_model(args.model)
    listener = Listener(model)
    rate = model.config.sample_rate
    clips = ((str(path), load_clip(path, rate, seconds=args.seconds)) for path in files)
    levels = measure_reference_levels(listener, clips)
    out = args.out or levels_path(args.model)
    save_levels(levels, out, listener.graph.layers, model_digest(model))
    print(f"reference levels of {args.model} over {len(files)} clips ({levels.info['seconds']:.0f} s): {out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``levels`` command."""
    parser = subparsers.add_parser(
        "levels", help=HELP,
        description="Measure the levels against which `render --levels reference` lights neurons: every neuron's "
                    "activation at rest (digital silence) and its quantiles over reference clips, stored beside "
                    "the checkpoint as <checkpoint>.levels.npz (for a shipped model, in cpc/assets). Rerun it "
                    "whenever the model's weights change; renders refuse levels measured on other weights.")
    parser.add_argument("model", help="lean, seed (shipped checkpoints) or a checkpoint .pt")
    parser.add_argument("--audio", type=Path, nargs="+", required=True,
                        help="reference sound files or folders of them (.wav, .flac, .ogg); not the music you "
                             "will judge renders by")
    parser.add_argument("--seconds", type=positive_float, default=60.0,
                        help="seconds heard from the start of each clip (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=None,
                        help="file to write (default: <checkpoint>.levels.npz beside the checkpoint)")
    parser.set_defaults(func=run)
