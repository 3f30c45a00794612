"""A clip's activations in chunks of bounded size, each computed with enough left context to equal a whole pass.

The model is causal: an activation step depends on the audio before it, back to the receptive field of the
deepest tap, and on nothing after it. So a chunk of steps is computed from the audio of those steps plus
``warmup_frames`` scaleogram frames before them (the longest filter, one frame for the phase advance, the
network's receptive field), rounded up to whole strides of the coarsest tap so every pooled step of the chunk
covers the same frames as in the whole clip; the warm-up steps are dropped. Memory then depends on the chunk's
length, not the clip's, and the steps equal those of one pass over the clip preceded by the same warm-up.

Before the clip there is silence: the first chunk's warm-up is digital silence, not the network's zero
padding. Zero padding reads as a loud, flat scaleogram (log power 0 is far above the log of silence), which
lit nearly every neuron at the start of every video, a flash that had nothing to do with the music.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from immersions.cpc.model import CPC
from immersions.layout.activations import ActivationRecorder
from immersions.layout.graph import NeuronGraph

DEFAULT_CHUNK_SECONDS = 30.0
"""Audio per chunk: ~30 MB of activations for the lean model, and the warm-up adds ~20 % to the work."""


@dataclass(frozen=True)
class StepGrid:
    """How scaleogram frames map to activation steps: ``frames_per_step`` frames per step at the finest tap,
    ``stride`` frames per step of the coarsest (chunks start on its multiples), ``warmup_frames`` of context."""

    hop: int
    frames_per_step: int
    stride: int
    warmup_frames: int

    @classmethod
    def of(cls, model: CPC) -> "StepGrid":
        """The grid of ``model``: its finest tap pools time once (``2 * hop``), the coarsest by every pool."""
        field = model.receptive_field()
        finest = max(next((spec.pool for spec in model.config.encoder if spec.pool > 1), 1), 1)
        stride = field.frames_per_step * field.context_stride
        needed = math.ceil(field.scaleogram_samples / field.hop) + 1 + field.context_frames
        return cls(field.hop, finest, stride, -(-needed // stride) * stride)

    def n_steps(self, n_samples: int) -> int:
        """Activation steps of a clip of ``n_samples`` samples: one per ``frames_per_step`` whole frames."""
        return -(-(n_samples // self.hop) // self.frames_per_step)

    def chunk_frames(self, seconds: float, sample_rate: int) -> int:
        """Frames per chunk for about ``seconds`` of audio: a positive multiple of ``stride``."""
        frames = round(seconds * sample_rate / self.hop / self.stride) * self.stride
        return max(frames, self.stride)


def silence_around(clip: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Samples ``[start, stop)`` of a mono clip as float32, silence where the range reaches beyond it."""
    samples = np.asarray(clip[max(start, 0):max(min(stop, len(clip)), 0)], dtype=np.float32)
    before, after = max(-start, 0), max(stop - max(start, len(clip)), 0)
    return np.pad(samples, (before, after)) if before or after else samples


class ChunkedListener:
    """Activations ``(steps, N)`` of every neuron of ``graph`` over a mono clip, chunk by chunk.

    ``network`` maps a scaleogram ``(B, 2, F, T)`` to the taps of ``graph`` (``AnalysisNetwork``).
    """

    def __init__(self, model: CPC, network: torch.nn.Module, graph: NeuronGraph, example: torch.Tensor) -> None:
        self.model = model
        self.grid = StepGrid.of(model)
        self.graph = graph
        self.recorder = ActivationRecorder(network, example, graph, align="finest")

    def steps(self, clip: np.ndarray, first_frame: int, stop_frame: int) -> np.ndarray:
        """Steps of the frames ``[first_frame, stop_frame)`` (``first_frame`` a multiple of the stride).

        The audio runs on in silence to a whole stride after ``stop_frame``: every tap then has a whole number
        of steps, so a coarse step is held from the first fine step it covers, never shown before it is heard,
        and the steps after ``stop_frame`` (which only the silence reaches) are dropped.
        """
        grid = self.grid
        if first_frame % grid.stride:
            raise ValueError(f"a chunk starts on a multiple of {grid.stride} frames, got frame {first_frame}")
        start, stop = first_frame - grid.warmup_frames, -(-stop_frame // grid.stride) * grid.stride
        whole_frames = clip[:len(clip) // grid.hop * grid.hop]  # a frame's last samples are never half heard
        audio = silence_around(whole_frames, start * grid.hop, stop * grid.hop)
        device = next(self.model.parameters()).device
        with torch.no_grad():
            scaleogram = self.model.scaleogram(torch.from_numpy(audio).to(device))
        frames = self.recorder(scaleogram)[0]
        skip = grid.warmup_frames // grid.frames_per_step
        keep = -(-(stop_frame - first_frame) // grid.frames_per_step)
        return frames[skip:skip + keep].cpu().numpy().astype(np.float32, copy=False)

    def step(self, clip: np.ndarray, index: int) -> np.ndarray:
        """Step ``index`` of the clip alone ``(N,)``, computed with its chunk of one stride."""
        grid = self.grid
        first = index * grid.frames_per_step // grid.stride * grid.stride
        block = self.steps(clip, first, min(first + grid.stride, len(clip) // grid.hop))
        return block[index - first // grid.frames_per_step]

    def chunks(self, clip: np.ndarray, chunk_frames: int) -> Iterator[np.ndarray]:
        """Blocks of consecutive steps ``(steps, N)`` covering the clip, ``chunk_frames`` frames each
        (a multiple of the stride; the last block may be shorter)."""
        if chunk_frames < 1 or chunk_frames % self.grid.stride:
            raise ValueError(f"chunk_frames must be a positive multiple of {self.grid.stride}, got {chunk_frames}")
        n_frames = len(clip) // self.grid.hop
        for first in range(0, n_frames, chunk_frames):
            yield self.steps(clip, first, min(first + chunk_frames, n_frames))
