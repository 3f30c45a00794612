"""Loops of optimised clips, each grown from the last, steerable while they grow.

The article's live performance adjusts every part of the procedure while it runs. A ``LoopControl`` holds
what the clips still to come maximise and how (objective, steps, learning rate, every regulariser) and
whether the next one starts afresh (from silence, noise, or the loop's origin: the clip it started from, say
one that sets a rhythm); another thread (an OSC server, a GUI) changes it
at any time. ``grow_loop`` reads it once per clip, so a change takes effect from the next clip on and the
clip being grown finishes as it began.
"""
from __future__ import annotations

import itertools
import logging
import math
import threading
from dataclasses import dataclass, replace
from typing import Iterator

import numpy as np
from tqdm import tqdm

from .model import CPC
from .objectives import Objective
from .optimize import OptimizedClip, optimize_clip, start_clip
from .settings import SETTING_NAMES, START_KINDS, OptimizeSettings

logger = logging.getLogger(__name__)

RESTART_KINDS = START_KINDS + ("origin",)
"""Fresh starts for the next clip: a new start clip of either kind, or the clip the loop began with."""

@dataclass(frozen=True)
class ClipPlan:
    """How the next clip is grown: its objective, its settings, and a fresh start (one of ``RESTART_KINDS``) or
    None to grow it from the last clip."""

    objective: Objective
    settings: OptimizeSettings
    restart: str | None = None


class LoopControl:
    """The objective and settings of the clips to come; thread-safe, so a controller may change them while
    ``grow_loop`` runs. Every change is checked when it is made, and a bad one leaves the plan as it was."""

    def __init__(self, objective: Objective, settings: OptimizeSettings = OptimizeSettings()) -> None:
        self._lock = threading.Lock()
        self._plan = ClipPlan(objective, settings)

    @property
    def plan(self) -> ClipPlan:
        """The plan as it stands (a pending restart included)."""
        with self._lock:
            return self._plan

    def set_objective(self, objective: Objective) -> None:
        """Maximise ``objective`` from the next clip on."""
        with self._lock:
            self._plan = replace(self._plan, objective=objective)
        logger.info("from the next clip: %s", objective.description)

    def update(self, **values: float) -> None:
        """Change settings by name (``SETTING_NAMES``: steps, lr, seed, time_shift, pitch_shift, ...) from the
        next clip on; integer settings take integral values only."""
        unknown = sorted(set(values) - set(SETTING_NAMES))
        if unknown:
            raise ValueError(f"unknown settings {unknown}; the settings are {list(SETTING_NAMES)}")
        with self._lock:
            settings = self._plan.settings
            own = {name: _typed(settings, name, value) for name, value in values.items() if hasattr(settings, name)}
            regularization = {name: _typed(settings.regularization, name, value) for name, value in values.items()
                              if name not in own}
            changed = replace(settings, **own, regularization=replace(settings.regularization, **regularization))
            self._plan = replace(self._plan, settings=changed)
        logger.info("from the next clip: %s", ", ".join(f"{name}={value}" for name, value in values.items()))

    def restart(self, kind: str) -> None:
        """Grow the next clip from ``kind`` ("silence", "noise" or "origin") instead of the last clip."""
        if kind not in RESTART_KINDS:
            raise ValueError(f"start {kind!r} is not one of {RESTART_KINDS}")
        with self._lock:
            self._plan = replace(self._plan, restart=kind)
        logger.info("the next clip starts from %s", kind)

    def take(self) -> ClipPlan:
        """The plan for the next clip; a restart is used up by it."""
        with self._lock:
            plan, self._plan = self._plan, replace(self._plan, restart=None)
        return plan


def _typed(settings: object, name: str, value: float) -> float | int:
    """``value`` as the type of ``settings.name``: finite, and whole for an integer setting."""
    if not math.isfinite(float(value)):
        raise ValueError(f"{name}={value} must be finite")
    if isinstance(getattr(settings, name), int):
        if float(value) != int(value):
            raise ValueError(f"{name} takes whole numbers, got {value}")
        return int(value)
    return float(value)


def grow_loop(model: CPC, control: LoopControl, start: np.ndarray, n_clips: int | None, *, progress: bool = True,
              stop: threading.Event | None = None) -> Iterator[OptimizedClip]:
    """``n_clips`` optimised clips (None: until ``stop`` is set), each started from the one before unless the
    control asks for a fresh start, each grown by the control's plan as it stands when the clip begins (clip
    ``k`` uses seed ``seed + k``; a fresh "origin" is ``start`` again). A clip cut short by ``stop`` is not
    yielded."""
    if n_clips is not None and n_clips < 1:
        raise ValueError(f"n_clips={n_clips} must be >= 1 (or None: until stopped)")
    if n_clips is None and stop is None:
        raise ValueError("an endless loop (n_clips=None) needs a stop event")
    indices = itertools.count() if n_clips is None else range(n_clips)
    origin = start
    for index in tqdm(indices, total=n_clips, desc="clips", unit="clip", disable=not progress or n_clips == 1):
        plan = control.take()
        seed = plan.settings.seed + index
        if plan.restart == "origin":
            start = origin
        elif plan.restart is not None:
            start = start_clip(plan.restart, len(start), seed)
        clip = optimize_clip(model, plan.objective, start, replace(plan.settings, seed=seed), progress=progress,
                             stop=stop)
        if stop is not None and stop.is_set():
            return
        yield clip
        start = clip.audio


def optimize_loop(model: CPC, objective: Objective, start: np.ndarray, n_clips: int | None,
                  settings: OptimizeSettings = OptimizeSettings(), *, progress: bool = True,
                  stop: threading.Event | None = None) -> Iterator[OptimizedClip]:
    """``grow_loop`` with one objective and settings throughout: the offline loop."""
    return grow_loop(model, LoopControl(objective, settings), start, n_clips, progress=progress, stop=stop)
