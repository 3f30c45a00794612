"""Synthetic graphs with a known ideal layout, for tests and benchmarks."""
from __future__ import annotations

import numpy as np

from .graph import NeuronGraph, layer_table


def king_grid(n: int, *, name: str = "grid") -> NeuronGraph:
    """An ``n x n`` grid where every vertex links to its 8 neighbours (the connectivity of a 3x3 conv).

    One layer of ``n`` channels by ``n`` positions, so vertex ``row * n + col`` is grid cell ``(row, col)``.
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    n = int(n)
    cells = np.arange(n * n, dtype=np.int64).reshape(n, n)
    src, dst = [], []
    for dr, dc in ((0, 1), (1, -1), (1, 0), (1, 1)):
        src.append(cells[:n - dr, max(0, -dc):n - max(0, dc)].ravel())
        dst.append(cells[dr:, max(0, dc):n - max(0, -dc)].ravel())
    return NeuronGraph.from_edges(layer_table([(name, n, n)]), np.concatenate(src), np.concatenate(dst))


def grid_positions(n: int) -> np.ndarray:
    """The ideal layout of ``king_grid(n)``: cell ``(row, col)`` at ``(col, row)``, float32 ``(n*n, 2)``."""
    rows, cols = np.divmod(np.arange(n * n), n)
    return np.stack([cols, rows], axis=1).astype(np.float32)


def _one_layer(n: int, src: np.ndarray, dst: np.ndarray, name: str) -> NeuronGraph:
    """A graph of ``n`` vertices as one layer of ``1 x n``: no axis structure to lean on."""
    return NeuronGraph.from_edges(layer_table([(name, 1, n)]), src, dst)


def relabel(graph: NeuronGraph, seed: int) -> tuple[NeuronGraph, np.ndarray]:
    """The same graph with vertex ids shuffled, as one ``1 x N`` layer; also ``new_id`` ``(N,)`` of every old
    vertex, so ``positions[new_id]`` lays out the old numbering."""
    n = graph.n_vertices
    new_id = np.random.default_rng(seed).permutation(n)
    return _one_layer(n, new_id[graph.edges[:, 0]], new_id[graph.edges[:, 1]], "shuffled"), new_id


def random_geometric(n: int, mean_degree: float, *, seed: int, dims: int = 2) -> NeuronGraph:
    """``n`` uniform points in the unit square (cube); an edge joins points closer than the radius that gives
    ``mean_degree`` neighbours on average."""
    from scipy.spatial import cKDTree
    points = np.random.default_rng(seed).random((n, dims))
    volume = np.pi if dims == 2 else 4 * np.pi / 3
    radius = (mean_degree / (n * volume)) ** (1 / dims)
    pairs = cKDTree(points).query_pairs(radius, output_type="ndarray")
    return _one_layer(n, pairs[:, 0], pairs[:, 1], "geometric")


def random_tree(n: int, *, seed: int) -> NeuronGraph:
    """A random recursive tree: vertex ``i > 0`` hangs from a uniform earlier vertex, in a shuffled numbering."""
    rng = np.random.default_rng(seed)
    child = np.arange(1, n)
    parent = (rng.random(n - 1) * child).astype(np.int64)
    new_id = rng.permutation(n)
    return _one_layer(n, new_id[child], new_id[parent], "tree")


def barabasi_albert(n: int, m: int, *, seed: int) -> NeuronGraph:
    """A Barabási–Albert preferential-attachment graph (power-law degrees): each new vertex links to ``m``
    earlier ones drawn in proportion to their degree, in a shuffled numbering."""
    if m < 1 or n <= m:
        raise ValueError(f"need 1 <= m < n, got m={m}, n={n}")
    rng = np.random.default_rng(seed)
    ends = np.empty(2 * m * (n - m), np.int64)   # every edge endpoint so far: degree-proportional sampling
    src, dst, filled = [], [], 0
    for v in range(m, n):
        if filled == 0:
            targets = np.arange(m)
        else:
            targets = np.unique(ends[rng.integers(0, filled, 2 * m)])[:m]
        src.append(np.full(targets.size, v))
        dst.append(targets)
        ends[filled:filled + targets.size] = targets
        ends[filled + targets.size:filled + 2 * targets.size] = v
        filled += 2 * targets.size
    new_id = rng.permutation(n)
    return _one_layer(n, new_id[np.concatenate(src)], new_id[np.concatenate(dst)], "barabasi-albert")


def torus_3d(side: int, *, seed: int) -> NeuronGraph:
    """A ``side^3`` mesh with wrap-around (a 3-D torus, 6 neighbours per vertex) in a shuffled numbering."""
    cells = np.arange(side ** 3).reshape(side, side, side)
    src = np.concatenate([cells.ravel()] * 3)
    dst = np.concatenate([np.roll(cells, -1, axis=a).ravel() for a in range(3)])
    new_id = np.random.default_rng(seed).permutation(side ** 3)
    return _one_layer(side ** 3, new_id[src], new_id[dst], "torus")
