"""``immersions graph MODEL``: extract the neuron graph of a zoo model, print its table, optionally save it."""
from __future__ import annotations

import argparse
import time

from ._options import check_output_folder

HELP = "extract the neuron graph of a model"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``graph`` command."""
    from immersions.layout.defaults import DEFAULT_MAX_EDGES, ZOO_INPUT_SHAPES

    parser = subparsers.add_parser("graph", help=HELP)
    parser.add_argument("model", choices=sorted(ZOO_INPUT_SHAPES), help="zoo model")
    parser.add_argument("--input-shape", type=int, nargs="+", default=None, metavar="N",
                        help="example input shape, batch first (default: the model's own)")
    parser.add_argument("--layers", nargs="+", default=None, metavar="NAME",
                        help="tap names (default: every nonlinearity output)")
    parser.add_argument("--keep-axis", type=int, default=2, choices=(2, 3),
                        help="axis of (B, C, H, W) maps kept as neuron position (default: %(default)s)")
    parser.add_argument("--keep-length", action="store_true", help="keep the length of (B, C, L) maps")
    parser.add_argument("--include-input", action="store_true", help="make the input the first layer")
    parser.add_argument("--max-edges", type=int, default=DEFAULT_MAX_EDGES,
                        help="refuse graphs with more edges (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights and input")
    parser.add_argument("--out", default=None, help="save the graph to this .npz file")
    parser.add_argument("--list-nodes", action="store_true", help="print the valid --layers names and stop")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the model, extract its graph, print the summary and save it when asked."""
    from immersions.layout import zoo
    from immersions.layout.extract import extract, node_names
    from immersions.layout.graph_io import save_graph

    check_output_folder(args.out, "--out")
    model, example = zoo.build(args.model, input_shape=args.input_shape, seed=args.seed)
    if args.list_nodes:
        print("\n".join(node_names(model, example)))
        return 0
    start = time.perf_counter()
    graph = extract(model, example, layers=args.layers, keep_axis=args.keep_axis, keep_length=args.keep_length,
                    include_input=args.include_input, max_edges=args.max_edges)
    print(graph.summary())
    print(f"extracted in {time.perf_counter() - start:.2f} s from input {tuple(example.shape)}")
    if args.out:
        save_graph(graph, args.out)
        print(f"saved to {args.out}")
    return 0
