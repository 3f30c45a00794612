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


AURALISE_METHODS = ("deconv", "guided", "gradxinput")
"""How auralisation carries a response back to the scaleogram: the deconvnet rule, guided backpropagation,
gradient x input."""

FUNCTIONS = ("deepdream", "filter", "filter-add", "target")


@dataclass(frozen=True)
class DreamSettings:
    """Which function, how many steps, its step size and hard-cut threshold, and which steps are kept."""

    function: str = "deepdream"
    steps: int = 20
    step_size: float = 0.01
    threshold: float = 0.1
    save_every: int = 0     # keep the clip after every this many steps (0: the last one only)

    def __post_init__(self) -> None:
        if self.function not in FUNCTIONS:
            raise ValueError(f"function {self.function!r} is not one of {FUNCTIONS}")
        if self.steps < 1:
            raise ValueError(f"steps={self.steps} must be >= 1")
        if not self.step_size > 0:
            raise ValueError(f"step_size={self.step_size} must be > 0")
        if not 0 <= self.threshold <= 1:
            raise ValueError(f"threshold={self.threshold} must lie in [0, 1] (the filter's magnitudes are "
                             "normalised to their maximum)")
        if self.save_every < 0:
            raise ValueError(f"save_every={self.save_every} must be >= 0")


MIN_GAIN = 10.0          # the benchmark's aim: the clip raises the tap's mean activation 10x over silence ...
MIN_KEPT_UNDER_SHIFT = 0.5  # ... and keeps half of that gain when rolled by +-shift_seconds


@dataclass(frozen=True)
class GallerySettings:
    """How each tap's clip is grown: its length, the optimisation, and the shifts it is checked under."""

    seconds: float = 4.0
    optimize: OptimizeSettings = field(default_factory=lambda: OptimizeSettings(
        steps=20, lr=1e-2, regularization=Regularization(time_shift=0.5)))
    shift_seconds: float = 0.5

    def __post_init__(self) -> None:
        if not self.seconds > 0:
            raise ValueError(f"seconds={self.seconds} must be > 0")
        if not 0 <= self.shift_seconds < self.seconds:
            raise ValueError(f"shift_seconds={self.shift_seconds} must lie in [0, seconds)")


FEATURE_KINDS = ("c", "z")
"""What ``probe.extract_features`` pools: the contexts c or the encodings z."""
PROJECTIONS = ("pca", "tsne", "umap")
CLASSIFIERS = ("linear", "svm", "mlp")
