"""Per-frame values between the samples we have: activations at the network's hop rate, layouts at snapshots.

Activations arrive once per hop (4096 samples at 44.1 kHz, about 93 ms) while video runs at 30-60 fps, so
each frame linearly interpolates the two neighbouring activation steps. Layout snapshots are a loop: the
camera sees the graph breathe from snapshot to snapshot and back to the first, along a periodic
Catmull-Rom spline that passes exactly through every snapshot. Everything here takes arrays of times, so a
whole video's worth of frames is computed without a Python loop over neurons.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable, Iterator

import numpy as np

ACTIVATION_RATE = 44100 / 4096
"""Activation steps per second of the default network (one step per 4096-sample hop at 44.1 kHz)."""

INTERPOLATIONS = ("cubic", "linear")
DEFAULT_CYCLE = 10.0
"""Seconds for one pass through the layout snapshots in interactive viewers."""


def activation_at(values: np.ndarray, index: float | np.ndarray) -> np.ndarray:
    """Linearly interpolate ``values (T, N)`` at fractional step ``index``; clamped to ``[0, T-1]``.

    A scalar index gives ``(N,)``; an index array of shape ``(F,)`` gives ``(F, N)``. float32.
    """
    values = as_values(values)
    steps = np.clip(np.asarray(index, dtype=np.float64), 0.0, values.shape[0] - 1)
    lower = np.floor(steps).astype(np.int64)
    upper = np.minimum(lower + 1, values.shape[0] - 1)
    weight = (steps - lower).astype(np.float32)[..., None]
    return (values[lower] * (1.0 - weight) + values[upper] * weight).astype(np.float32, copy=False)


def positions_at(snapshots: np.ndarray, phase: float | np.ndarray, interpolation: str = "cubic") -> np.ndarray:
    """Positions along the loop through ``snapshots (S, N, 2)``; ``phase`` 0..1 is one full cycle.

    Phase ``k / S`` is exactly snapshot ``k``, and phase is periodic (1.0 is snapshot 0 again).
    ``"cubic"`` is a periodic Catmull-Rom spline (smooth velocity through every snapshot); ``"linear"``
    moves straight between snapshots. A scalar phase gives ``(N, 2)``; ``(F,)`` gives ``(F, N, 2)``.
    """
    snapshots = as_snapshots(snapshots)
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    count = snapshots.shape[0]
    scaled = np.mod(np.asarray(phase, dtype=np.float64), 1.0) * count
    knot = np.floor(scaled).astype(np.int64) % count
    t = (scaled - np.floor(scaled)).astype(np.float32)[..., None, None]
    p1, p2 = snapshots[knot], snapshots[(knot + 1) % count]
    if interpolation == "linear":
        return p1 + (p2 - p1) * t
    p0, p3 = snapshots[(knot - 1) % count], snapshots[(knot + 2) % count]
    t2, t3 = t * t, t * t * t
    return 0.5 * (2.0 * p1 + (p2 - p0) * t + (2.0 * p0 - 5.0 * p1 + 4.0 * p2 - p3) * t2
                  + (3.0 * p1 - p0 - 3.0 * p2 + p3) * t3)


class StepStream:
    """Activation steps ``(T, N)`` that arrive block by block, in order, and are kept only while a frame may
    still need them: a long clip is drawn without holding all its steps. Frames must ask for steps in
    non-decreasing order (``Timeline.states`` does); ``on_block`` sees every block as it arrives."""

    def __init__(self, blocks: Iterable[np.ndarray], n_steps: int,
                 on_block: Callable[[np.ndarray], None] | None = None) -> None:
        if n_steps < 1:
            raise ValueError(f"n_steps must be >= 1, got {n_steps}")
        self.n_steps = int(n_steps)
        self._blocks = iter(blocks)
        self._on_block = on_block
        self._kept = np.zeros((0, 0), np.float32)
        self._first = 0  # step index of self._kept[0]

    def rows(self, first: int, last: int) -> np.ndarray:
        """Steps ``first..last`` inclusive; steps before ``first`` are forgotten."""
        if first < self._first:
            raise ValueError(f"step {first} was asked for after step {self._first}: a StepStream runs forwards")
        drop = min(first - self._first, len(self._kept))
        self._kept, self._first = self._kept[drop:], self._first + drop
        while self._first + len(self._kept) <= last:
            block = next(self._blocks, None)
            if block is None:
                raise ValueError(f"the blocks ended at step {self._first + len(self._kept)} of {self.n_steps}")
            block = as_values(block)
            if self._on_block is not None:
                self._on_block(block)
            self._kept = block if len(self._kept) == 0 else np.concatenate([self._kept, block])
            if self._first + len(self._kept) <= first:  # a whole block before the steps asked for
                self._first, self._kept = self._first + len(self._kept), self._kept[:0]
        return self._kept[first - self._first:last - self._first + 1]

    def at(self, index: np.ndarray) -> np.ndarray:
        """``activation_at`` of the whole stream at fractional steps ``index`` ``(F,)`` (non-decreasing)."""
        steps = np.clip(np.asarray(index, dtype=np.float64), 0.0, self.n_steps - 1)
        first = int(np.floor(steps.min()))
        last = min(int(np.floor(steps.max())) + 1, self.n_steps - 1)
        return activation_at(self.rows(first, last), steps - first)


def as_values(values: np.ndarray) -> np.ndarray:
    """Activations as a float32 ``(T, N)`` array with at least one step."""
    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 2 or values.shape[0] < 1:
        raise ValueError(f"values must have shape (T, N) with T >= 1, got {values.shape}")
    return values


def as_snapshots(snapshots: np.ndarray) -> np.ndarray:
    """Snapshots as a float32 ``(S, N, 2)`` array; a single ``(N, 2)`` layout counts as one snapshot."""
    snapshots = np.asarray(snapshots, dtype=np.float32)
    if snapshots.ndim == 2:
        snapshots = snapshots[None]
    if snapshots.ndim != 3 or snapshots.shape[2] != 2 or snapshots.shape[0] < 1:
        raise ValueError(f"snapshots must have shape (S, N, 2) or (N, 2), got {snapshots.shape}")
    return snapshots


def _positive(name: str, value: float) -> float:
    """``value`` as a float, or a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


class Timeline:
    """Maps video frames (or any clock time in seconds) to activation steps and to a phase of the layout loop.

    Give exactly one of ``n_frames`` and ``duration``; a duration is covered by ``ceil(duration * fps)``
    frames. ``cycle`` is the seconds one pass through all snapshots takes (default: the whole duration).
    ``activation_offset`` is the time in seconds of activation step 0 (e.g. half a hop to centre steps
    on their analysis windows).
    """

    def __init__(
        self,
        fps: float,
        *,
        n_frames: int | None = None,
        duration: float | None = None,
        activation_rate: float = ACTIVATION_RATE,
        cycle: float | None = None,
        activation_offset: float = 0.0,
    ) -> None:
        self.fps = _positive("fps", fps)
        if (n_frames is None) == (duration is None):
            raise ValueError(f"give exactly one of n_frames and duration, got n_frames={n_frames!r}, "
                             f"duration={duration!r}")
        if n_frames is not None:
            if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) or n_frames < 1:
                raise ValueError(f"n_frames must be a positive integer, got {n_frames!r}")
            self.n_frames = int(n_frames)
        else:
            self.n_frames = max(1, math.ceil(_positive("duration", duration) * self.fps - 1e-9))
        self.activation_rate = _positive("activation_rate", activation_rate)
        self.cycle = self.duration if cycle is None else _positive("cycle", cycle)
        if not math.isfinite(activation_offset):
            raise ValueError(f"activation_offset must be finite, got {activation_offset!r}")
        self.activation_offset = float(activation_offset)

    @classmethod
    def for_activations(cls, steps: int, fps: float, activation_rate: float = ACTIVATION_RATE,
                        **kwargs) -> "Timeline":
        """A timeline lasting as long as ``steps`` activation steps play at ``activation_rate``."""
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise ValueError(f"steps must be a positive integer, got {steps!r}")
        return cls(fps, duration=steps / _positive("activation_rate", activation_rate),
                   activation_rate=activation_rate, **kwargs)

    @property
    def duration(self) -> float:
        """Length of the video in seconds (``n_frames / fps``)."""
        return self.n_frames / self.fps

    def frame_times(self) -> np.ndarray:
        """Time in seconds at which each frame is shown, ``(n_frames,)`` float64."""
        return np.arange(self.n_frames, dtype=np.float64) / self.fps

    def activation_index(self, seconds: float | np.ndarray) -> np.ndarray:
        """Fractional activation step shown at ``seconds``."""
        return (np.asarray(seconds, dtype=np.float64) - self.activation_offset) * self.activation_rate

    def phase(self, seconds: float | np.ndarray) -> np.ndarray:
        """Phase (0..1) of the layout loop at ``seconds``."""
        return np.mod(np.asarray(seconds, dtype=np.float64) / self.cycle, 1.0)

    def activations(self, values: np.ndarray | StepStream, seconds: float | np.ndarray) -> np.ndarray:
        """Activations ``values (T, N)`` (or a ``StepStream``, at non-decreasing times) interpolated at ``seconds``."""
        if isinstance(values, StepStream):
            return values.at(self.activation_index(np.atleast_1d(seconds)))
        return activation_at(values, self.activation_index(seconds))

    def positions(self, snapshots: np.ndarray, seconds: float | np.ndarray, interpolation: str = "cubic") -> np.ndarray:
        """Layout positions along the snapshot loop at ``seconds``."""
        return positions_at(snapshots, self.phase(seconds), interpolation)

    def states(
        self,
        snapshots: np.ndarray,
        values: np.ndarray | StepStream | None = None,
        interpolation: str = "cubic",
        chunk: int = 64,
    ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """Yield ``(positions (N, 2), activations (N,) or None)`` for every frame, ``chunk`` frames computed at once."""
        snapshots = as_snapshots(snapshots)
        if values is not None and not isinstance(values, StepStream):
            values = as_values(values)
            if values.shape[1] != snapshots.shape[1]:
                raise ValueError(f"values have {values.shape[1]} neurons but snapshots have {snapshots.shape[1]}")
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk!r}")
        times = self.frame_times()
        for start in range(0, self.n_frames, chunk):
            block = times[start:start + chunk]
            positions = self.positions(snapshots, block, interpolation)
            activations = None if values is None else self.activations(values, block)
            for i in range(block.shape[0]):
                yield positions[i], None if activations is None else activations[i]

    def __repr__(self) -> str:
        return (f"Timeline(fps={self.fps:g}, n_frames={self.n_frames}, duration={self.duration:.3f}s, "
                f"activation_rate={self.activation_rate:g}, cycle={self.cycle:g}s)")


def default_timeline(activations: np.ndarray | None, audio: np.ndarray | None, sample_rate: int | None,
                     fps: float = 60.0, cycle: float = DEFAULT_CYCLE,
                     activation_rate: float = ACTIVATION_RATE) -> Timeline:
    """A viewer's loop: as long as the sound track, else the activations, else one ``cycle`` of snapshots."""
    if audio is not None:
        if sample_rate is None:
            raise ValueError("audio needs its sample_rate")
        return Timeline(fps, duration=len(audio) / sample_rate, cycle=cycle, activation_rate=activation_rate)
    if activations is not None:
        return Timeline.for_activations(int(np.shape(activations)[0]), fps, activation_rate, cycle=cycle)
    return Timeline(fps, duration=cycle, activation_rate=activation_rate)
