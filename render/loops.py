"""A loop whose content can change while it plays: each pass plays one item, the newest one published.

The live optimiser publishes a new clip, and the activations it causes, whenever one is ready; sound and
picture switch to it at the next loop boundary, never in the middle of a pass. Whoever first asks for a
pass fixes its item (the audio callback, which runs ahead of what is heard by the device latency), so the
activations drawn during a pass are those of the sound heard in it.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

KEPT_PASSES = 8
"""Passes remembered behind the newest one asked for: the picture lags the audio callback by far less."""


@dataclass(frozen=True)
class Loop:
    """One pass's content: sound ``(samples, channels)`` float32, the activations ``(T, N)`` it drives, and
    what a window's title says while it plays (None: the title stays)."""

    audio: np.ndarray | None
    activations: np.ndarray | None
    title: str | None = None

    @classmethod
    def of(cls, audio: np.ndarray | None, activations: np.ndarray | None, title: str | None = None) -> "Loop":
        """A loop with the sound as float32 ``(samples, channels)`` (mono ``(samples,)`` is one channel)."""
        if audio is not None:
            audio = np.asarray(audio, dtype=np.float32)
            audio = np.ascontiguousarray(audio.reshape(audio.shape[0], -1))
        return cls(audio, None if activations is None else np.asarray(activations, dtype=np.float32), title)


class LoopQueue:
    """Passes of ``length`` seconds, each playing the newest loop published before it began; thread-safe."""

    def __init__(self, first: Loop, length: float) -> None:
        if not length > 0:
            raise ValueError(f"loop length={length} must be > 0 seconds")
        self.length = float(length)
        self._first = first
        self._passes: dict[int, Loop] = {0: first}
        self._newest_pass = 0
        self._pending: Loop | None = None
        self._published = 0
        self._lock = threading.Lock()

    @property
    def published(self) -> int:
        """How many loops were published after the first."""
        return self._published

    def publish(self, loop: Loop) -> None:
        """Play ``loop`` from the next pass on (replacing one published earlier that has not started yet)."""
        for name in ("audio", "activations"):
            old, new = getattr(self._first, name), getattr(loop, name)
            if (old is None) != (new is None) or (old is not None and old.shape[1:] != new.shape[1:]):
                raise ValueError(f"the new loop's {name} {None if new is None else new.shape} do not match the "
                                 f"first loop's {None if old is None else old.shape}")
        if loop.audio is not None and loop.audio.shape[0] != self._first.audio.shape[0]:
            raise ValueError(f"the new loop holds {loop.audio.shape[0]} samples, the playing one "
                             f"{self._first.audio.shape[0]}: every pass has the same length")
        with self._lock:
            self._pending = loop
            self._published += 1

    def at_pass(self, index: int) -> Loop:
        """The loop of pass ``index`` (0 is the first); a pass never asked for before takes the pending loop."""
        with self._lock:
            while self._newest_pass < index:
                current = self._passes[self._newest_pass]
                self._newest_pass += 1
                self._passes[self._newest_pass] = self._pending or current
                self._pending = None
                self._passes.pop(self._newest_pass - KEPT_PASSES - 1, None)
            return self._passes.get(index) or self._passes[min(self._passes)]

    def at(self, seconds: float) -> tuple[Loop, float]:
        """The loop heard at ``seconds`` since the start and the time into its pass."""
        index = max(math.floor(seconds / self.length), 0)
        return self.at_pass(index), seconds - index * self.length


def fill_from_passes(loops: LoopQueue, pass_samples: int, position: int, out: np.ndarray) -> None:
    """Copy ``len(out)`` samples starting at sample ``position`` of the endless sequence of passes into
    ``out (frames, channels)``; each pass is ``pass_samples`` long and plays its loop's audio."""
    filled = 0
    while filled < out.shape[0]:
        index, offset = divmod(position + filled, pass_samples)
        take = min(out.shape[0] - filled, pass_samples - offset)
        out[filled:filled + take] = loops.at_pass(index).audio[offset:offset + take]
        filled += take
