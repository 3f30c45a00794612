"""What the pipeline hears of a clip through an ``AudioModel`` (any network but CPC): its neuron graph and the
activations of every neuron over the clip, at the finest tap's rate.

CPC's ``app.Listener`` hears long clips in chunks with the causal warm-up its receptive field needs; a user's
network promises no causality, so this listener hears the whole clip in one pass (memory grows with the clip)
and hands the steps out in blocks of the same interface.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from immersions.layout.activations import ActivationRecorder
from immersions.layout.extract import extract

from .audio_model import AudioModel


class ClipListener:
    """The graph of ``model.network``'s taps and the activations ``(steps, N)`` of a clip, in one pass."""

    def __init__(self, model: AudioModel) -> None:
        if not isinstance(model, AudioModel):
            raise TypeError(f"model must be an AudioModel, got {type(model).__name__}")
        self.model = model
        second = max(model.sample_rate, model.min_samples)
        example = model.inputs(torch.zeros(second))
        self.graph = extract(model.network, example, layers=model.taps)
        self.recorder = ActivationRecorder(model.network, example, self.graph, align="finest")
        one, two = (len(self._record(np.zeros(n, dtype=np.float32))) for n in (second, 2 * second))
        if two <= one:
            raise ValueError("the network's taps have no time axis that grows with the clip (their last axis); "
                             "the pipeline shows activations over time")
        self.rate = (two - one) * model.sample_rate / second
        self._heard: tuple[np.ndarray | None, np.ndarray | None] = (None, None)

    @property
    def sample_rate(self) -> int:
        """The rate of the clips the model hears."""
        return self.model.sample_rate

    def _record(self, samples: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            frames = self.recorder(self.model.inputs(torch.from_numpy(samples)))[0]
        return frames.cpu().numpy().astype(np.float32, copy=False)

    def check(self, audio: np.ndarray) -> np.ndarray:
        """``audio`` as a mono float32 clip long enough for the model, or a ValueError saying why not."""
        samples = np.asarray(audio, dtype=np.float32)
        if samples.ndim != 1:
            raise ValueError(f"audio must be mono with shape (samples,), got {samples.shape}")
        if len(samples) < self.model.min_samples:
            raise ValueError(f"audio holds {len(samples)} samples; this model needs at least {self.model.min_samples}")
        return samples

    def values(self, audio: np.ndarray) -> np.ndarray:
        """Activations ``(steps, N)`` of ``audio`` (mono, at the model's rate); the last clip's are kept."""
        clip, values = self._heard
        if clip is not audio:
            values = self._record(self.check(audio))
            self._heard = (audio, values)
        return values

    def n_steps(self, audio: np.ndarray) -> int:
        """Activation steps of the clip."""
        return len(self.values(audio))

    def step(self, audio: np.ndarray, index: int) -> np.ndarray:
        """Step ``index`` of the clip ``(N,)``."""
        return self.values(audio)[index]

    def chunks(self, audio: np.ndarray, seconds: float) -> Iterator[np.ndarray]:
        """The clip's activations in blocks of about ``seconds`` of steps."""
        values = self.values(audio)
        size = max(round(seconds * self.rate), 1)
        return (values[start:start + size] for start in range(0, len(values), size))

    def hear(self, audio: np.ndarray) -> tuple[np.ndarray, float]:
        """Activations ``(T, N)`` of ``audio`` and their steps per second."""
        return self.values(audio), self.rate
