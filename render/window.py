"""An interactive glfw viewer: the layout animates with its activations while the sound track plays.

Mouse: drag to pan, wheel to zoom around the cursor. Keys: space pause, 1-9 focus a layer, 0 show all,
tab next layer, ``e`` edges on/off, ``s`` screenshot PNG, ``q`` / Esc quit.

Frames follow the audio clock when a sound device plays the track (install ``sounddevice``, which needs
the PortAudio library), otherwise the wall clock; either way the animation loops. Without a display
there is no window: ``immersions render`` writes the same animation to a video offscreen.
"""
from __future__ import annotations

import logging
import os
import string
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

import moderngl
import numpy as np

from .animation import Timeline, as_snapshots, default_timeline
from .camera import Camera
from .llvm_order import load_triton_first
from .loops import Loop, LoopQueue, fill_from_passes
from .scene import EDGE_LIMIT, Scene

logger = logging.getLogger(__name__)

SOUND_HINT = "pip install sounddevice (and the system PortAudio library, e.g. apt install libportaudio2)"
NO_DISPLAY = ("no display: {reason}. The viewer needs a desktop session (X11 or Wayland); on a headless "
              "machine use `immersions render` to write the animation to a video offscreen")
ZOOM_STEP = 1.15
FOCUS_SECONDS = 0.6


def require_display(environ: Mapping[str, str] | None = None, platform: str | None = None) -> None:
    """Raise RuntimeError explaining what to do when no window can be opened (Linux without X11/Wayland)."""
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if platform.startswith("linux") and not (environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")):
        raise RuntimeError(NO_DISPLAY.format(reason="neither DISPLAY nor WAYLAND_DISPLAY is set"))


class WallClock:
    """Seconds since start that stand still while paused."""

    def __init__(self, timer: Callable[[], float] = time.perf_counter) -> None:
        self._timer = timer
        self._origin = timer()
        self._paused_at: float | None = None

    @property
    def paused(self) -> bool:
        """Whether the clock is stopped."""
        return self._paused_at is not None

    def time(self) -> float:
        """Elapsed playing time in seconds."""
        now = self._paused_at if self._paused_at is not None else self._timer()
        return now - self._origin

    def toggle(self) -> None:
        """Pause a running clock or resume a paused one."""
        if self._paused_at is None:
            self._paused_at = self._timer()
        else:
            self._origin += self._timer() - self._paused_at
            self._paused_at = None

    def close(self) -> None:
        """Nothing to release; present so every clock closes the same way."""


class AudioClock:
    """Plays the loops' passes through the default sound device; time is what the listener hears."""

    def __init__(self, loops: LoopQueue, sample_rate: int) -> None:
        try:
            import sounddevice
        except (ImportError, OSError) as exc:
            raise ImportError(f"sound output needs sounddevice: {SOUND_HINT} ({exc})") from exc
        first = loops.at_pass(0).audio
        if first is None:
            raise ValueError("the loops hold no sound to play")
        self._loops = loops
        self._pass_samples = first.shape[0]
        self._rate = int(sample_rate)
        self._played = 0
        self._lock = threading.Lock()
        self._stream = sounddevice.OutputStream(samplerate=self._rate, channels=first.shape[1],
                                                dtype="float32", callback=self._callback)
        self._stream.start()

    def _callback(self, outdata: np.ndarray, frames: int, time_info: object, status: object) -> None:
        with self._lock:
            fill_from_passes(self._loops, self._pass_samples, self._played, outdata)
            self._played += frames

    @property
    def paused(self) -> bool:
        """Whether playback is stopped."""
        return not self._stream.active

    def time(self) -> float:
        """Seconds of sound sent to the device, minus the device's output latency."""
        with self._lock:
            played = self._played
        return max(played / self._rate - float(self._stream.latency), 0.0)

    def toggle(self) -> None:
        """Pause or resume playback (and with it the animation)."""
        if self._stream.active:
            self._stream.stop()
        else:
            self._stream.start()

    def close(self) -> None:
        """Stop playback and release the device."""
        self._stream.close()


def open_clock(loops: LoopQueue, sample_rate: int | None) -> AudioClock | WallClock:
    """The audio clock when the loops have sound that can be played, else the wall clock (with a logged
    reason)."""
    if loops.at_pass(0).audio is None:
        return WallClock()
    try:
        return AudioClock(loops, sample_rate)
    except ImportError as exc:
        logger.warning("%s; playing without sound", exc)
    except Exception as exc:  # PortAudioError and friends: no usable device is not fatal for a viewer
        logger.warning("no sound device (%s); playing without sound", exc)
    return WallClock()


def layer_bounds(positions: np.ndarray, layer_index: np.ndarray, layer: int) -> tuple[float, float, float, float]:
    """``(xmin, ymin, xmax, ymax)`` of the neurons of ``layer`` (``layer_index`` holds each neuron's layer)."""
    points = positions[layer_index == layer]
    if points.shape[0] == 0:
        raise ValueError(f"layer {layer} has no neurons; layers present: {sorted(set(layer_index.tolist()))}")
    return (*points.min(axis=0).tolist(), *points.max(axis=0).tolist())


BUILT_IN_KEYS = ("space", "tab", "escape", "e", "s", "q", *(str(d) for d in range(10)))
"""Keys the viewer itself answers; a caller's actions take other letters."""


class Controls:
    """What keys and the mouse do, separate from glfw so it can be driven by any toolkit (or a test).

    ``scene`` needs a ``show_edges`` attribute; ``clock`` needs ``toggle()``; ``positions()`` returns the
    positions on screen now; ``screenshot()`` saves one and returns its path.
    """

    def __init__(self, camera: Camera, scene: object, clock: object, positions: Callable[[], np.ndarray],
                 layer_index: np.ndarray | None, screenshot: Callable[[], Path],
                 actions: Mapping[str, Callable[[], None]] | None = None) -> None:
        clashes = sorted(set(actions or {}) & set(BUILT_IN_KEYS))
        if clashes:
            raise ValueError(f"keys {clashes} are the viewer's own ({', '.join(BUILT_IN_KEYS)})")
        self.actions = dict(actions or {})
        self.camera = camera
        self.scene = scene
        self.clock = clock
        self.positions = positions
        self.layer_index = None if layer_index is None else np.asarray(layer_index)
        self.layers = () if layer_index is None else tuple(int(i) for i in np.unique(self.layer_index))
        self.screenshot = screenshot
        self.focused: int | None = None

    def key(self, name: str) -> bool:
        """Act on a key (``"space"``, ``"tab"``, ``"0"``-``"9"``, ``"e"``, ``"s"``, ``"q"``, ``"escape"``, then
        the caller's ``actions``: lower-case letters); returns False when the viewer should close."""
        if name in ("q", "escape"):
            return False
        if name == "space":
            self.clock.toggle()
        elif name == "e":
            self.scene.show_edges = not self.scene.show_edges
        elif name == "s":
            logger.info("screenshot saved to %s", self.screenshot())
        elif name == "0":
            self.focus(None)
        elif name.isdigit():
            self.focus(int(name) - 1)
        elif name == "tab" and self.layers:
            self.focus(0 if self.focused is None else (self.focused + 1) % len(self.layers))
        elif name in self.actions:
            self.actions[name]()
        return True

    def focus(self, rank: int | None) -> None:
        """Glide to the ``rank``-th layer (in layer order), or to the whole graph for None."""
        positions = self.positions()
        if rank is None:
            bounds = (*positions.min(axis=0).tolist(), *positions.max(axis=0).tolist())
        elif rank >= len(self.layers):
            logger.info("no layer %d to focus (there are %d)", rank + 1, len(self.layers))
            return
        else:
            bounds = layer_bounds(positions, self.layer_index, self.layers[rank])
        self.focused = rank
        self.camera.focus(bounds, duration=FOCUS_SECONDS)

    def drag(self, dx: float, dy: float, height: int) -> None:
        """Pan by a mouse drag of ``(dx, dy)`` pixels in a window ``height`` pixels tall."""
        scale = self.camera.height / height
        self.camera.pan(-dx * scale, dy * scale)

    def scroll(self, steps: float, x: float, y: float, width: int, height: int) -> None:
        """Zoom by wheel ``steps`` around the world point under the cursor ``(x, y)``."""
        around = self.camera.pixel_to_world(x, y, width, height)
        self.camera.zoom(ZOOM_STEP ** steps, around=around)


_KEY_NAMES = {"SPACE": "space", "TAB": "tab", "ESCAPE": "escape", **{c: c.lower() for c in string.ascii_uppercase},
              **{str(d): str(d) for d in range(10)}}


class Window:
    """A glfw window drawing a :class:`~immersions.render.scene.Scene` of the layout, animated in time.

    ``snapshots`` are ``(S, N, 2)`` layouts looped over (or one ``(N, 2)``), ``activations`` ``(T, N)``
    values at ``timeline.activation_rate``, ``layer_index`` ``(N,)`` each neuron's layer, ``audio`` a
    ``(samples,)`` or ``(samples, channels)`` track at ``sample_rate``. Instead of ``activations`` and
    ``audio``, ``loops`` plays content that changes while the window is open (the live optimiser's clips).
    At most ``max_edges`` edges are drawn (a seeded random subset). ``actions`` bind letters to the caller's
    own doings (the live optimiser's fresh starts).
    """

    def __init__(
        self,
        snapshots: np.ndarray,
        *,
        activations: np.ndarray | None = None,
        layer_index: np.ndarray | None = None,
        edges: np.ndarray | None = None,
        audio: np.ndarray | None = None,
        sample_rate: int | None = None,
        timeline: Timeline | None = None,
        size: Sequence[int] = (1280, 720),
        title: str = "immersions",
        colormap: str = "inferno",
        screenshot_dir: str | Path = ".",
        loops: LoopQueue | None = None,
        max_edges: int = EDGE_LIMIT,
        actions: Mapping[str, Callable[[], None]] | None = None,
    ) -> None:
        self.snapshots = as_snapshots(snapshots)
        if loops is not None and (activations is not None or audio is not None):
            raise ValueError("give either loops or activations and audio, not both")
        if loops is not None:
            first = loops.at_pass(0)
            activations, audio = first.activations, first.audio
        if audio is not None and sample_rate is None:
            raise ValueError("audio needs its sample_rate")
        self.timeline = timeline or default_timeline(activations, audio, sample_rate)
        if loops is None:
            length = len(audio) / sample_rate if audio is not None else self.timeline.duration
            loops = LoopQueue(Loop.of(audio, activations), length)
        self.loops = loops
        self.screenshot_dir = Path(screenshot_dir)
        require_display()
        load_triton_first()
        import glfw  # loads the native library; only the viewer needs it

        self._glfw = glfw
        if not glfw.init():
            raise RuntimeError(NO_DISPLAY.format(reason="glfw could not initialise the windowing system"))
        for hint, value in ((glfw.CONTEXT_VERSION_MAJOR, 3), (glfw.CONTEXT_VERSION_MINOR, 3),
                            (glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE), (glfw.OPENGL_FORWARD_COMPAT, True)):
            glfw.window_hint(hint, value)
        self._handle = glfw.create_window(int(size[0]), int(size[1]), title, None, None)
        self.title = title
        if not self._handle:
            glfw.terminate()
            raise RuntimeError(NO_DISPLAY.format(reason="glfw could not create an OpenGL 3.3 window"))
        glfw.make_context_current(self._handle)
        glfw.swap_interval(1)
        self.ctx = moderngl.create_context()
        self._positions = self.snapshots[0]
        self._framebuffer = None
        self._shots = 0
        try:
            self.scene = Scene(self.ctx, self._positions, layer_index, edges=edges, colormap=colormap,
                               max_edges=max_edges)
            if activations is None:
                self.scene.rest()
        except BaseException:
            glfw.destroy_window(self._handle)
            glfw.terminate()
            raise
        width, height = self.framebuffer_size()
        self.camera = Camera.fitted(self.snapshots.reshape(-1, 2), aspect=width / height)
        self.clock = open_clock(self.loops, sample_rate)
        self.controls = Controls(self.camera, self.scene, self.clock, lambda: self._positions, layer_index,
                                 self.screenshot, actions)
        self._drag_from: tuple[float, float] | None = None
        glfw.set_key_callback(self._handle, self._on_key)
        glfw.set_mouse_button_callback(self._handle, self._on_mouse_button)
        glfw.set_cursor_pos_callback(self._handle, self._on_cursor)
        glfw.set_scroll_callback(self._handle, self._on_scroll)

    def framebuffer_size(self) -> tuple[int, int]:
        """Drawable size in pixels (larger than the window size on high-DPI screens)."""
        width, height = self._glfw.get_framebuffer_size(self._handle)
        return max(int(width), 1), max(int(height), 1)

    def run(self) -> None:
        """Show frames until the window is closed or ``q`` / Esc is pressed."""
        glfw, last = self._glfw, time.perf_counter()
        while not glfw.window_should_close(self._handle):
            now = time.perf_counter()
            self.camera.advance(now - last)
            last = now
            self.draw(self.clock.time())
            glfw.swap_buffers(self._handle)
            glfw.poll_events()

    def draw(self, seconds: float) -> None:
        """Draw the animation's state ``seconds`` after the start and show it in the window."""
        self._positions = self.timeline.positions(self.snapshots, seconds)
        loop, into_pass = self.loops.at(seconds)
        if loop.title is not None and loop.title != self.title:
            self._glfw.set_window_title(self._handle, loop.title)
            self.title = loop.title
        values = None if loop.activations is None else self.timeline.activations(loop.activations, into_pass)
        self.scene.update(positions=self._positions, activations=values)
        target = self._target()
        self.camera.aspect = target.width / target.height
        self.scene.draw(target, self.camera)
        self.ctx.copy_framebuffer(self.ctx.screen, target)

    def _target(self) -> moderngl.Framebuffer:
        """A framebuffer of the window's current drawable size, rebuilt after a resize.

        moderngl's ``ctx.screen`` keeps the size the window had when the context was created, so the
        scene draws here and the result is copied to the screen.
        """
        size = self.framebuffer_size()
        if self._framebuffer is None or self._framebuffer.size != size:
            self._release_target()
            self._framebuffer = self.ctx.framebuffer([self.ctx.renderbuffer(size, components=4)])
        return self._framebuffer

    def _release_target(self) -> None:
        if self._framebuffer is not None:
            self._framebuffer.color_attachments[0].release()
            self._framebuffer.release()
            self._framebuffer = None

    def screenshot(self) -> Path:
        """Save the current view as a PNG in ``screenshot_dir`` and return its path."""
        import imageio.v3 as iio

        target = self._target()
        pixels = target.read(components=3, alignment=1)
        image = np.frombuffer(pixels, dtype=np.uint8).reshape(target.height, target.width, 3)[::-1]
        self._shots += 1
        path = self.screenshot_dir / f"immersions-{time.strftime('%Y%m%d-%H%M%S')}-{self._shots:03d}.png"
        iio.imwrite(path, image)
        return path

    def _on_key(self, handle: object, key: int, scancode: int, action: int, mods: int) -> None:
        if action != self._glfw.PRESS:
            return
        name = next((n for k, n in _KEY_NAMES.items() if getattr(self._glfw, f"KEY_{k}") == key), None)
        if name is not None and not self.controls.key(name):
            self._glfw.set_window_should_close(self._handle, True)

    def _on_mouse_button(self, handle: object, button: int, action: int, mods: int) -> None:
        if button == self._glfw.MOUSE_BUTTON_LEFT:
            pressed = action == self._glfw.PRESS
            self._drag_from = self._glfw.get_cursor_pos(self._handle) if pressed else None

    def _on_cursor(self, handle: object, x: float, y: float) -> None:
        if self._drag_from is not None:
            _, height = self._glfw.get_window_size(self._handle)
            self.controls.drag(x - self._drag_from[0], y - self._drag_from[1], max(height, 1))
            self._drag_from = (x, y)

    def _on_scroll(self, handle: object, dx: float, dy: float) -> None:
        x, y = self._glfw.get_cursor_pos(self._handle)
        width, height = self._glfw.get_window_size(self._handle)
        self.controls.scroll(dy, x, y, max(width, 1), max(height, 1))

    def close(self) -> None:
        """Stop the sound, free the GL objects and the window."""
        self.clock.close()
        self._release_target()
        self.scene.release()
        self._glfw.destroy_window(self._handle)
        self._glfw.terminate()

    def __enter__(self) -> "Window":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

