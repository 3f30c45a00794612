"""What input optimisation maximises: scores of tap activations that compose like Lucent's objectives.

An objective reads the outputs of named nonlinearities (``CPC.tap_names()``): encoder taps are
``(B, C, F, T)`` maps, autoregressive taps ``(B, C, T)``. A neuron is one (channel, frequency) position of
a tap, exactly a vertex of the layout graph; its score is its activation averaged over time, so the
optimised clip has to drive it throughout rather than in one frame. Objectives add, subtract, negate and
scale, so "this channel but not that one" reads ``channel(tap, 3) - 0.5 * channel(tap, 7)``. ``match``
scores how close a tap's time average comes to a given vector instead: feature inversion, sound whose c is
a chosen point of the latent space.
"""
from __future__ import annotations

from functools import reduce
from operator import add
from typing import Callable, Mapping, Sequence

import torch

TapActivations = Mapping[str, torch.Tensor]
"""Tap name -> its activation, ``(B, C, F, T)`` or ``(B, C, T)``."""


class Objective:
    """A score per clip ``(B,)`` to maximise, computed from tap activations; composes with ``+ - *``."""

    def __init__(self, score: Callable[[TapActivations], torch.Tensor], description: str,
                 taps: frozenset[str]) -> None:
        self._score = score
        self.description = description
        self.taps = taps

    def __call__(self, activations: TapActivations) -> torch.Tensor:
        missing = sorted(self.taps - set(activations))
        if missing:
            raise ValueError(f"objective {self.description!r} needs taps {missing}, which were not recorded")
        return self._score(activations)

    def __add__(self, other: "Objective") -> "Objective":
        if not isinstance(other, Objective):
            return NotImplemented
        return Objective(lambda acts: self(acts) + other(acts), f"{self.description} + {other.description}",
                         self.taps | other.taps)

    def __neg__(self) -> "Objective":
        return Objective(lambda acts: -self(acts), f"-({self.description})", self.taps)

    def __sub__(self, other: "Objective") -> "Objective":
        if not isinstance(other, Objective):
            return NotImplemented
        return self + (-other)

    def __mul__(self, factor: float) -> "Objective":
        if isinstance(factor, bool) or not isinstance(factor, (int, float)):
            return NotImplemented
        return Objective(lambda acts: factor * self(acts), f"{factor:g} * ({self.description})", self.taps)

    __rmul__ = __mul__

    def __repr__(self) -> str:
        return f"Objective({self.description})"


def _channel_of(activation: torch.Tensor, tap: str, index: int) -> torch.Tensor:
    """One channel of a tap, ``(B, F, T)`` or ``(B, T)``, with an error naming the tap when out of range."""
    if activation.dim() not in (3, 4):
        raise ValueError(f"tap {tap!r} has shape {tuple(activation.shape)}; expected (B, C, F, T) or (B, C, T)")
    if not 0 <= index < activation.shape[1]:
        raise ValueError(f"channel {index} is out of range for tap {tap!r} with {activation.shape[1]} channels")
    return activation[:, index]


def layer(tap: str) -> Objective:
    """The mean activation of every neuron of a tap (DeepDream's layer objective)."""
    return Objective(lambda acts: acts[tap].flatten(1).mean(dim=1), f"layer {tap}", frozenset({tap}))


def channel(tap: str, index: int) -> Objective:
    """The mean activation of one channel of a tap over frequency and time."""
    return Objective(lambda acts: _channel_of(acts[tap], tap, index).flatten(1).mean(dim=1),
                     f"channel {tap}:{index}", frozenset({tap}))


def neuron(tap: str, index: int, freq: int | None = None) -> Objective:
    """One neuron: channel ``index`` at frequency position ``freq`` (encoder taps; None for AR taps),
    averaged over time."""

    def score(acts: TapActivations) -> torch.Tensor:
        values = _channel_of(acts[tap], tap, index)
        if values.dim() == 2:
            if freq is not None:
                raise ValueError(f"tap {tap!r} has no frequency axis; give no frequency for its neurons")
            return values.mean(dim=1)
        if freq is None or not 0 <= freq < values.shape[1]:
            raise ValueError(f"tap {tap!r} has {values.shape[1]} frequency positions; a neuron needs one of "
                             f"0..{values.shape[1] - 1}, got {freq}")
        return values[:, freq].mean(dim=1)

    name = f"neuron {tap}:{index}" + ("" if freq is None else f":{freq}")
    return Objective(score, name, frozenset({tap}))


def match(tap: str, target: torch.Tensor) -> Objective:
    """Closeness of a tap's time-averaged activation to a ``target`` vector (one value per channel): minus
    the squared distance relative to the target's squared norm, so 0 is a perfect match and -1 is as far as
    the zero vector. On the last autoregressive tap the time average is the mean-pooled c of a clip, which
    makes this the objective of feature inversion. Encoder taps are max-pooled over frequency first, as the
    encoder pools its last map into z."""
    target = torch.as_tensor(target, dtype=torch.float32).flatten()
    scale = float((target ** 2).sum().clamp_min(1e-12))

    def score(acts: TapActivations) -> torch.Tensor:
        values = acts[tap]
        if values.dim() not in (3, 4):
            raise ValueError(f"tap {tap!r} has shape {tuple(values.shape)}; expected (B, C, F, T) or (B, C, T)")
        if values.shape[1] != len(target):
            raise ValueError(f"tap {tap!r} has {values.shape[1]} channels but the target vector has {len(target)}")
        pooled = (values.amax(dim=2) if values.dim() == 4 else values).mean(dim=-1)
        return -((pooled - target.to(pooled)) ** 2).sum(dim=1) / scale

    return Objective(score, f"match {tap}", frozenset({tap}))


def parse_objective(spec: str) -> Objective:
    """``TAP`` (layer), ``TAP:CHANNEL`` (channel) or ``TAP:CHANNEL:FREQ`` (neuron), as the CLI writes them."""
    tap, *indices = spec.split(":")
    if not tap or len(indices) > 2:
        raise ValueError(f"objective {spec!r}: write TAP, TAP:CHANNEL or TAP:CHANNEL:FREQ")
    try:
        numbers = [int(i) for i in indices]
    except ValueError:
        raise ValueError(f"objective {spec!r}: channel and frequency must be integers") from None
    if not numbers:
        return layer(tap)
    return channel(tap, numbers[0]) if len(numbers) == 1 else neuron(tap, numbers[0], numbers[1])


def parse_objectives(specs: Sequence[str]) -> Objective:
    """The sum of the objectives ``specs`` written as ``parse_objective`` reads them (one at least)."""
    if not specs:
        raise ValueError("give one objective at least: TAP, TAP:CHANNEL or TAP:CHANNEL:FREQ")
    return reduce(add, (parse_objective(spec) for spec in specs))
