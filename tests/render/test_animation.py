"""Interpolation between activation steps and around the loop of layout snapshots."""
import numpy as np
import pytest

from immersions.render.animation import ACTIVATION_RATE, Timeline, activation_at, default_timeline, positions_at


@pytest.fixture
def values():
    return np.random.default_rng(0).normal(size=(7, 5)).astype(np.float32)


@pytest.fixture
def snapshots():
    return np.random.default_rng(1).normal(size=(4, 6, 2)).astype(np.float32)


def test_activation_exact_at_steps(values):
    steps = np.arange(values.shape[0], dtype=np.float64)
    np.testing.assert_array_equal(activation_at(values, steps), values)
    np.testing.assert_array_equal(activation_at(values, 3), values[3])


def test_activation_linear_between_steps(values):
    got = activation_at(values, np.array([1.25, 5.5]))
    np.testing.assert_allclose(got[0], 0.75 * values[1] + 0.25 * values[2], rtol=1e-6)
    np.testing.assert_allclose(got[1], 0.5 * values[5] + 0.5 * values[6], rtol=1e-6)
    assert got.dtype == np.float32 and got.shape == (2, 5)


def test_activation_clamped(values):
    np.testing.assert_array_equal(activation_at(values, -3.0), values[0])
    np.testing.assert_array_equal(activation_at(values, 100.0), values[-1])
    np.testing.assert_array_equal(activation_at(values[:1], 0.7), values[0])


@pytest.mark.parametrize("interpolation", ["cubic", "linear"])
def test_positions_exact_at_snapshots_and_periodic(snapshots, interpolation):
    count = snapshots.shape[0]
    knots = np.arange(count) / count
    np.testing.assert_allclose(positions_at(snapshots, knots, interpolation), snapshots, atol=1e-6)
    phases = np.linspace(0.0, 1.0, 37)
    np.testing.assert_allclose(positions_at(snapshots, phases + 1.0, interpolation),
                               positions_at(snapshots, phases, interpolation), atol=1e-5)
    np.testing.assert_allclose(positions_at(snapshots, 1.0, interpolation), snapshots[0], atol=1e-6)


def test_cubic_is_continuous_and_smooth_across_the_wrap(snapshots):
    eps = 1e-4
    for knot in (0.0, 0.25, 0.5):
        left = positions_at(snapshots, knot - eps)
        centre = positions_at(snapshots, knot)
        right = positions_at(snapshots, knot + eps)
        np.testing.assert_allclose(left, centre, atol=1e-2)
        # velocity from both sides agrees (C1), unlike piecewise linear motion
        np.testing.assert_allclose(centre - left, right - centre, atol=1e-4)


def test_linear_midpoint_and_single_snapshot(snapshots):
    np.testing.assert_allclose(positions_at(snapshots, 1 / 8, "linear"), 0.5 * (snapshots[0] + snapshots[1]), atol=1e-6)
    np.testing.assert_allclose(positions_at(snapshots[0], np.linspace(0, 1, 5)),
                               np.broadcast_to(snapshots[0], (5, 6, 2)),
                               atol=1e-6)


def test_positions_shapes_and_errors(snapshots):
    assert positions_at(snapshots, 0.3).shape == (6, 2)
    assert positions_at(snapshots, np.zeros(9)).shape == (9, 6, 2)
    assert positions_at(snapshots, 0.3).dtype == np.float32
    with pytest.raises(ValueError, match="interpolation"):
        positions_at(snapshots, 0.1, "spline")
    with pytest.raises(ValueError, match="snapshots"):
        positions_at(np.zeros((2, 3, 3)), 0.1)


def test_timeline_frames_and_mapping():
    timeline = Timeline(30, duration=1.0)
    assert timeline.n_frames == 30 and timeline.duration == pytest.approx(1.0)
    assert Timeline(30, duration=1.01).n_frames == 31
    assert Timeline(60, n_frames=90).duration == pytest.approx(1.5)
    times = timeline.frame_times()
    np.testing.assert_allclose(timeline.activation_index(times), times * ACTIVATION_RATE)
    np.testing.assert_allclose(timeline.phase(times), times)
    steps = Timeline.for_activations(43, fps=30)
    assert steps.duration >= 43 / ACTIVATION_RATE > steps.duration - 1 / 30


def test_timeline_states_match_functions(snapshots):
    rng = np.random.default_rng(2)
    values = rng.normal(size=(20, 6)).astype(np.float32)
    timeline = Timeline(24, n_frames=50, activation_rate=12.0, cycle=0.8)
    states = list(timeline.states(snapshots, values, chunk=7))
    assert len(states) == 50
    times = timeline.frame_times()
    for i in (0, 13, 49):
        positions, activations = states[i]
        np.testing.assert_allclose(positions, positions_at(snapshots, (times[i] / 0.8) % 1.0), atol=1e-6)
        np.testing.assert_allclose(activations, activation_at(values, times[i] * 12.0), atol=1e-6)
    assert all(a is None for _, a in Timeline(24, n_frames=3).states(snapshots))


@pytest.mark.parametrize("kwargs", [dict(), dict(n_frames=3, duration=1.0), dict(n_frames=0),
                                    dict(duration=-1.0), dict(n_frames=3, cycle=0.0)])
def test_timeline_errors(kwargs):
    with pytest.raises(ValueError):
        Timeline(30, **kwargs)


def test_default_timeline_follows_audio_then_activations():
    assert default_timeline(None, np.zeros(88200), 44100).duration == pytest.approx(2.0, abs=1 / 60)
    assert default_timeline(np.zeros((43, 4)), None, None).duration == pytest.approx(43 * 4096 / 44100, abs=1 / 60)
    assert default_timeline(None, None, None, cycle=5.0).duration == pytest.approx(5.0)
