"""Short-time spectra for hearing through the network: masks on a clip's STFT, resynthesised with its own phase.

The model hears a constant-Q scaleogram, which cannot be inverted directly; the auralisation of Choi et al. and
DreamSound's filters therefore act on the clip's short-time Fourier transform and keep its phase. A map on the
scaleogram (bands by frames) is carried over to the STFT grid by linear interpolation along time (each band's
frame placed at the centre of its filter window) and along log-frequency (values beyond the lowest and highest
band held at the edge band's value), so a mask of ones stays ones and gives the clip back.
"""
from __future__ import annotations

import numpy as np
import torch

from .config import CPCConfig
from .model import CPC
from .scaleogram import band_frequencies, filter_lengths

WINDOW_SECONDS = 0.046  # STFT window: 2048 samples at 44.1 kHz


def fft_size(sample_rate: int) -> int:
    """The STFT window in samples: the power of two nearest above ``WINDOW_SECONDS``."""
    return 1 << int(np.ceil(np.log2(WINDOW_SECONDS * sample_rate)))


def stft(audio: torch.Tensor, n_fft: int) -> torch.Tensor:
    """Complex STFT ``(n_fft // 2 + 1, frames)`` of a mono clip ``(S,)``: Hann window, hop ``n_fft // 4``,
    frame ``j`` centred on sample ``j * hop``."""
    window = torch.hann_window(n_fft, dtype=audio.dtype, device=audio.device)
    return torch.stft(audio, n_fft, hop_length=n_fft // 4, window=window, center=True, return_complex=True)


def istft(spectrum: torch.Tensor, n_fft: int, length: int) -> torch.Tensor:
    """The clip ``(length,)`` of a spectrum from ``stft``; ``istft(stft(x))`` is ``x`` to rounding error."""
    window = torch.hann_window(n_fft, dtype=spectrum.real.dtype, device=spectrum.device)
    return torch.istft(spectrum, n_fft, hop_length=n_fft // 4, window=window, center=True, length=length)


def stft_grid(sample_rate: int, n_fft: int, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies (Hz) of the STFT's bins and times (s) of its frames."""
    return np.fft.rfftfreq(n_fft, 1.0 / sample_rate), np.arange(n_frames) * (n_fft // 4) / sample_rate


def band_lags(config: CPCConfig) -> np.ndarray:
    """Seconds from each band's frame anchor back to the centre of its filter window (0 when centred)."""
    if not config.causal:
        return np.zeros(config.n_bins)
    return np.round(filter_lengths(config)).clip(min=1) / 2.0 / config.sample_rate


def _lerp(values: np.ndarray, positions: np.ndarray, axis: int) -> np.ndarray:
    """``values`` read at fractional ``positions`` along ``axis`` (positions clamped to the axis), linearly.
    ``positions`` broadcasts against ``values`` with ``axis`` replaced by the positions' own length."""
    size = values.shape[axis]
    positions = np.clip(positions, 0.0, size - 1.0)
    low = np.floor(positions).astype(int)
    high = np.minimum(low + 1, size - 1)
    weight = positions - low
    return ((1.0 - weight) * np.take_along_axis(values, low, axis=axis)
            + weight * np.take_along_axis(values, high, axis=axis))


def scaleogram_to_stft(config: CPCConfig, values: np.ndarray, sample_rate: int, n_fft: int,
                       n_stft_frames: int) -> np.ndarray:
    """A map ``(bands, frames)`` on the model's scaleogram carried to the grid ``(n_fft // 2 + 1,
    n_stft_frames)`` of an STFT at ``sample_rate`` (which need not be the model's): along time to each band's
    window centre, then along log-frequency (see the module)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] != config.n_bins:
        raise ValueError(f"a scaleogram map needs shape ({config.n_bins}, frames), got {values.shape}")
    freqs, times = stft_grid(sample_rate, n_fft, n_stft_frames)
    # frame t of band b is centred at (t + 1) * hop / sr - lag_b seconds
    frame_positions = (times[None, :] + band_lags(config)[:, None]) * config.sample_rate / config.hop - 1.0
    in_time = _lerp(values, frame_positions, axis=1)                                  # (bands, stft frames)
    bands = band_frequencies(config)
    band_positions = np.interp(np.log2(np.maximum(freqs, 1e-3)), np.log2(bands), np.arange(len(bands)))
    return _lerp(in_time, np.broadcast_to(band_positions[:, None], (len(freqs), n_stft_frames)), axis=0)


def apply_mask(config: CPCConfig, clip: np.ndarray, sample_rate: int,
               mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A clip at ``sample_rate`` with a mask on the model's scaleogram ``(bands, frames)`` applied to its STFT
    magnitude, resynthesised with its own phase: the new clip (same length and rate) and the mask as applied
    on the STFT grid."""
    audio = torch.from_numpy(np.ascontiguousarray(clip, dtype=np.float32)).double()
    n_fft = fft_size(sample_rate)
    if audio.dim() != 1 or len(audio) < n_fft // 2 + 1:
        raise ValueError(f"masking a clip's spectrum needs a mono clip of at least {n_fft // 2 + 1} samples, "
                         f"got shape {tuple(audio.shape)}")
    spectrum = stft(audio, n_fft)
    on_grid = scaleogram_to_stft(config, mask, sample_rate, n_fft, spectrum.shape[1])
    result = istft(spectrum * torch.from_numpy(on_grid), n_fft, len(audio))
    return result.numpy().astype(np.float32), on_grid.astype(np.float32)


@torch.no_grad()
def log_power(model: CPC, clip: np.ndarray) -> np.ndarray:
    """The log-power channel of the clip's scaleogram, ``(bands, frames)``, as the model hears it."""
    audio = torch.from_numpy(np.ascontiguousarray(clip, dtype=np.float32)).to(next(model.parameters()).device)
    return model.scaleogram(audio[None])[0, 0].cpu().numpy()
