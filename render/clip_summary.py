"""One streaming pass over a clip's activations: what the layout and the light levels need, in bounded memory.

A long recording's activations do not fit in memory (the lean model: ~13,968 neurons x 21.5 steps per second,
4.3 GB per hour in float32), so they are summarised chunk by chunk as they are computed: the variance of
every neuron over the whole clip and over each snapshot window (Welford, ``RunningMoments``), an even sample
of at most ``SAMPLE_STEPS`` steps (the per-layer quantiles of ``clip`` levels and of charge normalisation),
and, when asked, the activations themselves streamed into their ``.npz`` for the viewer.
"""
from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from immersions.layout.activations import ActivationsWriter, RunningMoments
from immersions.layout.graph import NeuronGraph

from .levels import even_sample

SAMPLE_STEPS = 2_000
"""Steps kept for quantiles: ~110 MB for the lean model (a clip of up to ~1.5 minutes is kept whole), and
still hundreds of thousands of activations per layer for its 99.5th percentile."""


@dataclass(frozen=True)
class ClipSummary:
    """``variance`` ``(N,)`` over the clip, ``window_variance`` ``(S, N)`` per snapshot window, ``sample`` an even
    sample of the steps ``(K, N)``, ``n_steps`` the clip's steps."""

    variance: np.ndarray
    window_variance: np.ndarray
    sample: np.ndarray
    n_steps: int

    def layer_scale(self, graph: NeuronGraph, quantile: float = 0.995) -> np.ndarray:
        """``(N,)``: each neuron's layer's range over the clip, its ``quantile`` above ``min(0, minimum)``: divides
        activations so that variances compare across layers whose raw scales differ by orders of magnitude."""
        scale = np.ones(graph.n_vertices, np.float64)
        for layer in graph.layers:
            block = self.sample[:, layer.start:layer.stop]
            high, low = float(np.quantile(block, quantile)), min(float(block.min()), 0.0)
            scale[layer.start:layer.stop] = high - low if high > low else 1.0
        return scale


def window_bounds(n_steps: int, n_windows: int) -> np.ndarray:
    """Start of every window and the end of the last, as ``np.array_split`` cuts ``n_steps`` into ``n_windows``."""
    count = min(n_windows, n_steps)
    sizes = np.full(count, n_steps // count)
    sizes[:n_steps % count] += 1
    return np.concatenate([[0], np.cumsum(sizes)])


def summarize(chunks, n_steps: int, graph: NeuronGraph, n_windows: int, *, seconds_per_step: float,
              activations_path: str | os.PathLike | None = None, frame_rate: float | None = None,
              progress: bool | None = None) -> ClipSummary:
    """Summarise the activation blocks ``chunks`` (consecutive ``(steps, N)``, ``n_steps`` in all), writing them to
    ``activations_path`` on the way when given."""
    if n_windows < 1:
        raise ValueError(f"n_windows must be >= 1, got {n_windows}")
    bounds = window_bounds(n_steps, n_windows)
    whole, windows = RunningMoments(), [RunningMoments() for _ in range(len(bounds) - 1)]
    every = even_sample(n_steps, SAMPLE_STEPS)
    sample, seen = [], 0
    writer = nullcontext() if activations_path is None else ActivationsWriter(activations_path, graph.layers,
                                                                             n_steps, frame_rate)
    with writer, tqdm(total=round(n_steps * seconds_per_step), unit="s", desc="listening (s of audio)",
                      disable=progress is False) as bar:
        for block in chunks:
            stop = seen + len(block)
            whole.add(block)
            for index, moments in enumerate(windows):
                low, high = max(bounds[index], seen), min(bounds[index + 1], stop)
                if low < high:
                    moments.add(block[low - seen:high - seen])
            sample.append(block[(-seen) % every::every].copy())  # a view would keep the whole block alive
            if activations_path is not None:
                writer.write(block)
            bar.update(round(stop * seconds_per_step) - bar.n)
            seen = stop
        if seen != n_steps:
            raise ValueError(f"the activations held {seen} steps, not the clip's {n_steps}")
    return ClipSummary(whole.variance.astype(np.float32),
                       np.stack([m.variance for m in windows]).astype(np.float32),
                       np.concatenate(sample), n_steps)
