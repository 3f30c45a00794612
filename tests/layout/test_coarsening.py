"""Structural coarsening: a partition into connected clusters, the same on Numba and torch, shrinking every
family of graph, and blind to vertex numbering."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components

from immersions.layout.coarsening import coarsen_numba, coarsen_torch
from immersions.layout.hierarchy import build_structural_hierarchy
from immersions.layout.synthetic import (barabasi_albert, king_grid, random_geometric, random_tree, relabel,
                                         torus_3d)

GRAPHS = {
    "grid": lambda: relabel(king_grid(30), seed=3)[0],
    "geometric": lambda: random_geometric(2000, 8, seed=1),
    "tree": lambda: random_tree(1500, seed=2),
    "barabasi-albert": lambda: barabasi_albert(1500, 2, seed=4),
    "torus": lambda: torus_3d(9, seed=5),
}


@pytest.fixture(params=sorted(GRAPHS))
def graph(request):
    return GRAPHS[request.param]()


def torch_level(graph, size, seed):
    src, dst = (torch.as_tensor(graph.edges[:, i].astype(np.int64)) for i in (0, 1))
    parent, c_src, c_dst, weights, c_size = coarsen_torch(src, dst, torch.as_tensor(graph.weights),
                                                          torch.as_tensor(size), seed)
    return parent.numpy(), torch.stack([c_src, c_dst], 1).numpy(), weights.numpy(), c_size.numpy()


def test_torch_and_numba_give_the_same_level(graph):
    size = np.random.default_rng(0).integers(1, 4, graph.n_vertices).astype(np.float64)
    parent, edges, weights, c_size = coarsen_numba(graph.edges, graph.weights, size, seed=7)
    t_parent, t_edges, t_weights, t_size = torch_level(graph, size, seed=7)
    np.testing.assert_array_equal(parent, t_parent)
    np.testing.assert_array_equal(edges, t_edges)
    np.testing.assert_allclose(weights, t_weights, rtol=1e-6)
    np.testing.assert_array_equal(c_size, t_size)


def test_level_is_a_partition_into_connected_clusters_with_merged_edges(graph):
    n = graph.n_vertices
    size = np.ones(n)
    parent, edges, weights, c_size = coarsen_numba(graph.edges, graph.weights, size, seed=0)
    n_coarse = parent.max() + 1
    assert np.array_equal(np.unique(parent), np.arange(n_coarse))
    assert c_size.sum() == n and np.array_equal(c_size, np.bincount(parent))
    assert n_coarse <= 0.75 * n, f"a level should shrink every family well, got {n_coarse} of {n}"
    # every cluster is connected through edges inside it
    inside = parent[graph.edges[:, 0]] == parent[graph.edges[:, 1]]
    e = graph.edges[inside]
    adj = sp.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    n_parts, labels = connected_components(adj, directed=False)
    assert n_parts == n_coarse
    # coarse edges: lower endpoint first, no loops, weights = summed fine weights between the clusters
    assert (edges[:, 0] < edges[:, 1]).all()
    a, b = parent[graph.edges[:, 0]], parent[graph.edges[:, 1]]
    keep = a != b
    expected = sp.coo_matrix((graph.weights[keep], (np.minimum(a, b)[keep], np.maximum(a, b)[keep])),
                             shape=(n_coarse, n_coarse)).tocsr()
    got = sp.coo_matrix((weights, (edges[:, 0], edges[:, 1])), shape=(n_coarse, n_coarse)).tocsr()
    assert abs(expected - got).max() < 1e-4


def test_coarsening_is_deterministic_and_seeded(graph):
    first = coarsen_numba(graph.edges, graph.weights, np.ones(graph.n_vertices), seed=1)[0]
    again = coarsen_numba(graph.edges, graph.weights, np.ones(graph.n_vertices), seed=1)[0]
    other = coarsen_numba(graph.edges, graph.weights, np.ones(graph.n_vertices), seed=2)[0]
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_shrink_does_not_depend_on_numbering():
    """The coarse vertex counts of a grid and of its shuffled copy agree within a few percent per level."""
    grid = king_grid(40)
    shuffled, _ = relabel(grid, seed=9)
    counts = [[g.n_vertices for g in build_structural_hierarchy(h, min_vertices=16).levels] for h in (grid, shuffled)]
    assert len(counts[0]) == len(counts[1])
    np.testing.assert_allclose(counts[0], counts[1], rtol=0.05)


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_hierarchy_reaches_the_coarsest_size_and_conserves_charge(backend):
    graph = random_geometric(3000, 8, seed=0)
    hierarchy = build_structural_hierarchy(graph, min_vertices=8, backend=backend, seed=3)
    sizes = [g.n_vertices for g in hierarchy.levels]
    assert sizes[-1] <= 64 and all(b < a for a, b in zip(sizes, sizes[1:]))
    charge = np.random.default_rng(0).random(graph.n_vertices)
    total = charge.sum()
    for level in range(hierarchy.n_levels - 1):
        charge = hierarchy.coarsen(charge, level)
    assert charge.shape == (sizes[-1],) and charge.sum() == pytest.approx(total, rel=1e-9)


def test_isolated_vertices_stop_the_coarsening():
    from immersions.layout.graph import NeuronGraph, layer_table
    graph = NeuronGraph.from_edges(layer_table([("x", 1, 100)]), np.array([0]), np.array([1]))
    hierarchy = build_structural_hierarchy(graph, min_vertices=4)
    assert hierarchy.n_levels == 1


def test_torch_and_numba_hierarchies_agree():
    graph = barabasi_albert(800, 3, seed=1)
    a = build_structural_hierarchy(graph, min_vertices=8, backend="numba", seed=5)
    b = build_structural_hierarchy(graph, min_vertices=8, backend="torch", seed=5)
    assert [g.n_vertices for g in a.levels] == [g.n_vertices for g in b.levels]
    for pa, pb in zip(a.parents, b.parents):
        np.testing.assert_array_equal(pa, pb)
