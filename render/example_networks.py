"""An audio network unlike CPC, written here to show (and test) the ``AudioModel`` contract: a log-mel 2-D CNN
in the style of a frame-wise sound-event classifier, with seeded random weights (nothing is downloaded).

``immersions render --audio clip.wav --model immersions.render.example_networks:sound_event_cnn``
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from .audio_model import AudioModel

SAMPLE_RATE = 16_000
N_FFT = 512
HOP = 160  # 10 ms frames
N_MELS = 32
N_EVENTS = 10


def mel_filterbank(n_mels: int, n_fft: int, sample_rate: int) -> torch.Tensor:
    """``(n_mels, n_fft // 2 + 1)`` triangular filters evenly spaced on the HTK mel scale, 0 Hz to Nyquist."""
    def mel(hz: torch.Tensor) -> torch.Tensor:
        return 2595.0 * torch.log10(1.0 + hz / 700.0)

    top = mel(torch.tensor(sample_rate / 2.0, dtype=torch.float64))
    edges_hz = 700.0 * (10.0 ** (torch.linspace(0.0, float(top), n_mels + 2, dtype=torch.float64) / 2595.0) - 1.0)
    bins = torch.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1, dtype=torch.float64)
    low, centre, high = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    rising = (bins - low) / (centre - low)
    falling = (high - bins) / (high - centre)
    return torch.clamp(torch.minimum(rising, falling), min=0.0).float()


class LogMel(nn.Module):
    """Waveform ``(B, 1, samples)`` -> log-mel spectrogram ``(B, 1, n_mels, frames)``, one frame per ``hop``."""

    def __init__(self, sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, hop: int = HOP, n_mels: int = N_MELS):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.register_buffer("mel", mel_filterbank(n_mels, n_fft, sample_rate), persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        batch = waveform.shape[0]
        spectrum = torch.stft(waveform.reshape(batch, -1), self.n_fft, self.hop, window=self.window,
                              center=True, pad_mode="constant", return_complex=True)
        power = spectrum.real ** 2 + spectrum.imag ** 2
        return torch.log(torch.einsum("mf,bft->bmt", self.mel, power) + 1e-6).unsqueeze(1)


class SoundEventCNN(nn.Module):
    """Log-mel ``(B, 1, mels, frames)`` -> event probabilities ``(B, events, frames / 4)``: three 3 x 3 conv
    blocks (the first two pool frequency and time by 2), frequency averaged out, a 1 x 1 conv per event."""

    def __init__(self, channels: tuple[int, int, int] = (8, 16, 16), n_events: int = N_EVENTS):
        super().__init__()
        first, second, third = channels
        self.block1 = nn.Sequential(nn.Conv2d(1, first, 3, padding=1), nn.BatchNorm2d(first), nn.ReLU(),
                                    nn.MaxPool2d(2))
        self.block2 = nn.Sequential(nn.Conv2d(first, second, 3, padding=1), nn.BatchNorm2d(second), nn.ReLU(),
                                    nn.MaxPool2d(2))
        self.block3 = nn.Sequential(nn.Conv2d(second, third, 3, padding=1), nn.BatchNorm2d(third), nn.ReLU())
        self.head = nn.Conv1d(third, n_events, 1)
        self.events = nn.Sigmoid()

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        features = self.block3(self.block2(self.block1(mel)))
        return self.events(self.head(features.mean(dim=2)))


def seeded(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    """The module ``build`` makes, built without drawing any number (on the meta device), then every weight drawn
    from ``seed`` alone (scaled by fan-in; norms' scales one, biases zero), in eval mode on the CPU: torch's global
    generator is left alone."""
    with torch.device("meta"):
        module = build()
    module = module.to_empty(device="cpu")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if parameter.dim() > 1:
                fan_in = math.prod(parameter.shape[1:])
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * math.sqrt(2.0 / fan_in))
            elif name.endswith("weight"):
                parameter.fill_(1.0)
            else:
                parameter.zero_()
    for part in module.modules():
        if isinstance(part, nn.modules.batchnorm._BatchNorm):
            part.reset_running_stats()
    return module.eval()


def sound_event_cnn(seed: int = 0) -> AudioModel:
    """The log-mel sound-event CNN at 16 kHz with random weights from ``seed``."""
    return AudioModel(seeded(SoundEventCNN, seed), sample_rate=SAMPLE_RATE, front_end=LogMel(), min_samples=N_FFT)
