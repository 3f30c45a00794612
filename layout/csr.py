"""Memory-lean CSR construction for graphs of hundreds of millions of edges (Numba counting sorts).

Grouping edges by row with a counting sort and sorting each row on its own needs one int32 column and one
float32 value per edge, where a global ``argsort`` of int64 keys needs several int64 arrays per edge (a
VGG16 slice has 199M edges). The orders are the ones a stable sort by ``(row, column)`` gives, so results
are the same as those of ``np.lexsort`` / ``np.argsort(kind="stable")`` followed by ``np.add.reduceat``.
"""
from __future__ import annotations

import numba as nb
import numpy as np

INT32_MAX = np.iinfo(np.int32).max


MAPPED, KEEP_ORIENTATION, UNDIRECTED = 0, 1, 2


@nb.njit(inline="always")
def _mapped(s, d, parent, orientation):
    """Endpoints ``(s, d)`` mapped through ``parent`` (none: identity). ``orientation`` KEEP_ORIENTATION:
    a pair keeps its orientation relative to vertex order; UNDIRECTED: the lower endpoint comes first."""
    a, b = np.int64(s), np.int64(d)
    if parent.size != 0:
        a, b = np.int64(parent[s]), np.int64(parent[d])
    if orientation == UNDIRECTED and a > b:
        return b, a
    if orientation == KEEP_ORIENTATION and (s < d) != (a < b):
        return b, a
    return a, b


@nb.njit(cache=True)
def _mapped_indptr(src, dst, parent, n_rows, orientation):
    """Row pointer of the mapped pairs, self-loops left out."""
    indptr = np.zeros(n_rows + 1, np.int64)
    for e in range(src.size):
        a, b = _mapped(src[e], dst[e], parent, orientation)
        if a != b:
            indptr[a + 1] += 1
    return np.cumsum(indptr)


@nb.njit(cache=True)
def _mapped_rows(src, dst, weights, parent, indptr, orientation):
    """Columns and values of the mapped pairs bucketed by row, in input order inside each row."""
    fill = indptr[:-1].copy()
    cols = np.empty(indptr[-1], np.int32)
    vals = np.empty(indptr[-1], np.float32)
    for e in range(src.size):
        a, b = _mapped(src[e], dst[e], parent, orientation)
        if a != b:
            k = fill[a]
            cols[k] = b
            vals[k] = weights[e]
            fill[a] = k + 1
    return cols, vals


@nb.njit(cache=True)
def _sort_rows(indptr, cols, vals):
    """Stable sort of every row by column, in place: a row of two ascending runs (forward then reverse
    entries) is merged in linear time, other unsorted rows go through a stable argsort."""
    for r in range(indptr.size - 1):
        lo, hi = indptr[r], indptr[r + 1]
        descents, split = 0, hi
        for k in range(lo + 1, hi):
            if cols[k] < cols[k - 1]:
                descents += 1
                split = k
        if descents == 0:
            continue
        if descents == 1:
            _merge_runs(cols, vals, lo, split, hi)
            continue
        order = np.argsort(cols[lo:hi], kind="mergesort")
        cols[lo:hi] = cols[lo:hi][order]
        vals[lo:hi] = vals[lo:hi][order]


@nb.njit(inline="always")
def _merge_runs(cols, vals, lo, split, hi):
    """Merge the ascending runs ``[lo, split)`` and ``[split, hi)`` in place, the first run first on ties."""
    left_cols = cols[lo:split].copy()
    left_vals = vals[lo:split].copy()
    i, j, k = 0, split, lo
    while i < left_cols.size:
        if j < hi and cols[j] < left_cols[i]:
            cols[k] = cols[j]
            vals[k] = vals[j]
            j += 1
        else:
            cols[k] = left_cols[i]
            vals[k] = left_vals[i]
            i += 1
        k += 1


@nb.njit(cache=True)
def _runs(indptr, cols):
    """``(row, column)`` of every run of equal entries in row-sorted CSR, and where each run starts."""
    count = 0
    for r in range(indptr.size - 1):
        for k in range(indptr[r], indptr[r + 1]):
            if k == indptr[r] or cols[k] != cols[k - 1]:
                count += 1
    pairs = np.empty((count, 2), np.int32)
    starts = np.empty(count, np.int64)
    u = 0
    for r in range(indptr.size - 1):
        for k in range(indptr[r], indptr[r + 1]):
            if k == indptr[r] or cols[k] != cols[k - 1]:
                pairs[u, 0] = r
                pairs[u, 1] = cols[k]
                starts[u] = k
                u += 1
    return pairs, starts


@nb.njit(cache=True)
def _fill_rows(rows, columns, weights, fill, cols, vals, degree):
    """Append entry (rows[e], columns[e], weights[e]) of every edge to its row, in edge order."""
    for e in range(rows.size):
        k = fill[rows[e]]
        cols[k] = columns[e]
        vals[k] = weights[e]
        fill[rows[e]] = k + 1
        degree[rows[e]] += np.float64(weights[e])


@nb.njit(cache=True)
def _both_directions(src, dst, weights, n):
    """Rows of the symmetric adjacency (forward entries of a row before its reverse ones, each in edge
    order) and the weighted degree, accumulated in float64 in that same order."""
    indptr = np.zeros(n + 1, np.int64)
    for e in range(src.size):
        indptr[src[e] + 1] += 1
        indptr[dst[e] + 1] += 1
    indptr = np.cumsum(indptr)
    fill = indptr[:-1].copy()
    cols = np.empty(indptr[-1], np.int32)
    vals = np.empty(indptr[-1], np.float32)
    degree = np.zeros(n, np.float64)
    _fill_rows(src, dst, weights, fill, cols, vals, degree)
    _fill_rows(dst, src, weights, fill, cols, vals, degree)
    return indptr, cols, vals, degree


@nb.njit(cache=True)
def _unique_rows(indptr, cols):
    """Row-sorted CSR with repeated columns of a row dropped."""
    out_ptr = np.zeros(indptr.size, np.int64)
    out = np.empty(cols.size, np.int32)
    u = 0
    for r in range(indptr.size - 1):
        for k in range(indptr[r], indptr[r + 1]):
            if k == indptr[r] or cols[k] != cols[k - 1]:
                out[u] = cols[k]
                u += 1
        out_ptr[r + 1] = u
    return out_ptr, out[:u].copy()


@nb.njit(cache=True)
def count_members(indptr: np.ndarray, cols: np.ndarray, rows: np.ndarray, candidates: np.ndarray,
                  limits: np.ndarray) -> np.ndarray:
    """For each ``rows[i]``, how many of its first ``limits[i]`` ``candidates[i]`` lie in its (sorted) row."""
    hits = np.zeros(rows.size, np.int64)
    for i in range(rows.size):
        row = cols[indptr[rows[i]]:indptr[rows[i] + 1]]
        for j in range(limits[i]):
            k = np.searchsorted(row, candidates[i, j])
            if k < row.size and row[k] == candidates[i, j]:
                hits[i] += 1
    return hits


def group_edges(src: np.ndarray, dst: np.ndarray, weights: np.ndarray, n_rows: int, *,
                parent: np.ndarray | None = None, keep_orientation: bool = False, undirected: bool = False
                ) -> tuple[np.ndarray, np.ndarray]:
    """Edges ``(parent[src], parent[dst])`` sorted by (source, target), self-loops dropped, duplicates merged.

    Returns int32 edges ``(U, 2)`` and float32 weights ``(U,)``, equal to a stable sort of the pairs followed
    by ``np.add.reduceat`` of their weights. ``parent`` (default identity) maps vertices to ``n_rows`` rows;
    with ``keep_orientation`` a pair is flipped when mapping reversed its order, so it keeps pointing from
    the lower vertex index to the higher one as it did; with ``undirected`` every pair is written lower
    endpoint first, so ``(a, b)`` and ``(b, a)`` merge into one edge.
    """
    if keep_orientation and undirected:
        raise ValueError("keep_orientation and undirected exclude each other; pass at most one")
    orientation = UNDIRECTED if undirected else KEEP_ORIENTATION if keep_orientation else MAPPED
    mapping = np.empty(0, np.int64) if parent is None else np.asarray(parent)
    w = np.asarray(weights, np.float32)
    indptr = _mapped_indptr(src, dst, mapping, int(n_rows), orientation)
    cols, vals = _mapped_rows(src, dst, w, mapping, indptr, orientation)
    _sort_rows(indptr, cols, vals)
    pairs, starts = _runs(indptr, cols)
    del cols
    merged = np.add.reduceat(vals, starts) if vals.size else vals
    return pairs, merged.astype(np.float32, copy=False)


def symmetric_csr(edges: np.ndarray, weights: np.ndarray, n: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Both directions of every edge as row-sorted CSR ``(indptr, indices, values, degree)``.

    The order inside a row is that of a stable sort of ``(rows, cols) = ([src, dst], [dst, src])`` and the
    float64 degree is ``np.bincount(rows, weights)``. Indices are int32 while the entry count fits in int32
    (indptr then has the same dtype, as sparse CSR libraries want), else int64.
    """
    indptr, cols, vals, degree = _both_directions(edges[:, 0], edges[:, 1], np.asarray(weights, np.float32),
                                                  int(n))
    _sort_rows(indptr, cols, vals)
    if indptr[-1] > INT32_MAX:
        return indptr, cols.astype(np.int64), vals, degree
    return indptr.astype(np.int32), cols, vals, degree


def unique_symmetric_pattern(edges: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Undirected, unweighted adjacency pattern ``(indptr int64, indices int32)``: sorted, no repeats."""
    indptr, cols, vals, _ = _both_directions(edges[:, 0], edges[:, 1], np.ones(edges.shape[0], np.float32),
                                             int(n))
    _sort_rows(indptr, cols, vals)
    del vals
    return _unique_rows(indptr, cols)
