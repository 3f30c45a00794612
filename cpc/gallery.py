"""The article's per-layer gallery: for every tap, the clip grown from silence that maximises it.

A portrait of a tap is the clip that maximises the tap's mean activation (``objectives.layer``), grown from
silence by ``optimize.optimize_clip`` with the article's regularisers, with its score on silence, on the clip,
and on the clip rolled by plus and minus ``shift_seconds`` (a result that only works at one alignment is
adversarial rather than heard; the article asks for robust ones). Taps are titled as in the article:
"Encoder Block 0 Convolution 1" ... "Autoregressive Model Block 8".
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .model import CPC
from .objectives import layer
from .optimize import clip_score, optimize_clip, start_clip
from .settings import MIN_GAIN, MIN_KEPT_UNDER_SHIFT, GallerySettings


_ENCODER_TAP = re.compile(r"encoder\.blocks\.(\d+)\.relu(\d+)$")
_AR_TAP = re.compile(r"ar\.blocks\.(\d+)\.relu$")


def tap_title(tap: str) -> str:
    """The article's name of a tap: ``encoder.blocks.0.relu1`` -> "Encoder Block 0 Convolution 1",
    ``ar.blocks.8.relu`` -> "Autoregressive Model Block 8"; other names are returned as they are."""
    if match := _ENCODER_TAP.match(tap):
        return f"Encoder Block {match[1]} Convolution {match[2]}"
    if match := _AR_TAP.match(tap):
        return f"Autoregressive Model Block {match[1]}"
    return tap


@dataclass(frozen=True)
class TapPortrait:
    """One tap's clip and how it drives the tap."""

    tap: str
    title: str
    audio: np.ndarray                    # float32 (S,) at the model's rate
    silence_score: float                 # mean activation on the silent start
    score: float                         # ... on the grown clip
    shifted_scores: dict[str, float]     # ... on the clip rolled by "-0.5" and "+0.5" seconds
    step_scores: list[float]

    @property
    def gain(self) -> float | None:
        """Score over the silence score (None where silence does not excite the tap at all)."""
        return self.score / self.silence_score if self.silence_score > 0 else None

    @property
    def kept_under_shift(self) -> float | None:
        """The smallest fraction of the gain over silence that a shifted clip keeps (None without a gain)."""
        gain = self.score - self.silence_score
        if not gain > 0:
            return None
        return min((value - self.silence_score) / gain for value in self.shifted_scores.values())

    @property
    def meets_aim(self) -> bool:
        """At least ``MIN_GAIN`` times the silence score, of which a shift keeps ``MIN_KEPT_UNDER_SHIFT``.
        A tap silent on silence counts as gaining without bound once the clip excites it."""
        gain = self.gain if self.silence_score > 0 else (np.inf if self.score > 0 else None)
        kept = self.kept_under_shift
        return gain is not None and gain >= MIN_GAIN and kept is not None and kept >= MIN_KEPT_UNDER_SHIFT


def portrait(model: CPC, tap: str, settings: GallerySettings = GallerySettings(), *,
             progress: bool = True) -> TapPortrait:
    """Grow ``tap``'s clip from silence and measure it (see the module)."""
    if tap not in model.tap_names():
        raise ValueError(f"unknown tap {tap!r}; this model's taps are {model.tap_names()}")
    rate = model.config.sample_rate
    objective = layer(tap)
    start = start_clip("silence", int(round(settings.seconds * rate)), settings.optimize.seed)
    grown = optimize_clip(model, objective, start, settings.optimize, progress=progress)
    shifted = {f"{seconds:+g}": clip_score(model, objective, np.roll(grown.audio, int(round(seconds * rate))))
               for seconds in (-settings.shift_seconds, settings.shift_seconds)}
    return TapPortrait(tap=tap, title=tap_title(tap), audio=grown.audio, silence_score=grown.initial_score,
                       score=grown.final_score, shifted_scores=shifted, step_scores=grown.scores)
