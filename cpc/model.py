"""The CPC model: scaleogram -> causal 2-D ResNet encoder -> z, causal 1-D ConvNet -> c, K predictors.

Layout and alignment
--------------------
Encoder feature maps are ``(B, C, F, T)`` (frequency as height, time as width). Kernels from the
published tables are ``(time, frequency)`` and become ``Conv2d(kernel_size=(kf, kt))``. Time is causal:
every conv is preceded by ``ZeroPad2d`` of ``kt - 1`` frames at the start of the time axis only; pools
are ``MaxPool2d(2, ceil_mode=True)`` without padding, so pooled step ``i`` covers steps ``2i, 2i + 1`` and
never anything later. Frequency is never padded: every kernel shrinks it, each pool halves it
(rounding up), and with the published kernels and 216 bins the encoder ends at exactly one frequency
position (for other ``n_bins`` the remaining bins are max-pooled; 0 remaining bins is an error).
The residual of a block is the block input, max-pooled like the main path, projected by a 1x1 conv
where the channel count changes, and cropped to the centre of its frequency range with a
negative ``ZeroPad2d`` (a crop) so it matches the main path.

Tap shapes of the ``seed`` config for ``T`` scaleogram frames (``T' = ceil(T / 2)``, ``T'' = ceil(T' / 2)``;
a 4-s clip has T = 172, T' = 86, T'' = 43)::

    tap                          shape (C, F, time)
    scaleogram (input)           (2, 216, T)
    encoder.blocks.0.relu1       (8, 107, T')     conv 3x3, pool 2
    encoder.blocks.0.relu2       (8, 83, T')      conv 1x25
    encoder.blocks.1.relu1/2     (16, 81 / 79, T')
    encoder.blocks.2.relu1/2     (32, 77 / 63, T')
    encoder.blocks.3.relu1/2     (64, 61 / 59, T')
    encoder.blocks.4.relu1       (128, 29, T'')   conv 3x3, pool 2
    encoder.blocks.4.relu2       (128, 15, T'')   conv 1x15
    encoder.blocks.5.relu1/2     (256, 13 / 11, T'')
    encoder.blocks.6.relu1/2     (512, 9 / 5, T'')
    encoder.blocks.7.relu1/2     (512, 3 / 1, T'')  -> z (B, T'', 512)
    ar.blocks.0.relu, 1.relu     (512, T'')         conv 4
    ar.blocks.2.relu             (512, ceil(T''/2))  conv 1, pool 2
    ar.blocks.3.relu             (512, ceil(T''/2))
    ar.blocks.4.relu             (256, ceil(T''/2))
    ar.blocks.5.relu             (256, ceil(T''/4))  conv 1, pool 2
    ar.blocks.6..8.relu          (256, ceil(T''/4))  -> c (B, ceil(T''/4), 256)

The ``lean`` config has the same shapes with fewer channels (encoder 8..128, AR 128..96).

Time alignment: scaleogram frame ``t`` has seen audio samples ``< (t + 1) * hop``; ``z[:, i]`` has
seen frames ``<= 4 i + 3``; ``c[:, j]`` has seen ``z[:, :4 (j + 1)]`` (``context_stride = 4``), so the
last encoding c_j summarises is ``z[:, 4 j + 3]``. The exact receptive fields (``receptive_field()``):
z spans 22 frames; c spans 46 encodings (the article gives ~42) = 202 frames = 4.7 s of audio
plus the longest filter (0.87 s at 40 Hz).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .config import ARBlockSpec, CPCConfig, EncoderBlockSpec
from .loss import cpc_loss
from .scaleogram import Scaleogram


def _pool2d(pool: int) -> nn.Module:
    return nn.MaxPool2d(pool, ceil_mode=True) if pool > 1 else nn.Identity()


def _pool1d(pool: int) -> nn.Module:
    return nn.MaxPool1d(pool, ceil_mode=True) if pool > 1 else nn.Identity()


def _pooled(size: int, pool: int) -> int:
    return math.ceil(size / pool)


class EncoderBlock(nn.Module):
    """Residual causal 2-D block; taps ``relu1`` and ``relu2`` are its two nonlinearities."""

    def __init__(self, in_channels: int, in_freq: int, spec: EncoderBlockSpec) -> None:
        super().__init__()
        (kt1, kf1), (kt2, kf2) = spec.conv1, spec.conv2
        mid_freq = _pooled(in_freq - kf1 + 1, spec.pool)
        self.out_freq = mid_freq - kf2 + 1
        if mid_freq < 1 or self.out_freq < 1:
            raise ValueError(f"encoder block {spec} leaves no frequency bins from an input of {in_freq} bins")
        self.pad1 = nn.ZeroPad2d((kt1 - 1, 0, 0, 0))
        self.conv1 = nn.Conv2d(in_channels, spec.channels, (kf1, kt1))
        self.bn1 = nn.BatchNorm2d(spec.channels)
        self.pool = _pool2d(spec.pool)
        self.relu1 = nn.ReLU()
        self.pad2 = nn.ZeroPad2d((kt2 - 1, 0, 0, 0))
        self.conv2 = nn.Conv2d(spec.channels, spec.channels, (kf2, kt2))
        self.bn2 = nn.BatchNorm2d(spec.channels)
        self.shortcut_pool = _pool2d(spec.pool)
        self.shortcut_proj = (nn.Conv2d(in_channels, spec.channels, 1, bias=False)
                              if in_channels != spec.channels else nn.Identity())
        excess = _pooled(in_freq, spec.pool) - self.out_freq
        self.shortcut_crop = nn.ZeroPad2d((0, 0, -(excess // 2), -(excess - excess // 2)))
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu1(self.pool(self.bn1(self.conv1(self.pad1(x)))))
        h = self.bn2(self.conv2(self.pad2(h)))
        return self.relu2(h + self.shortcut_crop(self.shortcut_proj(self.shortcut_pool(x))))


class Encoder(nn.Module):
    """Scaleogram ``(B, 2, F, T)`` -> encodings ``z`` ``(B, T_z, D)``."""

    def __init__(self, config: CPCConfig) -> None:
        super().__init__()
        blocks, channels, freq = [], 2, config.n_bins
        for spec in config.encoder:
            block = EncoderBlock(channels, freq, spec)
            blocks.append(block)
            channels, freq = spec.channels, block.out_freq
        self.blocks = nn.Sequential(*blocks)
        self.freq_pool = nn.MaxPool2d((freq, 1)) if freq > 1 else nn.Identity()
        self.out_channels = channels

    def forward(self, scaleogram: torch.Tensor) -> torch.Tensor:
        x = self.freq_pool(self.blocks(scaleogram))
        return x.flatten(1, 2).transpose(1, 2)


class ARBlock(nn.Module):
    """Residual causal 1-D block; tap ``relu``."""

    def __init__(self, in_channels: int, spec: ARBlockSpec) -> None:
        super().__init__()
        self.pad = nn.ConstantPad1d((spec.kernel - 1, 0), 0.0)
        self.conv = nn.Conv1d(in_channels, spec.channels, spec.kernel)
        self.bn = nn.BatchNorm1d(spec.channels)
        self.pool = _pool1d(spec.pool)
        self.shortcut_pool = _pool1d(spec.pool)
        self.shortcut_proj = (nn.Conv1d(in_channels, spec.channels, 1, bias=False)
                              if in_channels != spec.channels else nn.Identity())
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pool(self.bn(self.conv(self.pad(x))))
        return self.relu(h + self.shortcut_proj(self.shortcut_pool(x)))


class AutoregressiveModel(nn.Module):
    """Encodings ``z`` ``(B, T_z, D)`` -> contexts ``c`` ``(B, ceil(T_z / stride), Dc)``, causal."""

    def __init__(self, blocks: tuple[ARBlockSpec, ...], in_channels: int) -> None:
        super().__init__()
        modules, channels = [], in_channels
        for spec in blocks:
            modules.append(ARBlock(channels, spec))
            channels = spec.channels
        self.blocks = nn.Sequential(*modules)
        self.out_channels = channels

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.blocks(z.transpose(1, 2)).transpose(1, 2)


@dataclass(frozen=True)
class ReceptiveField:
    """Exact receptive fields and strides along time, from the audio up to c."""

    scaleogram_samples: int  # samples one frame depends on (the longest filter, causal front end)
    hop: int  # samples per frame
    encoder_frames: int  # frames one z step depends on
    frames_per_step: int  # frames per z step
    context_steps: int  # z steps one c step depends on
    context_stride: int  # z steps per c step

    @property
    def context_frames(self) -> int:
        """Frames one c step depends on."""
        return self.encoder_frames + (self.context_steps - 1) * self.frames_per_step

    @property
    def context_samples(self) -> int:
        """Audio samples one c step depends on."""
        return self.scaleogram_samples + (self.context_frames - 1) * self.hop


def _span(layers: list[tuple[int, int]]) -> tuple[int, int]:
    """Receptive field and total stride of a chain of (kernel, stride) layers along time."""
    span, stride = 1, 1
    for kernel, step in layers:
        span += (kernel - 1) * stride
        stride *= step
    return span, stride


class CPC(nn.Module):
    """Contrastive predictive coding model: ``forward(audio) -> (z, c)``; see the module docstring."""

    def __init__(self, config: CPCConfig) -> None:
        super().__init__()
        if not isinstance(config, CPCConfig):
            raise TypeError(f"config must be a CPCConfig, got {type(config).__name__}")
        self.config = config
        self.scaleogram = Scaleogram(config)
        self.encoder = Encoder(config)
        self.ar = AutoregressiveModel(config.ar, self.encoder.out_channels)
        self.predictors = nn.ModuleList(
            nn.Linear(self.ar.out_channels, self.encoder.out_channels, bias=False)
            for _ in range(config.prediction_steps)
        )

    @property
    def embedding_size(self) -> int:
        """Features per encoding z_t (D)."""
        return self.encoder.out_channels

    @property
    def context_size(self) -> int:
        """Features per context c_t (Dc)."""
        return self.ar.out_channels

    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio -> encodings ``z`` ``(B, T_z, D)``."""
        return self.encoder(self.scaleogram(audio))

    def context(self, z: torch.Tensor) -> torch.Tensor:
        """Encodings ``(B, T_z, D)`` -> contexts ``c`` ``(B, ceil(T_z / context_stride), Dc)``."""
        return self.ar(z)

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(audio)
        return z, self.context(z)

    def loss(self, z: torch.Tensor, c: torch.Tensor, *, variant: str = "cpc",
             n_context: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``cpc_loss`` with this model's predictors, steps, gap and context stride."""
        return cpc_loss(z, c, self.predictors, steps=self.config.prediction_steps,
                        gap=self.config.prediction_gap, variant=variant, n_context=n_context,
                        context_stride=self.receptive_field().context_stride)

    def tap_names(self) -> list[str]:
        """Qualified names of every nonlinearity (the visualised neurons), in forward order."""
        return [name for name, module in self.named_modules() if isinstance(module, nn.ReLU)]

    def receptive_field(self) -> ReceptiveField:
        """Exact time receptive fields of frames, z and c (see ``ReceptiveField``)."""
        enc_layers = []
        for spec in self.config.encoder:
            enc_layers += [(spec.conv1[0], 1), (spec.pool, spec.pool), (spec.conv2[0], 1)]
        ar_layers = []
        for spec in self.config.ar:
            ar_layers += [(spec.kernel, 1), (spec.pool, spec.pool)]
        encoder_frames, frames_per_step = _span(enc_layers)
        context_steps, context_stride = _span(ar_layers)
        return ReceptiveField(
            scaleogram_samples=self.scaleogram.filter_span,
            hop=self.config.hop,
            encoder_frames=encoder_frames,
            frames_per_step=frames_per_step,
            context_steps=context_steps,
            context_stride=context_stride,
        )

    def clip_samples(self, n_context: int = 1, *, full_receptive_field: bool = False) -> int:
        """Audio length giving ``n_context`` contexts with all ``gap + steps`` targets inside the clip.

        With ``full_receptive_field`` the clip also starts early enough that the first of those
        contexts sees no zero padding, down to the first sample of its longest filter.
        """
        if n_context < 1:
            raise ValueError(f"n_context must be >= 1, got {n_context}")
        rf = self.receptive_field()
        warmup = 0
        if full_receptive_field:
            needed_frames = math.ceil((rf.scaleogram_samples - rf.hop) / rf.hop) + rf.context_frames
            steps = math.ceil(needed_frames / rf.frames_per_step)
            warmup = max(math.ceil(steps / rf.context_stride) - 1, 0)
        z_steps = (rf.context_stride * (n_context + warmup) + self.config.prediction_gap
                   + self.config.prediction_steps)
        return z_steps * rf.frames_per_step * rf.hop
