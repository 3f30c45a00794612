"""The application pipeline: a clip through a CPC model to a video of its neurons lighting up, with sound.

This is the one place where ``cpc``, ``layout`` and ``render`` meet. Each function is one step of the data
flow in DESIGN.md, and ``render_activation_video`` composes them:

1. ``AnalysisNetwork``: the model after its constant-Q front end (scaleogram ``(B, 2, F, T)`` -> encoder ->
   autoregressive model); the front end's ops are signal processing, not neurons.
2. ``Listener``: its neuron graph (the nonlinearity outputs and their connectivity) and the clip's
   activations, one float per neuron per step, heard in chunks of bounded size (``listen.ChunkedListener``:
   each chunk with the receptive field before it as context, silence before the clip). Taps pooled in time
   are held to the finest tap rate (every ``2 * hop`` samples, ~46 ms for the published model), so every step
   is shown the moment its newest sample is heard.
3. ``clip_summary.summarize``: one streaming pass for the variance of every neuron over the clip and over
   ``n_snapshots`` consecutive windows, turned into charges by ``variance_charges`` after each layer is scaled
   by its range over the clip (variances then compare across layers, whose raw activation scales differ by
   orders of magnitude). ``levels`` decides what is drawn: the model's reference levels (silence dark) or
   every layer against the clip (``light_levels``).
4. ``static_layout`` (multilevel), turned by ``landscape`` (long axis along x, input on the left), and
   ``layout.snapshots.snapshot_layouts`` (one batched run from it), composed by ``layout_from_charges``.
5. ``render_frames``: per video frame, activations interpolated between steps (a ``StepStream`` of the second
   pass's chunks) and positions along the periodic loop through the snapshots, drawn offscreen, neurons
   coloured by depth (``depth_colors``) and framed by ``view_camera``; ``write_video`` adds the sound track.

``clip_scaleogram`` and ``clip_activations`` are the same steps in one pass over a short clip, without the
silence before it (the video pipeline benchmark times them).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import nn

from immersions.cpc.model import CPC
from immersions.layout.activations import record_activations
from immersions.layout.charges import charges_from_variance
from immersions.layout.extract import extract
from immersions.layout.graph import NeuronGraph
from immersions.layout.io import load_layout, save_layout
from immersions.layout.layout import Layout
from immersions.layout.simulate import ForceLayout
from immersions.layout.snapshots import snapshot_layouts

from .animation import StepStream, Timeline
from .app_inputs import resample
from .atomic import write_png
from .camera import Camera
from .clip_listener import ClipListener
from .clip_summary import summarize
from .colormaps import colormap
from .defaults import DEFAULT_MAX_EDGES, DEFAULT_PRESET
from .levels import BRIGHT_QUANTILE, DARK_QUANTILE, Levels, clip_levels
from .listen import DEFAULT_CHUNK_SECONDS, ChunkedListener
from .loops import Loop
from .offscreen import Offscreen
from .scene import Scene
from .video import write_video

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mov")
VIDEO_PIXEL_FORMAT = "yuv420p"  # converted on the GPU: half the read-back and pipe, no conversion in ffmpeg
EXAMPLE_FRAMES = 64  # scaleogram frames of the example input used to trace the network
CHARGE_POWER = 0.5  # variance ** 0.5: busy neurons still get more room, without flinging them out
CHARGE_CAP_QUANTILE = 0.99
SNAPSHOTS = 4  # layout snapshots of a clip, each charged by its quarter of the clip
SNAPSHOT_ITERATIONS = 30  # force iterations from the static layout to each snapshot


class AnalysisNetwork(nn.Module):
    """Scaleogram ``(B, 2, F, T)`` -> contexts ``(B, T_c, D_c)``: a CPC model without its front end.

    Shares the model's encoder and autoregressive modules, so tap names are the model's own
    (``encoder.blocks.0.relu1``, ..., ``ar.blocks.8.relu``).
    """

    def __init__(self, model: CPC) -> None:
        super().__init__()
        if not isinstance(model, CPC):
            raise TypeError(f"model must be a CPC model, got {type(model).__name__}")
        self.encoder = model.encoder
        self.ar = model.ar

    def forward(self, scaleogram: torch.Tensor) -> torch.Tensor:
        return self.ar(self.encoder(scaleogram))


def clip_scaleogram(model: CPC, audio: np.ndarray) -> torch.Tensor:
    """The model's front end on a mono clip at the model's sample rate: ``(1, 2, F, T)`` on the model's device."""
    samples = check_clip(model, audio)
    device = next(model.parameters()).device
    with torch.no_grad():
        return model.scaleogram(torch.from_numpy(samples).to(device))


def check_clip(model: CPC, audio: np.ndarray) -> np.ndarray:
    """``audio`` as a mono float32 clip long enough for the model, or a ValueError saying why not."""
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim != 1:
        raise ValueError(f"audio must be mono with shape (samples,), got {samples.shape}")
    frames = len(samples) // model.config.hop
    if frames < 2 * max(spec.pool for spec in model.config.encoder):
        raise ValueError(f"audio holds {len(samples)} samples ({frames} frames of {model.config.hop}); the clip is "
                         "too short for this model, give at least a second of sound")
    return samples


def neuron_graph(network: AnalysisNetwork, n_bins: int) -> NeuronGraph:
    """The neuron graph of the network's taps, traced on a short all-zero scaleogram."""
    return extract(network, torch.zeros(1, 2, n_bins, EXAMPLE_FRAMES, device=next(network.parameters()).device))


def clip_activations(network: AnalysisNetwork, scaleogram: torch.Tensor, graph: NeuronGraph) -> np.ndarray:
    """Activations ``(T, N)`` float32 of every neuron at the finest tap rate over the clip."""
    return record_activations(network, scaleogram, graph, align="finest").values


def activation_rate(n_steps: int, n_frames: int, hop: int, sample_rate: int) -> float:
    """Activation steps per second when ``n_steps`` steps cover ``n_frames`` scaleogram frames.

    Steps are a whole number of frames; ``n_steps = ceil(n_frames / stride)``, so rounding recovers the
    stride exactly whenever the clip spans more than a few steps.
    """
    if n_steps < 2:
        raise ValueError(f"need at least 2 activation steps to place them in time, got {n_steps}")
    stride = max(round(n_frames / n_steps), 1)
    return sample_rate / (hop * stride)


class Listener:
    """What the viewer shows of a clip: the light levels of every neuron of the model's graph over time."""

    def __init__(self, model: CPC) -> None:
        self.model = model
        self.network = AnalysisNetwork(model)
        device = next(model.parameters()).device
        example = torch.zeros(1, 2, model.config.n_bins, EXAMPLE_FRAMES, device=device)
        self.graph = extract(self.network, example)
        self.chunked = ChunkedListener(model, self.network, self.graph, example)

    @property
    def rate(self) -> float:
        """Activation steps per second."""
        grid = self.chunked.grid
        return self.model.config.sample_rate / (grid.hop * grid.frames_per_step)

    def chunks(self, audio: np.ndarray, seconds: float = DEFAULT_CHUNK_SECONDS) -> Iterator[np.ndarray]:
        """Raw activations of ``audio`` (mono, at the model's rate) in blocks of consecutive steps, each about
        ``seconds`` of sound: memory bounded by the chunk, whatever the clip's length."""
        samples = check_clip(self.model, audio)
        grid = self.chunked.grid
        return self.chunked.chunks(samples, grid.chunk_frames(seconds, self.model.config.sample_rate))

    def hear(self, audio: np.ndarray) -> tuple[np.ndarray, float]:
        """Raw activations ``(T, N)`` of ``audio`` (mono, at the model's rate) and their steps per second."""
        return np.concatenate(list(self.chunks(audio))), self.rate

    @property
    def sample_rate(self) -> int:
        """The rate of the clips the model hears."""
        return self.model.config.sample_rate

    def check(self, audio: np.ndarray) -> np.ndarray:
        """``audio`` as a mono float32 clip long enough for the model (``check_clip``)."""
        return check_clip(self.model, audio)

    def n_steps(self, audio: np.ndarray) -> int:
        """Activation steps of the clip."""
        return self.chunked.grid.n_steps(len(audio))

    def step(self, audio: np.ndarray, index: int) -> np.ndarray:
        """Step ``index`` of the clip alone ``(N,)``."""
        return self.chunked.step(audio, index)

    def loop(self, audio: np.ndarray, values: np.ndarray | None = None, title: str | None = None) -> Loop:
        """The clip as a loop: its sound and its light levels (from ``values`` when it was heard already)."""
        if values is None:
            values, _ = self.hear(audio)
        return Loop.of(audio, light_levels(values, self.graph), title)


def listener_for(model: nn.Module) -> Listener | ClipListener:
    """The listener of a CPC model (chunked, causal) or of any other ``AudioModel`` (the whole clip at once)."""
    return Listener(model) if isinstance(model, CPC) else ClipListener(model)


def layout_charges(values: np.ndarray, n_snapshots: int, *, power: float = CHARGE_POWER,
                   cap_quantile: float = CHARGE_CAP_QUANTILE) -> tuple[np.ndarray, np.ndarray]:
    """Charges from activation variance: over the whole clip ``(N,)`` and per window ``(S, N)``.

    The clip's steps are cut into ``n_snapshots`` consecutive windows (fewer when the clip has fewer steps).
    """
    if n_snapshots < 1:
        raise ValueError(f"n_snapshots must be >= 1, got {n_snapshots}")
    windows = np.array_split(values, min(n_snapshots, len(values)), axis=0)
    return (variance_charges(values.var(axis=0), power=power, cap_quantile=cap_quantile),
            variance_charges(np.stack([window.var(axis=0) for window in windows]), power=power,
                             cap_quantile=cap_quantile))


def variance_charges(variance: np.ndarray, *, power: float = CHARGE_POWER,
                     cap_quantile: float = CHARGE_CAP_QUANTILE) -> np.ndarray:
    """Charges from variance ``(N,)`` or ``(S, N)``. Variance is heavy-tailed (in a window of the demo the largest
    is ~40x the median), so it is capped at its ``cap_quantile`` and taken to ``power`` < 1: otherwise a few
    neurons' charges set the layout's shape and the rest packs into one dense cloud."""
    capped = np.minimum(variance, np.quantile(variance, cap_quantile, axis=-1, keepdims=True))
    return charges_from_variance(capped, power=power)


def static_layout(graph: NeuronGraph, charges: np.ndarray, *, seed: int = 0, device: str | torch.device = "cpu",
                  progress: bool | None = None) -> Layout:
    """The multilevel force layout of the graph under the clip's charges (backend chosen by ``device``),
    settled on its finest level: the snapshot layouts continue from it, and a layout stopped short of rest
    would drift there under unchanged charges."""
    layout = ForceLayout(seed=seed, device=device, progress=progress).fit(graph, charges=charges)
    return layout.optimize(layout.params.max_iter, progress=progress)


def normalize_per_layer(values: np.ndarray, graph: NeuronGraph, quantile: float = 0.995, *,
                        low_quantile: float | None = None) -> np.ndarray:
    """Activations mapped to [0, 1] per layer, by the layer's ``quantile`` over the clip (deep layers with
    small activations show as clearly as the first ones; rare outliers saturate instead of dimming the rest).

    The bottom of the range is 0 (or the layer's minimum when lower), or the layer's ``low_quantile`` when given.
    """
    out = np.empty_like(values, dtype=np.float32)
    for layer in graph.layers:
        block = values[:, layer.start:layer.stop]
        high = float(np.quantile(block, quantile))
        low = min(float(block.min()), 0.0) if low_quantile is None else float(np.quantile(block, low_quantile))
        span = high - low if high > low else 1.0
        out[:, layer.start:layer.stop] = np.clip((block - low) / span, 0.0, 1.0)
    return out


def light_levels(values: np.ndarray, graph: NeuronGraph, *, dark_quantile: float = DARK_QUANTILE,
                 bright_quantile: float = BRIGHT_QUANTILE) -> np.ndarray:
    """Light levels in [0, 1] of ``clip`` mode (``levels.clip_levels``): per layer, activations up to the layer's
    ``dark_quantile`` over the clip stay dark and its ``bright_quantile`` and above are fully lit. Only strongly
    activated neurons light up, so thousands of moderately active neurons do not add up to a white blob under
    additive blending."""
    return clip_levels(values, graph, dark_quantile=dark_quantile, bright_quantile=bright_quantile).light(values)


def view_camera(snapshots: np.ndarray, aspect: float, *, core: float = 0.99, reach: float = 0.25) -> Camera:
    """A fixed camera, centred, framing every neuron of every snapshot except stragglers: a straggler lies more
    than ``reach`` times the core's extent outside the box that holds ``core`` of the neurons along each axis.
    Snapshot layouts may fling a few neurons far out, which would shrink the network to a blob; but trimming by
    quantile alone cut off the thin ends of the network itself (its tall input side lost its top and bottom)."""
    points = np.asarray(snapshots, dtype=np.float64).reshape(-1, 2)
    low, high = np.quantile(points, [(1 - core) / 2, (1 + core) / 2], axis=0)
    slack = reach * (high - low)
    kept = points[np.all((points >= low - slack) & (points <= high + slack), axis=1)]
    return Camera.fitted(np.stack([kept.min(axis=0), kept.max(axis=0)]), aspect=aspect, margin=0.05)


def depth_colors(n_layers: int) -> np.ndarray:
    """``(n_layers, 3)`` colours along viridis from the first layer to the last, each scaled to full brightness
    (its largest channel 1): where a layer lies shows as hue, how strongly a neuron fires as brightness."""
    colors = colormap("viridis", max(n_layers, 2))[:n_layers]
    return colors / colors.max(axis=1, keepdims=True)


def build_scene(offscreen: Offscreen, layout: Layout, *, camera: Camera | None = None,
                max_edges: int = DEFAULT_MAX_EDGES, seed: int = 0) -> Scene:
    """The network's scene on the offscreen context: activations already in [0, 1] (fixed range), neurons
    coloured by depth. With ``camera``, discs are 0.4 times the mean spacing of the neurons over the framed
    view (the scene's own rule over the bounding box, which stragglers stretch, would blur them together)."""
    graph = layout.graph
    point_size = None
    if camera is not None:
        xmin, ymin, xmax, ymax = camera.bounds()
        point_size = 0.4 * float(np.sqrt((xmax - xmin) * (ymax - ymin) / graph.n_vertices))
    return Scene(offscreen.ctx, layout.positions[0], graph.layer_index(), edges=graph.edges, max_edges=max_edges,
                 layer_colors=depth_colors(len(graph.layers)), point_size=point_size, normalize="fixed",
                 value_range=(0.0, 1.0), seed=seed)


def render_frames(offscreen: Offscreen, scene: Scene, camera: Camera, timeline: Timeline, snapshots: np.ndarray,
                  values: np.ndarray, pixel_format: str = "rgb24") -> Iterator[np.ndarray]:
    """Every video frame of the timeline in ``pixel_format`` (``(H, W, 3)`` uint8 for "rgb24"; see
    ``Offscreen.frames``), read back one frame late (pipelined)."""
    def cameras() -> Iterator[Camera]:
        for positions, activations in timeline.states(snapshots, values):
            scene.update(positions=positions, activations=activations)
            yield camera
    return offscreen.frames(scene, cameras(), pixel_format=pixel_format)


def layout_for_clip(graph: NeuronGraph, values: np.ndarray, *, n_snapshots: int = SNAPSHOTS,
                    snapshot_iterations: int = SNAPSHOT_ITERATIONS,
                    seed: int, device: str | torch.device = "cpu", progress: bool | None = None) -> Layout:
    """Static layout under the clip's charges, then the per-window snapshot layouts."""
    return layout_from_charges(graph, *layout_charges(values, n_snapshots), snapshot_iterations=snapshot_iterations,
                               seed=seed, device=device, progress=progress)


def layout_from_charges(graph: NeuronGraph, static_charges: np.ndarray, window_charges: np.ndarray, *,
                        snapshot_iterations: int = SNAPSHOT_ITERATIONS, seed: int, device: str | torch.device = "cpu",
                        progress: bool | None = None) -> Layout:
    """Static layout under ``static_charges`` ``(N,)``, then one snapshot layout per row of ``window_charges``."""
    logger.info("static layout of %d neurons, %d edges", graph.n_vertices, graph.n_edges)
    static = landscape(static_layout(graph, static_charges, seed=seed, device=device, progress=progress))
    logger.info("%d snapshot layouts, %d iterations each", len(window_charges), snapshot_iterations)
    return snapshot_layouts(static, window_charges, n_iter=snapshot_iterations, device=str(device), progress=progress)


def landscape(layout: Layout) -> Layout:
    """The 2-D layout turned so that its longest extent runs along x, input layers on the left: it then fills
    a wide frame, and depth reads from left to right. Forces depend on distances only, so nothing else changes."""
    points = layout.positions.reshape(-1, 2).astype(np.float64)
    centre = points.mean(axis=0)
    axis = np.linalg.eigh(np.cov((points - centre).T))[1][:, -1]
    rotation = np.array([axis, [-axis[1], axis[0]]]).T  # columns: the new x and y axes
    first, last = layout.graph.layers[0], layout.graph.layers[-1]
    along = (points.reshape(layout.positions.shape) - centre) @ axis
    if along[..., first.start:first.stop].mean() > along[..., last.start:last.stop].mean():
        rotation = -rotation  # a half turn, not a mirror image
    return layout.with_state(positions=((layout.positions - centre) @ rotation).astype(np.float32),
                             velocity=(layout.velocity @ rotation).astype(np.float32))


def reusable_layout(layout: Layout | str | Path, graph: NeuronGraph) -> Layout:
    """A given layout (or .npz path), checked to belong to ``graph``."""
    if not isinstance(layout, Layout):
        layout = load_layout(layout)
    if layout.graph.layers != graph.layers:
        raise ValueError(f"the layout holds {len(layout.graph.layers)} layers and {layout.graph.n_vertices} neurons, "
                         f"the model's graph {len(graph.layers)} layers and {graph.n_vertices} neurons: it was made "
                         "for another model; drop --layout to compute a new one")
    if layout.dims != 2:
        raise ValueError(f"the layout is {layout.dims}-D; videos draw 2-D layouts")
    return layout


def render_activation_video(model: nn.Module, audio: np.ndarray, sample_rate: int, out_path: str | Path, *,
                            width: int = 1280, height: int = 720, fps: float = 30, layout: Layout | str | Path | None = None,
                            seed: int = 0, layout_path: str | Path | None = None, still_path: str | Path | None = None,
                            activations_path: str | Path | None = None, levels: Levels | None = None,
                            sound_track: str | Path | np.ndarray | None = None,
                            n_snapshots: int = SNAPSHOTS, snapshot_iterations: int = SNAPSHOT_ITERATIONS,
                            max_edges: int = DEFAULT_MAX_EDGES, chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
                            preset: str = DEFAULT_PRESET, progress: bool | None = None) -> Path:
    """Render the video of ``model``'s neurons (a CPC model or an ``AudioModel``) listening to ``audio`` (mono, ``sample_rate``) to ``out_path``.

    The clip is heard in chunks of ``chunk_seconds`` twice: once to summarise it (charges, levels, and the
    activations written to ``activations_path`` for the viewer), once while the frames are drawn, so memory is
    bounded by the chunk, the clip and the frame, however long the clip. ``levels`` are the model's reference
    levels (``levels.model_levels``); None lights every layer against the clip. ``sound_track`` is what the
    video plays (a sound file keeps its channels; default: ``audio``).

    ``layout`` (a ``Layout`` or its .npz) is reused when given; otherwise one is computed and saved to
    ``layout_path`` (default: next to the video, ``.npz``) before any frame is drawn, so a failed or
    interrupted render can be rerun with it. ``still_path`` also writes a PNG of a busy frame.
    ``max_edges`` bounds the drawn edges (each costs fill rate on software rasterisers); ``preset`` is
    libx264's speed/size trade-off.
    """
    out_path = Path(out_path)
    if out_path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"out_path must end in one of {VIDEO_SUFFIXES} (H.264 + AAC), got {str(out_path)!r}")
    if not out_path.parent.is_dir():
        raise FileNotFoundError(f"output folder {str(out_path.parent)!r} does not exist")
    model = model.eval()
    listener = listener_for(model)
    clip = listener.check(resample(np.asarray(audio, dtype=np.float32), int(sample_rate), listener.sample_rate))
    graph = listener.graph
    n_steps, rate = listener.n_steps(clip), listener.rate
    logger.info("listening to %.1f s with %d neurons in chunks of %g s", len(clip) / listener.sample_rate,
                graph.n_vertices, chunk_seconds)
    summary = summarize(listener.chunks(clip, chunk_seconds), n_steps, graph, n_snapshots,
                        seconds_per_step=1 / rate, activations_path=activations_path, frame_rate=rate,
                        progress=progress)
    levels = levels if levels is not None else clip_levels(summary.sample, graph)
    if layout is None:
        scale = summary.layer_scale(graph) ** 2
        layout = layout_from_charges(graph, variance_charges(summary.variance / scale),
                                     variance_charges(summary.window_variance / scale),
                                     snapshot_iterations=snapshot_iterations, seed=seed,
                                     device=next(model.parameters()).device, progress=progress)
        layout_path = Path(layout_path) if layout_path is not None else out_path.with_suffix(".npz")
        save_layout(layout, layout_path)
        logger.info("saved the layout to %s", layout_path)
    else:
        layout = reusable_layout(layout, graph)
    timeline = Timeline(fps, duration=len(audio) / sample_rate, activation_rate=rate, activation_offset=1.0 / rate)
    camera = view_camera(layout.positions, width / height)
    brightness: list[np.ndarray] = []
    shown = StepStream((levels.light(block) for block in listener.chunks(clip, chunk_seconds)), n_steps,
                       on_block=lambda block: brightness.append(block.mean(axis=1)))
    track = np.asarray(audio, dtype=np.float32) if sound_track is None else sound_track
    with (Offscreen(width, height) as offscreen,
          build_scene(offscreen, layout, camera=camera, max_edges=max_edges, seed=seed) as scene):
        frames = render_frames(offscreen, scene, camera, timeline, layout.positions, shown, VIDEO_PIXEL_FORMAT)
        write_video(out_path, frames, fps, audio=track, sample_rate=None if isinstance(track, (str, Path))
                    else int(sample_rate), n_frames=timeline.n_frames, preset=preset, pixel_format=VIDEO_PIXEL_FORMAT,
                    progress=progress is not False)
        if still_path is not None:
            busy = busy_step(np.concatenate(brightness))
            seconds = min(timeline.activation_offset + busy / rate, timeline.duration)
            scene.update(positions=timeline.positions(layout.positions, seconds),
                         activations=levels.light(listener.step(clip, busy)[None])[0])
            write_png(still_path, offscreen.render(scene, camera))
    return out_path


def busy_step(brightness: np.ndarray, busy_quantile: float = 0.9) -> int:
    """The step at the ``busy_quantile`` of mean light level: a busy moment typical of the clip (the very busiest
    is often the onset of sound, where nearly every neuron fires at once)."""
    order = np.argsort(brightness, kind="stable")
    return int(order[round(busy_quantile * (len(order) - 1))])
