"""Multilevel force layout: robustness, determinism, callbacks, pinning, continuation and the grid answer."""
import numpy as np
import pytest

from immersions.layout.forces import ForceParams
from immersions.layout.graph import NeuronGraph, layer_table
from immersions.layout.layout import OptimizationInterrupt
from immersions.layout.quality import neighborhood_preservation
from immersions.layout.simulate import ForceLayout
from immersions.layout.synthetic import king_grid

FAST = ForceParams(max_iter=60, min_iter=5)


def two_components_and_isolated() -> NeuronGraph:
    layers = layer_table([("a", 2, 5), ("b", 1, 4)])
    src = [0, 1, 2, 3, 5, 6, 7]
    dst = [1, 2, 3, 4, 6, 7, 8]
    return NeuronGraph.from_edges(layers, src, dst)


@pytest.mark.parametrize("dims", [2, 3])
def test_disconnected_graph_gives_finite_distinct_positions(dims):
    graph = two_components_and_isolated()
    layout = ForceLayout(FAST, backend="exact", dims=dims).fit(graph)
    pos = layout.positions
    assert pos.shape == (1, graph.n_vertices, dims) and pos.dtype == np.float32
    assert np.isfinite(pos).all()
    gaps = np.linalg.norm(pos[0, :, None] - pos[0, None], axis=-1) + np.eye(graph.n_vertices)
    assert gaps.min() > 1e-3


def test_single_vertex_is_pulled_toward_the_origin():
    graph = NeuronGraph.from_edges(layer_table([("a", 1, 1)]), [], [])
    assert np.isfinite(ForceLayout(FAST, backend="exact").fit(graph).positions).all()
    layout = ForceLayout(ForceParams(centering=0.5, max_iter=30), backend="exact").fit(graph, init=[[3.0, 4.0]])
    assert np.isfinite(layout.positions).all()
    assert np.linalg.norm(layout.positions) < 4.0


def test_two_coincident_vertices_stay_finite():
    graph = NeuronGraph.from_edges(layer_table([("a", 1, 2)]), [0], [1])
    layout = ForceLayout(FAST, backend="exact").fit(graph, init=np.zeros((2, 2), np.float32))
    assert np.isfinite(layout.positions).all() and np.isfinite(layout.velocity).all()


def test_same_seed_same_layout_other_seed_other_layout():
    graph = king_grid(6)
    first = ForceLayout(FAST, backend="exact", seed=3).fit(graph)
    again = ForceLayout(FAST, backend="exact", seed=3).fit(graph)
    other = ForceLayout(FAST, backend="exact", seed=4).fit(graph)
    np.testing.assert_array_equal(first.positions, again.positions)
    assert not np.allclose(first.positions, other.positions)


def test_callback_interrupt_carries_the_last_layout():
    graph = king_grid(6)
    seen = []

    def stop_at_30(iteration, energy, layout):
        seen.append((iteration, energy))
        return iteration >= 30

    with pytest.raises(OptimizationInterrupt) as info:
        ForceLayout(FAST, backend="exact").fit(graph, callbacks=stop_at_30, callbacks_every=10)
    assert [it for it, _ in seen] == [10, 20, 30]
    assert all(np.isfinite(energy) and energy >= 0 for _, energy in seen)
    assert info.value.iteration == 30
    assert info.value.layout.positions.shape == (1, graph.n_vertices, 2)


def test_pinned_vertices_do_not_move_and_inputs_are_not_mutated():
    graph = king_grid(5)
    init = np.random.default_rng(0).normal(size=(graph.n_vertices, 2)).astype(np.float32)
    before = init.copy()
    pinned = np.array([0, 4, 20, 24])
    layout = ForceLayout(FAST, backend="exact").fit(graph, init=init, pinned=pinned)
    np.testing.assert_array_equal(layout.positions[0, pinned], init[pinned])
    free = np.setdiff1d(np.arange(graph.n_vertices), pinned)
    assert np.abs(layout.positions[0, free] - init[free]).max() > 1e-2
    np.testing.assert_array_equal(init, before)
    again = layout.optimize(20)
    np.testing.assert_array_equal(again.positions[0, pinned], init[pinned])


def test_optimize_returns_a_new_layout_and_carries_optimiser_state():
    graph = king_grid(5)
    layout = ForceLayout(ForceParams(max_iter=10, min_iter=10, untangle_iter=0), backend="exact").fit(graph)
    positions = layout.positions.copy()
    more = layout.optimize(15)
    assert more is not layout and more.iteration == layout.iteration + 15
    np.testing.assert_array_equal(layout.positions, positions)
    assert not np.array_equal(more.positions, positions)
    in_place = layout.copy()
    assert in_place.optimize(15, inplace=True) is in_place
    np.testing.assert_array_equal(in_place.positions, more.positions)


def test_wrong_inputs_are_named():
    graph = king_grid(3)
    with pytest.raises(ValueError, match="charges"):
        ForceLayout(FAST, backend="exact").fit(graph, charges=np.ones(4))
    with pytest.raises(ValueError, match="init"):
        ForceLayout(FAST, backend="exact").fit(graph, init=np.zeros((9, 3)))
    with pytest.raises(ValueError, match="pinned"):
        ForceLayout(FAST, backend="exact").fit(graph, pinned=[0])
    with pytest.raises(ValueError, match="unknown repulsion backend"):
        ForceLayout(FAST, backend="nope")


def test_all_zero_charges_are_refused_instead_of_collapsing():
    """Without any charge nothing repels: every vertex would end on one point without a word."""
    graph = king_grid(3)
    with pytest.raises(ValueError, match=r"snapshot\(s\) \[0\] are all zero.*collapse"):
        ForceLayout(FAST, backend="exact").fit(graph, charges=np.zeros(9))
    charges = np.ones((3, 9))
    charges[1] = 0
    with pytest.raises(ValueError, match=r"snapshot\(s\) \[1\] are all zero"):
        ForceLayout(FAST, backend="exact").fit(graph, charges=charges)
    one = np.zeros(9)
    one[4] = 1.0  # a single charged vertex is enough to keep the layout apart
    assert np.isfinite(ForceLayout(FAST, backend="exact").fit(graph, charges=one).positions).all()


def test_bh_torch_backend_on_cpu_lays_out_a_grid():
    graph = king_grid(16)
    layout = ForceLayout(backend="bh_torch", device="cpu").fit(graph)
    assert neighborhood_preservation(graph, layout.positions[0]) >= 0.9


@pytest.mark.gpu
def test_cuda_layout_is_a_grid_and_matches_the_seed():
    graph = king_grid(64)
    first = ForceLayout(device="cuda", seed=2).fit(graph)
    again = ForceLayout(device="cuda", seed=2).fit(graph)
    np.testing.assert_array_equal(first.positions, again.positions)
    assert neighborhood_preservation(graph, first.positions[0]) >= 0.9


def test_king_grid_comes_out_as_a_grid():
    graph = king_grid(64)
    layout = ForceLayout(seed=0, backend="auto").fit(graph)
    assert neighborhood_preservation(graph, layout.positions[0]) >= 0.9


@pytest.mark.parametrize("k", [1.5, 2.5, 3.0])
def test_king_grid_is_a_grid_for_other_repulsion_exponents(k):
    """The seed's k = 2.5-3 (short-ranged repulsion) and k = 1.5 must unfold as well as the default k = 2."""
    graph = king_grid(32)
    layout = ForceLayout(ForceParams(k=k), seed=0).fit(graph)
    assert neighborhood_preservation(graph, layout.positions[0]) >= 0.9
