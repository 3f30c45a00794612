"""Multilevel hierarchy: conservation, surjective parents, exact edge merging, shrinking, prolongation."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from immersions.layout.graph import NeuronGraph, layer_table
from immersions.layout.hierarchy import Hierarchy, build_hierarchy

SHAPES = [
    [("input", 1, 64), ("conv", 16, 32), ("pool", 32, 1), ("head", 7, 3)],
    [("a", 5, 9), ("b", 1, 1), ("c", 13, 2)],
    [("single", 33, 17)],
]


def random_graph(shapes, n_edges: int, seed: int) -> NeuronGraph:
    """Edges from each layer to the next plus edges inside layers, with small integer weights (exact sums)."""
    layers = layer_table(shapes)
    rng = np.random.default_rng(seed)
    src, dst = [], []
    for a, b in zip(layers, layers[1:] + layers[-1:]):
        src.append(rng.integers(a.start, a.stop, n_edges))
        dst.append(rng.integers(b.start, b.stop, n_edges))
    src, dst = np.concatenate(src), np.concatenate(dst)
    weights = rng.integers(1, 6, src.size).astype(np.float32)
    return NeuronGraph.from_edges(layers, src, dst, weights)


def coordinates(graph: NeuronGraph) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(layer, channel, position) of every vertex, from the channel-major vertex order."""
    layer = graph.layer_index()
    start = np.array([lay.start for lay in graph.layers])[layer]
    size = np.array([lay.size for lay in graph.layers])[layer]
    local = np.arange(graph.n_vertices) - start
    return layer, local // size, local % size


def undirected_weights(edges: np.ndarray, weights: np.ndarray) -> dict[tuple[int, int], float]:
    """Total weight per unordered vertex pair."""
    total: dict[tuple[int, int], float] = {}
    for (s, d), w in zip(edges.tolist(), weights.tolist()):
        key = (min(s, d), max(s, d))
        total[key] = total.get(key, 0.0) + w
    return total


@pytest.fixture(params=range(len(SHAPES)), ids=["net", "tiny-layer", "one-layer"])
def hierarchy(request) -> Hierarchy:
    return build_hierarchy(random_graph(SHAPES[request.param], 200, request.param), min_vertices=4)


def test_parents_are_a_surjection_onto_the_coarse_vertices(hierarchy):
    for i, parent in enumerate(hierarchy.parents):
        assert parent.dtype == np.int64
        assert parent.shape == (hierarchy.levels[i].n_vertices,)
        counts = np.bincount(parent, minlength=hierarchy.levels[i + 1].n_vertices)
        assert counts.size == hierarchy.levels[i + 1].n_vertices
        assert counts.min() >= 1


def spread(values: np.ndarray, parent: np.ndarray, n_parents: int) -> np.ndarray:
    """max - min of ``values`` over the children of each parent."""
    lo = np.full(n_parents, np.iinfo(np.int64).max)
    hi = np.full(n_parents, np.iinfo(np.int64).min)
    np.minimum.at(lo, parent, values)
    np.maximum.at(hi, parent, values)
    return hi - lo


def test_children_are_neighbours_in_one_layer_along_one_axis(hierarchy):
    for i, parent in enumerate(hierarchy.parents):
        n_parents = hierarchy.levels[i + 1].n_vertices
        layer, channel, position = (spread(v, parent, n_parents) for v in coordinates(hierarchy.levels[i]))
        assert layer.max() == 0
        assert channel.max() <= 1 and position.max() <= 1
        assert np.all(channel * position == 0), "a step merges along a single axis"
        assert np.bincount(parent).max() <= 2


def test_layer_tables_shrink_consistently(hierarchy):
    for fine, coarse in zip(hierarchy.levels, hierarchy.levels[1:]):
        assert [lay.name for lay in fine.layers] == [lay.name for lay in coarse.layers]
        for f, c in zip(fine.layers, coarse.layers):
            assert (c.channels, c.size) in {(f.channels, f.size), (-(-f.channels // 2), f.size),
                                             (f.channels, -(-f.size // 2))}
        assert [lay.start for lay in coarse.layers] == list(np.cumsum([0] + [lay.count for lay in coarse.layers])[:-1])


def test_charge_is_conserved_and_summed_per_parent(hierarchy):
    rng = np.random.default_rng(1)
    charge = rng.integers(0, 100, (3, hierarchy.levels[0].n_vertices)).astype(np.float64)
    for i, parent in enumerate(hierarchy.parents):
        coarse = hierarchy.coarsen(charge, i)
        expected = np.stack([np.bincount(parent, weights=row) for row in charge])
        np.testing.assert_array_equal(coarse, expected)
        np.testing.assert_array_equal(coarse.sum(-1), charge.sum(-1))
        charge = coarse


def test_coarsen_keeps_float32_and_leading_axes(hierarchy):
    charge = np.random.default_rng(2).random((2, 3, hierarchy.levels[0].n_vertices)).astype(np.float32)
    coarse = hierarchy.coarsen(charge, 0)
    assert coarse.dtype == np.float32
    assert coarse.shape == (2, 3, hierarchy.levels[1].n_vertices)
    np.testing.assert_allclose(coarse[1, 2], hierarchy.coarsen(charge[1, 2], 0), rtol=1e-6)


def test_merged_edge_weights_equal_fine_weights_minus_internal_edges(hierarchy):
    for fine, coarse, parent in zip(hierarchy.levels, hierarchy.levels[1:], hierarchy.parents):
        mapped = parent[fine.edges]
        internal = mapped[:, 0] == mapped[:, 1]
        assert coarse.weights.sum() == fine.weights.sum() - fine.weights[internal].sum()
        expected = undirected_weights(mapped[~internal], fine.weights[~internal])
        assert undirected_weights(coarse.edges, coarse.weights) == expected
        keys = coarse.edges[:, 0].astype(np.int64) * coarse.n_vertices + coarse.edges[:, 1]
        assert np.all(np.diff(keys) > 0), "coarse edges must be CSR-sorted and unique"


def test_edges_between_layers_keep_their_direction(hierarchy):
    for graph in hierarchy.levels:
        layer = graph.layer_index()
        src_layer, dst_layer = layer[graph.edges[:, 0]], layer[graph.edges[:, 1]]
        assert np.all(src_layer <= dst_layer)


def test_edges_pointing_up_the_vertex_order_never_flip():
    graph = random_graph(SHAPES[2], 400, 11)
    ordered = NeuronGraph.from_edges(graph.layers, graph.edges.min(axis=1), graph.edges.max(axis=1), graph.weights)
    for level in build_hierarchy(ordered, min_vertices=2).levels:
        assert level.n_edges == 0 or np.all(level.edges[:, 0] < level.edges[:, 1])


def test_levels_shrink_until_the_minimum():
    graph = random_graph(SHAPES[0], 300, 3)
    for min_vertices in (1, 10, 100, 1000):
        h = build_hierarchy(graph, min_vertices=min_vertices)
        sizes = [g.n_vertices for g in h.levels]
        assert all(a > b for a, b in zip(sizes, sizes[1:]))
        assert all(n > min_vertices for n in sizes[:-1])
        last = h.levels[-1]
        assert sizes[-1] <= min_vertices or all(lay.count == 1 for lay in last.layers)
    assert build_hierarchy(graph, min_vertices=1).levels[-1].n_vertices == len(graph.layers)


def test_every_layer_halves_per_step_with_axis_fallback():
    graph = random_graph([("wide", 1, 16), ("deep", 16, 1)], 50, 4)
    h = build_hierarchy(graph, min_vertices=1)
    assert [g.n_vertices for g in h.levels] == [32, 16, 8, 4, 2]


@pytest.mark.parametrize("order, shapes", [(("channel", "size"), [(8, 8), (4, 8), (4, 4), (2, 4)]),
                                           (("size", "channel"), [(8, 8), (8, 4), (4, 4), (4, 2)]),
                                           (("size",), [(8, 8), (8, 4), (8, 2), (8, 1)])])
def test_axis_order(order, shapes):
    graph = random_graph([("x", 8, 8)], 40, 5)
    h = build_hierarchy(graph, min_vertices=1, order=order)
    assert [(g.layers[0].channels, g.layers[0].size) for g in h.levels[:len(shapes)]] == shapes
    if order == ("size",):
        assert h.n_levels == len(shapes), "only the axes named in order are merged"


def test_factor_three_and_max_levels():
    graph = random_graph([("x", 10, 7)], 40, 6)
    h = build_hierarchy(graph, min_vertices=1, factor=3)
    assert (h.levels[1].layers[0].channels, h.levels[1].layers[0].size) == (4, 7)
    assert np.bincount(h.parents[0]).max() == 3
    assert build_hierarchy(graph, min_vertices=1, max_levels=3).n_levels == 3
    assert build_hierarchy(graph, min_vertices=1, max_levels=1).n_levels == 1


def test_restrict_positions_is_the_mean_of_children(hierarchy):
    pos = np.random.default_rng(7).standard_normal((2, hierarchy.levels[0].n_vertices, 3)).astype(np.float32)
    coarse = hierarchy.restrict_positions(pos, 0)
    assert coarse.dtype == np.float32 and coarse.shape == (2, hierarchy.levels[1].n_vertices, 3)
    parent = hierarchy.parents[0]
    counts = np.bincount(parent)
    for s in range(2):
        for d in range(3):
            expected = np.bincount(parent, weights=pos[s, :, d]) / counts
            np.testing.assert_allclose(coarse[s, :, d], expected, rtol=1e-5, atol=1e-6)


def test_prolong_is_seeded_and_places_children_near_parents(hierarchy):
    level = hierarchy.n_levels - 2
    parent_pos = np.random.default_rng(8).standard_normal((hierarchy.levels[-1].n_vertices, 2)).astype(np.float32)
    a = hierarchy.prolong(parent_pos, level, jitter=1e-3, seed=5)
    b = hierarchy.prolong(parent_pos, level, jitter=1e-3, seed=5)
    c = hierarchy.prolong(parent_pos, level, jitter=1e-3, seed=6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.dtype == np.float32 and a.shape == (hierarchy.levels[level].n_vertices, 2)
    offset = np.linalg.norm(a - parent_pos[hierarchy.parents[level]], axis=-1)
    assert 0 < offset.max() < 1e-2
    exact = hierarchy.prolong(parent_pos, level, jitter=0.0, seed=0)
    np.testing.assert_array_equal(exact, parent_pos[hierarchy.parents[level]])
    np.testing.assert_allclose(hierarchy.restrict_positions(exact, level), parent_pos, rtol=1e-6)


def test_prolong_batched_snapshots(hierarchy):
    pos = np.zeros((4, hierarchy.levels[1].n_vertices, 2), np.float32)
    out = hierarchy.prolong(pos, 0, jitter=0.1, seed=0)
    assert out.shape == (4, hierarchy.levels[0].n_vertices, 2)
    assert not np.array_equal(out[0], out[1]), "snapshots get independent jitter"


def test_single_vertex_and_empty_graphs():
    one = NeuronGraph.from_edges(layer_table([("x", 1, 1)]), [], [])
    h = build_hierarchy(one, min_vertices=1)
    assert h.n_levels == 1 and h.parents == () and h.levels[0] is one
    empty = NeuronGraph((), np.zeros((0, 2), np.int32), np.zeros(0, np.float32))
    assert build_hierarchy(empty).n_levels == 1


def test_graph_without_edges_and_unit_layers():
    graph = NeuronGraph.from_edges(layer_table([("a", 1, 1), ("b", 6, 5), ("c", 1, 1)]), [], [])
    h = build_hierarchy(graph, min_vertices=1)
    assert all(g.n_edges == 0 for g in h.levels)
    assert [(lay.channels, lay.size) for lay in h.levels[-1].layers] == [(1, 1)] * 3
    for g in h.levels:
        assert (g.layers[0].count, g.layers[2].count) == (1, 1)


def test_invalid_arguments_name_the_value():
    graph = random_graph([("x", 4, 4)], 10, 9)
    with pytest.raises(ValueError, match="order"):
        build_hierarchy(graph, order=("frequency",))
    with pytest.raises(ValueError, match="factor"):
        build_hierarchy(graph, factor=1)
    with pytest.raises(ValueError, match="min_vertices"):
        build_hierarchy(graph, min_vertices=0)
    with pytest.raises(TypeError, match="NeuronGraph"):
        build_hierarchy("graph")
    h = build_hierarchy(graph, min_vertices=1)
    with pytest.raises(ValueError, match="level"):
        h.coarsen(np.ones(16), h.n_levels - 1)
    with pytest.raises(ValueError, match="values"):
        h.coarsen(np.ones(15), 0)
    with pytest.raises(ValueError, match="pos"):
        h.prolong(np.ones((16, 2)), 0, jitter=0.1, seed=0)
    with pytest.raises(ValueError, match="jitter"):
        h.prolong(np.ones((h.levels[1].n_vertices, 2)), 0, jitter=-1.0, seed=0)


@settings(max_examples=25, deadline=None)
@given(shapes=st.lists(st.tuples(st.integers(1, 12), st.integers(1, 12)), min_size=1, max_size=4),
       n_edges=st.integers(0, 60), factor=st.integers(2, 4), seed=st.integers(0, 2**16))
def test_random_graphs_conserve_charge_and_weight(shapes, n_edges, factor, seed):
    graph = random_graph([(f"l{i}", c, s) for i, (c, s) in enumerate(shapes)], n_edges, seed)
    h = build_hierarchy(graph, min_vertices=1, factor=factor)
    charge = np.ones(graph.n_vertices)
    for i, (fine, coarse, parent) in enumerate(zip(h.levels, h.levels[1:], h.parents)):
        assert np.bincount(parent, minlength=coarse.n_vertices).min() >= 1
        mapped = parent[fine.edges]
        internal = mapped[:, 0] == mapped[:, 1]
        assert coarse.weights.sum() == fine.weights.sum() - fine.weights[internal].sum()
        charge = h.coarsen(charge, i)
    assert charge.sum() == graph.n_vertices
    assert h.levels[-1].n_vertices == len(shapes)


def test_hierarchy_rejects_parents_that_are_not_a_surjection():
    graph = random_graph([("x", 4, 1)], 5, 10)
    coarse = NeuronGraph.from_edges(layer_table([("x", 2, 1)]), [], [])
    assert Hierarchy((graph, coarse), (np.array([0, 0, 1, 1]),)).n_levels == 2
    with pytest.raises(ValueError, match="without children"):
        Hierarchy((graph, coarse), (np.array([0, 0, 0, 0]),))
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        Hierarchy((graph, coarse), (np.array([0, 1, 2, 1]),))
    with pytest.raises(ValueError, match="integers of shape"):
        Hierarchy((graph, coarse), (np.array([0.0, 1.0, 1.0, 1.0]),))
    with pytest.raises(ValueError, match="parent arrays"):
        Hierarchy((graph, coarse), ())
