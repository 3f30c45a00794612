"""The application pipeline: a clip through a CPC model to a video of its neurons lighting up, with sound.

This is the one place where ``cpc``, ``layout`` and ``render`` meet. Each function is one step of the data
flow in DESIGN.md, and ``render_activation_video`` composes them:

1. ``AnalysisNetwork``: the model after its constant-Q front end (scaleogram ``(B, 2, F, T)`` -> encoder ->
   autoregressive model); the front end's ops are signal processing, not neurons.
2. ``neuron_graph``: its nonlinearity outputs (the taps) and their connectivity.
3. ``clip_activations``: one float per neuron per activation step over the clip. Taps pooled in time are
   held to the finest tap rate (every ``2 * hop`` samples, ~46 ms for the published model), so every step
   is shown the moment its newest sample is heard.
4. ``normalize_per_layer`` maps each layer's activations to [0, 1] (what is drawn), and ``layout_charges``
   turns their variance into charges, over the whole clip (static layout) and over ``n_snapshots``
   consecutive windows (snapshot layouts). Normalising first makes variances comparable across layers,
   whose raw activation scales differ by orders of magnitude.
5. ``static_layout`` (multilevel) and ``layout.snapshots.snapshot_layouts`` (one batched run from the
   static layout), composed by ``layout_for_clip``.
6. ``render_frames``: per video frame, activations interpolated between steps and positions along the
   periodic loop through the snapshots, drawn offscreen; ``write_video`` adds the clip as the sound track.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import imageio.v3 as iio
import numpy as np
import torch
from torch import nn

from immersions.cpc.model import CPC
from immersions.layout.activations import Activations, record_activations
from immersions.layout.charges import charges_from_variance
from immersions.layout.extract import extract
from immersions.layout.graph import NeuronGraph
from immersions.layout.io import load_layout, save_layout
from immersions.layout.layout import Layout
from immersions.layout.simulate import ForceLayout
from immersions.layout.snapshots import snapshot_layouts

from .animation import Timeline
from .app_inputs import resample
from .camera import Camera
from .offscreen import Offscreen
from .scene import Scene
from .video import write_video

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mov")
DEFAULT_MAX_EDGES = 5_000  # faint context lines; each costs fill rate on software rasterisers
DEFAULT_PRESET = "superfast"  # libx264: ~1.6x faster than veryfast at ~1.2x the size
EXAMPLE_FRAMES = 64  # scaleogram frames of the example input used to trace the network


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
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim != 1:
        raise ValueError(f"audio must be mono with shape (samples,), got {samples.shape}")
    frames = len(samples) // model.config.hop
    if frames < 2 * max(spec.pool for spec in model.config.encoder):
        raise ValueError(f"audio holds {len(samples)} samples ({frames} frames of {model.config.hop}); the clip is "
                         "too short for this model, give at least a second of sound")
    device = next(model.parameters()).device
    with torch.no_grad():
        return model.scaleogram(torch.from_numpy(samples).to(device))


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


def layout_charges(values: np.ndarray, n_snapshots: int) -> tuple[np.ndarray, np.ndarray]:
    """Charges from activation variance: over the whole clip ``(N,)`` and per window ``(S, N)``.

    The clip's steps are cut into ``n_snapshots`` consecutive windows (fewer when the clip has fewer steps).
    """
    if n_snapshots < 1:
        raise ValueError(f"n_snapshots must be >= 1, got {n_snapshots}")
    windows = np.array_split(values, min(n_snapshots, len(values)), axis=0)
    per_window = np.stack([window.var(axis=0) for window in windows])
    return charges_from_variance(values.var(axis=0)), charges_from_variance(per_window)


def static_layout(graph: NeuronGraph, charges: np.ndarray, *, seed: int = 0, device: str | torch.device = "cpu",
                  progress: bool | None = None) -> Layout:
    """The multilevel force layout of the graph under the clip's charges (backend chosen by ``device``)."""
    return ForceLayout(seed=seed, device=device, progress=progress).fit(graph, charges=charges)


def normalize_per_layer(values: np.ndarray, graph: NeuronGraph, quantile: float = 0.995) -> np.ndarray:
    """Activations mapped to [0, 1] per layer, by the layer's ``quantile`` over the clip (deep layers with
    small activations show as clearly as the first ones; rare outliers saturate instead of dimming the rest)."""
    out = np.empty_like(values, dtype=np.float32)
    for layer in graph.layers:
        block = values[:, layer.start:layer.stop]
        low = min(float(block.min()), 0.0)
        high = float(np.quantile(block, quantile))
        span = high - low if high > low else 1.0
        out[:, layer.start:layer.stop] = np.clip((block - low) / span, 0.0, 1.0)
    return out


def view_camera(snapshots: np.ndarray, aspect: float, coverage: float = 0.995) -> Camera:
    """A fixed camera framing ``coverage`` of the neurons of every snapshot (stragglers may leave the view)."""
    points = np.asarray(snapshots, dtype=np.float64).reshape(-1, 2)
    corners = np.quantile(points, [(1 - coverage) / 2, (1 + coverage) / 2], axis=0)
    return Camera.fitted(corners, aspect=aspect, margin=0.05)


def build_scene(offscreen: Offscreen, layout: Layout, *, max_edges: int = DEFAULT_MAX_EDGES, seed: int = 0) -> Scene:
    """The network's scene on the offscreen context: activations already in [0, 1] (fixed range)."""
    graph = layout.graph
    return Scene(offscreen.ctx, layout.positions[0], graph.layer_index(), edges=graph.edges, max_edges=max_edges,
                 normalize="fixed", value_range=(0.0, 1.0), seed=seed)


def render_frames(offscreen: Offscreen, scene: Scene, camera: Camera, timeline: Timeline, snapshots: np.ndarray,
                  values: np.ndarray) -> Iterator[np.ndarray]:
    """Every video frame of the timeline, ``(H, W, 3)`` uint8, read back one frame late (pipelined)."""
    def cameras() -> Iterator[Camera]:
        for positions, activations in timeline.states(snapshots, values):
            scene.update(positions=positions, activations=activations)
            yield camera
    return offscreen.frames(scene, cameras())


def render_still(offscreen: Offscreen, scene: Scene, camera: Camera, timeline: Timeline, snapshots: np.ndarray,
                 values: np.ndarray) -> np.ndarray:
    """The frame at the clip's busiest moment (highest mean activation)."""
    busiest = int(np.argmax(values.mean(axis=1)))
    seconds = min(timeline.activation_offset + busiest / timeline.activation_rate, timeline.duration)
    scene.update(positions=timeline.positions(snapshots, seconds), activations=timeline.activations(values, seconds))
    return offscreen.render(scene, camera)


def layout_for_clip(graph: NeuronGraph, values: np.ndarray, *, n_snapshots: int, snapshot_iterations: int,
                    seed: int, device: str | torch.device = "cpu", progress: bool | None = None) -> Layout:
    """Static layout under the clip's charges, then the per-window snapshot layouts."""
    static_charges, window_charges = layout_charges(values, n_snapshots)
    logger.info("static layout of %d neurons, %d edges", graph.n_vertices, graph.n_edges)
    static = static_layout(graph, static_charges, seed=seed, device=device, progress=progress)
    logger.info("%d snapshot layouts, %d iterations each", len(window_charges), snapshot_iterations)
    return snapshot_layouts(static, window_charges, n_iter=snapshot_iterations, device=str(device), progress=progress)


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


def render_activation_video(model: CPC, audio: np.ndarray, sample_rate: int, out_path: str | Path, *,
                            width: int = 1280, height: int = 720, fps: float = 30, layout: Layout | str | Path | None = None,
                            seed: int = 0, layout_path: str | Path | None = None, still_path: str | Path | None = None,
                            activations_path: str | Path | None = None,
                            n_snapshots: int = 4, snapshot_iterations: int = 30, max_edges: int = DEFAULT_MAX_EDGES,
                            preset: str = DEFAULT_PRESET, progress: bool | None = None) -> Path:
    """Render the video of ``model``'s neurons listening to ``audio`` (mono, ``sample_rate``) to ``out_path``.

    ``layout`` (a ``Layout`` or its .npz) is reused when given; otherwise one is computed and saved to
    ``layout_path`` (default: next to the video, ``.npz``) before any frame is drawn, so a failed or
    interrupted render can be rerun with it. ``still_path`` also writes a PNG of the busiest frame, and
    ``activations_path`` the recorded activations (``Activations`` .npz with their rate, for the viewer).
    ``max_edges`` bounds the drawn edges (each costs fill rate on software rasterisers); ``preset`` is
    libx264's speed/size trade-off.
    """
    out_path = Path(out_path)
    if out_path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"out_path must end in one of {VIDEO_SUFFIXES} (H.264 + AAC), got {str(out_path)!r}")
    if not out_path.parent.is_dir():
        raise FileNotFoundError(f"output folder {str(out_path.parent)!r} does not exist")
    model = model.eval()
    clip = resample(np.asarray(audio, dtype=np.float32), int(sample_rate), model.config.sample_rate)
    network = AnalysisNetwork(model)
    scaleogram = clip_scaleogram(model, clip)
    graph = neuron_graph(network, model.config.n_bins)
    logger.info("recording activations of %d neurons over %.1f s", graph.n_vertices, len(clip) / model.config.sample_rate)
    values = clip_activations(network, scaleogram, graph)
    rate = activation_rate(len(values), scaleogram.shape[-1], model.config.hop, model.config.sample_rate)
    if activations_path is not None:
        Activations(values, graph.layers, frame_rate=rate).save(activations_path)
    shown = normalize_per_layer(values, graph)
    if layout is None:
        layout = layout_for_clip(graph, shown, n_snapshots=n_snapshots, snapshot_iterations=snapshot_iterations,
                                 seed=seed, device=scaleogram.device, progress=progress)
        layout_path = Path(layout_path) if layout_path is not None else out_path.with_suffix(".npz")
        save_layout(layout, layout_path)
        logger.info("saved the layout to %s", layout_path)
    else:
        layout = reusable_layout(layout, graph)
    timeline = Timeline(fps, duration=len(audio) / sample_rate, activation_rate=rate, activation_offset=1.0 / rate)
    with Offscreen(width, height) as offscreen, build_scene(offscreen, layout, max_edges=max_edges, seed=seed) as scene:
        camera = view_camera(layout.positions, width / height)
        frames = render_frames(offscreen, scene, camera, timeline, layout.positions, shown)
        write_video(out_path, frames, fps, audio=np.asarray(audio, dtype=np.float32), sample_rate=int(sample_rate),
                    n_frames=timeline.n_frames, preset=preset, progress=progress is not False)
        if still_path is not None:
            iio.imwrite(still_path, render_still(offscreen, scene, camera, timeline, layout.positions, shown))
    return out_path
