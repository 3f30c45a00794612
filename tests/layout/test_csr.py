"""The counting-sort CSR kernels against the global sorts they replace (argsort / lexsort / bincount)."""
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from immersions.layout.csr import count_members, group_edges, symmetric_csr, unique_symmetric_pattern
from immersions.layout.forces import EdgeTensors
from immersions.layout.graph import NeuronGraph, layer_table
from immersions.layout.verlet import mean_edge_length


def _random_pairs(seed: int, n: int, e: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs with duplicates, reversed duplicates and self-loops, and non-integer weights."""
    rng = np.random.default_rng(seed)
    src, dst = rng.integers(0, n, e), rng.integers(0, n, e)
    repeat = rng.integers(0, e, e // 4)
    src = np.concatenate([src, src[repeat], dst[repeat[: e // 8]]])
    dst = np.concatenate([dst, dst[repeat], src[repeat[: e // 8]]])
    return src, dst, rng.uniform(0.1, 3.0, src.size).astype(np.float32)


def _sorted_merged(src: np.ndarray, dst: np.ndarray, w: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference: drop self-loops, stable argsort of int64 keys, ``np.add.reduceat`` over runs."""
    keep = src != dst
    src, dst, w = src[keep].astype(np.int64), dst[keep].astype(np.int64), w[keep]
    key = src * n + dst
    order = np.argsort(key, kind="stable")
    key = key[order]
    starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
    merged = np.add.reduceat(w[order], starts) if key.size else w[:0]
    return np.stack([key[starts] // n, key[starts] % n], axis=1), merged


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_group_edges_equals_a_stable_sort_and_reduceat(seed):
    src, dst, w = _random_pairs(seed, 200, 3000)
    edges, weights = group_edges(src, dst, w, 200)
    ref_edges, ref_weights = _sorted_merged(src, dst, w, 200)
    assert edges.dtype == np.int32 and weights.dtype == np.float32
    np.testing.assert_array_equal(edges, ref_edges)
    np.testing.assert_array_equal(weights, ref_weights)  # bitwise: same order of summation


def test_group_edges_through_a_parent_map_keeps_orientation():
    rng = np.random.default_rng(3)
    src, dst, w = _random_pairs(3, 120, 2000)
    parent = rng.integers(0, 30, 120)
    edges, weights = group_edges(src, dst, w, 30, parent=parent, keep_orientation=True)
    psrc, pdst = parent[src], parent[dst]
    flip = (src < dst) != (psrc < pdst)
    ref_edges, ref_weights = _sorted_merged(np.where(flip, pdst, psrc), np.where(flip, psrc, pdst), w, 30)
    np.testing.assert_array_equal(edges, ref_edges)
    np.testing.assert_array_equal(weights, ref_weights)
    plain, _ = group_edges(src, dst, w, 30, parent=parent)
    np.testing.assert_array_equal(plain, _sorted_merged(psrc, pdst, w, 30)[0])


def test_group_edges_of_nothing_is_empty():
    edges, weights = group_edges(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32), 5)
    assert edges.shape == (0, 2) and weights.shape == (0,)
    loops, _ = group_edges(np.arange(4), np.arange(4), np.ones(4, np.float32), 4)
    assert loops.shape == (0, 2)


@pytest.mark.parametrize("canonical", [True, False])
def test_symmetric_csr_equals_lexsort_and_bincount(canonical):
    src, dst, w = _random_pairs(4, 150, 2500)
    if canonical:  # CSR-sorted and deduplicated, as NeuronGraph holds them (rows merge two sorted runs)
        edges, w = _sorted_merged(src, dst, w, 150)
    else:  # arbitrary order with self-loops and both orientations (rows of several runs)
        edges = np.stack([src, dst], axis=1)
    edges = edges.astype(np.int32)
    indptr, cols, vals, degree = symmetric_csr(edges, w, 150)
    rows = np.concatenate([edges[:, 0], edges[:, 1]])
    ref_cols = np.concatenate([edges[:, 1], edges[:, 0]])
    both = np.concatenate([w, w]).astype(np.float64)
    order = np.lexsort((ref_cols, rows))
    assert indptr.dtype == cols.dtype == np.int32
    np.testing.assert_array_equal(indptr, np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=150))]))
    np.testing.assert_array_equal(cols, ref_cols[order])
    np.testing.assert_array_equal(vals, both[order].astype(np.float32))
    np.testing.assert_array_equal(degree, np.bincount(rows, weights=both, minlength=150))


def test_unique_symmetric_pattern_equals_scipy():
    src, dst, _ = _random_pairs(5, 80, 600)
    edges = np.stack([src, dst], axis=1).astype(np.int32)
    indptr, cols = unique_symmetric_pattern(edges, 80)
    ref = sp.csr_matrix((np.ones(2 * src.size), (np.concatenate([src, dst]), np.concatenate([dst, src]))),
                        shape=(80, 80))
    ref.sum_duplicates()
    np.testing.assert_array_equal(indptr, ref.indptr)
    np.testing.assert_array_equal(cols, ref.indices)


def test_count_members_counts_row_hits_up_to_each_limit():
    rng = np.random.default_rng(6)
    src, dst, _ = _random_pairs(6, 60, 400)
    indptr, cols = unique_symmetric_pattern(np.stack([src, dst], axis=1).astype(np.int32), 60)
    rows = rng.integers(0, 60, 25)
    candidates = rng.integers(0, 61, (25, 12))  # 60 is no vertex (a k-d tree's "missing" index)
    limits = rng.integers(0, 13, 25)
    expected = [sum(c in set(cols[indptr[r]:indptr[r + 1]]) for c in candidates[i, :limits[i]])
                for i, r in enumerate(rows)]
    np.testing.assert_array_equal(count_members(indptr, cols, rows, candidates, limits), expected)


def test_edge_tensors_share_the_graph_arrays_on_cpu():
    src, dst, w = _random_pairs(7, 90, 700)
    graph = NeuronGraph.from_edges(layer_table([("x", 9, 10)]), src, dst, w)
    edges = EdgeTensors.from_graph(graph)
    assert np.shares_memory(edges.src.numpy(), graph.edges) and np.shares_memory(edges.weight.numpy(), graph.weights)
    assert edges.adjacency.col_indices().dtype == torch.int32
    dense = np.zeros((90, 90))
    np.add.at(dense, (graph.edges[:, 0], graph.edges[:, 1]), graph.weights)
    np.testing.assert_allclose(edges.adjacency.to_dense().numpy(), dense + dense.T, rtol=1e-6)


def test_chunked_mean_edge_length_matches_the_whole_sum():
    src, dst, w = _random_pairs(8, 300, 5000)
    graph = NeuronGraph.from_edges(layer_table([("x", 3, 100)]), src, dst, w)
    edges = EdgeTensors.from_graph(graph)
    pos = torch.randn(3, 300, 2, generator=torch.Generator().manual_seed(0))
    whole = mean_edge_length(pos, edges)
    torch.testing.assert_close(mean_edge_length(pos, edges, chunk=777), whole, rtol=1e-5, atol=0)
    expected = (pos[:, graph.edges[:, 1]] - pos[:, graph.edges[:, 0]]).norm(dim=-1).mean(-1)
    torch.testing.assert_close(whole, expected)
