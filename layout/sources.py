"""Name a graph on the command line or in a benchmark: a zoo model, a synthetic king grid, or a saved file."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .defaults import DEFAULT_MAX_EDGES, ZOO_INPUT_SHAPES

if TYPE_CHECKING:
    from .graph import NeuronGraph

KING_GRID = "king-grid:"


def graph_names() -> list[str]:
    """The accepted graph specifications, for help texts and errors (torch-free: the command line's help)."""
    return sorted(ZOO_INPUT_SHAPES) + [f"{KING_GRID}N", "PATH.npz", "PATH.graphml", "PATH.csv|.txt (edge list)"]


def resolve_graph(spec: str, *, seed: int = 0, max_edges: int = DEFAULT_MAX_EDGES) -> NeuronGraph:
    """The graph named by ``spec``: a zoo model (extracted with its default taps, refused above
    ``max_edges`` edges), ``king-grid:N``, a graph ``.npz`` written by ``graph_io.save_graph``, or a graph
    from another tool (``readers``: scipy.sparse ``.npz``, GraphML, an edge list)."""
    from . import zoo
    from .extract import extract
    from .graph_io import is_sparse_matrix_file, load_graph
    from .readers import EDGE_LIST_SUFFIXES, GRAPHML_SUFFIXES, read_any
    from .synthetic import king_grid

    if spec in zoo.MODELS:
        model, example = zoo.build(spec, seed=seed)
        return extract(model, example, max_edges=max_edges)
    if spec.startswith(KING_GRID):
        size = spec[len(KING_GRID):]
        if not size.isdigit() or int(size) < 1:
            raise ValueError(f"king grid size must be a positive integer, got {spec!r} (use {KING_GRID}N)")
        return king_grid(int(size))
    suffix = Path(spec).suffix.lower()
    if suffix in (".npz", *GRAPHML_SUFFIXES, *EDGE_LIST_SUFFIXES):
        if not Path(spec).is_file():
            raise FileNotFoundError(f"no graph file at {spec!r}")
        if suffix == ".npz" and not is_sparse_matrix_file(spec):
            return load_graph(spec)  # ours, or a wrong file that load_graph names
        return read_any(spec)[0]
    raise ValueError(f"unknown graph {spec!r}; use one of {graph_names()}")
