"""The layout benchmark's options, apart from the benchmark itself so that ``immersions bench --help`` loads no
torch."""
from __future__ import annotations

import argparse
import os
import platform

from .backends import BACKENDS

PEERS = ("igraph_fr", "igraph_drl", "fa2", "ogdf_fmmm")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options (used by the script and by ``immersions bench layout``)."""
    parser.add_argument("--repulsion-sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000],
                        help="vertex counts for the per-iteration repulsion timing")
    parser.add_argument("--backends", nargs="*", default=sorted(BACKENDS), help="repulsion backends to time")
    parser.add_argument("--exact-max", type=int, default=20_000, help="largest N timed with the O(N^2) exact")
    parser.add_argument("--grids", type=int, nargs="*", default=[224, 1024], help="king grid sides to lay out")
    parser.add_argument("--fine-iters", type=int, nargs="*", default=[1, 2, 5],
                        help="finest-level iteration caps tried for time-to-quality (ascending)")
    parser.add_argument("--models", nargs="*", default=["vgg16", "resnet18", "audio"], help="zoo graphs")
    parser.add_argument("--max-edges", type=int, default=30_000_000,
                        help="zoo graphs with more edges are recorded as skipped (memory of this machine)")
    parser.add_argument("--peers", nargs="*", default=list(PEERS), choices=PEERS,
                        help="peer layouts run on the first king grid (skipped when not installed)")
    parser.add_argument("--peer-max", type=int, default=60_000, help="largest graph given to peers")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (median reported)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch and numba threads")
    parser.add_argument("--device", default="cpu", help="torch device")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--machine", default=platform.node() or "unknown", help="name in the output file")
    parser.add_argument("--out-dir", default="benchmarks/results", help="folder of the JSON result")
