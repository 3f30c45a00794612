"""``immersions layout MODEL_OR_GRAPH``: run the multilevel force layout, save it and a picture of it."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from typing import TYPE_CHECKING

from ._options import check_output_folder

if TYPE_CHECKING:
    import numpy as np

HELP = "lay out a neuron graph with the multilevel force simulation"
# Colour per layer, cycled (Okabe-Ito, readable on white and for colour-blind viewers).
PALETTE = ((0, 114, 178), (230, 159, 0), (0, 158, 115), (204, 121, 167), (86, 180, 233), (213, 94, 0),
           (240, 228, 66), (0, 0, 0))
MIN_PICTURE = 16
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``layout`` command."""
    from immersions.layout.backends import BACKENDS
    from immersions.layout.defaults import COARSENINGS
    from immersions.layout.params import ForceParams
    from immersions.layout.sources import graph_names

    defaults = ForceParams()
    parser = subparsers.add_parser("layout", help=HELP)
    parser.add_argument("graph", metavar="MODEL_OR_GRAPH",
                        help=f"one of {graph_names()}; a graph from another tool is a scipy.sparse .npz "
                             "adjacency, GraphML, or an edge list of 'u v [weight]' lines (text or CSV)")
    parser.add_argument("--out", default="layout.npz", help="layout file to write (default: %(default)s)")
    parser.add_argument("--png", default=None,
                        help="picture to write (default: the --out path with .png; 'none' to skip)")
    parser.add_argument("--size", type=int, default=1024,
                        help=f"picture width and height in pixels, at least {MIN_PICTURE} (default: %(default)s)")
    parser.add_argument("--backend", default="auto", choices=["auto", *sorted(BACKENDS)],
                        help="repulsion backend (default: %(default)s)")
    parser.add_argument("--device", default="cpu", help="torch device, cpu or cuda[:N] (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial positions (default: %(default)s)")
    parser.add_argument("--dims", type=int, default=2, choices=(2, 3), help="layout dimension")
    parser.add_argument("--k", type=float, default=defaults.k, help="repulsion exponent (default: %(default)s)")
    parser.add_argument("--theta", type=float, default=defaults.theta,
                        help="Barnes-Hut opening angle (default: %(default)s)")
    parser.add_argument("--centering", type=float, default=defaults.centering,
                        help="centering factor l on the finest level (default: %(default)s)")
    parser.add_argument("--fine-iter", type=int, default=defaults.fine_iter,
                        help="iterations on the finest level (default: %(default)s)")
    parser.add_argument("--coarsening", default="auto", choices=["auto", *COARSENINGS],
                        help="multilevel coarsening: 'graph' merges vertices by the edges alone (any graph, any "
                             "numbering), 'axes' merges index neighbours along a layer's channels and positions "
                             "(neuron graphs), 'auto' picks by the graph (default: %(default)s)")
    parser.add_argument("--quality", action="store_true", help="print the neighbourhood preservation")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build or load the graph, lay it out, save the layout and its picture. The options are checked first, so
    a bad one costs no layout and leaves no file."""
    import imageio.v3 as iio

    from immersions.layout.io import save_layout
    from immersions.layout.params import ForceParams
    from immersions.layout.npz_io import whole_file
    from immersions.layout.quality import neighborhood_preservation
    from immersions.layout.simulate import ForceLayout
    from immersions.layout.sources import resolve_graph

    from ..app_inputs import check_device

    check_outputs(args)
    check_device(args.device)
    params = ForceParams(k=args.k, theta=args.theta, centering=args.centering, fine_iter=args.fine_iter)
    graph = resolve_graph(args.graph, seed=args.seed)
    print(graph.summary())
    start = time.perf_counter()
    layout = ForceLayout(params, backend=args.backend, device=args.device, seed=args.seed,
                         dims=args.dims, coarsening=args.coarsening).fit(graph)
    print(f"laid out {graph.n_vertices} neurons in {time.perf_counter() - start:.2f} s "
          f"({layout.iteration} iterations)")
    if args.quality and graph.n_edges:
        print(f"neighbourhood preservation {neighborhood_preservation(graph, layout.positions[0]):.4f}")
    out = save_layout(layout, args.out)
    png = out.with_suffix(".png") if args.png is None else None if args.png.lower() == "none" else Path(args.png)
    print(f"saved layout to {out}")
    if png is not None:
        with whole_file(png) as partial:
            iio.imwrite(partial, rasterize(layout.positions[0], graph.layer_index(), args.size))
        print(f"saved picture to {png}")
    return 0


def check_outputs(args: argparse.Namespace) -> None:
    """Refuse an output name or picture size that would fail only after the layout was computed."""
    check_output_folder(args.out, "--out")
    if (args.png or "none").lower() != "none":
        check_output_folder(args.png, "--png")
    if args.size < MIN_PICTURE:
        raise ValueError(f"--size must be >= {MIN_PICTURE} pixels, got {args.size}")
    if (args.png or "none").lower() != "none" and Path(args.png).suffix.lower() not in PICTURE_SUFFIXES:
        raise ValueError(f"--png {args.png!r}: the picture's name must end in one of {', '.join(PICTURE_SUFFIXES)}")


def rasterize(positions: np.ndarray, layer_index: np.ndarray, size: int) -> np.ndarray:
    """An RGB picture ``(size, size, 3)`` of the points (first two coordinates), coloured by layer."""
    import numpy as np

    if size < MIN_PICTURE:
        raise ValueError(f"size must be >= {MIN_PICTURE} pixels, got {size}")
    xy = positions[:, :2].astype(np.float64)
    low, span = xy.min(0), np.ptp(xy, 0).max()
    margin = max(2, size // 64)
    pixels = ((xy - low) / (span if span > 0 else 1.0) * (size - 1 - 2 * margin) + margin).astype(np.int64)
    image = np.full((size, size, 3), 255, np.uint8)
    colour = np.array(PALETTE, np.uint8)[layer_index % len(PALETTE)]
    radius = 1 if len(xy) > 20_000 else 2
    for dy in range(-radius + 1, radius):
        for dx in range(-radius + 1, radius):
            image[np.clip(size - 1 - pixels[:, 1] + dy, 0, size - 1), np.clip(pixels[:, 0] + dx, 0, size - 1)] = colour
    return image
