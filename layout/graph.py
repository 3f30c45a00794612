"""The network as a graph: vertices are neurons (layer, channel, kept axis), edges follow connectivity.

Vertex order is fixed everywhere in the project: layers in tap order, and inside a layer channel-major,
so neuron ``(channel c, position f)`` of a layer is vertex ``layer.start + c * layer.size + f``.
Edges are stored once, directed from the earlier tap to the later one, as a CSR-sorted ``(E, 2)`` int32
array; forces treat them as undirected.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .csr import group_edges

EDGE_DTYPE = np.int32
WEIGHT_DTYPE = np.float32


@dataclass(frozen=True)
class Layer:
    """One tap of the network: ``channels x size`` neurons starting at vertex ``start``."""

    name: str
    channels: int
    size: int
    start: int

    @property
    def count(self) -> int:
        """Number of vertices (neurons) in this layer."""
        return self.channels * self.size

    @property
    def stop(self) -> int:
        """One past the last vertex index of this layer."""
        return self.start + self.count


def layer_table(shapes: Sequence[tuple[str, int, int]]) -> tuple[Layer, ...]:
    """Build consecutive layers from ``(name, channels, size)`` triples."""
    layers, start = [], 0
    for name, channels, size in shapes:
        if channels < 1 or size < 1:
            raise ValueError(f"layer {name!r} has shape ({channels}, {size}); both must be >= 1")
        layers.append(Layer(str(name), int(channels), int(size), start))
        start += channels * size
    names = [layer.name for layer in layers]
    if len(set(names)) != len(names):
        raise ValueError(f"layer names must be unique, got {names}")
    return tuple(layers)


@dataclass(frozen=True)
class NeuronGraph:
    """Neurons of the chosen taps and the (weighted, deduplicated, CSR-sorted) edges between them."""

    layers: tuple[Layer, ...]
    edges: np.ndarray
    weights: np.ndarray

    def __post_init__(self) -> None:
        if self.edges.ndim != 2 or self.edges.shape[1] != 2:
            raise ValueError(f"edges must have shape (E, 2), got {self.edges.shape}")
        if self.weights.shape != (self.edges.shape[0],):
            raise ValueError(f"weights must have shape ({self.edges.shape[0]},), got {self.weights.shape}")

    @classmethod
    def from_edges(
        cls,
        layers: Sequence[Layer],
        src: np.ndarray,
        dst: np.ndarray,
        weights: np.ndarray | None = None,
    ) -> "NeuronGraph":
        """Sort edges by (source, target), drop self-loops and merge duplicates by summing weights."""
        layers = tuple(layers)
        n = layers[-1].stop if layers else 0
        src = np.asarray(src, dtype=np.int64).ravel()
        dst = np.asarray(dst, dtype=np.int64).ravel()
        if src.shape != dst.shape:
            raise ValueError(f"src and dst differ in length: {src.size} vs {dst.size}")
        w = np.ones(src.size, WEIGHT_DTYPE) if weights is None else np.asarray(weights, WEIGHT_DTYPE).ravel()
        if w.shape != src.shape:
            raise ValueError(f"weights has {w.size} entries for {src.size} edges")
        if src.size and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= n):
            raise ValueError(f"edge endpoints must lie in [0, {n}), got [{min(src.min(), dst.min())}, "
                             f"{max(src.max(), dst.max())}]")
        edges, merged_w = group_edges(src, dst, w, n)
        return cls(layers, edges, merged_w.astype(WEIGHT_DTYPE, copy=False))

    @property
    def n_vertices(self) -> int:
        """Total number of neurons over all layers."""
        return self.layers[-1].stop if self.layers else 0

    @property
    def n_edges(self) -> int:
        """Number of distinct directed edges."""
        return int(self.edges.shape[0])

    def indptr(self) -> np.ndarray:
        """CSR row pointer over sources: edges of vertex i are ``edges[indptr[i]:indptr[i+1]]``."""
        counts = np.bincount(self.edges[:, 0], minlength=self.n_vertices)
        return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    def layer(self, name: str) -> Layer:
        """The layer called ``name``; the error lists the valid names."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"no layer {name!r}; layers are {[layer.name for layer in self.layers]}")

    def layer_index(self) -> np.ndarray:
        """Index of the layer of every vertex, shape (N,), int32."""
        return np.repeat(np.arange(len(self.layers), dtype=np.int32), [layer.count for layer in self.layers])

    def summary(self) -> str:
        """A human-readable table of layers, vertices and edges."""
        lines = [f"{'layer':<32}{'channels':>10}{'size':>8}{'neurons':>12}"]
        for layer in self.layers:
            lines.append(f"{layer.name:<32}{layer.channels:>10}{layer.size:>8}{layer.count:>12}")
        lines.append(f"{len(self.layers)} layers, {self.n_vertices} neurons, {self.n_edges} edges")
        return "\n".join(lines)
