"""Auralisation of a given clip (Choi et al.): hear the parts of a recording that drive chosen neurons.

The objective's gradient is carried back to the clip's scaleogram by one of three rules: ``deconv``, Zeiler and
Fergus's deconvolution (at every ReLU only the positive part of the signal from above passes, whatever the
ReLU's input was; max pools route it by their switches, convolutions transpose), ``guided`` backpropagation
(positive signal from above and a positive ReLU input both needed) or ``gradxinput`` (the plain gradient times
the log power above silence). The positive part of the map on the log-power channel, over its maximum, is a
time-frequency mask in [0, 1]; applied to the clip's STFT and resynthesised with the clip's own phase
(``spectral.apply_mask``) it gives the clip as the chosen neurons hear it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from .model import CPC
from .objectives import Objective
from .optimize import ReLUWithOwnBackward, as_audio, frozen, relus_computing, scaleogram_score
from .settings import AURALISE_METHODS as METHODS
from .spectral import apply_mask

logger = logging.getLogger(__name__)



class _DeconvReLU(torch.autograd.Function):
    """ReLU whose backward pass is the deconvnet's: the positive part of the signal from above, whatever
    the forward input was."""

    @staticmethod
    def forward(ctx, inputs: torch.Tensor) -> torch.Tensor:
        return inputs.clamp(min=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad.clamp(min=0)


class _GuidedReLU(ReLUWithOwnBackward):
    """ReLU whose backward pass is guided backpropagation's: positive signal from above where the input was
    positive."""

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (inputs,) = ctx.saved_tensors
        return grad.clamp(min=0) * (inputs > 0)


_RULES = {"deconv": _DeconvReLU, "guided": _GuidedReLU}


@dataclass(frozen=True)
class Auralisation:
    """A clip heard through an objective: the result and the maps that made it."""

    audio: np.ndarray       # float32 (S,), the auralised clip, as long as the given one
    relevance: np.ndarray   # (bands, frames) the backward map on the scaleogram's log power
    mask: np.ndarray        # (bands, frames) in [0, 1]: the map's positive part over its maximum
    stft_mask: np.ndarray   # (n_fft // 2 + 1, STFT frames): the mask as applied to the clip's STFT
    score: float            # the objective on the clip
    objective: str
    method: str


def relevance_map(model: CPC, objective: Objective, clip: np.ndarray,
                  method: str = "deconv") -> tuple[np.ndarray, float]:
    """The map ``(bands, frames)`` of ``method`` (one of ``METHODS``) on the clip's log-power scaleogram, and
    the objective's value on the clip. The model is left as it was (no hooks, same mode and gradient flags)."""
    if method not in METHODS:
        raise ValueError(f"method {method!r} is not one of {METHODS}")
    audio = as_audio(model, clip)
    with frozen(model):
        with torch.no_grad():
            scaleogram = model.scaleogram(audio)
        scaleogram.requires_grad_(True)
        if method in _RULES:
            with relus_computing(model, _RULES[method]):
                value = scaleogram_score(model, objective, scaleogram).sum()
        else:
            value = scaleogram_score(model, objective, scaleogram).sum()
        value.backward()
    gradient = scaleogram.grad[0, 0]
    if method == "gradxinput":
        gradient = gradient * (scaleogram.detach()[0, 0] - float(np.log(model.config.power_floor)))
    return gradient.cpu().numpy().astype(np.float32), float(value.detach())


def mask_from_relevance(relevance: np.ndarray) -> np.ndarray:
    """The positive part of a map over its maximum, in [0, 1]; all zeros where nothing is positive."""
    positive = np.clip(np.asarray(relevance, dtype=np.float32), 0.0, None)
    peak = float(positive.max(initial=0.0))
    return positive / peak if peak > 0 else positive


def auralise(model: CPC, objective: Objective, clip: np.ndarray, method: str = "deconv", *,
             original: np.ndarray | None = None, original_rate: int | None = None) -> Auralisation:
    """The clip (at the model's rate) as ``objective``'s neurons hear it, by ``method`` (see the module).

    The mask is found on ``clip``; given the same sound at another rate (``original`` at ``original_rate``,
    e.g. as read from its file before resampling), it is applied to that one, so the result keeps its rate."""
    if (original is None) != (original_rate is None):
        raise ValueError("give both original and original_rate, or neither")
    relevance, score = relevance_map(model, objective, clip, method)
    mask = mask_from_relevance(relevance)
    if not mask.any():
        logger.warning("%s (%s) finds nothing in the clip that drives it: the auralised clip is silent",
                       objective.description, method)
    if original is None:
        original, original_rate = clip, model.config.sample_rate
    audio, stft_mask = apply_mask(model.config, original, original_rate, mask)
    return Auralisation(audio=audio, relevance=relevance, mask=mask, stft_mask=stft_mask, score=score,
                        objective=objective.description, method=method)
