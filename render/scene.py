"""The drawing core: neurons as lit discs and edges as faint lines on a caller's moderngl context.

A ``Scene`` owns every GL object it creates (programs from ``shaders/``, buffers, textures, vertex
arrays, the index-map framebuffer) and frees them in ``release()``. It knows arrays and OpenGL only.

Data flow. ``update(positions=..., activations=...)`` keeps the new arrays on the CPU and marks them
dirty; ``draw`` uploads only what the chosen render path needs, into buffers reserved once and
orphaned before each write (no GL object is created per frame).

Activation normalisation (option ``normalize``), vectorised numpy on ``update``; the GPU only applies
it: each layer keeps a range ``(low, high)`` in a tiny ``(layers, 1)`` texture and the shaders compute
``v = clamp((a - low) / (high - low), 0, 1)``.
  - ``"layer"``: running range per layer (the min/max of every activation seen since construction or
    ``reset_range()``, always including 0 so that a zero activation stays dark). Deep layers with small
    activations are therefore as visible as the first ones. Cost per update: one ``np.fmin.reduceat``
    and one ``np.fmax.reduceat`` over N values, NaN ignored (plus one gather when vertices are not
    sorted by layer).
  - ``"global"``: the same running range shared by all layers.
  - ``"fixed"``: ``value_range`` for every layer; no per-frame work.
A neuron at ``v`` emits ``colour(v) * v`` (colormap, or its layer's colour) with radius growing from
``min_size`` to 1 times ``point_size``, additively blended on a dark background: strongly activated
neurons light up, the others stay dark.

Edges are ``GL_LINES`` through an index buffer into the same position and activation buffers as the
neurons, so moving neurons costs no extra upload. When the graph has more than ``max_edges`` edges, a
seeded uniform random subset of ``max_edges`` is drawn: choosing it costs O(E) time once at
construction, the index buffer holds 8 bytes per drawn edge, and each frame rasterises only the subset.

Render paths (``mode``):
  - ``"instanced"``: one quad per neuron (static 4-vertex strip plus per-instance position '2f/i',
    activation '1f/i' and layer '1i/i'), a disc cut by a signed distance with one pixel of
    anti-aliasing. Cost O(N) primitives per frame, bound by vertex processing and triangle setup on CPU
    rasterisers. Only neurons that emit light are instanced: a neuron at the bottom of its range is
    black, which adds nothing, so after each update the lit ones (normalised activation above 0, the
    shaders' arithmetic in float32) are gathered with numpy into their own instance buffers. In a
    typical frame of the demo most neurons are dark.
  - ``"indexmap"``: once per layout/camera/viewport, rasterise which neuron covers each pixel (its
    index and quantised distance to the centre, nearest centre winning) into an R32UI texture. Every
    frame then uploads the raw activations into a texture, runs one O(N) pass that writes each
    neuron's colour and normalised activation into an RGBA8 texture, and one pass over the
    framebuffer's 16x16-pixel tiles that contain a neuron (listed with numpy when the map is rebuilt)
    that reads two texels per pixel: O(pixels) plus one fragment per neuron per frame, no per-neuron
    triangles. Overlapping discs show the nearest neuron instead of adding up, and a neuron's colour
    is quantised to 8 bits before the anti-aliasing weight is applied, so the two paths agree up to
    those details.
  - ``"auto"``: on a software rasteriser (llvmpipe, softpipe, swrast) with at least
    ``indexmap_min_neurons`` neurons, use the index map whenever the geometry (positions, camera,
    viewport) is the same as in the previous frame, and the instanced path while it changes; otherwise
    instanced. Switches are logged.
"""
from __future__ import annotations

import logging
from typing import Sequence

import moderngl
import numpy as np

from .camera import Camera
from .colormaps import COLORMAPS, colormap as colormap_table
from .shaders import load_program
from .tiles import TILE_PX, occupied_tiles, pixel_coordinates, tiles_overlapping

logger = logging.getLogger(__name__)

MODES: tuple[str, ...] = ("auto", "instanced", "indexmap")
NORMALIZATIONS: tuple[str, ...] = ("layer", "global", "fixed")
SOFTWARE_RENDERERS: tuple[str, ...] = ("llvmpipe", "softpipe", "swrast")
NEURON_TEXTURE_SHIFT = 12  # per-neuron textures are 1 << 12 = 4096 texels wide (shift, not division, in GLSL)
MAX_INDEXMAP_NEURONS = 2**24 - 2  # index + 1 must fit in 24 bits of the map
EDGE_LIMIT = 200_000  # edges drawn by default at most; beyond it a seeded random subset
RESTING_LEVEL = 0.5  # how brightly ``Scene.rest`` lights a network shown without activations

(_UNIT_COLORMAP, _UNIT_RANGE, _UNIT_LAYER_COLOR, _UNIT_INDEX_MAP, _UNIT_ACTIVATIONS, _UNIT_LAYERS,
 _UNIT_NEURON_COLORS) = range(7)
_SAMPLER_UNITS = (("u_colormap", _UNIT_COLORMAP), ("u_layer_range", _UNIT_RANGE),
                  ("u_layer_color", _UNIT_LAYER_COLOR), ("u_index_map", _UNIT_INDEX_MAP),
                  ("u_activations", _UNIT_ACTIVATIONS), ("u_layers", _UNIT_LAYERS),
                  ("u_neuron_colors", _UNIT_NEURON_COLORS))


class _ActivationRange:
    """Per-layer normalisation range ``(low, high)``, updated with vectorised reductions."""

    def __init__(self, layer_index: np.ndarray, n_layers: int, normalize: str,
                 value_range: tuple[float, float]):
        self.normalize = normalize
        self.value_range = value_range
        sorted_already = bool(np.all(layer_index[1:] >= layer_index[:-1]))
        self._order = None if sorted_already else np.argsort(layer_index, kind="stable")
        ordered = layer_index if self._order is None else layer_index[self._order]
        self._starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        self._present = ordered[self._starts]
        self.low = np.zeros(n_layers, dtype=np.float64)
        self.high = np.zeros(n_layers, dtype=np.float64)
        self.reset()

    def reset(self) -> None:
        """Forget every activation seen so far."""
        if self.normalize == "fixed":
            self.low[:], self.high[:] = self.value_range
        else:
            self.low[:] = 0.0
            self.high[:] = 0.0

    def observe(self, activations: np.ndarray) -> None:
        """Widen the running ranges to include ``activations``."""
        if self.normalize == "fixed":
            return
        if self.normalize == "global":
            self.low[:] = np.fmin(self.low[0], np.nanmin(activations))
            self.high[:] = np.fmax(self.high[0], np.nanmax(activations))
            return
        values = activations if self._order is None else activations[self._order]
        low = np.fmin.reduceat(values, self._starts)  # fmin/fmax skip NaN activations
        high = np.fmax.reduceat(values, self._starts)
        self.low[self._present] = np.fmin(self.low[self._present], low)
        self.high[self._present] = np.fmax(self.high[self._present], high)

    def table(self) -> np.ndarray:
        """``(layers, 2)`` float32 of ``(low, 1 / (high - low))``; a flat range maps everything to 0."""
        span = self.high - self.low
        inverse = np.divide(1.0, span, out=np.zeros_like(span), where=span > 0)
        return np.stack([self.low, inverse], axis=1).astype(np.float32)


def _as_positions(positions: np.ndarray, n: int | None) -> np.ndarray:
    array = np.ascontiguousarray(positions, dtype=np.float32)
    if array.ndim != 2 or array.shape[1] != 2 or len(array) == 0:
        raise ValueError(f"positions must have shape (N, 2) with N > 0, got {np.shape(positions)}")
    if n is not None and len(array) != n:
        raise ValueError(f"positions must have shape ({n}, 2) like the scene, got {array.shape}")
    return array


def _as_activations(activations: np.ndarray, n: int) -> np.ndarray:
    array = np.ascontiguousarray(activations, dtype=np.float32)
    if array.shape != (n,):
        raise ValueError(f"activations must have shape ({n},), got {np.shape(activations)}")
    return array


def _as_layer_index(layer_index: np.ndarray | None, n: int) -> np.ndarray:
    if layer_index is None:
        return np.zeros(n, dtype=np.int32)
    array = np.asarray(layer_index)
    if array.shape != (n,) or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"layer_index must be an integer array of shape ({n},), "
                         f"got {array.dtype} {array.shape}")
    if array.min() < 0:
        raise ValueError(f"layer_index must be non-negative, got minimum {array.min()}")
    return np.ascontiguousarray(array, dtype=np.int32)


def _subset_edges(edges: np.ndarray, n: int, max_edges: int, seed: int) -> np.ndarray:
    """Validated edges as uint32 pairs; a seeded random subset of ``max_edges`` when there are more."""
    array = np.asarray(edges)
    if array.ndim != 2 or array.shape[1] != 2 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"edges must be an integer array of shape (E, 2), got {array.dtype} {array.shape}")
    if len(array) and (array.min() < 0 or array.max() >= n):
        raise ValueError(f"edges must index vertices in [0, {n}), got range [{array.min()}, {array.max()}]")
    if max_edges < 0:
        raise ValueError(f"max_edges must be non-negative, got {max_edges}")
    if len(array) > max_edges:
        chosen = np.sort(np.random.default_rng(seed).choice(len(array), size=max_edges, replace=False))
        logger.info("drawing a random subset of %d of %d edges (seed %d)", max_edges, len(array), seed)
        array = array[chosen]
    return np.ascontiguousarray(array, dtype=np.uint32)


def _default_point_size(positions: np.ndarray) -> float:
    """A disc radius of 0.4 times the mean spacing of N points spread over their bounding box."""
    extent = positions.max(axis=0) - positions.min(axis=0)
    side = float(max(extent.max(), 1e-6))
    area = float(np.prod(np.maximum(extent, side * 1e-3)))
    spacing = np.sqrt(area / len(positions)) if len(positions) > 1 else 1.0
    return 0.4 * spacing


def _set_uniform(program: moderngl.Program, name: str, value) -> None:
    """Set ``name`` if the compiler kept it (unused uniforms are optimised away)."""
    member = program.get(name, None)
    if member is None:
        return
    if isinstance(value, bytes):
        member.write(value)
    else:
        member.value = value


def _live_framebuffer(ctx: moderngl.Context) -> moderngl.Framebuffer:
    """The bound framebuffer, or the default one (bound now) when none is or it has been released:
    moderngl rebinds ``ctx.fbo`` after creating a framebuffer, which fails on a deleted one."""
    bound = ctx.fbo
    if bound is None or isinstance(bound.mglo, moderngl.InvalidObject):
        bound = ctx.detect_framebuffer(0)
        bound.use()
    return bound


class _IndexMap:
    """GL objects and passes of the index-map path (see the module docstring), for one scene.

    Per frame: upload raw activations (N floats) into a texture, one O(N) pass writing every neuron's
    colour and normalised activation into an RGBA8 texture, one O(pixels) pass over the occupied tiles
    reading two texels per pixel. The index map itself (R32UI: neuron index and quantised distance to
    its centre) and the list of occupied tiles are rebuilt only when ``key`` (positions, camera,
    viewport) changes.
    """

    def __init__(self, ctx: moderngl.Context, quad: moderngl.Buffer, positions: moderngl.Buffer,
                 layer_index: np.ndarray, defines: dict):
        n = len(layer_index)
        if n > MAX_INDEXMAP_NEURONS:
            raise ValueError(f"mode 'indexmap' supports at most {MAX_INDEXMAP_NEURONS} neurons, got {n}")
        self.ctx, self.n = ctx, n
        self._objects: list = []
        own = self._own
        self.map_program = own(load_program(ctx, "index_map.glsl"))
        self.color_program = own(load_program(ctx, "neuron_colors.glsl", defines))
        self.resolve_program = own(load_program(
            ctx, "index_resolve.glsl", {**defines, "NEURON_TEXTURE_SHIFT": NEURON_TEXTURE_SHIFT}))
        columns = 1 << NEURON_TEXTURE_SHIFT
        rows = -(-n // columns)
        self.staging = np.zeros(columns * rows, dtype=np.float32)
        layers = np.zeros(columns * rows, dtype=np.int32)
        layers[:n] = layer_index
        self.activations = own(ctx.texture((columns, rows), 1, dtype="f4"))
        self.layers = own(ctx.texture((columns, rows), 1, layers, dtype="i4"))
        self.colors = own(ctx.texture((columns, rows), 4))
        for texture in (self.activations, self.layers, self.colors):
            texture.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self.color_framebuffer = own(ctx.framebuffer([self.colors]))
        self.map_vao = own(ctx.vertex_array(self.map_program, [
            (quad, "2f", "in_corner"), (positions, "2f/i", "in_position")]))
        self.color_vao = own(ctx.vertex_array(self.color_program, []))
        self.quad = quad
        self.map_framebuffer = self.map_texture = self.map_depth = None
        self.tiles = self.resolve_vao = None
        self.n_tiles = 0
        self.key: tuple | None = None

    def _own(self, resource):
        self._objects.append(resource)
        return resource

    @property
    def programs(self) -> tuple[moderngl.Program, ...]:
        return self.map_program, self.color_program, self.resolve_program

    def _release_map(self) -> None:
        for resource in (self.resolve_vao, self.tiles, self.map_framebuffer, self.map_texture, self.map_depth):
            if resource is not None:
                resource.release()
        self.map_framebuffer = self.map_texture = self.map_depth = self.tiles = self.resolve_vao = None
        self.key = None

    def release(self) -> None:
        self._release_map()
        for resource in reversed(self._objects):
            resource.release()
        self._objects.clear()

    def write_activations(self, activations: np.ndarray) -> None:
        self.staging[:self.n] = activations
        self.activations.write(self.staging)

    def _rebuild(self, key: tuple, width: int, height: int, positions: np.ndarray, projection: np.ndarray,
                 extent_px: float) -> None:
        """Rasterise the index map and list the occupied tiles for the geometry ``key`` describes
        (uniforms are already set)."""
        if self.map_texture is None or self.map_texture.size != (width, height):
            self._release_map()
            self.map_texture = self.ctx.texture((width, height), 1, dtype="u4")
            self.map_texture.filter = (moderngl.NEAREST, moderngl.NEAREST)
            self.map_depth = self.ctx.depth_renderbuffer((width, height))
            self.map_framebuffer = self.ctx.framebuffer([self.map_texture], self.map_depth)
            all_tiles = -(-width // TILE_PX) * -(-height // TILE_PX)
            self.tiles = self.ctx.buffer(reserve=all_tiles * 8)
            self.resolve_vao = self.ctx.vertex_array(self.resolve_program, [
                (self.quad, "2f", "in_corner"), (self.tiles, "2i/i", "in_tile")])
        tiles = occupied_tiles(positions, projection, (width, height), extent_px)
        self.tiles.orphan()
        self.tiles.write(tiles)
        self.n_tiles = len(tiles)
        self.map_framebuffer.use()
        self.map_framebuffer.viewport = (0, 0, width, height)
        self.map_framebuffer.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        self.ctx.disable(moderngl.BLEND)
        self.ctx.enable(moderngl.DEPTH_TEST)
        self.ctx.depth_func = "<"
        self.map_vao.render(moderngl.TRIANGLE_STRIP, vertices=4, instances=self.n)
        self.ctx.disable(moderngl.DEPTH_TEST)
        self.key = key
        logger.debug("rebuilt the %dx%d index map of %d neurons, %d occupied tiles",
                     width, height, self.n, self.n_tiles)

    def _recolor(self) -> None:
        """The O(N) pass: colour and normalised activation of every neuron."""
        self.color_framebuffer.use()
        self.color_framebuffer.viewport = (0, 0, *self.colors.size)
        self.activations.use(_UNIT_ACTIVATIONS)
        self.layers.use(_UNIT_LAYERS)
        self.color_vao.render(moderngl.TRIANGLES, vertices=3)

    def draw(self, framebuffer: moderngl.Framebuffer, key: tuple, positions: np.ndarray,
             projection: np.ndarray, extent_px: float, background: tuple | None, recolor: bool) -> None:
        """Draw the neurons onto ``framebuffer``: replacing its content with ``background`` plus the
        neurons, or adding to it when ``background`` is None. ``recolor`` says that activations or
        ranges changed since the last draw. Leaves additive blending enabled."""
        width, height = framebuffer.size
        if key != self.key:
            self._rebuild(key, width, height, positions, projection, extent_px)
        self.ctx.disable(moderngl.BLEND)
        if recolor:
            self._recolor()
        framebuffer.use()
        framebuffer.viewport = (0, 0, width, height)
        if background is not None:
            framebuffer.clear(*background, 1.0)
            self.resolve_program["u_base"].value = (*background, 1.0)
        else:
            self.resolve_program["u_base"].value = (0.0, 0.0, 0.0, 0.0)
            self.ctx.enable(moderngl.BLEND)
        _set_uniform(self.resolve_program, "u_tile_px", float(TILE_PX))
        self.map_texture.use(_UNIT_INDEX_MAP)
        self.colors.use(_UNIT_NEURON_COLORS)
        self.resolve_vao.render(moderngl.TRIANGLE_STRIP, vertices=4, instances=self.n_tiles)
        self.ctx.enable(moderngl.BLEND)


class Scene:
    """Neurons (instanced discs or index map) and edges of one network on a moderngl context.

    ``positions`` (N, 2) world coordinates; ``layer_index`` (N,) layer of each neuron (normalisation
    and layer colours; all 0 when None); ``edges`` (E, 2) vertex pairs, at most ``max_edges`` drawn
    (seeded subset, ``seed``); ``colormap`` one of ``colormaps.COLORMAPS``, or ``layer_colors``
    (layers, 3) RGB in [0, 1] to colour by layer instead; ``point_size`` disc radius in world units
    at full activation (default 0.4 times the mean spacing), never below ``min_point_px`` pixels, and
    ``min_size`` times it at zero activation; ``normalize`` "layer" | "global" | "fixed" (with
    ``value_range``); ``mode`` "auto" | "instanced" | "indexmap" (``indexmap_min_neurons`` for auto);
    ``edge_alpha``, ``edge_floor`` (share of the intensity kept between silent neurons) and
    ``edge_color`` for the lines; ``background`` RGB used when ``draw`` clears. These attributes may be
    changed between draws: ``show_edges``, ``mode``, ``point_size``, ``min_point_px``, ``min_size``,
    ``edge_alpha``, ``edge_floor``, ``edge_color``, ``background``.
    """

    def __init__(self, ctx: moderngl.Context, positions: np.ndarray, layer_index: np.ndarray | None = None,
                 *, edges: np.ndarray | None = None, colormap: str = "inferno",
                 layer_colors: np.ndarray | None = None, point_size: float | None = None,
                 min_point_px: float = 1.0, min_size: float = 0.5, max_edges: int = EDGE_LIMIT,
                 normalize: str = "layer", value_range: tuple[float, float] = (0.0, 1.0),
                 mode: str = "auto", indexmap_min_neurons: int = 20_000, edge_alpha: float = 0.04,
                 edge_floor: float = 0.25, edge_color: Sequence[float] = (0.55, 0.65, 1.0),
                 background: Sequence[float] = (0.0, 0.0, 0.0), seed: int = 0):
        if not isinstance(ctx, moderngl.Context):
            raise TypeError(f"ctx must be a moderngl.Context, got {type(ctx).__name__}")
        if colormap not in COLORMAPS:
            raise ValueError(f"colormap must be one of {COLORMAPS}, got {colormap!r}")
        if normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
        if not value_range[1] > value_range[0]:
            raise ValueError(f"value_range must be (low, high) with low < high, got {value_range}")
        if point_size is not None and not point_size > 0:
            raise ValueError(f"point_size must be positive, got {point_size}")
        self.ctx = ctx
        self._positions = _as_positions(positions, None)
        self.n_neurons = len(self._positions)
        self._layer_index = _as_layer_index(layer_index, self.n_neurons)
        self.n_layers = int(self._layer_index.max()) + 1
        if self.n_layers > ctx.info["GL_MAX_TEXTURE_SIZE"]:
            raise ValueError(f"layer_index has {self.n_layers} layers, more than this context supports "
                             f"({ctx.info['GL_MAX_TEXTURE_SIZE']})")
        self._activations = np.zeros(self.n_neurons, dtype=np.float32)
        self._range = _ActivationRange(self._layer_index, self.n_layers, normalize,
                                       (float(value_range[0]), float(value_range[1])))
        self.mode = mode
        self.point_size = float(point_size) if point_size is not None else _default_point_size(self._positions)
        self.min_point_px = float(min_point_px)
        self.min_size = float(min_size)
        self.indexmap_min_neurons = int(indexmap_min_neurons)
        self.edge_alpha, self.edge_floor = float(edge_alpha), float(edge_floor)
        self.edge_color = tuple(float(c) for c in edge_color)
        self.background = tuple(float(c) for c in background)
        self._software = any(name in ctx.info["GL_RENDERER"].lower() for name in SOFTWARE_RENDERERS)
        self._resources: list = []
        self._released = False
        self._neuron_program = self._edge_program = self._edge_vao = self._layer_color_texture = None
        self._index_map: _IndexMap | None = None

        colors = None
        if layer_colors is not None:
            colors = np.ascontiguousarray(layer_colors, dtype=np.float32)
            if colors.ndim != 2 or colors.shape[1] != 3 or len(colors) < self.n_layers:
                raise ValueError(f"layer_colors must have shape (layers >= {self.n_layers}, 3), got {colors.shape}")
        pairs = None if edges is None else _subset_edges(edges, self.n_neurons, int(max_edges), seed)
        self.n_edges_drawn = 0 if pairs is None else len(pairs)
        self._edge_pairs = pairs
        self._last_view: tuple | None = None  # (projection, framebuffer size, disc extent) of the last draw
        defines = {"LAYER_COLORS": int(colors is not None)}
        try:
            self._create_objects(defines, colormap, colors, pairs)
        except Exception:
            self.release()
            raise
        self.show_edges = self._edge_vao is not None
        self._defines = defines
        self._previous_key: tuple | None = None
        self._previous_mode: str | None = None
        self._positions_version = 0
        # What changed since it was last sent to the GPU; "colors" is the index map's per-neuron colours.
        self._dirty = {"positions": True, "activation_buffer": True, "activation_texture": True, "range": True,
                       "colors": True, "lit": True}
        self._n_lit = 0

    # ---- resources -------------------------------------------------------------------------------
    def _create_objects(self, defines: dict, colormap: str, layer_colors: np.ndarray | None,
                        edges: np.ndarray | None) -> None:
        """Programs, buffers, textures and vertex arrays of the instanced path and the edges."""
        ctx = self.ctx
        self._neuron_program = self._own(load_program(ctx, "neurons.glsl", defines))
        self._quad = self._own(ctx.buffer(np.array([-1, -1, 1, -1, -1, 1, 1, 1], dtype=np.float32)))
        self._position_buffer = self._own(ctx.buffer(reserve=self._positions.nbytes))
        self._activation_buffer = self._own(ctx.buffer(reserve=self._activations.nbytes))
        self._layer_buffer = self._own(ctx.buffer(self._layer_index))
        self._lit_buffers = {name: self._own(ctx.buffer(reserve=array.nbytes)) for name, array in (
            ("positions", self._positions), ("activations", self._activations), ("layers", self._layer_index))}
        self._colormap = self._own(ctx.texture((256, 1), 3, colormap_table(colormap).tobytes(), dtype="f4"))
        self._colormap.repeat_x = self._colormap.repeat_y = False
        self._range_texture = self._own(ctx.texture((self.n_layers, 1), 2, dtype="f4"))
        self._range_texture.filter = (moderngl.NEAREST, moderngl.NEAREST)
        if layer_colors is not None:
            self._layer_color_texture = self._own(ctx.texture((len(layer_colors), 1), 3, layer_colors, dtype="f4"))
            self._layer_color_texture.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self._neuron_vao = self._own(ctx.vertex_array(self._neuron_program, [
            (self._quad, "2f", "in_corner"),
            (self._lit_buffers["positions"], "2f/i", "in_position"),
            (self._lit_buffers["activations"], "1f/i", "in_activation"),
            (self._lit_buffers["layers"], "1i/i", "in_layer"),
        ]))
        if edges is not None and len(edges):
            self._edge_program = self._own(load_program(ctx, "edges.glsl", defines))
            index_buffer = self._own(ctx.buffer(edges))
            self._edge_vao = self._own(ctx.vertex_array(self._edge_program, [
                (self._position_buffer, "2f", "in_position"),
                (self._activation_buffer, "1f", "in_activation"),
                (self._layer_buffer, "1i", "in_layer"),
            ], index_buffer=index_buffer, index_element_size=4))

    def _own(self, resource):
        """Remember a GL object so that ``release`` frees it."""
        self._resources.append(resource)
        return resource

    def _programs(self) -> list[moderngl.Program]:
        programs = [self._neuron_program, self._edge_program]
        if self._index_map is not None:
            programs += self._index_map.programs
        return [p for p in programs if p is not None]

    def _set_shared_uniforms(self, program: moderngl.Program) -> None:
        for name, unit in _SAMPLER_UNITS:
            _set_uniform(program, name, unit)
        _set_uniform(program, "u_min_size", self.min_size)

    def release(self) -> None:
        """Free every GL object this scene created; calling it again does nothing."""
        if self._released:
            return
        if self._index_map is not None:
            self._index_map.release()
            self._index_map = None
        for resource in reversed(self._resources):
            resource.release()
        self._resources.clear()
        self._released = True

    def __enter__(self) -> "Scene":
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    # ---- data ------------------------------------------------------------------------------------
    @property
    def positions(self) -> np.ndarray:
        """Current neuron positions, (N, 2) float32 (read-only view)."""
        view = self._positions.view()
        view.flags.writeable = False
        return view

    @property
    def mode(self) -> str:
        """Requested render path: "auto", "instanced" or "indexmap" (may be changed between draws)."""
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self._mode = mode

    @property
    def last_mode(self) -> str | None:
        """The render path the last ``draw`` took ("instanced" or "indexmap"), None before any draw."""
        return self._previous_mode

    @property
    def layer_range(self) -> np.ndarray:
        """Current normalisation range per layer, (layers, 2) float64 of (low, high)."""
        return np.stack([self._range.low, self._range.high], axis=1)

    def update(self, positions: np.ndarray | None = None, activations: np.ndarray | None = None) -> None:
        """Replace positions and/or activations; only what changed is uploaded at the next draw."""
        if positions is not None:
            self._positions = _as_positions(positions, self.n_neurons).copy()
            self._positions_version += 1
            self._dirty.update(positions=True, lit=True)
        if activations is not None:
            self._activations = _as_activations(activations, self.n_neurons).copy()
            self._range.observe(self._activations)
            self._dirty.update(activation_buffer=True, activation_texture=True, range=True, colors=True, lit=True)

    def rest(self, level: float = RESTING_LEVEL) -> None:
        """Light every neuron dimly at ``level`` of full brightness, on a fixed range from now on: a layout
        shown without activations shows the network, not a black window."""
        self._range = _ActivationRange(self._layer_index, self.n_layers, "fixed", (0.0, 1.0))
        self.update(activations=np.full(self.n_neurons, level, np.float32))

    def reset_range(self) -> None:
        """Forget the running normalisation ranges (``normalize`` "layer" or "global")."""
        self._range.reset()
        self._dirty.update(range=True, colors=True, lit=True)

    def _upload(self, key: str, write) -> None:
        if self._dirty[key]:
            write()
            self._dirty[key] = False

    def _write_buffer(self, buffer: moderngl.Buffer, data: np.ndarray) -> None:
        buffer.orphan()
        buffer.write(data)

    def _lit_neurons(self) -> np.ndarray:
        """Indices of the neurons whose normalised activation is above 0, computed as the shaders do."""
        table = self._range.table()[self._layer_index]
        return np.flatnonzero((self._activations - table[:, 0]) * table[:, 1] > 0)

    def _upload_lit(self) -> None:
        """Gather the lit neurons into the instance buffers of the instanced path."""
        lit = self._lit_neurons()
        for name, array in (("positions", self._positions), ("activations", self._activations),
                            ("layers", self._layer_index)):
            self._write_buffer(self._lit_buffers[name], array[lit])
        self._n_lit = len(lit)

    def _upload_buffers(self) -> None:
        self._upload("positions", lambda: self._write_buffer(self._position_buffer, self._positions))
        self._upload("activation_buffer", lambda: self._write_buffer(self._activation_buffer, self._activations))

    # ---- drawing ---------------------------------------------------------------------------------
    def _choose_mode(self, key: tuple) -> str:
        if self.mode != "auto":
            chosen, reason = self.mode, "requested"
        elif not self._software:
            chosen, reason = "instanced", "hardware rasteriser"
        elif self.n_neurons < self.indexmap_min_neurons:
            chosen, reason = "instanced", f"{self.n_neurons} < {self.indexmap_min_neurons} neurons"
        elif key == self._previous_key or (self._index_map is not None and key == self._index_map.key):
            chosen, reason = "indexmap", "software rasteriser and the geometry is unchanged"
        else:
            chosen, reason = "instanced", "software rasteriser and the geometry is changing"
        if chosen != self._previous_mode:
            logger.info("render mode %s (%s)", chosen, reason)
        self._previous_key, self._previous_mode = key, chosen
        return chosen

    def draw(self, framebuffer: moderngl.Framebuffer, camera: Camera, *, flip_y: bool = False,
             clear: bool = True) -> None:
        """Draw onto ``framebuffer`` seen through ``camera``. ``flip_y`` mirrors the image vertically
        (for offscreen read-back, top row first). Leaves additive blending enabled."""
        if self._released:
            raise RuntimeError("draw called on a released Scene")
        if not isinstance(camera, Camera):
            raise TypeError(f"camera must be a Camera, got {type(camera).__name__}")
        width, height = framebuffer.size
        projection = camera.matrix(aspect=width / height, flip_y=flip_y)
        radius_px = self.point_size * height / camera.height
        extent_px = max(radius_px, self.min_point_px) + 1.0  # largest disc plus its anti-aliased rim
        self._last_view = (projection, (width, height), extent_px)
        framebuffer.use()
        framebuffer.viewport = (0, 0, width, height)
        self.ctx.disable(moderngl.DEPTH_TEST | moderngl.CULL_FACE)
        self.ctx.enable(moderngl.BLEND)
        self.ctx.blend_func = moderngl.ONE, moderngl.ONE
        self.ctx.blend_equation = moderngl.FUNC_ADD
        key = (self._positions_version, projection.tobytes(), width, height, radius_px, extent_px)
        mode = self._choose_mode(key)
        if mode == "indexmap" and self._index_map is None:
            self._index_map = _IndexMap(self.ctx, self._quad, self._position_buffer, self._layer_index,
                                        self._defines)
            self._dirty.update(activation_texture=True, colors=True)
        self._upload("range", lambda: self._range_texture.write(self._range.table()))
        self._colormap.use(_UNIT_COLORMAP)
        self._range_texture.use(_UNIT_RANGE)
        if self._layer_color_texture is not None:
            self._layer_color_texture.use(_UNIT_LAYER_COLOR)
        for program in self._programs():
            self._set_shared_uniforms(program)
            _set_uniform(program, "u_projection", projection.tobytes())
            _set_uniform(program, "u_viewport", (float(width), float(height)))
            _set_uniform(program, "u_radius_px", radius_px)
            _set_uniform(program, "u_min_radius_px", self.min_point_px)
            _set_uniform(program, "u_extent_px", extent_px)

        if mode == "indexmap":
            self._upload("positions", lambda: self._write_buffer(self._position_buffer, self._positions))
            self._upload("activation_texture", lambda: self._index_map.write_activations(self._activations))
            self._index_map.draw(framebuffer, key, self._positions, projection, extent_px,
                                 self.background if clear else None, recolor=self._dirty["colors"])
            self._dirty["colors"] = False
        else:
            if clear:
                framebuffer.clear(*self.background, 1.0)
            self._upload("lit", self._upload_lit)
            if self._n_lit:
                self._neuron_vao.render(moderngl.TRIANGLE_STRIP, vertices=4, instances=self._n_lit)
        if self.show_edges and self._edge_vao is not None:
            self._upload_buffers()
            self._edge_program["u_edge_alpha"].value = self.edge_alpha
            self._edge_program["u_edge_floor"].value = self.edge_floor
            self._edge_program["u_edge_color"].value = self.edge_color
            self._edge_vao.render(moderngl.LINES)

    def footprint(self, tile: tuple[int, int]) -> np.ndarray:
        """``(K, 2)`` int32 (column, row from the bottom, as ``gl_FragCoord``) of the ``tile`` (width, height)
        pixel tiles of the last draw's framebuffer that it may have lit: those overlapping the box of a lit
        neuron's disc or of a drawn edge (plus a pixel of slack). Every other pixel holds the background.
        O(lit neurons + edges) numpy."""
        if self._last_view is None:
            raise RuntimeError("footprint needs a draw first")
        projection, size, extent_px = self._last_view
        centres = pixel_coordinates(self._positions[self._lit_neurons()], projection, size)
        low, high = [centres - (extent_px + 1.0)], [centres + (extent_px + 1.0)]
        if self.show_edges and self._edge_pairs is not None:
            ends = pixel_coordinates(self._positions[self._edge_pairs.reshape(-1)], projection, size)
            low.append(np.minimum(ends[0::2], ends[1::2]) - 2.0)
            high.append(np.maximum(ends[0::2], ends[1::2]) + 2.0)
        return tiles_overlapping(np.concatenate(low), np.concatenate(high), size, tile)

    # ---- convenience -----------------------------------------------------------------------------
    def fitted_camera(self, aspect: float = 1.0, margin: float = 0.05) -> Camera:
        """A camera showing every neuron (including its full disc)."""
        return Camera.fitted(self._positions, aspect, margin=margin, radius=self.point_size)

    def snapshot(self, width: int, height: int, camera: Camera | None = None) -> np.ndarray:
        """Render once into a temporary framebuffer; returns (height, width, 4) RGBA uint8, top row first
        (for notebooks and PNG files)."""
        if width <= 0 or height <= 0:
            raise ValueError(f"width and height must be positive, got {width}x{height}")
        camera = camera if camera is not None else self.fitted_camera(width / height)
        previous = _live_framebuffer(self.ctx)
        texture = self.ctx.texture((width, height), 4)
        framebuffer = self.ctx.framebuffer([texture])
        try:
            self.draw(framebuffer, camera, flip_y=True)
            pixels = framebuffer.read(components=4, alignment=1)
        finally:
            previous.use()
            framebuffer.release()
            texture.release()
        return np.frombuffer(pixels, dtype=np.uint8).reshape(height, width, 4).copy()
