"""``immersions view LAYOUT.npz [--activations A.npz] [--audio clip.wav]``: the interactive viewer."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

from ..defaults import DEFAULT_MAX_EDGES
from ._options import DEFAULT_SIZE, non_negative_int, parse_size, positive_float

if TYPE_CHECKING:
    import numpy as np

HELP = "watch a layout light up with its activations (needs a display)"


@dataclass(frozen=True)
class ViewData:
    """Arrays a viewer needs, loaded from the files the pipeline writes."""

    snapshots: np.ndarray
    layer_index: np.ndarray
    edges: np.ndarray
    activations: np.ndarray | None
    activation_rate: float
    audio: np.ndarray | None
    sample_rate: int | None


def load_view_data(layout_path: Path, activations_path: Path | None, audio_path: Path | None) -> ViewData:
    """Read a layout, optional activations of the same network and an optional sound file.

    Activations without a recorded frame rate are taken to run at the default hop rate (44100 / 4096 Hz).
    """
    import numpy as np

    from immersions.layout.activations import Activations
    from immersions.layout.io import load_layout

    from ..animation import ACTIVATION_RATE
    from ..app_inputs import read_sound

    layout = load_layout(layout_path)
    snapshots = np.asarray(layout.positions, dtype=np.float32)
    if snapshots.ndim != 3 or snapshots.shape[2] != 2:
        raise ValueError(f"the viewer draws 2-D layouts; {str(layout_path)!r} has positions {snapshots.shape}")
    layers = layout.layers
    activations, activation_rate = None, ACTIVATION_RATE
    if activations_path is not None:
        recorded = Activations.load(activations_path)
        if recorded.layers != layers:
            raise ValueError(f"activations in {str(activations_path)!r} were recorded for layers "
                             f"{_shapes(recorded.layers)}, but the layout has {_shapes(layers)}")
        activations = recorded.values
        activation_rate = recorded.frame_rate or ACTIVATION_RATE
    audio, sample_rate = None, None
    if audio_path is not None:
        audio, sample_rate = read_sound(audio_path)
    graph = layout.graph
    return ViewData(snapshots, graph.layer_index(), graph.edges, activations, activation_rate, audio, sample_rate)


def _shapes(layers: tuple) -> list[str]:
    """Layers as ``name(channels x size)`` for error messages."""
    return [f"{layer.name}({layer.channels}x{layer.size})" for layer in layers]


def run(args: argparse.Namespace) -> int:
    """Open the viewer and block until it is closed."""
    from ..animation import default_timeline
    from ..window import Window, require_display

    data = load_view_data(args.layout, args.activations, args.audio)  # the files are checked first
    require_display()
    timeline = default_timeline(data.activations, data.audio, data.sample_rate, fps=args.fps, cycle=args.cycle,
                                activation_rate=data.activation_rate)
    with Window(data.snapshots, activations=data.activations, layer_index=data.layer_index,
                edges=None if args.no_edges else data.edges, audio=data.audio, sample_rate=data.sample_rate,
                timeline=timeline, size=args.size, title=f"immersions - {args.layout.name}",
                colormap=args.colormap, screenshot_dir=args.screenshots, max_edges=args.max_edges) as window:
        print("drag: pan | wheel: zoom | space: pause | 1-9, tab: focus a layer, 0: all | e: edges | "
              "s: screenshot | q: quit")
        try:
            window.run()
        except KeyboardInterrupt:
            print("interrupted")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``view`` subcommand."""
    from ..animation import DEFAULT_CYCLE

    parser = subparsers.add_parser("view", help=HELP, description=HELP)
    parser.add_argument("layout", type=Path, help="layout .npz written by the layout step")
    parser.add_argument("--activations", type=Path, help="activations .npz recorded for the same network")
    parser.add_argument("--audio", type=Path, help="sound file played along (needs the sounddevice package)")
    parser.add_argument("--size", type=parse_size, default=parse_size(DEFAULT_SIZE), metavar="WxH",
                        help=f"window size in pixels (default: {DEFAULT_SIZE})")
    parser.add_argument("--fps", type=positive_float, default=60.0, help="animation frame rate (default: %(default)s)")
    parser.add_argument("--cycle", type=positive_float, default=DEFAULT_CYCLE,
                        help="seconds per pass through the snapshots (default: %(default)s)")
    parser.add_argument("--colormap", default="inferno", help="activation colormap")
    parser.add_argument("--no-edges", action="store_true", help="do not draw edges")
    parser.add_argument("--max-edges", type=non_negative_int, default=DEFAULT_MAX_EDGES,
                        help="edges drawn, a seeded random subset, as in the videos (default: %(default)s)")
    parser.add_argument("--screenshots", type=Path, default=Path("."), help="folder for screenshots (key s)")
    parser.set_defaults(func=run)
