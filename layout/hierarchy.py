"""Multilevel coarsening of a neuron graph, so the force layout can start coarse and refine.

Two ways to coarsen: ``build_structural_hierarchy`` merges vertices by the edges alone (``coarsening``), for
any graph however numbered; ``build_hierarchy`` (the seed article's) merges index neighbours along a layer's
axes, which is only as good as the numbering. In the axis merge, each step merges groups of ``factor`` neighbouring neurons of a layer along one axis, the channel axis or
the kept (frequency) axis, alternating as ``order`` says. Coarse charge is the sum of the children, coarse
position their mean; expanding a layout goes back through the levels in inverse order, placing children
at their parent plus a small seeded jitter.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .coarsening import BACKENDS, coarsen_numba, coarsen_torch
from .csr import group_edges
from .graph import Layer, NeuronGraph, layer_table

logger = logging.getLogger(__name__)

AXES = ("channel", "size")


@dataclass(frozen=True)
class Hierarchy:
    """Graphs from fine (``levels[0]``, the input) to coarse, and the parent of every vertex one level up."""

    levels: tuple[NeuronGraph, ...]
    parents: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        if not self.levels:
            raise ValueError("a hierarchy needs at least one level, got none")
        if len(self.parents) != len(self.levels) - 1:
            raise ValueError(f"{len(self.levels)} levels need {len(self.levels) - 1} parent arrays, "
                             f"got {len(self.parents)}")
        for i, parent in enumerate(self.parents):
            if parent.shape != (self.levels[i].n_vertices,) or not np.issubdtype(parent.dtype, np.integer):
                raise ValueError(f"parents[{i}] must be integers of shape ({self.levels[i].n_vertices},), "
                                 f"got {parent.dtype} {parent.shape}")
            n_coarse = self.levels[i + 1].n_vertices
            if parent.size and (parent.min() < 0 or parent.max() >= n_coarse):
                raise ValueError(f"parents[{i}] must lie in [0, {n_coarse}), got [{parent.min()}, {parent.max()}]")
            orphans = n_coarse - np.count_nonzero(np.bincount(parent, minlength=n_coarse))
            if orphans:
                raise ValueError(f"parents[{i}] leaves {orphans} of the {n_coarse} vertices of level {i + 1} "
                                 f"without children")

    @property
    def n_levels(self) -> int:
        """Number of levels, the input graph included."""
        return len(self.levels)

    def coarsen(self, values: np.ndarray, level: int) -> np.ndarray:
        """Sum per-vertex values (charges) of ``level`` into their parents: ``(..., N_level) -> (..., N_level+1)``."""
        values = self._checked(values, level, "values", axis=-1, source=level)
        order, starts = self._children(level)
        return np.add.reduceat(np.take(values, order, axis=-1), starts, axis=-1)

    def restrict_positions(self, pos: np.ndarray, level: int) -> np.ndarray:
        """Mean position of the children: ``(..., N_level, D) -> (..., N_level+1, D)``."""
        pos = self._checked(pos, level, "pos", axis=-2, source=level)
        order, starts = self._children(level)
        sums = np.add.reduceat(np.take(pos, order, axis=-2), starts, axis=-2)
        counts = np.diff(np.append(starts, order.size))
        return (sums / counts[:, None]).astype(np.result_type(pos.dtype, np.float32), copy=False)

    def prolong(self, pos: np.ndarray, level: int, *, jitter: float, seed: int) -> np.ndarray:
        """Place the vertices of ``level`` at their parent's position (of ``level + 1``) plus Gaussian jitter.

        ``pos`` is ``(..., N_level+1, D)``; the result is ``(..., N_level, D)``, jitter std ``jitter``.
        """
        if not np.isfinite(jitter) or jitter < 0:
            raise ValueError(f"jitter must be finite and >= 0, got {jitter}")
        pos = self._checked(pos, level, "pos", axis=-2, source=level + 1)
        out = np.take(pos, self.parents[level], axis=-2)
        if jitter > 0:
            noise = np.random.default_rng(seed).standard_normal(out.shape, dtype=np.float32)
            out = out + np.float32(jitter) * noise
        return out

    def _checked(self, array: np.ndarray, level: int, name: str, *, axis: int, source: int) -> np.ndarray:
        """Validate the level (one that has a parent level) and that ``array`` holds level ``source`` vertices."""
        if not 0 <= level < self.n_levels - 1:
            raise ValueError(f"level must lie in [0, {self.n_levels - 2}] for a hierarchy of {self.n_levels} "
                             f"levels, got {level}")
        n = self.levels[source].n_vertices
        array = np.asarray(array)
        if array.ndim < -axis or array.shape[axis] != n:
            raise ValueError(f"{name} must have {n} vertices on axis {axis}, got shape {array.shape}")
        return array

    def _children(self, level: int) -> tuple[np.ndarray, np.ndarray]:
        """Fine vertices grouped by parent, and where each parent's group starts (every group is non-empty)."""
        parent = self.parents[level]
        order = np.argsort(parent, kind="stable")
        counts = np.bincount(parent, minlength=self.levels[level + 1].n_vertices)
        starts = np.concatenate([[0], np.cumsum(counts[:-1])]).astype(np.int64)
        return order, starts


def _coarse_shape(layer: Layer, axes: Sequence[str], factor: int) -> tuple[int, int]:
    """Shrink the layer along the first of ``axes`` it still has room on; unchanged if it is 1 x 1."""
    for axis in axes:
        if axis == "channel" and layer.channels > 1:
            return -(-layer.channels // factor), layer.size
        if axis == "size" and layer.size > 1:
            return layer.channels, -(-layer.size // factor)
    return layer.channels, layer.size


def _parents(fine: Sequence[Layer], coarse: Sequence[Layer], factor: int) -> np.ndarray:
    """Parent of every fine vertex: the coarse neuron at (channel, position) // factor on the merged axis."""
    parent = np.empty(fine[-1].stop, np.int64)
    for f, c in zip(fine, coarse):
        channel_div = factor if c.channels < f.channels else 1
        size_div = factor if c.size < f.size else 1
        rows = c.start + (np.arange(f.channels, dtype=np.int64) // channel_div) * c.size
        cols = np.arange(f.size, dtype=np.int64) // size_div
        parent[f.start:f.stop] = (rows[:, None] + cols[None, :]).ravel()
    return parent


def _coarse_graph(graph: NeuronGraph, layers: tuple[Layer, ...], parent: np.ndarray) -> NeuronGraph:
    """Map edges to parents, dropping edges inside one parent and summing duplicate weights (as
    ``NeuronGraph.from_edges`` would, without materialising the mapped endpoints).

    An edge keeps its orientation relative to vertex order, so edges between layers stay directed from the
    earlier tap to the later one and edges inside a layer do not flip when their endpoints are regrouped.
    """
    edges, weights = group_edges(graph.edges[:, 0], graph.edges[:, 1], graph.weights, layers[-1].stop,
                                 parent=parent, keep_orientation=True)
    return NeuronGraph(layers, edges, weights)


def build_hierarchy(graph: NeuronGraph, *, min_vertices: int = 64, order: Sequence[str] = ("channel", "size"),
                    factor: int = 2, max_levels: int = 32) -> Hierarchy:
    """Coarsen ``graph`` level by level until it has at most ``min_vertices`` vertices or nothing can shrink.

    Step ``s`` merges groups of ``factor`` neighbours along axis ``order[s % len(order)]`` in every layer; a
    layer with a single row on that axis is merged along the next axis of ``order`` instead (so every layer
    shrinks at every step until it is 1 x 1 along the axes ``order`` names; other axes are never merged).
    ``max_levels`` counts the input graph as a level.
    """
    if not isinstance(graph, NeuronGraph):
        raise TypeError(f"graph must be a NeuronGraph, got {type(graph).__name__}")
    order = tuple(order)
    if not order or any(axis not in AXES for axis in order):
        raise ValueError(f"order must be a non-empty sequence of {AXES}, got {order}")
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or factor < 2:
        raise ValueError(f"factor must be an integer >= 2, got {factor!r}")
    if min_vertices < 1:
        raise ValueError(f"min_vertices must be >= 1, got {min_vertices}")
    if max_levels < 1:
        raise ValueError(f"max_levels must be >= 1, got {max_levels}")

    levels, parents = [graph], []
    while levels[-1].n_vertices > min_vertices and len(levels) < max_levels:
        fine = levels[-1].layers
        step = len(parents)
        axes = order[step % len(order):] + order[:step % len(order)]
        shapes = [(layer.name, *_coarse_shape(layer, axes, int(factor))) for layer in fine]
        coarse = layer_table(shapes)
        if coarse[-1].stop == fine[-1].stop:
            break
        parent = _parents(fine, coarse, int(factor))
        levels.append(_coarse_graph(levels[-1], coarse, parent))
        parents.append(parent)
    logger.debug("hierarchy of %d levels: %s vertices", len(levels), [g.n_vertices for g in levels])
    return Hierarchy(tuple(levels), tuple(parents))




def build_structural_hierarchy(graph: NeuronGraph, *, min_vertices: int = 64, seed: int = 0,
                               backend: str = "numba", device: str | torch.device = "cpu", max_levels: int = 64,
                               min_shrink: float = 0.05) -> Hierarchy:
    """Coarsen ``graph`` by its edges alone (``coarsening.coarsen_numba`` or ``coarsen_torch``, by
    ``backend``) until it has at most ``min_vertices`` vertices, a level shrinks by less than ``min_shrink``
    (a graph of isolated vertices cannot shrink) or ``max_levels`` levels are built.

    Coarse levels are one layer ``level L`` of ``1 x N_L`` vertices; level ``L`` uses seed ``seed + L``.
    """
    if not isinstance(graph, NeuronGraph):
        raise TypeError(f"graph must be a NeuronGraph, got {type(graph).__name__}")
    if backend not in BACKENDS:
        raise ValueError(f"coarsening backend must be one of {BACKENDS}, got {backend!r}")
    if min_vertices < 1 or max_levels < 1 or not 0 <= min_shrink < 1:
        raise ValueError(f"min_vertices and max_levels must be >= 1 and min_shrink in [0, 1), got {min_vertices}, "
                         f"{max_levels} and {min_shrink}")
    levels, parents = [graph], []
    size = np.ones(graph.n_vertices, np.float64)
    if backend == "torch":
        src, dst = (torch.as_tensor(graph.edges[:, i].astype(np.int64), device=device) for i in (0, 1))
        weights = torch.as_tensor(graph.weights, device=device)
        size_t = torch.as_tensor(size, device=device)
    edges, weights_np = graph.edges, graph.weights
    while levels[-1].n_vertices > min_vertices and len(levels) < max_levels:
        n, seed_l = levels[-1].n_vertices, seed + len(parents)
        if backend == "numba":
            parent, edges, weights_np, size = coarsen_numba(edges, weights_np, size, seed_l)
        else:
            parent_t, src, dst, weights, size_t = coarsen_torch(src, dst, weights, size_t, seed_l)
            parent = parent_t.cpu().numpy()
            edges = torch.stack([src, dst], 1).to(torch.int32).cpu().numpy()
            weights_np = weights.cpu().numpy()
        n_coarse = int(parent.max()) + 1
        if n_coarse > (1 - min_shrink) * n:
            break
        layers = layer_table([(f"level {len(levels)}", 1, n_coarse)])
        levels.append(NeuronGraph(layers, edges.astype(np.int32, copy=False), weights_np.astype(np.float32)))
        parents.append(parent)
    logger.debug("structural hierarchy of %d levels: %s vertices", len(levels), [g.n_vertices for g in levels])
    return Hierarchy(tuple(levels), tuple(parents))
