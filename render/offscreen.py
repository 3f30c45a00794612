"""Headless rendering: a standalone (EGL by default) context, a framebuffer and pipelined read-back.

Images come back top row first because the scene is drawn with a vertically flipped projection
(``Scene.draw(..., flip_y=True)``); nothing is flipped in numpy or ffmpeg. ``frames`` keeps two pixel
buffers: frame ``i`` is copied into one (``fbo.read_into``, asynchronous on GPUs) while the CPU maps the
other, holding frame ``i - 1``, so the GPU never waits for the consumer.

Pixel formats (``pixel_format``): ``"rgb24"`` gives ``(height, width, 3)`` images; ``"yuv420p"`` gives
video frames in ffmpeg's planar 4:2:0 layout, converted on the GPU (``shaders/yuv420p.glsl``): a
``(3 * H // 2, W)`` uint8 array holding the Y plane (``H`` rows of ``W``), then U and V (``H/2`` rows of
``W/2`` each), where ``W``, ``H`` are the size rounded up to even numbers (black padding at the right and
bottom). BT.709 in limited ("tv") range, chroma the mean of each 2x2 block (centred on it; players that
assume left siting shift chroma by a quarter pixel). Half the bytes of RGB are read back and piped, and
the encoder has no colour conversion left to do. On software rasterisers, where the conversion is bound by
texel fetches, only the tiles the scene may have lit (``Scene.footprint``) are converted; the rest of the
frame is the background's constant values.
"""
from __future__ import annotations

import logging
from typing import Iterable, Iterator

import moderngl
import numpy as np

from .camera import Camera
from .llvm_order import load_triton_first
from .scene import SOFTWARE_RENDERERS, Scene
from .shaders import load_program

logger = logging.getLogger(__name__)

PIXEL_FORMATS: tuple[str, ...] = ("rgb24", "yuv420p")
# BT.709 luma weights; limited range puts luma in [16, 235] and chroma in [16, 240] (of 255).
_KR, _KB = 0.2126, 0.0722
_KG = 1.0 - _KR - _KB
_LUMA = (219 / 255) * np.array([_KR, _KG, _KB])
_CB = (224 / 255) * np.array([-_KR, -_KG, 1.0 - _KB]) / (2.0 * (1.0 - _KB))
_CR = (224 / 255) * np.array([1.0 - _KR, -_KG, -_KB]) / (2.0 * (1.0 - _KR))
YUV420P_COEFFICIENTS = np.array([[*_LUMA, 16 / 255], [*_CB, 128 / 255], [*_CR, 128 / 255]], dtype=np.float32)
"""Rows Y, U (Cb), V (Cr): ``plane = rgb @ row[:3] + row[3]``, RGB and planes in [0, 1] (BT.709, limited range)."""
_IMAGE_UNIT = 15  # texture unit of the rendered image in the yuv420p pass, clear of the scene's units
YUV_TILE_TEXELS = 16  # on software rasterisers the yuv420p pass converts only tiles the scene may have lit

INSTALL_HINT = ("install an OpenGL driver with EGL: on Debian/Ubuntu `apt-get install libegl1 libgl1-mesa-dri` "
                "(Mesa, software or GPU), or the GPU vendor's driver")


def create_context(backend: str | None = "egl") -> moderngl.Context:
    """A standalone OpenGL 3.3+ context; RuntimeError saying what to install when none can be made."""
    load_triton_first()
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


def check_frame_size(width: int, height: int, backend: str | None = "egl") -> None:
    """Refuse, before any work, a frame the OpenGL driver cannot render (larger than its largest renderbuffer,
    texture or viewport): found out only at the first frame, it would cost the whole layout first."""
    ctx = create_context(backend)
    try:
        info = ctx.info
        limit = min(info["GL_MAX_RENDERBUFFER_SIZE"], info["GL_MAX_TEXTURE_SIZE"], *info["GL_MAX_VIEWPORT_DIMS"])
        renderer = info["GL_RENDERER"]
    finally:
        ctx.release()
    padded = yuv420p_size(width, height)
    if not 0 < min(width, height) or max(padded) > limit:
        raise ValueError(f"frame size {width}x{height} is outside what this OpenGL driver renders ({renderer}: "
                         f"1 to {limit} pixels a side)")


def yuv420p_size(width: int, height: int) -> tuple[int, int]:
    """The even ``(width, height)`` a yuv420p frame of a ``width`` x ``height`` image has (padded)."""
    return width + width % 2, height + height % 2


class _Yuv420pConverter:
    """The GPU pass from the rendered RGB texture to yuv420p planes (``shaders/yuv420p.glsl``), their
    read-back into a pixel buffer and their assembly into a frame (luma rows interleaved).

    Given the tiles that may differ from the background (``Scene.footprint``), it clears the planes to the
    background's values and converts only those tiles: in a typical frame of the demo a third of the
    frame, and the pass is bound by texel fetches on software rasterisers.
    """

    def __init__(self, ctx: moderngl.Context, image: moderngl.Texture):
        self.ctx = ctx
        self._image = image
        width, height = yuv420p_size(*image.size)
        self.shape = (3 * height // 2, width)
        self.nbytes = width * height * 3 // 2
        blocks = 2 if width % 4 == 0 else 1  # 2x2 blocks per fragment, side by side
        padded = (width, height) != tuple(image.size)
        self._objects: list = []
        self._program = self._own(load_program(ctx, "yuv420p.glsl", {"BLOCKS": blocks, "PAD": int(padded)}))
        size = (width // (2 * blocks), height // 2)
        components = (2 * blocks, 2 * blocks, blocks, blocks)
        targets = [self._own(ctx.texture(size, k)) for k in components]
        self._framebuffer = self._own(ctx.framebuffer(targets))
        self._plane_framebuffers = [self._own(ctx.framebuffer([target])) for target in targets]  # to clear
        self._plane_rows = (0, 0, 1, 2)  # row of YUV420P_COEFFICIENTS each target holds
        self.tile = (YUV_TILE_TEXELS * 2 * blocks, YUV_TILE_TEXELS * 2)  # a square of texels, in image pixels
        columns, rows = -(-width // self.tile[0]), -(-height // self.tile[1])
        self._tiles = self._own(ctx.buffer(reserve=columns * rows * 8))
        self._vao = self._own(ctx.vertex_array(self._program, [(self._tiles, "2i/i", "in_tile")]))
        self._reads = []  # (attachment, components, offset in the pixel buffer)
        offset = 0
        for attachment, k in enumerate(components):
            self._reads.append((attachment, k, offset))
            offset += size[0] * size[1] * k
        assert offset == self.nbytes
        self._luma_rows = (height // 2, width)
        for name, coefficients in zip(("u_luma", "u_cb", "u_cr"), YUV420P_COEFFICIENTS):
            self._program[name].value = tuple(float(c) for c in coefficients)
        self._program["u_image"].value = _IMAGE_UNIT
        self._program["u_target_size"].value = tuple(float(v) for v in size)

    def _own(self, resource):
        self._objects.append(resource)
        return resource

    def release(self) -> None:
        for resource in reversed(self._objects):
            resource.release()
        self._objects.clear()

    def convert_into(self, buffer: moderngl.Buffer, tiles: np.ndarray | None = None,
                     background: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> None:
        """Convert the current image and copy its planes into ``buffer`` (at least ``nbytes``): all of it, or
        only ``tiles`` ((K, 2) column, row of ``self.tile`` pixel tiles from the bottom) with every other
        pixel taken to be ``background`` (RGB in [0, 1])."""
        self.ctx.disable(moderngl.BLEND)
        self._image.use(_IMAGE_UNIT)
        if tiles is None:
            self._program["u_tile_texels"].value = 0.0
            self._framebuffer.use()
            self._framebuffer.viewport = (0, 0, *self._framebuffer.size)
            self._vao.render(moderngl.TRIANGLES, vertices=3)
        else:
            values = YUV420P_COEFFICIENTS[:, :3] @ np.asarray(background, dtype=np.float32) + YUV420P_COEFFICIENTS[:, 3]
            for framebuffer, row in zip(self._plane_framebuffers, self._plane_rows):
                framebuffer.use()
                framebuffer.clear(*(float(values[row]),) * 4)
            self._framebuffer.use()
            self._framebuffer.viewport = (0, 0, *self._framebuffer.size)
            if len(tiles):
                self._program["u_tile_texels"].value = float(YUV_TILE_TEXELS)
                self._tiles.orphan()
                self._tiles.write(np.ascontiguousarray(tiles, dtype=np.int32))
                self.ctx.enable(moderngl.PROGRAM_POINT_SIZE)
                self._vao.render(moderngl.POINTS, vertices=1, instances=len(tiles))
                self.ctx.disable(moderngl.PROGRAM_POINT_SIZE)
        for attachment, components, offset in self._reads:
            self._framebuffer.read_into(buffer, components=components, attachment=attachment, alignment=1,
                                        write_offset=offset)

    def frame(self, buffer: moderngl.Buffer) -> np.ndarray:
        """The yuv420p frame held in ``buffer``: a fresh ``shape`` uint8 array."""
        data = np.frombuffer(buffer.read(size=self.nbytes), dtype=np.uint8)
        frame = np.empty(self.shape, dtype=np.uint8)
        flat = frame.reshape(-1)
        rows, width = self._luma_rows
        luma = rows * width
        luma_rows = flat[:2 * luma].reshape(rows, 2, width)
        luma_rows[:, 0] = data[:luma].reshape(rows, width)
        luma_rows[:, 1] = data[luma:2 * luma].reshape(rows, width)
        flat[2 * luma:] = data[2 * luma:]
        return frame


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
        self._yuv: _Yuv420pConverter | None = None
        # Converting only the lit tiles pays on software rasterisers; odd sizes convert everything, so that
        # their padding stays black whatever the background.
        self._convert_tiles = (any(name in self.ctx.info["GL_RENDERER"].lower() for name in SOFTWARE_RENDERERS)
                               and self.ctx.info["GL_POINT_SIZE_RANGE"][1] >= YUV_TILE_TEXELS
                               and self.width % 2 == 0 and self.height % 2 == 0)
        try:
            size = (self.width, self.height)
            max_samples = self.ctx.info["GL_MAX_SAMPLES"]
            if samples > max_samples:
                raise ValueError(f"samples must be at most {max_samples} on this context, got {samples}")
            self._image = self._own(self.ctx.texture(size, 4))
            self._resolved = self._own(self.ctx.framebuffer([self._image]))
            if samples:
                self.fbo = self._own(self.ctx.framebuffer([self._own(self.ctx.renderbuffer(size, 4, samples=samples))]))
            else:
                self.fbo = self._resolved
            padded_width, padded_height = yuv420p_size(*size)
            frame_bytes = max(self.width * self.height * 3, padded_width * padded_height * 3 // 2)
            self._pixel_buffers = [self._own(self.ctx.buffer(reserve=frame_bytes)) for _ in range(2)]
        except Exception:
            self.release()
            raise

    def _own(self, resource):
        self._objects.append(resource)
        return resource

    def release(self) -> None:
        """Free the framebuffers, pixel buffers and the context; calling it again does nothing."""
        if self._yuv is not None:
            self._yuv.release()
            self._yuv = None
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

    def _check(self, scene: Scene, pixel_format: str) -> None:
        if self.ctx is None:
            raise RuntimeError("this Offscreen has been released")
        if not isinstance(scene, Scene):
            raise TypeError(f"scene must be a Scene, got {type(scene).__name__}")
        if scene.ctx is not self.ctx:
            raise ValueError("scene was created on another context; build it with Scene(offscreen.ctx, ...)")
        if pixel_format not in PIXEL_FORMATS:
            raise ValueError(f"pixel_format must be one of {PIXEL_FORMATS}, got {pixel_format!r}")

    def _draw(self, scene: Scene, camera: Camera) -> None:
        scene.draw(self.fbo, camera, flip_y=True)
        if self.fbo is not self._resolved:
            self.ctx.copy_framebuffer(self._resolved, self.fbo)

    def _read_into(self, buffer: moderngl.Buffer, scene: Scene, pixel_format: str) -> None:
        """Copy the frame ``scene`` drew into ``buffer`` in ``pixel_format`` (asynchronous on GPUs)."""
        if pixel_format == "rgb24":
            self._resolved.read_into(buffer, components=3, alignment=1)
            return
        if self._yuv is None:
            self._yuv = _Yuv420pConverter(self.ctx, self._image)
        if self._convert_tiles:
            self._yuv.convert_into(buffer, scene.footprint(self._yuv.tile), scene.background)
        else:
            self._yuv.convert_into(buffer)

    def _as_image(self, buffer: moderngl.Buffer, pixel_format: str) -> np.ndarray:
        if pixel_format == "rgb24":
            size = self.width * self.height * 3
            return np.frombuffer(buffer.read(size=size), dtype=np.uint8).reshape(self.height, self.width, 3)
        return self._yuv.frame(buffer)

    def render(self, scene: Scene, camera: Camera, pixel_format: str = "rgb24") -> np.ndarray:
        """Draw ``scene`` and read it back at once, top row first, read-only: (height, width, 3) uint8
        for ``"rgb24"``, a yuv420p frame for ``"yuv420p"`` (see the module docstring)."""
        self._check(scene, pixel_format)
        self._draw(scene, camera)
        self._read_into(self._pixel_buffers[0], scene, pixel_format)
        return self._as_image(self._pixel_buffers[0], pixel_format)

    def frames(self, scene: Scene, cameras: Iterable[Camera], pixel_format: str = "rgb24") -> Iterator[np.ndarray]:
        """Yield one image per camera (as ``render`` does), read back one frame late through two
        alternating pixel buffers. ``cameras`` is consumed lazily, so a generator may ``scene.update``
        before yielding each camera; every image is a fresh read-only array the consumer may keep."""
        self._check(scene, pixel_format)
        pending: moderngl.Buffer | None = None
        for index, camera in enumerate(cameras):
            self._draw(scene, camera)
            target = self._pixel_buffers[index % 2]
            self._read_into(target, scene, pixel_format)
            if pending is not None:
                yield self._as_image(pending, pixel_format)
            pending = target
        if pending is not None:
            yield self._as_image(pending, pixel_format)
