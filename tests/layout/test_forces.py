"""Force model: energy and forces agree, attraction matches the per-edge formula, parameters validate."""
import numpy as np
import pytest
import torch

from immersions.layout.backends import get_backend
from immersions.layout.forces import EdgeTensors, ForceParams, attraction, energy, total_force
from immersions.layout.graph import NeuronGraph, layer_table
from immersions.layout.synthetic import king_grid


def random_graph(n: int, n_edges: int, seed: int) -> NeuronGraph:
    rng = np.random.default_rng(seed)
    src, dst = rng.integers(0, n, n_edges), rng.integers(0, n, n_edges)
    return NeuronGraph.from_edges(layer_table([("a", 1, n)]), src, dst, rng.uniform(0.5, 2.0, n_edges))


@pytest.mark.parametrize("k,dims", [(2.0, 2), (2.5, 3), (1.0, 2), (3.0, 2)])
def test_force_is_minus_finite_difference_gradient_of_energy(k, dims):
    graph = random_graph(12, 30, seed=1)
    params = ForceParams(k=k, attraction=0.7, repulsion=1.3, centering=0.3, softening=0.05)
    edges = EdgeTensors.from_graph(graph, dtype=torch.float64)
    rng = np.random.default_rng(2)
    pos = torch.as_tensor(rng.normal(size=(2, 12, dims)))
    charge = torch.as_tensor(rng.uniform(0.5, 2.0, size=(2, 12)))
    force = total_force(pos, charge, edges, params, get_backend("exact"))
    h = 1e-6
    numeric = torch.empty_like(pos)
    for b in range(2):
        for i in range(12):
            for d in range(dims):
                plus, minus = pos.clone(), pos.clone()
                plus[b, i, d] += h
                minus[b, i, d] -= h
                diff = energy(plus, charge, edges, params) - energy(minus, charge, edges, params)
                numeric[b, i, d] = diff[b] / (2 * h)
    torch.testing.assert_close(force, -numeric, rtol=1e-5, atol=1e-6)


def test_attraction_matches_per_edge_sum_and_is_batched():
    graph = random_graph(15, 40, seed=3)
    edges = EdgeTensors.from_graph(graph, dtype=torch.float64)
    pos = torch.as_tensor(np.random.default_rng(4).normal(size=(3, 15, 2)))
    expected = torch.zeros_like(pos)
    for (i, j), w in zip(graph.edges, graph.weights):
        expected[:, i] += float(w) * (pos[:, j] - pos[:, i])
        expected[:, j] += float(w) * (pos[:, i] - pos[:, j])
    torch.testing.assert_close(attraction(pos, edges), expected)
    torch.testing.assert_close(attraction(pos[1:2], edges), expected[1:2])


def test_attraction_vanishes_without_edges_and_net_force_is_zero():
    empty = NeuronGraph.from_edges(layer_table([("a", 1, 5)]), [], [])
    pos = torch.randn(1, 5, 2)
    assert torch.count_nonzero(attraction(pos, EdgeTensors.from_graph(empty))) == 0
    grid = king_grid(6)
    net = attraction(torch.randn(1, 36, 2, dtype=torch.float64), EdgeTensors.from_graph(grid, dtype=torch.float64))
    torch.testing.assert_close(net.sum(1), torch.zeros(1, 2, dtype=torch.float64))


def test_params_round_trip_json_and_reject_bad_values():
    params = ForceParams(k=2.5, centering=0.02, max_iter=50)
    assert ForceParams.from_json(params.to_json()) == params
    with pytest.raises(ValueError, match="k"):
        ForceParams(k=0.0)
    with pytest.raises(ValueError, match="damping"):
        ForceParams(damping=1.0)
    with pytest.raises(ValueError, match="unknown ForceParams fields"):
        ForceParams.from_json('{"k": 2.0, "spring": 1}')
