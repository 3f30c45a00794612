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
