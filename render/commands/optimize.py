"""``immersions optimize [OUT_DIR]``: sound that excites chosen neurons, grown loop by loop from a start clip."""
from __future__ import annotations

import argparse
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path

from immersions.cpc.settings import START_KINDS, OptimizeSettings, Regularization

from ..defaults import DEFAULT_OSC_HOST
from ._options import (DEFAULT_SIZE, add_field_options, add_model_options, field_values, parse_size,
                       positive_float, positive_int)

REGULARIZER_HELP = {
    "time_shift": "largest random roll of the waveform per step, seconds",
    "pitch_shift": "largest random shift of the scaleogram per step, bins (2 = a semitone)",
    "masks": "random scaleogram rectangles blanked per step",
    "mask_frames": "largest masked rectangle, frames",
    "mask_bins": "largest masked rectangle, bins",
    "gradient_noise": "gradient noise, as a fraction of the gradient's std",
    "denoise_every": "steps between de-noising passes (0: never)",
    "denoise_strength": "de-noising threshold, times the clip's mean STFT magnitude",
}


HELP = "turn silence, noise or a clip into sound that excites chosen neurons"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``optimize`` command; every Regularization field is an option."""
    parser = subparsers.add_parser(
        "optimize", help=HELP,
        description="Input optimisation: gradient ascent on the samples of a clip so that the chosen neurons "
                    "fire, with the article's regularisers; each loop starts from the last. Writes "
                    "OUT_DIR/clip_000.wav, ..., loop.wav (all clips in a row) and scores.json.")
    parser.add_argument("out_dir", nargs="?", default="optimized", help="output folder (default: %(default)s)")
    parser.add_argument("--objective", nargs="+", metavar="SPEC",
                        help="what to maximise, summed: TAP (a layer), TAP:CHANNEL or TAP:CHANNEL:FREQ (a neuron); "
                             "--list-taps shows the taps")
    parser.add_argument("--list-taps", action="store_true", help="print every tap with its shape and exit")
    parser.add_argument("--start", default="silence",
                        help=f"{' or '.join(START_KINDS)}, or a sound file (default: %(default)s)")
    parser.add_argument("--seconds", type=positive_float, default=4.0, help="clip length (default: %(default)s)")
    parser.add_argument("--loops", type=positive_int, default=None,
                        help="clips, each grown from the last (default: 1; with --live, until the window closes)")
    parser.add_argument("--steps", type=int, default=OptimizeSettings.steps,
                        help="steps per clip (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=OptimizeSettings.lr,
                        help="Adam step on the samples (default: %(default)s)")
    add_field_options(parser, Regularization, REGULARIZER_HELP)
    parser.add_argument("--live", action="store_true",
                        help="show the network in a window, lit by the loop it hears, and play the loop while the next "
                             "one grows from it; each new loop takes over at the end of a pass; keys n, z and o grow "
                             "the next one afresh from noise, silence or the start clip (needs a display; sound needs "
                             "the sounddevice package)")
    parser.add_argument("--layout", type=Path, default=None,
                        help="with --live: a layout .npz of the same model to reuse (default: computed from the "
                             "first clip and saved as OUT_DIR/layout.npz)")
    parser.add_argument("--size", type=parse_size, default=parse_size(DEFAULT_SIZE), metavar="WxH",
                        help=f"with --live: window size in pixels (default: {DEFAULT_SIZE})")
    parser.add_argument("--osc-port", type=int, default=None, metavar="PORT",
                        help="steer the clips to come over OSC on this UDP port: /objective SPEC..., "
                             "/start silence|noise|origin, /steps, /lr, /seed and every regulariser (/pitch_shift 4, "
                             "...); each change applies from the next clip (needs python-osc)")
    parser.add_argument("--osc-host", default=DEFAULT_OSC_HOST,
                        help="address to listen for OSC on (default: %(default)s, this machine only)")
    parser.add_argument("--seed", type=int, default=0)
    add_model_options(parser, threads=1,
                      threads_help="CPU threads for torch (default: %(default)s: on a machine shared with other busy "
                                   "processes one thread was 2.5x faster than two; on an idle machine more threads "
                                   "gain up to 1.2x)")
    parser.set_defaults(func=run)


def _print_taps(shapes: dict[str, tuple[int, ...]]) -> None:
    """Every tap's name, channels and frequency positions."""
    for name, shape in shapes.items():
        print(f"{name:<28} channels {shape[0]:>4}" + (f", frequency positions {shape[1]:>4}" if len(shape) > 1 else ""))


def run(args: argparse.Namespace) -> int:
    """Optimise ``--loops`` clips and write them, their concatenation and the scores."""
    from immersions.cpc.loop_control import LoopControl, grow_loop
    from immersions.cpc.objectives import parse_objectives
    from immersions.cpc.optimize import check_objective, start_clip, tap_shapes

    from ..app_inputs import check_audio_path, check_device, load_clip
    from ..clip_folder import ClipFolder
    from ..live import run_live
    from ..osc import OscControl
    from ._model import model_from

    check_device(args.device)
    if args.start not in START_KINDS:
        check_audio_path(args.start)
    if args.layout is not None and not args.live:
        raise ValueError("--layout applies to --live only (`immersions render --layout` reuses one for a video)")
    model = model_from(args)
    shapes = tap_shapes(model)
    if args.list_taps:
        _print_taps(shapes)
        return 0
    if not args.objective:
        raise ValueError("give --objective SPEC (e.g. ar.blocks.8.relu:3), or --list-taps to see the taps")
    objective = parse_objectives(args.objective)
    rate = model.config.sample_rate
    if args.start in START_KINDS:
        start = start_clip(args.start, int(round(args.seconds * rate)), args.seed)
    else:
        start = load_clip(args.start, rate, seconds=args.seconds)
    regularization = Regularization(**field_values(Regularization, args))
    settings = OptimizeSettings(steps=args.steps, lr=args.lr, regularization=regularization, seed=args.seed)
    check_objective(objective, shapes)
    control = LoopControl(objective, settings)
    folder = ClipFolder(args.out_dir, rate, {"model": args.model, "objective": objective.description,
                                             "start": args.start, "settings": asdict(settings)})
    osc = nullcontext() if args.osc_port is None else OscControl(
        control, args.osc_port, host=args.osc_host, check=lambda changed: check_objective(changed, shapes))
    try:
        with osc:
            if args.live:
                run_live(model, control, start, folder, n_clips=args.loops, layout=args.layout, size=args.size)
            else:
                for clip in grow_loop(model, control, start, args.loops or 1):
                    path = folder.add(clip)
                    print(f"{path}: {clip.objective} {clip.initial_score:.4f} -> {clip.final_score:.4f}")
    finally:
        loop = folder.finish()
    if loop is None:
        print("no clip was finished")
        return 1
    print(f"wrote {len(folder.clips)} clip(s), {loop} and {folder.path / 'scores.json'}; "
          f"`immersions render --audio {loop}` shows the network hearing it")
    return 0
