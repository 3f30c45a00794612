"""Save and load a ``Layout`` as ``.npz``: plain arrays, the layer table and parameters as JSON strings.

The file carries a format version; loading refuses other versions, missing arrays and non-layout files
with errors that say what was found. No pickle is ever read (``allow_pickle=False``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .forces import ForceParams
from .graph import EDGE_DTYPE, WEIGHT_DTYPE, NeuronGraph, layer_table
from .layout import Layout

LAYOUT_FORMAT = 1
ARRAYS = ("format_version", "positions", "charges", "velocity", "step", "pinned", "edges", "weights",
          "layers", "params", "seed", "iteration")


def save_layout(layout: Layout, path: str | os.PathLike) -> Path:
    """Write ``layout`` to ``path`` (``.npz`` is appended by numpy when missing); returns the path written."""
    if not isinstance(layout, Layout):
        raise TypeError(f"layout must be a Layout, got {type(layout).__name__}")
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    layers = [json.dumps({"name": layer.name, "channels": layer.channels, "size": layer.size})
              for layer in layout.layers]
    np.savez(path, format_version=np.int64(LAYOUT_FORMAT),
             positions=layout.positions.astype(np.float32, copy=False),
             charges=layout.charges.astype(np.float32, copy=False),
             velocity=layout.velocity.astype(np.float32, copy=False),
             step=layout.step.astype(np.float32, copy=False), pinned=layout.pinned,
             edges=layout.graph.edges, weights=layout.graph.weights,
             layers=np.array(layers, dtype=np.str_), params=np.array([layout.params.to_json()], dtype=np.str_),
             seed=np.int64(layout.seed), iteration=np.int64(layout.iteration))
    return path


def load_layout(path: str | os.PathLike, *, backend: str = "auto", device: str = "cpu") -> Layout:
    """Read a layout written by ``save_layout``; ``backend`` and ``device`` are where it will optimise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no layout file at {str(path)!r}")
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise ValueError(f"{str(path)!r} is not a .npz layout file: {exc}") from exc
    if not hasattr(data, "files"):
        raise ValueError(f"{str(path)!r} holds a single array, not a .npz layout file")
    with data:
        missing = [name for name in ARRAYS if name not in data.files]
        if "format_version" in missing:
            raise ValueError(f"{str(path)!r} is not a layout file: it has no format_version "
                             f"(arrays found: {sorted(data.files)})")
        version = int(data["format_version"])
        if version != LAYOUT_FORMAT:
            raise ValueError(f"{str(path)!r} has layout format version {version}; this version reads "
                             f"format {LAYOUT_FORMAT} only")
        if missing:
            raise ValueError(f"{str(path)!r} lacks the arrays {missing} of layout format {LAYOUT_FORMAT}")
        arrays = {name: data[name] for name in ARRAYS}
    layers = layer_table([(entry["name"], entry["channels"], entry["size"])
                          for entry in map(json.loads, arrays["layers"].tolist())])
    graph = NeuronGraph(layers, arrays["edges"].astype(EDGE_DTYPE, copy=False),
                        arrays["weights"].astype(WEIGHT_DTYPE, copy=False))
    return Layout(arrays["positions"].astype(np.float32, copy=False), graph,
                  ForceParams.from_json(str(arrays["params"][0])), int(arrays["seed"]),
                  arrays["charges"].astype(np.float32, copy=False), arrays["velocity"].astype(np.float32, copy=False),
                  arrays["step"].astype(np.float32, copy=False), arrays["pinned"].astype(bool, copy=False),
                  int(arrays["iteration"]), backend, device)
