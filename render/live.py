"""Live input optimisation: the network in a window, lit by the loop it is growing, with the loop as sound.

The article's performance on one machine. While a loop plays and the network lights up with what it hears,
a background thread grows the next loop from it (``cpc.loop_control.grow_loop``); each new loop, with the
activations it causes, takes over at the next loop boundary. Clips are written as soon as they exist, so
closing the window loses nothing but the clip being grown. Keys ``n``, ``z`` and ``o`` grow the next clip afresh
from noise, silence or the loop's origin; OSC (``render.osc``) steers everything else.
"""
from __future__ import annotations

import functools
import logging
import threading
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from immersions.cpc.loop_control import LoopControl, grow_loop
from immersions.cpc.model import CPC
from immersions.cpc.optimize import OptimizedClip
from immersions.layout.graph import NeuronGraph
from immersions.layout.io import save_layout
from immersions.layout.layout import Layout

from .animation import DEFAULT_CYCLE, Timeline
from .app import DEFAULT_MAX_EDGES, Listener, layout_for_clip, normalize_per_layer, reusable_layout
from .clip_folder import ClipFolder
from .loops import LoopQueue
from .window import Window, require_display

logger = logging.getLogger(__name__)


class LoopGrower:
    """Consumes the rest of an optimisation loop in a background thread: each clip is written to ``folder``
    and published to ``loops``. ``stop`` ends it (the clip being grown is dropped); errors re-raise there."""

    def __init__(self, clips: Iterator[OptimizedClip], listener: Listener, loops: LoopQueue, folder: ClipFolder,
                 stop_event: threading.Event) -> None:
        self._clips, self._listener, self._loops, self._folder = clips, listener, loops, folder
        self._stop = stop_event
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="immersions-live-optimiser", daemon=True)

    def start(self) -> "LoopGrower":
        """Start growing loops."""
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            for clip in self._clips:
                path = self._folder.add(clip)
                self._loops.publish(self._listener.loop(clip.audio, title=live_title(clip)))
                logger.info("%s: objective %.4f -> %.4f, playing from the next pass", path, clip.initial_score,
                            clip.final_score)
        except BaseException as exc:  # handed to the main thread by stop()
            self._error = exc

    @property
    def running(self) -> bool:
        """Whether loops are still being grown."""
        return self._thread.is_alive()

    def stop(self) -> None:
        """Stop after the current optimisation step, wait for the thread, and re-raise its error if any."""
        self._stop.set()
        self._thread.join()
        if self._error is not None:
            raise RuntimeError(f"the live optimiser failed: {self._error}") from self._error


RESTART_KEYS = {"n": "noise", "z": "silence", "o": "origin"}
"""Window keys that grow the next clip afresh: from noise, from silence (zero), or from the loop's origin."""


def restart_keys(control: LoopControl) -> dict[str, Callable[[], None]]:
    """``RESTART_KEYS`` as window actions on ``control``."""
    return {key: functools.partial(control.restart, kind) for key, kind in RESTART_KEYS.items()}


def live_title(clip: OptimizedClip) -> str:
    """The window's title while ``clip`` plays: what it was grown to excite (it changes under OSC control)."""
    return f"immersions live - {clip.objective}"


def clip_layout(graph: NeuronGraph, values: np.ndarray, *, seed: int, save_to: Path,
                device: str | torch.device = "cpu") -> Layout:
    """A layout charged by a clip's activations ``values (T, N)``, saved to ``save_to`` before it is shown."""
    computed = layout_for_clip(graph, normalize_per_layer(values, graph), seed=seed, device=device)
    save_layout(computed, save_to)
    logger.info("saved the layout to %s", save_to)
    return computed


def run_live(model: CPC, control: LoopControl, start: np.ndarray, folder: ClipFolder, *, n_clips: int | None = None,
             layout: Layout | str | Path | None = None, size: Sequence[int] = (1280, 720),
             fps: float = 60.0) -> None:
    """Grow ``n_clips`` loops (None: until the window closes) from ``start`` and show and play each as it comes.

    The first clip is grown before the window opens (its activations charge the layout unless ``layout`` is
    given, and the new layout is saved in the folder). ``control`` may be changed while it runs (e.g. by
    ``render.osc.OscControl``). ``folder.finish()`` is left to the caller.
    """
    require_display()
    listener = Listener(model)
    shown = None if layout is None else reusable_layout(layout, listener.graph)  # checked before any work
    stop_event = threading.Event()
    clips = grow_loop(model, control, start, n_clips, stop=stop_event)
    first = next(clips)
    logger.info("%s: objective %.4f -> %.4f", folder.add(first), first.initial_score, first.final_score)
    values, rate = listener.hear(first.audio)
    if shown is None:
        shown = clip_layout(listener.graph, values, seed=first.settings.seed, save_to=folder.path / "layout.npz",
                            device=next(model.parameters()).device)
    seconds = len(first.audio) / model.config.sample_rate
    loops = LoopQueue(listener.loop(first.audio, values, live_title(first)), seconds)
    timeline = Timeline(fps, duration=loops.length, cycle=DEFAULT_CYCLE, activation_rate=rate,
                        activation_offset=1.0 / rate)
    grower = LoopGrower(clips, listener, loops, folder, stop_event)
    with Window(shown.positions, loops=loops, sample_rate=model.config.sample_rate,
                layer_index=listener.graph.layer_index(), edges=listener.graph.edges, timeline=timeline, size=size,
                title=live_title(first), screenshot_dir=folder.path, max_edges=DEFAULT_MAX_EDGES,
                actions=restart_keys(control)) as window:
        grower.start()
        try:
            window.run()
        except KeyboardInterrupt:
            logger.info("interrupted")
        finally:
            grower.stop()
