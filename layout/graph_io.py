"""Save and load a ``NeuronGraph`` as ``.npz`` (plain arrays, no pickle; ``npz_io`` says what a wrong file is)."""
from __future__ import annotations

import os
import zipfile

import numpy as np

from .graph import EDGE_DTYPE, WEIGHT_DTYPE, NeuronGraph, layer_table
from .npz_io import read_arrays, write_arrays

GRAPH_FORMAT = 1


def save_graph(graph: NeuronGraph, path: str | os.PathLike) -> None:
    """Write the layer table, edges and weights to ``path`` (``.npz``)."""
    write_arrays(
        path,
        format_version=np.int64(GRAPH_FORMAT),
        layer_names=np.array([layer.name for layer in graph.layers], dtype=np.str_),
        layer_channels=np.array([layer.channels for layer in graph.layers], dtype=np.int64),
        layer_sizes=np.array([layer.size for layer in graph.layers], dtype=np.int64),
        edges=graph.edges,
        weights=graph.weights,
    )


def is_sparse_matrix_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an ``.npz`` written by ``scipy.sparse.save_npz`` (an adjacency matrix from another
    tool) rather than one of this package's files; a damaged file is not, so ``load_graph`` names what is wrong."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return False
    if not isinstance(data, np.lib.npyio.NpzFile):  # a single array
        return False
    with data:
        return "format" in data and "shape" in data and "format_version" not in data


def load_graph(path: str | os.PathLike) -> NeuronGraph:
    """Read a graph written by ``save_graph``."""
    data = read_arrays(path, "graph", ("layer_names", "layer_channels", "layer_sizes", "edges", "weights"),
                       GRAPH_FORMAT)
    layers = layer_table(zip(data["layer_names"].tolist(), data["layer_channels"].tolist(),
                             data["layer_sizes"].tolist()))
    return NeuronGraph(layers, data["edges"].astype(EDGE_DTYPE, copy=False),
                       data["weights"].astype(WEIGHT_DTYPE, copy=False))
