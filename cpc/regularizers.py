"""Regularisers of input optimisation: the article's five ways of making the optimisation harder.

A network that never saw adversarial training can be driven by changes too small or too brittle to hear.
Each regulariser spoils one such shortcut, so what survives is a sound the chosen neurons respond to
robustly: ``time_shift`` rolls the waveform by a random offset every step, ``pitch_shift`` moves the
scaleogram a few bins along frequency, ``mask`` blanks random time-frequency rectangles of it,
``noisy_gradient`` perturbs the update, and ``denoise`` shrinks the clip's weak short-time Fourier
coefficients every few steps. Every random choice comes from the caller's ``torch.Generator``.
"""
from __future__ import annotations

import torch

from .settings import Regularization  # noqa: F401 - re-exported: the settings moved to settings.py

DENOISE_FFT = 1024


def _uniform_int(low: int, high: int, generator: torch.Generator) -> int:
    """An integer in ``[low, high]`` from ``generator``."""
    return int(torch.randint(low, high + 1, (1,), generator=generator))


def time_shift(audio: torch.Tensor, max_samples: int, generator: torch.Generator) -> torch.Tensor:
    """The waveform ``(..., S)`` rolled (circularly) by a random offset of at most ``max_samples``."""
    if max_samples <= 0:
        return audio
    return torch.roll(audio, _uniform_int(-max_samples, max_samples, generator), dims=-1)


def _fill(scaleogram: torch.Tensor, floor: float) -> torch.Tensor:
    """What an empty scaleogram region holds: the log-power floor in channel 0, no phase deviation in 1."""
    fill = torch.zeros(1, scaleogram.shape[1], 1, 1, dtype=scaleogram.dtype, device=scaleogram.device)
    fill[:, 0] = floor
    return fill


def pitch_shift(scaleogram: torch.Tensor, max_bins: int, floor: float, generator: torch.Generator) -> torch.Tensor:
    """The scaleogram ``(B, 2, F, T)`` moved by a random whole number of bins, at most ``max_bins`` either
    way; bins moved in from outside the range hold ``floor`` (log power) and 0 (phase)."""
    if max_bins <= 0:
        return scaleogram
    shift = _uniform_int(-max_bins, max_bins, generator)
    if shift == 0:
        return scaleogram
    rolled = torch.roll(scaleogram, shift, dims=2)
    bins = torch.arange(scaleogram.shape[2], device=scaleogram.device)
    vacated = (bins < shift) if shift > 0 else (bins >= scaleogram.shape[2] + shift)
    return torch.where(vacated[:, None], _fill(scaleogram, floor), rolled)


def mask(scaleogram: torch.Tensor, n_masks: int, max_frames: int, max_bins: int, floor: float,
         generator: torch.Generator) -> torch.Tensor:
    """The scaleogram ``(B, 2, F, T)`` with ``n_masks`` random rectangles (at most ``max_bins`` by
    ``max_frames``) set to silence, the same rectangles for every clip of the batch."""
    if n_masks <= 0 or max_frames <= 0 or max_bins <= 0:
        return scaleogram
    n_bins, n_frames = scaleogram.shape[2:]
    blank = torch.zeros(n_bins, n_frames, dtype=torch.bool)
    for _ in range(n_masks):
        height = _uniform_int(1, min(max_bins, n_bins), generator)
        width = _uniform_int(1, min(max_frames, n_frames), generator)
        bin0, frame0 = _uniform_int(0, n_bins - height, generator), _uniform_int(0, n_frames - width, generator)
        blank[bin0:bin0 + height, frame0:frame0 + width] = True
    return torch.where(blank.to(scaleogram.device), _fill(scaleogram, floor), scaleogram)


def noisy_gradient(gradient: torch.Tensor, scale: float, generator: torch.Generator) -> torch.Tensor:
    """The gradient plus Gaussian noise of ``scale`` times its own standard deviation."""
    if scale <= 0 or gradient.numel() < 2:
        return gradient
    noise = torch.randn(gradient.shape, generator=generator, dtype=gradient.dtype).to(gradient.device)
    return gradient + scale * gradient.std() * noise


def denoise(audio: torch.Tensor, strength: float, n_fft: int = DENOISE_FFT) -> torch.Tensor:
    """Soft-threshold the short-time Fourier coefficients of each clip ``(B, S)`` at ``strength`` times
    the clip's mean magnitude: weak, noise-like components shrink to zero, strong partials stay."""
    if strength <= 0 or audio.shape[-1] < n_fft:
        return audio
    window = torch.hann_window(n_fft, device=audio.device, dtype=audio.dtype)
    spectrum = torch.stft(audio, n_fft, hop_length=n_fft // 4, window=window, return_complex=True)
    magnitude = spectrum.abs()
    threshold = strength * magnitude.mean(dim=(-2, -1), keepdim=True)
    gain = torch.clamp(1.0 - threshold / magnitude.clamp_min(1e-12), min=0.0)
    return torch.istft(spectrum * gain, n_fft, hop_length=n_fft // 4, window=window, length=audio.shape[-1])
