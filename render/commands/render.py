"""``immersions render``: a video of a model's neurons listening to a clip, with the clip as sound track."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..defaults import DEFAULT_MAX_EDGES, DEFAULT_PRESET, DEMO_SECONDS, LEVEL_MODES, PRESETS
from ._options import DEFAULT_SIZE, check_output_folder, non_negative_int, parse_size, positive_float

def add_video_options(parser: argparse.ArgumentParser, *, out: str, seconds: float | None) -> None:
    """Options shared by ``render`` and ``demo``: output, size, frame rate, clip length, seed and speed."""
    parser.add_argument("--out", type=Path, default=Path(out),
                        help="video file to write; the layout goes next to it as .npz (default: %(default)s)")
    parser.add_argument("--size", type=parse_size, default=parse_size(DEFAULT_SIZE), metavar="WxH",
                        help=f"frame size in pixels (default: {DEFAULT_SIZE})")
    parser.add_argument("--fps", type=positive_float, default=30.0, help="frames per second (default: %(default)s)")
    parser.add_argument("--seconds", type=positive_float, default=seconds,
                        help="length of the clip to render in seconds (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the layout, of the random model when none is shipped, of the demo music")
    parser.add_argument("--max-edges", type=non_negative_int, default=DEFAULT_MAX_EDGES,
                        help="edges drawn as faint lines, a seeded random subset (default: %(default)s)")
    parser.add_argument("--levels", choices=LEVEL_MODES, default=LEVEL_MODES[0],
                        help="what lights a neuron: 'reference', its rise above the model's levels at rest and on "
                             "reference music (silence dark, loud busy passages brighter; 'clip' when the model has "
                             "none), or 'clip', every layer scaled to its own range over this clip "
                             "(default: %(default)s)")
    parser.add_argument("--preset", choices=PRESETS, default=DEFAULT_PRESET,
                        help="libx264 speed preset: faster presets encode quicker into larger files "
                             "(default: %(default)s)")


HELP = "render a video of a model's neurons listening to a clip"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``render`` command."""
    parser = subparsers.add_parser(
        "render", help=HELP,
        description="Render an activation video with sound: the clip goes through the model, its neurons are laid "
                    "out by a force layout charged with their activity and lit by their activations.")
    parser.add_argument("--model", default="lean",
                        help="lean, seed (shipped checkpoints; random when none is shipped), a checkpoint .pt, your own "
                             "network as package.module:factory (a function returning it) or a torch.export .pt2 "
                             "(default: %(default)s)")
    parser.add_argument("--audio", type=Path, default=None,
                        help="clip to render (.wav, .flac, .ogg); default: the built-in demo music")
    parser.add_argument("--layout", type=Path, default=None,
                        help="reuse a layout .npz written by an earlier render of the same model")
    add_video_options(parser, out="immersions.mp4", seconds=None)
    parser.set_defaults(func=run_render)


def render_with(args: argparse.Namespace, model_spec: str, audio: Path | None, *, still: bool) -> dict[str, Path]:
    """Load the model and clip, render, and return the files written by kind: video, activations, layout
    (unless one was given), still and the demo music (when no audio file was given). Every argument is
    checked before any work, so a bad one leaves no file behind."""
    import soundfile

    from immersions.layout.io import load_layout
    from immersions.layout.npz_io import whole_file

    from ..app import listener_for, render_activation_video
    from ..app_inputs import check_audio_path, load_clip, load_model
    from ..demo_audio import demo_clip
    from ..levels import model_levels
    from ..offscreen import check_frame_size

    check_output_folder(args.out, "--out")
    if args.layout is not None:
        load_layout(args.layout)  # a wrong or damaged file is refused now, not after the model has listened
    if audio is not None:
        check_audio_path(audio)
    model = load_model(model_spec, seed=args.seed)
    listener = listener_for(model)
    sample_rate = listener.sample_rate
    if audio is None:
        clip = demo_clip(args.seconds or DEMO_SECONDS, sample_rate=sample_rate, seed=args.seed)
    else:
        clip = load_clip(audio, sample_rate, seconds=args.seconds)
    width, height = args.size
    check_frame_size(width, height)
    written = {"video": args.out, "activations": args.out.with_suffix(".activations.npz")}
    if args.layout is None:
        written["layout"] = args.out.with_suffix(".npz")
    if still:
        written["still"] = args.out.with_suffix(".png")
    levels = model_levels(model_spec, model, listener.graph.layers) if args.levels == "reference" else None
    render_activation_video(model, clip, sample_rate, args.out, width=width, height=height, fps=args.fps,
                            layout=args.layout, seed=args.seed, layout_path=written.get("layout"),
                            still_path=written.get("still"), activations_path=written["activations"],
                            levels=levels, sound_track=audio, max_edges=args.max_edges, preset=args.preset,
                            progress=True)
    if audio is None:
        written["audio"] = args.out.with_suffix(".wav")
        with whole_file(written["audio"]) as partial:
            soundfile.write(partial, clip, sample_rate)
    return written


def run_render(args: argparse.Namespace) -> int:
    """Render and print what was written and how to explore it."""
    written = render_with(args, args.model, args.audio, still=False)
    print_written(written, args.layout or written["layout"], args.audio or written["audio"])
    return 0


def print_written(written: dict[str, Path], layout: Path, audio: Path) -> None:
    """List the files and the viewer command that replays them interactively."""
    for kind, path in written.items():
        print(f"{kind}: {path}")
    print(f"watch {written['video']} with any video player (e.g. `ffplay {written['video']}`); on a display, explore "
          f"it with `immersions view {layout} --activations {written['activations']} --audio {audio}`")
