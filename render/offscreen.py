"""Headless rendering: a standalone (EGL by default) context, a framebuffer and pipelined read-back.

Images come back top row first because the scene is drawn with a vertically flipped projection
(``Scene.draw(..., flip_y=True)``); nothing is flipped in numpy or ffmpeg. ``frames`` keeps two pixel
buffers: frame ``i`` is copied into one (``fbo.read_into``, asynchronous on GPUs) while the CPU maps the
other, holding frame ``i - 1``, so the GPU never waits for the consumer.
"""
from __future__ import annotations

import logging
from typing import Iterable, Iterator

import moderngl
import numpy as np

from .camera import Camera
from .scene import Scene

logger = logging.getLogger(__name__)

INSTALL_HINT = ("install an OpenGL driver with EGL: on Debian/Ubuntu `apt-get install libegl1 libgl1-mesa-dri` "
                "(Mesa, software or GPU), or the GPU vendor's driver")


def create_context(backend: str | None = "egl") -> moderngl.Context:
    """A standalone OpenGL 3.3+ context; RuntimeError saying what to install when none can be made."""
    kwargs = {"require": 330}
    if backend is not None:
        kwargs["backend"] = backend
    try:
        ctx = moderngl.create_standalone_context(**kwargs)
    except Exception as exc:  # moderngl/glcontext raise plain Exception subclasses per platform
        raise RuntimeError(f"cannot create a standalone OpenGL context (backend={backend!r}): {exc}; "
                           f"{INSTALL_HINT}") from exc
    logger.info("OpenGL %s on %s", ctx.info["GL_VERSION"], ctx.info["GL_RENDERER"])
    return ctx


class Offscreen:
    """An owned headless context with a ``width`` x ``height`` RGBA8 framebuffer (multisampled when
    ``samples`` > 0, resolved before read-back)."""

    def __init__(self, width: int, height: int, *, samples: int = 0, backend: str | None = "egl"):
        if width <= 0 or height <= 0:
            raise ValueError(f"width and height must be positive, got {width}x{height}")
        if samples < 0:
            raise ValueError(f"samples must be non-negative, got {samples}")
        self.width, self.height = int(width), int(height)
        self.ctx = create_context(backend)
        self._objects: list = []
        try:
            size = (self.width, self.height)
            max_samples = self.ctx.info["GL_MAX_SAMPLES"]
            if samples > max_samples:
                raise ValueError(f"samples must be at most {max_samples} on this context, got {samples}")
            self._resolved = self._own(self.ctx.framebuffer([self._own(self.ctx.texture(size, 4))]))
            if samples:
                self.fbo = self._own(self.ctx.framebuffer([self._own(self.ctx.renderbuffer(size, 4, samples=samples))]))
            else:
                self.fbo = self._resolved
            frame_bytes = self.width * self.height * 3
            self._pixel_buffers = [self._own(self.ctx.buffer(reserve=frame_bytes)) for _ in range(2)]
        except Exception:
            self.release()
            raise

    def _own(self, resource):
        self._objects.append(resource)
        return resource

    def release(self) -> None:
        """Free the framebuffers, pixel buffers and the context; calling it again does nothing."""
        for resource in reversed(self._objects):
            resource.release()
        self._objects.clear()
        if self.ctx is not None:
            self.ctx.release()
            self.ctx = None

    def __enter__(self) -> "Offscreen":
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def _check(self, scene: Scene) -> None:
        if self.ctx is None:
            raise RuntimeError("this Offscreen has been released")
        if not isinstance(scene, Scene):
            raise TypeError(f"scene must be a Scene, got {type(scene).__name__}")
        if scene.ctx is not self.ctx:
            raise ValueError("scene was created on another context; build it with Scene(offscreen.ctx, ...)")

    def _draw(self, scene: Scene, camera: Camera) -> None:
        scene.draw(self.fbo, camera, flip_y=True)
        if self.fbo is not self._resolved:
            self.ctx.copy_framebuffer(self._resolved, self.fbo)

    def _as_image(self, data: bytes) -> np.ndarray:
        return np.frombuffer(data, dtype=np.uint8).reshape(self.height, self.width, 3)

    def render(self, scene: Scene, camera: Camera) -> np.ndarray:
        """Draw ``scene`` and read it back at once: (height, width, 3) uint8, top row first, read-only."""
        self._check(scene)
        self._draw(scene, camera)
        return self._as_image(self._resolved.read(components=3, alignment=1))

    def frames(self, scene: Scene, cameras: Iterable[Camera]) -> Iterator[np.ndarray]:
        """Yield one (height, width, 3) uint8 image per camera, read back one frame late through two
        alternating pixel buffers. ``cameras`` is consumed lazily, so a generator may ``scene.update``
        before yielding each camera; every image is a fresh read-only array the consumer may keep."""
        self._check(scene)
        pending: moderngl.Buffer | None = None
        for index, camera in enumerate(cameras):
            self._draw(scene, camera)
            target = self._pixel_buffers[index % 2]
            self._resolved.read_into(target, components=3, alignment=1)
            if pending is not None:
                yield self._as_image(pending.read())
            pending = target
        if pending is not None:
            yield self._as_image(pending.read())
