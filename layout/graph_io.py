"""Save and load a ``NeuronGraph`` as ``.npz`` (plain arrays, no pickle)."""
from __future__ import annotations

import os

import numpy as np

from .graph import EDGE_DTYPE, WEIGHT_DTYPE, NeuronGraph, layer_table

GRAPH_FORMAT = 1


def save_graph(graph: NeuronGraph, path: str | os.PathLike) -> None:
    """Write the layer table, edges and weights to ``path`` (``.npz``)."""
    np.savez(
        path,
        format_version=np.int64(GRAPH_FORMAT),
        layer_names=np.array([layer.name for layer in graph.layers], dtype=np.str_),
        layer_channels=np.array([layer.channels for layer in graph.layers], dtype=np.int64),
        layer_sizes=np.array([layer.size for layer in graph.layers], dtype=np.int64),
        edges=graph.edges,
        weights=graph.weights,
    )


def is_saved_graph(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an ``.npz`` written by ``save_graph`` (rather than, say, a scipy.sparse matrix)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return "format_version" in data and "edges" in data
    except (OSError, ValueError):
        return False


def load_graph(path: str | os.PathLike) -> NeuronGraph:
    """Read a graph written by ``save_graph``."""
    with np.load(path, allow_pickle=False) as data:
        if "format_version" not in data or "edges" not in data:
            raise ValueError(f"{os.fspath(path)!r} is not a saved neuron graph (no format_version/edges arrays)")
        version = int(data["format_version"])
        if version != GRAPH_FORMAT:
            raise ValueError(f"{os.fspath(path)!r} has graph format {version}; this version reads {GRAPH_FORMAT}")
        layers = layer_table(zip(data["layer_names"].tolist(), data["layer_channels"].tolist(),
                                 data["layer_sizes"].tolist()))
        edges = data["edges"].astype(EDGE_DTYPE, copy=False)
        weights = data["weights"].astype(WEIGHT_DTYPE, copy=False)
    return NeuronGraph(layers, edges, weights)
