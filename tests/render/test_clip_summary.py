"""The streaming summary of a clip equals the same statistics over all its steps at once."""
from __future__ import annotations

import numpy as np
import pytest

from immersions.layout.activations import Activations, ActivationsWriter
from immersions.layout.synthetic import king_grid
from immersions.render import clip_summary
from immersions.render.animation import StepStream, Timeline, activation_at


def blocks(values: np.ndarray, size: int):
    for start in range(0, len(values), size):
        yield values[start:start + size]


@pytest.mark.parametrize("n_steps, block", [(37, 5), (500, 64)])
def test_summary_equals_the_whole_clip_statistics(tmp_path, monkeypatch, n_steps, block):
    monkeypatch.setattr(clip_summary, "SAMPLE_STEPS", 100)
    graph = king_grid(4)
    values = np.random.default_rng(0).gamma(1.0, size=(n_steps, graph.n_vertices)).astype(np.float32)
    path = tmp_path / "clip.activations.npz"
    summary = clip_summary.summarize(blocks(values, block), n_steps, graph, 4, seconds_per_step=0.05,
                                     activations_path=path, frame_rate=20.0, progress=False)
    np.testing.assert_allclose(summary.variance, values.var(axis=0), rtol=1e-5)
    windows = np.array_split(values, 4)
    np.testing.assert_allclose(summary.window_variance, np.stack([w.var(axis=0) for w in windows]), rtol=1e-5)
    every = -(-n_steps // 100)
    np.testing.assert_array_equal(summary.sample, values[::every])
    saved = Activations.load(path)
    np.testing.assert_array_equal(saved.values, values)
    assert saved.layers == graph.layers and saved.frame_rate == 20.0


def test_activations_writer_leaves_nothing_when_short_or_failing(tmp_path):
    graph = king_grid(3)
    path = tmp_path / "a.npz"
    with pytest.raises(ValueError, match="announced"):
        with ActivationsWriter(path, graph.layers, 10) as writer:
            writer.write(np.zeros((4, graph.n_vertices), np.float32))
    with pytest.raises(RuntimeError):
        with ActivationsWriter(path, graph.layers, 4) as writer:
            writer.write(np.zeros((4, graph.n_vertices), np.float32))
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_step_stream_draws_what_the_whole_array_draws():
    values = np.random.default_rng(1).random((50, 7)).astype(np.float32)
    timeline = Timeline(13.0, duration=50 / 9.0, activation_rate=9.0, activation_offset=0.1)
    whole = [a for _, a in timeline.states(np.zeros((1, 7, 2)), values, chunk=5)]
    streamed = [a for _, a in timeline.states(np.zeros((1, 7, 2)), StepStream(blocks(values, 6), 50), chunk=5)]
    np.testing.assert_allclose(np.stack(streamed), np.stack(whole), rtol=1e-6)
    np.testing.assert_allclose(whole[3], activation_at(values, timeline.activation_index(3 / 13.0)), rtol=1e-6)
    stream = StepStream(blocks(values, 6), 50)
    stream.rows(20, 21)
    with pytest.raises(ValueError, match="forwards"):
        stream.rows(3, 4)
