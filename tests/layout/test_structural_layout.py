"""The force layout on the structural coarsening: blind to vertex numbering, good on graphs with no axes
(trees, power-law degrees, several components), deterministic, and the axis path unchanged."""
from __future__ import annotations

import numpy as np
import pytest

from immersions.layout.forces import ForceParams
from immersions.layout.graph import NeuronGraph, layer_table
from immersions.layout.hierarchy import build_hierarchy
from immersions.layout.quality import neighborhood_preservation
from immersions.layout.simulate import ForceLayout, choose_coarsening
from immersions.layout.synthetic import barabasi_albert, king_grid, random_geometric, random_tree, relabel


def fitted_np(graph: NeuronGraph, seed: int = 0, **options) -> float:
    positions = ForceLayout(seed=seed, **options).fit(graph).positions[0]
    assert np.isfinite(positions).all()
    return neighborhood_preservation(graph, positions)


def test_shuffled_king_grid_lays_out_as_well_as_the_grid_numbering():
    grid = king_grid(48)
    shuffled, _ = relabel(grid, seed=5)
    assert choose_coarsening(grid) == "both" and choose_coarsening(shuffled) == "graph"
    original, relabelled = fitted_np(grid), fitted_np(shuffled)
    assert original > 0.95
    assert abs(relabelled - original) <= 0.02, (original, relabelled)


def test_random_geometric_graph_does_not_depend_on_numbering():
    """Mean over three layout seeds, so the comparison measures the numbering, not one seed's luck."""
    graph = random_geometric(3000, 8, seed=0)
    shuffled, _ = relabel(graph, seed=1)
    original = np.mean([fitted_np(graph, seed) for seed in range(3)])
    relabelled = np.mean([fitted_np(shuffled, seed) for seed in range(3)])
    assert original > 0.8
    assert abs(relabelled - original) <= 0.02, (original, relabelled)


def test_axis_coarsening_fails_a_shuffled_grid_the_structural_one_does_not():
    """The reason for the structural coarsening: merging index neighbours of a shuffled grid folds it."""
    shuffled, _ = relabel(king_grid(32), seed=2)
    assert fitted_np(shuffled, coarsening="axes") < 0.3
    assert fitted_np(shuffled, coarsening="graph") > 0.9


# NP floors: measured 0.87-0.88 (tree, 2,000 vertices; OGDF FM^3 0.11), 0.014 (Barabasi-Albert, m = 2, whose
# hubs have hundreds of neighbours that cannot all be nearest; FM^3 0.001, a random layout 0.002).
@pytest.mark.parametrize("graph, floor", [(random_tree(2000, seed=0), 0.8),
                                          (barabasi_albert(2000, 2, seed=0), 0.007)], ids=["tree", "barabasi-albert"])
def test_tree_and_power_law_graph(graph, floor):
    assert fitted_np(graph) > floor


def test_disconnected_components_are_each_laid_out():
    parts = [relabel(king_grid(16), seed=0)[0], random_tree(300, seed=1), random_geometric(400, 8, seed=2)]
    offsets = np.cumsum([0] + [p.n_vertices for p in parts])
    src = np.concatenate([p.edges[:, 0] + o for p, o in zip(parts, offsets)])
    dst = np.concatenate([p.edges[:, 1] + o for p, o in zip(parts, offsets)])
    graph = NeuronGraph.from_edges(layer_table([("parts", 1, int(offsets[-1]))]), src, dst)
    positions = ForceLayout(seed=0).fit(graph).positions[0]
    assert np.isfinite(positions).all()
    for part, start in zip(parts, offsets):
        assert neighborhood_preservation(part, positions[start:start + part.n_vertices]) > 0.6


def test_structural_layout_is_deterministic_under_a_seed():
    graph = random_geometric(1500, 8, seed=3)
    first = ForceLayout(seed=4, coarsening="graph").fit(graph).positions
    again = ForceLayout(seed=4, coarsening="graph").fit(graph).positions
    other = ForceLayout(seed=5, coarsening="graph").fit(graph).positions
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_axes_path_is_the_seed_schedule():
    """``coarsening="axes"`` builds ``build_hierarchy``'s levels and runs without the untangling extension."""
    graph = king_grid(24)
    fitted = ForceLayout(seed=0, coarsening="axes").fit(graph)
    explicit = ForceLayout(ForceParams(untangle_iter=0), seed=0, coarsening="axes").fit(graph)
    np.testing.assert_array_equal(fitted.positions, explicit.positions)
    assert fitted.iteration == explicit.iteration
    levels = build_hierarchy(graph, min_vertices=4).n_levels
    assert fitted.iteration <= sum(ForceParams().iterations_at(level) for level in range(levels))


def test_untangling_goes_on_while_the_energy_falls():
    graph = random_geometric(2000, 8, seed=0)
    fixed = ForceLayout(ForceParams(untangle_iter=0), seed=0, coarsening="graph").fit(graph)
    untangled = ForceLayout(seed=0, coarsening="graph").fit(graph)
    assert untangled.iteration > fixed.iteration
    assert (neighborhood_preservation(graph, untangled.positions[0])
            > neighborhood_preservation(graph, fixed.positions[0]))


def test_auto_keeps_the_coarsening_of_higher_quality_on_a_small_neuron_graph(caplog):
    """A small graph with axes is laid out both ways; ``auto`` returns the better layout and logs the scores."""
    graph = king_grid(20)
    by_name = {name: ForceLayout(seed=0, coarsening=name).fit(graph) for name in ("graph", "axes")}
    scores = {name: neighborhood_preservation(graph, layout.positions[0]) for name, layout in by_name.items()}
    with caplog.at_level("INFO", logger="immersions.layout.simulate"):
        auto = ForceLayout(seed=0).fit(graph)
    best = max(("graph", "axes"), key=lambda name: scores[name])
    np.testing.assert_array_equal(auto.positions, by_name[best].positions)
    assert "kept" in caplog.text and best in caplog.text
    large = relabel(king_grid(80), seed=0)[0]
    assert choose_coarsening(large) == "graph"


def test_unknown_coarsening_is_refused():
    with pytest.raises(ValueError, match="coarsening"):
        ForceLayout(coarsening="random")
