"""Chunked listening equals one pass over the clip after the same silent warm-up, for any chunk length."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from immersions.layout.activations import record_activations
from immersions.render import app
from immersions.render.demo_audio import demo_clip
from immersions.render.listen import StepGrid

from .test_app import SAMPLE_RATE, tiny_model


def whole_pass(listener: app.Listener, clip: np.ndarray) -> np.ndarray:
    """One pass of the network over silence (the warm-up), the clip and silence to a whole stride of the
    coarsest tap, warm-up steps and those after the clip dropped."""
    grid = listener.chunked.grid
    frames = len(clip) // grid.hop
    padded = np.concatenate([np.zeros(grid.warmup_frames * grid.hop, np.float32), clip[:frames * grid.hop],
                             np.zeros((-frames % grid.stride) * grid.hop, np.float32)])
    with torch.no_grad():
        scaleogram = listener.model.scaleogram(torch.from_numpy(padded))
    values = record_activations(listener.network, scaleogram, listener.graph, align="finest").values
    skip = grid.warmup_frames // grid.frames_per_step
    return values[skip:skip + grid.n_steps(len(clip))]


@pytest.fixture(scope="module")
def tiny_listener() -> app.Listener:
    return app.Listener(tiny_model())


@pytest.mark.parametrize("seconds", [3.0, 3.77])  # whole strides, and a ragged last chunk
def test_chunks_equal_one_whole_pass(tiny_listener, seconds):
    clip = demo_clip(seconds, sample_rate=SAMPLE_RATE, seed=2)
    grid = tiny_listener.chunked.grid
    whole = whole_pass(tiny_listener, clip)
    assert len(whole) == grid.n_steps(len(clip))
    for chunk_frames in (grid.stride, 3 * grid.stride, 10_000 * grid.stride):
        chunked = np.concatenate(list(tiny_listener.chunked.chunks(clip, chunk_frames)))
        np.testing.assert_allclose(chunked, whole, rtol=1e-4, atol=1e-4)  # float32 sums in another order


def test_chunks_equal_one_whole_pass_of_the_shipped_model():
    """The lean model's receptive field (~6 s of warm-up) and pools: 10-s chunks of a 25-s clip."""
    from immersions.render.app_inputs import load_model
    listener = app.Listener(load_model("lean"))
    rate = listener.model.config.sample_rate
    clip = demo_clip(25.0, sample_rate=rate, seed=3)
    chunked = np.concatenate(list(listener.chunks(clip, seconds=10.0)))
    whole = whole_pass(listener, clip)
    assert chunked.shape == whole.shape
    np.testing.assert_allclose(chunked, whole, rtol=1e-4, atol=1e-4 * float(np.abs(whole).max()))


def test_warmup_covers_the_receptive_field(tiny_listener):
    model = tiny_listener.model
    grid = StepGrid.of(model)
    field = model.receptive_field()
    assert grid.warmup_frames % grid.stride == 0
    assert grid.warmup_frames * grid.hop >= field.context_samples + grid.hop


def test_chunks_must_start_on_the_stride(tiny_listener):
    clip = demo_clip(2.0, sample_rate=SAMPLE_RATE, seed=2)
    with pytest.raises(ValueError, match="multiple of"):
        next(tiny_listener.chunked.chunks(clip, tiny_listener.chunked.grid.stride + 1))
