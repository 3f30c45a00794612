"""Input optimisation (activation maximisation): sound that excites chosen neurons of a CPC model.

A clip (silence, noise or a recording) is changed sample by sample by gradient ascent on an ``Objective``
of the model's taps, back through the differentiable scaleogram, with the regularisers of
``regularizers`` applied on every step (the transforms act on what the model hears, never on the clip
that is kept). ``loop_control.grow_loop`` chains clips, each grown from the last, the way the article's live
performance morphs one loop into the next.
"""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, ContextManager, Iterable, Iterator

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .model import CPC
from .objectives import Objective
from .regularizers import denoise, mask, noisy_gradient, pitch_shift, time_shift
from .settings import START_KINDS, OptimizeSettings

logger = logging.getLogger(__name__)

SILENCE_DITHER = 1e-4  # log power has zero gradient at exact silence, so "silence" starts as a whisper
NOISE_LEVEL = 0.05     # standard deviation of the "noise" start
MIN_FRAMES = 16        # scaleogram frames a clip needs to reach the last autoregressive tap


@dataclass(frozen=True)
class OptimizedClip:
    """The result of one optimisation: the clip, how the objective went, and what grew it."""

    audio: np.ndarray          # float32 (S,) in [-1, 1]
    scores: list[float]        # the objective on each step's regularised input
    initial_score: float       # on the clean start clip
    final_score: float         # on the clean result
    objective: str             # the objective's description
    settings: OptimizeSettings


def start_clip(kind: str, n_samples: int, seed: int = 0) -> np.ndarray:
    """A starting clip of ``n_samples``: "silence" (a faint dither) or "noise" (white, std 0.05), seeded."""
    if kind not in START_KINDS:
        raise ValueError(f"start {kind!r} is not one of {START_KINDS} (or give a sound file)")
    level = SILENCE_DITHER if kind == "silence" else NOISE_LEVEL
    return (level * np.random.default_rng(seed).standard_normal(n_samples)).astype(np.float32)


@contextmanager
def _forward_hooks(model: CPC, hooks: dict[str, Callable], *, prepend: bool = False) -> Iterator[None]:
    """The given forward hooks on the named modules inside the block, removed on exit."""
    modules = dict(model.named_modules())
    handles = [modules[name].register_forward_hook(hook, prepend=prepend) for name, hook in hooks.items()]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


class _TapsRecorded(Exception):
    """Raised by ``recorded_taps(stop=True)`` once every wanted tap is recorded, to skip the rest of the pass."""


@contextmanager
def recorded_taps(model: CPC, names: Iterable[str], *, stop: bool = False) -> Iterator[dict[str, torch.Tensor]]:
    """A dict that every forward pass inside the block fills with the named taps' outputs (forward hooks,
    removed on exit). Unknown names are an error listing the model's taps. With ``stop``, a forward pass ends
    with ``_TapsRecorded`` as soon as every named tap is recorded (see ``forward_to_taps``)."""
    names = sorted(set(names))
    taps = model.tap_names()
    unknown = [name for name in names if name not in taps]
    if unknown:
        raise ValueError(f"unknown taps {unknown}; this model's taps are {taps}")
    outputs: dict[str, torch.Tensor] = {}

    def keeper(name: str) -> Callable:
        def keep(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            outputs[name] = output
            if stop and len(outputs) == len(names):
                raise _TapsRecorded

        return keep

    with _forward_hooks(model, {name: keeper(name) for name in names}):
        yield outputs


def forward_to_taps(model: CPC, names: Iterable[str], scaleogram: torch.Tensor) -> dict[str, torch.Tensor]:
    """The named taps' outputs for a scaleogram batch, computing the network only as far as the last of them
    (an early encoder tap costs a fraction of the whole pass)."""
    with recorded_taps(model, names, stop=True) as taps:
        try:
            model.ar(model.encoder(scaleogram))
        except _TapsRecorded:
            pass
    return taps


class ReLUWithOwnBackward(torch.autograd.Function):
    """A ReLU forward pass that keeps its input, for subclasses that carry the gradient back their own way."""

    @staticmethod
    def forward(ctx, inputs: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(inputs)
        return inputs.clamp(min=0)


class _RedirectedReLU(ReLUWithOwnBackward):
    """ReLU whose gradient, for a clip where the true gradient is zero throughout, passes the components
    that would raise the input (Lucent's redirected ReLU): a silent or dead neuron can still be woken."""

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (inputs,) = ctx.saved_tensors
        true = grad * (inputs > 0)
        redirected = grad * ((inputs > 0) | (grad < 0))
        stuck = (true.flatten(1) == 0).all(dim=1).view(-1, *[1] * (inputs.dim() - 1))
        return torch.where(stuck, redirected, true)


@contextmanager
def relus_computing(model: CPC, relu: type[torch.autograd.Function]) -> Iterator[None]:
    """Every tap of the model computes ``relu`` (a ReLU with its own backward rule) inside the block: forward
    hooks, removed on exit, put ahead of any others so that ``recorded_taps`` records its outputs whichever is
    entered first."""

    def replace(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
        return relu.apply(inputs[0])

    with _forward_hooks(model, {name: replace for name in model.tap_names()}, prepend=True):
        yield


def redirected_relus(model: CPC) -> ContextManager[None]:
    """Every tap of the model computes ``_RedirectedReLU`` inside the block (see ``relus_computing``)."""
    return relus_computing(model, _RedirectedReLU)


@contextmanager
def frozen(model: CPC) -> Iterator[None]:
    """Eval mode and no parameter gradients inside the block; both restored on exit."""
    was_training = model.training
    wanted = [p.requires_grad for p in model.parameters()]
    model.eval().requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in zip(model.parameters(), wanted):
            parameter.requires_grad_(flag)
        model.train(was_training)


def scaleogram_score(model: CPC, objective: Objective, scaleogram: torch.Tensor) -> torch.Tensor:
    """The objective of every clip ``(B,)`` for a scaleogram batch."""
    return objective(forward_to_taps(model, objective.taps, scaleogram))


def as_audio(model: CPC, clip: np.ndarray) -> torch.Tensor:
    """A mono clip as a ``(1, S)`` tensor on the model's device; clear errors for other shapes or too few samples."""
    samples = np.asarray(clip, dtype=np.float32)
    if samples.ndim != 1:
        raise ValueError(f"the clip must be mono with shape (samples,), got {samples.shape}")
    if len(samples) < MIN_FRAMES * model.config.hop:
        raise ValueError(f"the clip holds {len(samples)} samples; input optimisation needs at least "
                         f"{MIN_FRAMES * model.config.hop} ({MIN_FRAMES} hops of {model.config.hop})")
    return torch.from_numpy(samples).to(next(model.parameters()).device)[None]


@torch.no_grad()
def clip_score(model: CPC, objective: Objective, clip: np.ndarray) -> float:
    """The objective on a clip as the model hears it, without any regulariser."""
    with frozen(model):
        return float(scaleogram_score(model, objective, model.scaleogram(as_audio(model, clip))).mean())


def tap_shapes(model: CPC) -> dict[str, tuple[int, ...]]:
    """Every tap's activation shape without batch and time, in tap order: ``(channels, frequency positions)``
    for encoder taps, ``(channels,)`` for autoregressive ones."""
    silence = torch.zeros(1, MIN_FRAMES * model.config.hop, device=next(model.parameters()).device)
    with torch.no_grad(), frozen(model), recorded_taps(model, model.tap_names()) as taps:
        model.ar(model.encoder(model.scaleogram(silence)))
    return {name: tuple(taps[name].shape[1:-1]) for name in model.tap_names()}


def check_objective(objective: Objective, shapes: dict[str, tuple[int, ...]]) -> None:
    """Raise ValueError (naming the tap, channel or frequency) unless ``objective`` can be computed on taps of
    these ``tap_shapes``. It is evaluated on zeros, never on a model: a change sent to a running loop is
    checked while another thread may be optimising with the model's hooks in place."""
    unknown = sorted(objective.taps - set(shapes))
    if unknown:
        raise ValueError(f"unknown taps {unknown}; this model's taps are {list(shapes)}")
    objective({name: torch.zeros(1, *shapes[name], 1) for name in objective.taps})


def optimize_clip(model: CPC, objective: Objective, start: np.ndarray,
                  settings: OptimizeSettings = OptimizeSettings(), *, progress: bool = True,
                  stop: threading.Event | None = None) -> OptimizedClip:
    """Gradient ascent on the samples of ``start`` (mono, at the model's rate) to maximise ``objective``.

    Setting ``stop`` (from another thread) ends the ascent after the current step; the clip so far is returned.
    """
    audio = as_audio(model, start).clone().requires_grad_(True)
    reg = settings.regularization
    generator = torch.Generator().manual_seed(settings.seed)
    optimizer = torch.optim.Adam([audio], lr=settings.lr)
    floor = float(np.log(model.config.power_floor))
    max_shift = int(round(reg.time_shift * model.config.sample_rate))
    initial = clip_score(model, objective, start)
    scores = []
    with frozen(model), redirected_relus(model):
        for step in tqdm(range(settings.steps), desc="optimising", unit="step", leave=False, disable=not progress):
            if stop is not None and stop.is_set():
                break
            scaleogram = model.scaleogram(time_shift(audio, max_shift, generator))
            scaleogram = pitch_shift(scaleogram, reg.pitch_shift, floor, generator)
            scaleogram = mask(scaleogram, reg.masks, reg.mask_frames, reg.mask_bins, floor, generator)
            value = scaleogram_score(model, objective, scaleogram).mean()
            optimizer.zero_grad(set_to_none=True)
            (-value).backward()
            audio.grad = noisy_gradient(audio.grad, reg.gradient_noise, generator)
            optimizer.step()
            with torch.no_grad():
                if reg.denoise_every and (step + 1) % reg.denoise_every == 0:
                    audio.copy_(denoise(audio, reg.denoise_strength))
                audio.clamp_(-1.0, 1.0)
            scores.append(float(value.detach()))
    result = audio.detach()[0].cpu().numpy().astype(np.float32)
    final = clip_score(model, objective, result)
    logger.info("%s: %.4f -> %.4f after %d steps", objective.description, initial, final, len(scores))
    return OptimizedClip(audio=result, scores=scores, initial_score=initial, final_score=final,
                         objective=objective.description, settings=settings)

