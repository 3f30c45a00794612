"""Save and load a ``Layout`` as ``.npz``: plain arrays, the layer table and parameters as JSON strings.

The file carries a format version; loading refuses other versions, missing arrays and non-layout files
with errors that say what was found (``npz_io``). No pickle is ever read; the file is written whole or not at all.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .forces import ForceParams
from .graph import EDGE_DTYPE, WEIGHT_DTYPE, NeuronGraph, layer_table
from .layout import Layout
from .npz_io import read_arrays, write_arrays

LAYOUT_FORMAT = 1
ARRAYS = ("positions", "charges", "velocity", "step", "pinned", "edges", "weights",
          "layers", "params", "seed", "iteration")


def save_layout(layout: Layout, path: str | os.PathLike) -> Path:
    """Write ``layout`` to ``path`` (``.npz`` is appended by numpy when missing); returns the path written."""
    if not isinstance(layout, Layout):
        raise TypeError(f"layout must be a Layout, got {type(layout).__name__}")
    layers = [json.dumps({"name": layer.name, "channels": layer.channels, "size": layer.size})
              for layer in layout.layers]
    return write_arrays(path, format_version=np.int64(LAYOUT_FORMAT),
                        positions=layout.positions.astype(np.float32, copy=False),
                        charges=layout.charges.astype(np.float32, copy=False),
                        velocity=layout.velocity.astype(np.float32, copy=False),
                        step=layout.step.astype(np.float32, copy=False), pinned=layout.pinned,
                        edges=layout.graph.edges, weights=layout.graph.weights,
                        layers=np.array(layers, dtype=np.str_),
                        params=np.array([layout.params.to_json()], dtype=np.str_),
                        seed=np.int64(layout.seed), iteration=np.int64(layout.iteration))


def load_layout(path: str | os.PathLike, *, backend: str = "auto", device: str = "cpu") -> Layout:
    """Read a layout written by ``save_layout``; ``backend`` and ``device`` are where it will optimise."""
    arrays = read_arrays(path, "layout", ARRAYS, LAYOUT_FORMAT)
    layers = layer_table([(entry["name"], entry["channels"], entry["size"])
                          for entry in map(json.loads, arrays["layers"].tolist())])
    graph = NeuronGraph(layers, arrays["edges"].astype(EDGE_DTYPE, copy=False),
                        arrays["weights"].astype(WEIGHT_DTYPE, copy=False))
    return Layout(arrays["positions"].astype(np.float32, copy=False), graph,
                  ForceParams.from_json(str(arrays["params"][0])), int(arrays["seed"]),
                  arrays["charges"].astype(np.float32, copy=False), arrays["velocity"].astype(np.float32, copy=False),
                  arrays["step"].astype(np.float32, copy=False), arrays["pinned"].astype(bool, copy=False),
                  int(arrays["iteration"]), backend, device)
