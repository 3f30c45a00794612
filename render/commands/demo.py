"""``immersions demo``: the shipped lean model listening to built-in synthesised music, as a video with sound."""
from __future__ import annotations

import argparse

from ..defaults import DEMO_SECONDS
from .render import add_video_options, print_written, render_with

HELP = "render the built-in demo: the lean model listening to synthesised music"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` command."""
    parser = subparsers.add_parser(
        "demo", help=HELP,
        description="Render immersions-demo.mp4 (plus its layout, activations, a PNG still and the music as "
                    ".wav) from built-in defaults: "
                    "the shipped lean CPC model and a few seconds of synthesised polyphonic music. Runs on a CPU "
                    "without GPU or display.")
    add_video_options(parser, out="immersions-demo.mp4", seconds=DEMO_SECONDS)
    parser.set_defaults(func=run_demo, layout=None)


def run_demo(args: argparse.Namespace) -> int:
    """Render the demo and say what was written and how to look at it."""
    written = render_with(args, "lean", None, still=True)
    print_written(written, written["layout"], written["audio"])
    return 0
