"""The contract an audio network meets for the pipeline to show it: what a user's model supplies besides itself.

An ``AudioModel`` is a ``torch.nn.Module`` holding

- ``front_end``: waveform ``(1, 1, samples)`` float32 -> the network's input (``nn.Identity`` for raw-waveform
  networks; a log-mel spectrogram ``(1, 1, mels, frames)`` for a spectrogram CNN). Its ops are signal processing,
  not neurons: they are not traced.
- ``network``: the module whose neurons are drawn; ``layout.extract`` traces it on the front end's output.
- ``taps``: the node names of ``network`` that are layers (``layout.extract.node_names``); None: extract's
  default, the outputs of the nonlinearities.
- ``sample_rate``: the rate of the waveform the front end takes; clips are resampled to it.

The time axis is the last axis of every tap (``(B, C, T)`` or ``(B, C, H, T)``), spanning the clip evenly; taps
without one (pooled over the clip) hold one value for the whole clip. ``min_samples`` is the shortest clip the
network accepts.

CPC models (``cpc.model.CPC``) keep their own, causal chunked path in ``app.Listener`` (scaleogram front end,
encoder and autoregressive taps); any other ``nn.Module`` is taken as a raw-waveform network at
``DEFAULT_SAMPLE_RATE`` by ``as_audio_model``.
"""
from __future__ import annotations

import logging
from typing import Sequence

import torch
from torch import nn

logger = logging.getLogger(__name__)

DEFAULT_SAMPLE_RATE = 16_000
"""The rate assumed for a plain ``nn.Module`` given without a contract (the rate of most speech and sound-event
models)."""


class AudioModel(nn.Module):
    """A network, its front end, its taps and its sample rate (see the module's docstring)."""

    def __init__(self, network: nn.Module, *, sample_rate: int, front_end: nn.Module | None = None,
                 taps: Sequence[str] | None = None, min_samples: int = 1) -> None:
        super().__init__()
        if not isinstance(network, nn.Module):
            raise TypeError(f"network must be a torch.nn.Module, got {type(network).__name__}")
        if int(sample_rate) <= 0:
            raise ValueError(f"sample_rate must be a positive number of samples per second, got {sample_rate!r}")
        self.network = network
        self.front_end = front_end if front_end is not None else nn.Identity()
        self.taps = None if taps is None else tuple(taps)
        self.sample_rate = int(sample_rate)
        self.min_samples = max(int(min_samples), 1)

    def inputs(self, waveform: torch.Tensor) -> torch.Tensor:
        """The network's input for a mono waveform ``(samples,)``, on the model's device."""
        device = next(self.parameters(), torch.zeros(())).device
        with torch.no_grad():
            return self.front_end(waveform.reshape(1, 1, -1).to(device))

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.network(self.front_end(waveform))


def as_audio_model(module: nn.Module) -> nn.Module:
    """``module`` as the pipeline takes it: a CPC model or an ``AudioModel`` as it is, any other module as a
    raw-waveform network at ``DEFAULT_SAMPLE_RATE``."""
    from immersions.cpc.model import CPC

    if isinstance(module, (CPC, AudioModel)):
        return module
    if not isinstance(module, nn.Module):
        raise TypeError(f"the model must be a torch.nn.Module, got {type(module).__name__}")
    logger.warning("%s is not an AudioModel: taking it as a raw-waveform network (input (1, 1, samples)) at %d Hz",
                   type(module).__name__, DEFAULT_SAMPLE_RATE)
    return AudioModel(module, sample_rate=DEFAULT_SAMPLE_RATE)
