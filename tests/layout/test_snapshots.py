"""Snapshot layouts in one batch equal separate runs; interpolation is smooth, periodic and exact at keys."""
import numpy as np
import pytest

from immersions.layout import zoo
from immersions.layout.extract import extract
from immersions.layout.forces import ForceParams
from immersions.layout.simulate import ForceLayout
from immersions.layout.snapshots import interpolate_snapshots, snapshot_layouts
from immersions.layout.synthetic import king_grid


@pytest.fixture(scope="module")
def static():
    return ForceLayout(ForceParams(max_iter=40, min_iter=5), backend="exact", seed=1).fit(king_grid(5))


def test_batched_snapshots_equal_snapshots_run_one_by_one(static):
    charges = np.random.default_rng(2).uniform(0.2, 3.0, (3, static.graph.n_vertices)).astype(np.float32)
    batched = snapshot_layouts(static, charges, n_iter=60)
    assert batched.positions.shape == (3, static.graph.n_vertices, 2)
    for s in range(3):
        alone = snapshot_layouts(static, charges[s:s + 1], n_iter=60)
        np.testing.assert_allclose(batched.positions[s], alone.positions[0], rtol=1e-4, atol=1e-4)
    assert not np.allclose(batched.positions[0], batched.positions[1], atol=1e-3)


def test_snapshots_start_from_the_static_layout_and_leave_it_alone(static):
    before = static.positions.copy()
    same = snapshot_layouts(static, static.charges, n_iter=0)
    np.testing.assert_array_equal(same.positions, before)
    snapshot_layouts(static, np.full((2, static.graph.n_vertices), 2.0, np.float32), n_iter=10)
    np.testing.assert_array_equal(static.positions, before)
    with pytest.raises(ValueError, match="charges"):
        snapshot_layouts(static, np.ones((2, 3)))


def test_snapshots_under_the_static_charges_stay_at_the_static_layout():
    """On the audio net's graph (dense layer-to-layer edges, siblings prolonged almost on top of each other)
    a settled layout continued under its own charges flung vertices out when moves were capped but not speeds."""
    graph = extract(*zoo.build("audio"))
    charges = np.random.default_rng(0).uniform(0.5, 2.0, graph.n_vertices).astype(np.float32)
    fitted = ForceLayout(backend="exact", seed=0).fit(graph, charges=charges)
    static = fitted.optimize(fitted.params.max_iter)
    before = static.positions[0]
    edge = np.linalg.norm(before[graph.edges[:, 0]] - before[graph.edges[:, 1]], axis=-1).mean()
    centre = before.mean(0)
    after = snapshot_layouts(static, np.repeat(static.charges, 2, axis=0), n_iter=10).positions
    for snapshot in after:
        assert np.linalg.norm(snapshot - before, axis=-1).max() < 1.0 * edge
        assert np.linalg.norm(snapshot - centre, axis=-1).max() < 1.03 * np.linalg.norm(before - centre, axis=-1).max()


@pytest.mark.parametrize("periodic", [True, False])
def test_interpolation_passes_through_snapshots(periodic):
    keys = np.random.default_rng(3).normal(size=(4, 6, 2)).astype(np.float32)
    frames = interpolate_snapshots(keys, 12 if periodic else 10, periodic=periodic)
    assert frames.dtype == np.float32
    if periodic:
        assert frames.shape == (12, 6, 2)
        np.testing.assert_allclose(frames[::3], keys, atol=1e-6)
    else:
        assert frames.shape == (10, 6, 2)
        np.testing.assert_allclose(frames[[0, 3, 6, 9]], keys, atol=1e-6)


def test_periodic_interpolation_is_smooth_across_the_loop():
    t = np.arange(6) / 6 * 2 * np.pi
    keys = np.stack([np.cos(t), np.sin(t)], -1)[:, None, :].astype(np.float32)
    frames = interpolate_snapshots(keys, 60)
    looped = np.concatenate([frames, frames[:2]])
    speed = np.linalg.norm(np.diff(looped, axis=0), axis=-1)
    assert speed.max() / speed.min() < 1.5
    accel = np.linalg.norm(np.diff(looped, 2, axis=0), axis=-1)
    assert accel.max() < 3 * np.median(accel) + 1e-6
    radius = np.linalg.norm(frames[:, 0], axis=-1)
    assert np.all(np.abs(radius - 1) < 0.05)
