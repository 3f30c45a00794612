"""Hyper-parameters of the CPC model: the published tables ("seed") and a small variant ("lean").

Kernel sizes are written ``(time, frequency)`` as in the published tables, so ``(1, 25)`` spans 25
frequency bins and one time step. Feature maps inside the encoder are ``(B, C, F, T)``; the model
code swaps the order where PyTorch wants ``(height=F, width=T)``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class EncoderBlockSpec:
    """One residual 2-D block: conv1 -> BN -> [max pool] -> ReLU -> conv2 -> BN -> +residual -> ReLU."""

    channels: int
    conv1: tuple[int, int]
    pool: int
    conv2: tuple[int, int]


@dataclass(frozen=True)
class ARBlockSpec:
    """One residual causal 1-D block: conv -> BN -> [max pool] -> +residual -> ReLU."""

    channels: int
    kernel: int
    pool: int = 1


SEED_ENCODER = (
    EncoderBlockSpec(8, (3, 3), 2, (1, 25)),
    EncoderBlockSpec(16, (1, 3), 1, (1, 3)),
    EncoderBlockSpec(32, (3, 3), 1, (1, 15)),
    EncoderBlockSpec(64, (1, 3), 1, (1, 3)),
    EncoderBlockSpec(128, (3, 3), 2, (1, 15)),
    EncoderBlockSpec(256, (1, 3), 1, (1, 3)),
    EncoderBlockSpec(512, (3, 3), 1, (1, 5)),
    EncoderBlockSpec(512, (1, 3), 1, (1, 3)),
)

SEED_AR = (
    ARBlockSpec(512, 4),
    ARBlockSpec(512, 4),
    ARBlockSpec(512, 1, 2),
    ARBlockSpec(512, 4),
    ARBlockSpec(256, 4),
    ARBlockSpec(256, 1, 2),
    ARBlockSpec(256, 4),
    ARBlockSpec(256, 1),
    ARBlockSpec(256, 4),
)


def _with_channels(blocks: tuple, channels: tuple[int, ...]) -> tuple:
    """The same block structure with other channel counts."""
    if len(channels) != len(blocks):
        raise ValueError(f"channels has {len(channels)} entries, the structure has {len(blocks)} blocks")
    return tuple(replace(block, channels=c) for block, c in zip(blocks, channels))


@dataclass(frozen=True)
class CPCConfig:
    """Everything that fixes the architecture; the front end parameters define the scaleogram.

    ``causal`` selects the front end's window placement: ``True`` ends every filter window at its frame
    (the whole model is then causal), ``False`` centres it (like librosa, for analysis).
    """

    name: str
    sample_rate: int = 44100
    hop: int = 1024
    n_bins: int = 216
    fmin: float = 40.0
    bins_per_octave: int = 24
    filter_scale: float = 1.0
    causal: bool = True
    power_floor: float = 1e-9
    trainable_kernels: bool = False
    encoder: tuple[EncoderBlockSpec, ...] = SEED_ENCODER
    ar: tuple[ARBlockSpec, ...] = SEED_AR
    prediction_steps: int = 16
    prediction_gap: int = 4

    def __post_init__(self) -> None:
        for name in ("sample_rate", "hop", "n_bins", "bins_per_octave", "prediction_steps"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.prediction_gap < 0:
            raise ValueError(f"prediction_gap must be >= 0, got {self.prediction_gap}")
        if not 0 < self.fmin < self.sample_rate / 2:
            raise ValueError(f"fmin must lie in (0, {self.sample_rate / 2}), got {self.fmin}")
        top = self.fmin * 2.0 ** ((self.n_bins - 1) / self.bins_per_octave)
        if top >= self.sample_rate / 2:
            raise ValueError(
                f"n_bins={self.n_bins} from fmin={self.fmin} reaches {top:.0f} Hz, above the Nyquist "
                f"frequency {self.sample_rate / 2:.0f} Hz"
            )
        if not self.encoder or not self.ar:
            raise ValueError("encoder and ar need at least one block each")


CONFIGS: dict[str, CPCConfig] = {
    "seed": CPCConfig(name="seed"),
    "lean": CPCConfig(
        name="lean",
        encoder=_with_channels(SEED_ENCODER, (8, 12, 16, 24, 32, 48, 96, 128)),
        ar=_with_channels(SEED_AR, (128, 128, 128, 128, 96, 96, 96, 96, 96)),
    ),
    # lean's narrow front (where the maps are large and the cost lies) with wider late blocks: z of 256 and
    # c of 192 features, so what tells recordings apart survives the funnel from 216 bins to one
    "wide": CPCConfig(
        name="wide",
        encoder=_with_channels(SEED_ENCODER, (8, 12, 16, 24, 32, 64, 128, 256)),
        ar=_with_channels(SEED_AR, (192,) * 9),
    ),
}


def get_config(name: str) -> CPCConfig:
    """Look up a named configuration."""
    if name not in CONFIGS:
        raise ValueError(f"unknown CPC config {name!r}; choose one of {sorted(CONFIGS)}")
    return CONFIGS[name]
