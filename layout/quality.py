"""Layout quality scores: do graph neighbours end up close, and do layout distances follow graph distances?

All scores treat the graph as undirected and unweighted and take positions ``(N, D)`` in vertex order.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import shortest_path
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist

from .csr import INT32_MAX, count_members, unique_symmetric_pattern
from .graph import NeuronGraph

# Neighbour-index entries held at once by neighborhood_preservation (bounds memory for high-degree graphs).
_QUERY_BUDGET = 1 << 22


def _checked_positions(graph: NeuronGraph, pos: np.ndarray) -> np.ndarray:
    """Positions as float64 ``(N, D)`` after checking they match the graph and are finite."""
    pos = np.asarray(pos)
    if pos.ndim != 2 or pos.shape[0] != graph.n_vertices:
        raise ValueError(f"pos must have shape ({graph.n_vertices}, D), got {pos.shape}")
    if not np.all(np.isfinite(pos)):
        raise ValueError(f"pos has {int(np.count_nonzero(~np.isfinite(pos)))} non-finite entries")
    return pos.astype(np.float64, copy=False)


def _adjacency(graph: NeuronGraph) -> sp.csr_matrix:
    """Undirected, unweighted adjacency with sorted column indices and no duplicate entries."""
    if graph.n_edges == 0:
        raise ValueError("the graph has no edges; layout quality is defined by its edges")
    n = graph.n_vertices
    indptr, indices = unique_symmetric_pattern(graph.edges, n)
    index_dtype = np.int32 if indptr[-1] <= INT32_MAX else np.int64
    return sp.csr_matrix((np.ones(indices.size, np.float32), indices.astype(index_dtype, copy=False),
                          indptr.astype(index_dtype)), shape=(n, n))


def _sample(n: int, n_samples: int | None, seed: int, name: str) -> np.ndarray:
    """All of ``range(n)``, or ``n_samples`` of them drawn without replacement with ``seed``."""
    if n_samples is None or n_samples >= n:
        return np.arange(n)
    if n_samples < 1:
        raise ValueError(f"{name} must be >= 1 or None, got {n_samples}")
    return np.sort(np.random.default_rng(seed).choice(n, size=n_samples, replace=False))


def neighborhood_preservation(graph: NeuronGraph, pos: np.ndarray, *, n_samples: int | None = None,
                              seed: int = 0) -> float:
    """Share of graph neighbours among the ``deg(i)`` nearest layout neighbours, averaged over vertices.

    Only (sampled) vertices with at least one edge count; 1 means every vertex's graph neighbours are exactly
    the points closest to it, a random layout scores about ``deg / N``.
    """
    pos = _checked_positions(graph, pos)
    adj = _adjacency(graph)
    n = graph.n_vertices
    degree = np.diff(adj.indptr)
    vertices = _sample(n, n_samples, seed, "n_samples")
    vertices = vertices[degree[vertices] > 0]
    if vertices.size == 0:
        raise ValueError(f"none of the {n if n_samples is None else n_samples} sampled vertices has an edge")
    vertices = vertices[np.argsort(degree[vertices], kind="stable")]
    tree = cKDTree(pos)
    hits = np.empty(vertices.size, np.float64)
    for block in _blocks(degree[vertices] + 1):
        chosen = vertices[block]
        hits[block] = _neighbour_hits(tree, pos, chosen, degree[chosen], adj)
    return float(np.mean(hits / degree[vertices]))


def _blocks(widths: np.ndarray) -> list[slice]:
    """Consecutive slices of rows with ascending ``widths`` whose (rows x widest row) fits the query budget."""
    blocks, start = [], 0
    while start < widths.size:
        stop = min(widths.size, start + max(1, _QUERY_BUDGET // int(widths[start])))
        while stop - start > 1 and (stop - start) * int(widths[stop - 1]) > _QUERY_BUDGET:
            stop = start + max(1, _QUERY_BUDGET // int(widths[stop - 1]))
        blocks.append(slice(start, stop))
        start = stop
    return blocks


def _neighbour_hits(tree: cKDTree, pos: np.ndarray, block: np.ndarray, degree: np.ndarray,
                    adj: sp.csr_matrix) -> np.ndarray:
    """For each vertex of ``block``, how many of its ``degree`` nearest other points are graph neighbours."""
    k = int(degree.max())
    _, idx = tree.query(pos[block], k=k + 1)
    idx = idx.reshape(block.size, k + 1)
    keep = idx != block[:, None]
    keep[keep.all(axis=1), -1] = False   # self hidden by a coincident point: drop the farthest instead
    idx = idx[keep].reshape(block.size, k)
    return count_members(adj.indptr, adj.indices, block, idx, degree)


def stress(graph: NeuronGraph, pos: np.ndarray, *, n_sources: int = 32, seed: int = 0) -> float:
    """Normalised stress ``mean_ij (a |p_i - p_j| / d_ij - 1)^2`` from hop distances ``d_ij`` of sampled sources.

    ``a`` is the scale minimising it (closed form), so rescaling a layout does not change the score; 0 means
    layout distances are exactly proportional to graph distances. Disconnected pairs are left out.
    """
    pos = _checked_positions(graph, pos)
    adj = _adjacency(graph)
    sources = _sample(graph.n_vertices, n_sources, seed, "n_sources")
    # With r = |p_i - p_j| / d_ij over P pairs, the optimal scale is a = sum r / sum r^2 and the stress
    # mean (a r - 1)^2 = 1 - (sum r)^2 / (P sum r^2): three sums, accumulated over chunks of sources.
    pairs, sum_r, sum_r2 = 0, 0.0, 0.0
    chunk = max(1, _QUERY_BUDGET // max(1, graph.n_vertices))
    for start in range(0, sources.size, chunk):
        rows = sources[start:start + chunk]
        hops = shortest_path(adj, method="D", unweighted=True, indices=rows)
        connected = np.isfinite(hops) & (hops > 0)
        ratio = cdist(pos[rows], pos)[connected] / hops[connected]
        pairs += ratio.size
        sum_r += float(ratio.sum())
        sum_r2 += float(np.dot(ratio, ratio))
    if pairs == 0:
        raise ValueError("no sampled source reaches another vertex; stress needs connected pairs")
    if sum_r2 == 0:
        return 1.0
    return max(0.0, 1.0 - sum_r * sum_r / (pairs * sum_r2))


def edge_length_cv(graph: NeuronGraph, pos: np.ndarray) -> float:
    """Coefficient of variation (std / mean) of edge lengths: 0 when all edges are equally long."""
    pos = _checked_positions(graph, pos)
    if graph.n_edges == 0:
        raise ValueError("the graph has no edges; edge_length_cv needs at least one")
    lengths = np.linalg.norm(pos[graph.edges[:, 0]] - pos[graph.edges[:, 1]], axis=-1)
    mean = lengths.mean()
    if mean == 0:
        raise ValueError(f"all {lengths.size} edges have length 0; the coefficient of variation is undefined")
    return float(lengths.std() / mean)
