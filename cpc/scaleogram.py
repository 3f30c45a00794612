"""Differentiable constant-Q scaleogram: a fixed-weight Conv1d with stride hop, then log power and phase advance.

Each frequency band is a Hann-windowed complex exponential (two kernel channels: real and imaginary
part), L1-normalised so a sinusoid of amplitude ``A`` at a band's centre frequency reads ``A / 2`` in
that band. Filter lengths follow the usual constant-Q rule ``L_b = Q * sr / f_b`` with
``Q = filter_scale / alpha`` and ``alpha = (r**2 - 1) / (r**2 + 1)``, ``r = 2 ** (1 / bins_per_octave)``
(the relative bandwidth librosa uses), so magnitudes are comparable with ``librosa.cqt(scale=False)``.

Bands are convolved one octave at a time: every octave has its own kernel, as long as its lowest
band's filter (rounded up to whole hops), so short high-frequency filters are never padded to the
longest (lowest) one. The audio is cut into hop-sized blocks and each octave is a stride-1 Conv1d
over blocks (``hop`` input channels): the same sums as a stride-``hop`` conv over samples, about
1.7 times as fast forward and backward on CPU.

Time alignment. Frame ``t`` is anchored at sample ``a_t = (t + 1) * hop``; an input of ``S`` samples gives
``S // hop`` frames. In causal mode (``CPCConfig.causal=True``, the default) every window *ends* at its
anchor, covering samples ``[a_t - L_b, a_t)``, so frame ``t`` never sees a sample at or after ``a_t``
and the whole model stays causal; low bands then lag high bands by half their window length. In
centred mode the window is centred on ``a_t`` (librosa's ``center=True`` frame ``t + 1``).

Output ``(B, 2, F, T)``: channel 0 is ``log(|X|**2 + power_floor)``; channel 1 is the phase advance,
the wrapped frame-to-frame phase difference minus the advance expected for a tone at the band's centre
frequency (``2 pi f_b hop / sr``), divided by pi so it lies in ``[-1, 1]``. Where the power of two
consecutive frames is at the floor the phase is undefined and reads 0 (with zero gradient, so silence
gives finite gradients). The front end always computes in float32, also under CUDA autocast: the
long filters and the power floor need it.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from .config import CPCConfig


@torch.fx.wrap
def as_batch_audio(audio: torch.Tensor, min_samples: int = 1) -> torch.Tensor:
    """Normalise audio ``(S,)``, ``(B, S)`` or ``(B, 1, S)`` with ``S >= min_samples`` to ``(B, 1, S)``."""
    if not isinstance(audio, torch.Tensor):
        raise TypeError(f"audio must be a torch.Tensor, got {type(audio).__name__}")
    if not audio.is_floating_point():
        raise TypeError(f"audio must be a floating point tensor, got dtype {audio.dtype}")
    if audio.dim() > 0 and audio.shape[-1] < min_samples:
        raise ValueError(f"audio has {audio.shape[-1]} samples; at least {min_samples} (one hop) are needed")
    if audio.dim() == 1:
        return audio[None, None, :]
    if audio.dim() == 2:
        return audio[:, None, :]
    if audio.dim() == 3 and audio.shape[1] == 1:
        return audio
    raise ValueError(f"audio must have shape (S,), (B, S) or (B, 1, S), got {tuple(audio.shape)}")


def band_frequencies(config: CPCConfig) -> np.ndarray:
    """Centre frequency in Hz of every band, lowest first."""
    return config.fmin * 2.0 ** (np.arange(config.n_bins) / config.bins_per_octave)


def filter_lengths(config: CPCConfig) -> np.ndarray:
    """Filter length in samples (float) of every band: ``Q * sr / f``."""
    ratio = 2.0 ** (2.0 / config.bins_per_octave)
    q = config.filter_scale * (ratio + 1.0) / (ratio - 1.0)
    return q * config.sample_rate / band_frequencies(config)


def _band_filter(frequency: float, length: float, sample_rate: int) -> np.ndarray:
    """Complex Hann-windowed analysis filter (conjugated exponential), L1-normalised, centred phase."""
    n = max(int(round(length)), 1)
    t = np.arange(n) - (n - 1) / 2.0
    window = np.hanning(n + 2)[1:-1] if n > 1 else np.ones(1)
    filt = window * np.exp(-2j * np.pi * frequency * t / sample_rate)
    return filt / np.abs(filt).sum()


def _ceil_to(value: int, step: int) -> int:
    return -(-value // step) * step


def _octave_kernel(config: CPCConfig, bands: range) -> tuple[np.ndarray, int]:
    """Block kernel ``(2 * n_bands, hop, K / hop)`` of a group of bands and its start before the anchor.

    Real parts come first, then imaginary parts. Every band's taps sit where its window lies relative
    to the frame anchor (ending there when causal, centred on it otherwise); the kernel starts
    ``lead`` samples before the anchor and is zero-extended to whole hops, so the convolution can run
    over hop-sized blocks with stride 1 instead of over samples with stride ``hop``.
    """
    hop = config.hop
    freqs, lengths = band_frequencies(config), filter_lengths(config)
    filters = [_band_filter(freqs[b], lengths[b], config.sample_rate) for b in bands]
    starts = [-len(f) if config.causal else -(len(f) // 2) for f in filters]  # relative to the anchor
    lead = _ceil_to(max(-s for s in starts), hop)
    size = _ceil_to(max(lead + s + len(f) for s, f in zip(starts, filters)), hop)
    flat = np.zeros((2 * len(filters), size), dtype=np.float64)
    for i, (rel, filt) in enumerate(zip(starts, filters)):
        flat[i, lead + rel:lead + rel + len(filt)] = filt.real
        flat[len(filters) + i, lead + rel:lead + rel + len(filt)] = filt.imag
    return flat.reshape(len(flat), size // hop, hop).transpose(0, 2, 1), lead


class Scaleogram(nn.Module):
    """Audio ``(B, S) | (S,) | (B, 1, S)`` -> scaleogram ``(B, 2, F, T)`` with ``T = S // hop``.

    Trailing samples after ``T * hop`` are ignored (in causal mode no frame could see them anyway).
    """

    def __init__(self, config: CPCConfig) -> None:
        super().__init__()
        self.hop = hop = config.hop
        self.n_bins = config.n_bins
        self.causal = config.causal
        self.power_floor = float(config.power_floor)
        lengths = [max(int(round(n)), 1) for n in filter_lengths(config)]
        self.filter_span = max(lengths) if config.causal else max(lengths) // 2  # samples before an anchor
        groups = [range(s, min(s + config.bins_per_octave, config.n_bins))
                  for s in range(0, config.n_bins, config.bins_per_octave)]
        kernels, leads = zip(*(_octave_kernel(config, g) for g in groups))
        blocks = [k.shape[-1] for k in kernels]
        first = max(leads)  # samples needed before the first anchor
        after = max(b * hop - lead for b, lead in zip(blocks, leads))  # samples needed after the last anchor
        self._pad = (first - hop, after)
        extra = (first - hop + after) // hop
        # group g reads blocks [o, n - e) of the padded signal's n = T + extra blocks
        self._crops = tuple(((first - lead) // hop, extra - (first - lead) // hop - b + 1)
                            for b, lead in zip(blocks, leads))
        self.n_groups = len(kernels)
        for g, kernel in enumerate(kernels):
            name, tensor = f"kernel_{g}", torch.tensor(np.ascontiguousarray(kernel), dtype=torch.float32)
            if config.trainable_kernels:
                self.register_parameter(name, nn.Parameter(tensor))
            else:
                self.register_buffer(name, tensor, persistent=False)
        advance = 2.0 * np.pi * band_frequencies(config) * config.hop / config.sample_rate
        self.register_buffer("advance_cos", torch.tensor(np.cos(advance), dtype=torch.float32)[:, None],
                             persistent=False)
        self.register_buffer("advance_sin", torch.tensor(np.sin(advance), dtype=torch.float32)[:, None],
                             persistent=False)

    @property
    def kernel_sizes(self) -> list[int]:
        """Length in samples of each octave's kernel (whole hops), lowest octave first."""
        return [getattr(self, f"kernel_{g}").shape[-1] * self.hop for g in range(self.n_groups)]

    def extra_repr(self) -> str:
        shapes = ", ".join(str(tuple(getattr(self, f"kernel_{g}").shape)) for g in range(self.n_groups))
        mode = "causal" if self.causal else "centred"
        return f"hop={self.hop}, n_bins={self.n_bins}, {mode}, kernels=[{shapes}]"

    def complex_response(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Real and imaginary parts of the filter responses, each ``(B, F, T)``."""
        x = as_batch_audio(audio, self.hop).float().unfold(-1, self.hop, self.hop).flatten(-2)  # T * hop samples
        x = F.pad(x, self._pad).unfold(-1, self.hop, self.hop)  # (B, 1, T + extra, hop)
        x = x.squeeze(1).transpose(1, 2)  # (B, hop, blocks)
        real, imag = [], []
        for g, (left, right) in enumerate(self._crops):
            kernel = getattr(self, f"kernel_{g}")
            out = F.conv1d(x[..., left:-right] if right else x[..., left:], kernel)
            half = kernel.shape[0] // 2
            real.append(out[:, :half])
            imag.append(out[:, half:])
        return torch.cat(real, dim=1), torch.cat(imag, dim=1)

    @torch.autocast("cuda", enabled=False)
    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        real, imag = self.complex_response(audio)
        power = real * real + imag * imag
        log_power = torch.log(power + self.power_floor)
        prev_real = F.pad(real, (1, 0))[..., :-1]
        prev_imag = F.pad(imag, (1, 0))[..., :-1]
        # X_t * conj(X_{t-1}) * exp(-i * expected advance): its angle is the wrapped deviation.
        u = real * prev_real + imag * prev_imag
        v = imag * prev_real - real * prev_imag
        dev_real = u * self.advance_cos + v * self.advance_sin
        dev_imag = v * self.advance_cos - u * self.advance_sin
        defined = (dev_real * dev_real + dev_imag * dev_imag) > self.power_floor ** 2
        safe_real = torch.where(defined, dev_real, torch.ones_like(dev_real))
        safe_imag = torch.where(defined, dev_imag, torch.zeros_like(dev_imag))
        phase = torch.where(defined, torch.atan2(safe_imag, safe_real), torch.zeros_like(dev_real)) / math.pi
        return torch.stack([log_power, phase], dim=1)
