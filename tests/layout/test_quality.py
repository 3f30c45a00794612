"""Layout quality scores against known answers and brute-force references."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from immersions.layout import quality
from immersions.layout.graph import NeuronGraph, layer_table
from immersions.layout.quality import edge_length_cv, neighborhood_preservation, stress


def grid(rows: int, cols: int) -> tuple[NeuronGraph, np.ndarray]:
    """A rows x cols grid graph and its perfect unit-spaced grid layout."""
    idx = np.arange(rows * cols).reshape(rows, cols)
    src = np.concatenate([idx[:, :-1].ravel(), idx[:-1, :].ravel()])
    dst = np.concatenate([idx[:, 1:].ravel(), idx[1:, :].ravel()])
    graph = NeuronGraph.from_edges(layer_table([("grid", rows, cols)]), src, dst)
    y, x = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    return graph, np.stack([x.ravel(), y.ravel()], axis=1).astype(np.float32)


def star(leaves: int) -> tuple[NeuronGraph, np.ndarray]:
    """A hub joined to ``leaves`` vertices, hub at the origin, leaves on the unit circle."""
    graph = NeuronGraph.from_edges(layer_table([("hub", 1, 1), ("leaves", leaves, 1)]),
                                   np.zeros(leaves), np.arange(1, leaves + 1))
    angle = 2 * np.pi * np.arange(leaves) / leaves
    pos = np.concatenate([[[0.0, 0.0]], np.stack([np.cos(angle), np.sin(angle)], axis=1)])
    return graph, pos.astype(np.float32)


def random_graph(n: int, n_edges: int, seed: int) -> NeuronGraph:
    rng = np.random.default_rng(seed)
    return NeuronGraph.from_edges(layer_table([("x", n, 1)]), rng.integers(0, n, n_edges),
                                  rng.integers(0, n, n_edges))


def brute_force_np(graph: NeuronGraph, pos: np.ndarray) -> float:
    """Per-vertex loop over full distance sorts."""
    n = graph.n_vertices
    neighbours = [set() for _ in range(n)]
    for s, d in graph.edges.tolist():
        neighbours[s].add(d)
        neighbours[d].add(s)
    scores = []
    for i in range(n):
        if not neighbours[i]:
            continue
        dist = np.linalg.norm(pos - pos[i], axis=1)
        dist[i] = np.inf
        nearest = set(np.argsort(dist)[:len(neighbours[i])].tolist())
        scores.append(len(nearest & neighbours[i]) / len(neighbours[i]))
    return float(np.mean(scores))


def brute_force_stress(graph: NeuronGraph, pos: np.ndarray) -> float:
    """All-pairs hop distances by repeated relaxation, scale found by numerical minimisation."""
    n = graph.n_vertices
    hops = np.full((n, n), np.inf)
    np.fill_diagonal(hops, 0)
    hops[graph.edges[:, 0], graph.edges[:, 1]] = 1
    hops[graph.edges[:, 1], graph.edges[:, 0]] = 1
    for k in range(n):
        hops = np.minimum(hops, hops[:, k:k + 1] + hops[k:k + 1, :])
    dist = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    pair = np.isfinite(hops) & (hops > 0)
    ratio = dist[pair] / hops[pair]
    best = minimize_scalar(lambda a: np.mean((a * ratio - 1) ** 2), bounds=(0, 1e3), method="bounded",
                           options={"xatol": 1e-12})
    return float(best.fun)


def test_perfect_grid_layout():
    graph, pos = grid(12, 17)
    assert neighborhood_preservation(graph, pos) == 1.0
    assert edge_length_cv(graph, pos) == pytest.approx(0.0, abs=1e-7)
    # Euclidean layout distance vs Manhattan hop distance: close to proportional, far below a random layout.
    grid_stress = stress(graph, pos, n_sources=40)
    assert grid_stress < 0.02
    random_pos = np.random.default_rng(0).standard_normal(pos.shape)
    assert stress(graph, random_pos, n_sources=40) > 10 * grid_stress


def test_path_on_a_line_has_zero_stress():
    graph, pos = grid(1, 40)
    assert stress(graph, pos, n_sources=40) == pytest.approx(0.0, abs=1e-12)
    assert neighborhood_preservation(graph, pos) == 1.0


def test_random_layout_has_low_neighborhood_preservation():
    graph, pos = grid(20, 20)
    random_pos = np.random.default_rng(1).standard_normal(pos.shape)
    assert neighborhood_preservation(graph, random_pos) < 0.1


@pytest.mark.parametrize("leaves, expected", [(4, 1.0), (8, 1.0 / 9.0)])
def test_star_known_answers(leaves, expected):
    graph, pos = star(leaves)
    assert neighborhood_preservation(graph, pos) == pytest.approx(expected)
    assert edge_length_cv(graph, pos) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("seed", range(3))
def test_neighborhood_preservation_matches_brute_force(seed):
    graph = random_graph(60, 150, seed)
    pos = np.random.default_rng(seed + 10).random((60, 2))
    assert neighborhood_preservation(graph, pos) == pytest.approx(brute_force_np(graph, pos))


@pytest.mark.parametrize("seed", range(3))
def test_stress_matches_brute_force_with_numerical_scale(seed):
    graph = random_graph(40, 70, seed)
    pos = np.random.default_rng(seed + 20).random((40, 3))
    assert stress(graph, pos, n_sources=40) == pytest.approx(brute_force_stress(graph, pos), rel=1e-6)


def test_small_query_budget_gives_the_same_scores(monkeypatch):
    graph = random_graph(80, 300, 5)
    pos = np.random.default_rng(5).random((80, 2))
    full_np, full_stress = neighborhood_preservation(graph, pos), stress(graph, pos, n_sources=80)
    monkeypatch.setattr(quality, "_QUERY_BUDGET", 7)
    assert neighborhood_preservation(graph, pos) == pytest.approx(full_np)
    assert stress(graph, pos, n_sources=80) == pytest.approx(full_stress)


def test_scores_ignore_scale_rotation_and_translation():
    graph = random_graph(50, 120, 6)
    pos = np.random.default_rng(6).standard_normal((50, 2))
    turn = np.array([[np.cos(0.7), -np.sin(0.7)], [np.sin(0.7), np.cos(0.7)]])
    moved = 3.7 * pos @ turn.T + np.array([5.0, -2.0])
    assert neighborhood_preservation(graph, moved) == pytest.approx(neighborhood_preservation(graph, pos))
    assert stress(graph, moved) == pytest.approx(stress(graph, pos), rel=1e-9)
    assert edge_length_cv(graph, moved) == pytest.approx(edge_length_cv(graph, pos), rel=1e-9)


def test_sampling_is_seeded_and_converges_to_the_full_score():
    graph, pos = grid(15, 15)
    noisy = pos + np.random.default_rng(7).normal(0, 0.4, pos.shape)
    full = neighborhood_preservation(graph, noisy)
    assert neighborhood_preservation(graph, noisy, n_samples=225) == full
    a = neighborhood_preservation(graph, noisy, n_samples=50, seed=3)
    assert a == neighborhood_preservation(graph, noisy, n_samples=50, seed=3)
    assert abs(a - full) < 0.2
    assert stress(graph, noisy, n_sources=8, seed=1) == stress(graph, noisy, n_sources=8, seed=1)


def test_edge_length_cv_known_value():
    graph = NeuronGraph.from_edges(layer_table([("x", 3, 1)]), [0, 1], [1, 2])
    pos = np.array([[0.0, 0.0], [1.0, 0.0], [4.0, 0.0]])
    assert edge_length_cv(graph, pos) == pytest.approx(0.5)   # lengths 1 and 3: std 1, mean 2


def test_collapsed_layout_has_stress_one():
    graph, pos = grid(4, 4)
    assert stress(graph, np.zeros_like(pos)) == 1.0


def test_invalid_inputs():
    graph, pos = grid(3, 3)
    empty = NeuronGraph.from_edges(graph.layers, [], [])
    for score in (neighborhood_preservation, stress, edge_length_cv):
        with pytest.raises(ValueError, match="no edges"):
            score(empty, pos)
        with pytest.raises(ValueError, match="pos"):
            score(graph, pos[:-1])
        bad = pos.copy()
        bad[2, 1] = np.nan
        with pytest.raises(ValueError, match="non-finite"):
            score(graph, bad)
    with pytest.raises(ValueError, match="n_samples"):
        neighborhood_preservation(graph, pos, n_samples=0)
    with pytest.raises(ValueError, match="n_sources"):
        stress(graph, pos, n_sources=0)
    with pytest.raises(ValueError, match="length 0"):
        edge_length_cv(graph, np.zeros_like(pos))


def test_sample_without_edges_is_rejected():
    graph = NeuronGraph.from_edges(layer_table([("x", 50, 1)]), [0], [1])
    with pytest.raises(ValueError, match="sampled vertices has an edge"):
        neighborhood_preservation(graph, np.random.default_rng(0).random((50, 2)), n_samples=1, seed=4)
