"""DreamSound's functions: Deep Dream on a clip, and its filter-based and target-based variants.

Each step takes the gradient ``g`` of the objective with respect to the clip ``x`` and feeds back one of:

- ``deepdream``:  ``x + step_size * g / std(g)`` (the gradient added with an attenuation);
- ``filter``:     ``filtered(x, by=g)``, the hard-cut filter: the STFT magnitude of ``g`` over its maximum,
  minus ``threshold``, its sign turned into a 0/1 mask on the STFT of ``x``, rephased with the phase of ``x``
  and inverted, so only the regions where the gradient has energy let the clip through;
- ``filter-add``: ``x + step_size * filtered(x, by=g)``, the additive variant;
- ``target``:     ``x + step_size * f / std(f)`` with ``f = filtered(g, by=target)``: the gradient passed
  through the hard-cut filter built from a target sound's spectrum, so the clip moves where the target sounds.

The clip is clamped to [-1, 1] after every step. Only ``deepdream`` and ``target`` follow the gradient's sign and
so climb the objective; the filters shape the clip by where the gradient has energy, whichever way it points.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from .model import CPC
from .objectives import Objective
from .optimize import as_audio, clip_score, frozen, scaleogram_score
from .settings import DreamSettings
from .spectral import fft_size, istft, stft

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class Dream:
    """A dreamt clip: the result, the objective before each step and after the last, and the kept steps."""

    audio: np.ndarray                 # float32 (S,)
    scores: list[float]               # scores[i]: the objective on the clip after i steps
    saved: dict[int, np.ndarray]      # step -> the clip after it
    objective: str
    settings: DreamSettings


def hard_cut(magnitude: torch.Tensor, threshold: float) -> torch.Tensor:
    """DreamSound's hard-cut filter: 1 where the magnitude over its maximum exceeds ``threshold``, else 0
    (``(sign(m / max m - threshold) + 1) / 2``, a magnitude exactly at the threshold counted as cut)."""
    peak = magnitude.max()
    if not peak > 0:
        return torch.zeros_like(magnitude)
    return (magnitude / peak - threshold > 0).to(magnitude.dtype)


def filtered(sound: torch.Tensor, by: torch.Tensor, threshold: float, n_fft: int) -> torch.Tensor:
    """``sound`` ``(S,)`` through the hard-cut filter built from the STFT magnitude of ``by`` (as long as
    ``sound``), resynthesised with the phase of ``sound``."""
    spectrum = stft(sound, n_fft)
    return istft(spectrum * hard_cut(stft(by, n_fft).abs(), threshold), n_fft, sound.shape[-1])


def _normalised(signal: torch.Tensor) -> torch.Tensor:
    """``signal`` over its standard deviation (zeros stay zeros)."""
    spread = signal.std()
    return signal / spread if spread > 0 else signal


def dream_step(clip: torch.Tensor, gradient: torch.Tensor, settings: DreamSettings, n_fft: int,
               target: torch.Tensor | None = None) -> torch.Tensor:
    """One step of ``settings.function`` on ``clip`` ``(S,)`` given the objective's ``gradient`` (see the module)."""
    size, threshold = settings.step_size, settings.threshold
    if settings.function == "deepdream":
        moved = clip + size * _normalised(gradient)
    elif settings.function == "filter":
        moved = filtered(clip, gradient, threshold, n_fft)
    elif settings.function == "filter-add":
        moved = clip + size * filtered(clip, gradient, threshold, n_fft)
    else:
        if target is None:
            raise ValueError("the target function needs a target sound")
        moved = clip + size * _normalised(filtered(gradient, target, threshold, n_fft))
    return moved.clamp(-1.0, 1.0)


def fit_length(sound: np.ndarray, length: int) -> np.ndarray:
    """``sound`` cut to ``length`` samples or padded with silence up to it."""
    sound = np.asarray(sound, dtype=np.float32)
    return sound[:length] if len(sound) >= length else np.pad(sound, (0, length - len(sound)))


def _gradient(model: CPC, objective: Objective, clip: torch.Tensor) -> tuple[torch.Tensor, float]:
    """The gradient of the objective with respect to the samples of ``clip`` ``(S,)``, and the objective."""
    samples = clip.detach()[None].requires_grad_(True)
    value = scaleogram_score(model, objective, model.scaleogram(samples)).sum()
    value.backward()
    return samples.grad[0], float(value.detach())


def dream(model: CPC, objective: Objective, clip: np.ndarray, settings: DreamSettings = DreamSettings(), *,
          target: np.ndarray | None = None, progress: bool = True) -> Dream:
    """``settings.steps`` steps of ``settings.function`` from ``clip`` (mono, at the model's rate); ``target``
    (the target function's sound, at the model's rate) is cut or padded to the clip's length."""
    if (settings.function == "target") != (target is not None):
        raise ValueError("give a target sound with the target function, and only with it")
    audio = as_audio(model, clip)[0].double()
    n_fft = fft_size(model.config.sample_rate)
    target_audio = None if target is None else torch.from_numpy(fit_length(target, len(audio))).double()
    scores = []
    saved: dict[int, np.ndarray] = {}
    with frozen(model):
        for step in tqdm(range(1, settings.steps + 1), desc=f"dreaming ({settings.function})", unit="step",
                         leave=False, disable=not progress):
            gradient, score = _gradient(model, objective, audio.float())
            scores.append(score)
            audio = dream_step(audio, gradient.double(), settings, n_fft, target_audio)
            result = audio.float().cpu().numpy()
            if step == settings.steps or (settings.save_every and step % settings.save_every == 0):
                saved[step] = result
    scores.append(clip_score(model, objective, saved[settings.steps]))
    logger.info("%s (%s): %.4f -> %.4f after %d steps", objective.description, settings.function, scores[0],
                scores[-1], settings.steps)
    return Dream(audio=saved[settings.steps], scores=scores, saved=saved, objective=objective.description,
                 settings=settings)
