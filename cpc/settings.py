"""The settings of training, input optimisation and probing: plain dataclasses and constants without torch,
so that the command line shows their defaults in ``--help`` without loading torch. The modules that use
them (``train``, ``optimize``, ``regularizers``, ``probe``) import them from here."""
from __future__ import annotations

from dataclasses import dataclass, field, fields

AMP_MODES = ("auto", "bf16", "fp16", "off")
START_KINDS = ("silence", "noise")
PROBE_REGULARIZATION = (0.001, 0.01, 0.1, 1.0)
TRACK_CLIP_SECONDS = 4.0
"""Clip length of the track-identification probe, as in the article."""


@dataclass
class TrainConfig:
    """Everything a training run depends on besides the model configuration."""

    data: str
    out_dir: str
    steps: int = 10000
    batch_size: int = 16  # per rank
    lr: float = 3e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 500
    min_lr_ratio: float = 0.05
    grad_clip: float = 1.0
    n_context: int = 6
    variant: str = "cpc"
    checkpoint_every: int = 250
    validation_clips: int = 32
    seed: int = 0
    amp: str = "auto"
    cache_dir: str | None = None
    batch_by: str | None = None
    init_from: str | None = None  # checkpoint or shipped model whose weights (and architecture) a fresh run starts from

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "checkpoint_every", "validation_clips", "n_context"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be at least 1")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps={self.warmup_steps} must be >= 0")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio={self.min_lr_ratio} must lie in [0, 1]")
        if self.amp not in AMP_MODES:
            raise ValueError(f"amp={self.amp!r} is not one of {AMP_MODES}")
        if self.variant not in ("cpc", "sat"):
            raise ValueError(f"variant={self.variant!r} is not one of ('cpc', 'sat')")


@dataclass(frozen=True)
class Regularization:
    """Strengths of the regularisers; zero switches one off."""

    time_shift: float = 0.1        # seconds: the largest roll of the waveform either way
    pitch_shift: int = 2           # scaleogram bins either way (2 = a semitone at 24 bins per octave)
    masks: int = 2                 # rectangles blanked per step
    mask_frames: int = 16          # largest rectangle: frames (time) ...
    mask_bins: int = 24            # ... and bins (frequency)
    gradient_noise: float = 0.1    # noise std as a fraction of the gradient's std
    denoise_every: int = 20        # steps between de-noising passes
    denoise_strength: float = 0.5  # threshold as a multiple of the clip's mean STFT magnitude

    def __post_init__(self) -> None:
        for spec in fields(self):
            if getattr(self, spec.name) < 0:
                raise ValueError(f"regularization {spec.name}={getattr(self, spec.name)} must be >= 0")

    @classmethod
    def off(cls) -> "Regularization":
        """Plain gradient ascent: every regulariser switched off."""
        return cls(**{spec.name: 0 for spec in fields(cls)})


@dataclass(frozen=True)
class OptimizeSettings:
    """Gradient ascent on the waveform: Adam steps and rate, regularisers, seed."""

    steps: int = 200
    lr: float = 2e-3
    regularization: Regularization = field(default_factory=Regularization)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ValueError(f"steps={self.steps} must be >= 0")
        if not self.lr > 0:
            raise ValueError(f"lr={self.lr} must be > 0")


SETTING_NAMES = tuple(spec.name for spec in fields(OptimizeSettings) if spec.name != "regularization") + tuple(
    spec.name for spec in fields(Regularization))
"""What ``LoopControl.update`` changes while a loop grows: the optimiser's scalars and every regulariser."""
