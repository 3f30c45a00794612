"""Per-frame activations of every neuron of a ``NeuronGraph``, and their variance over a dataset.

The taps are found exactly as ``extract`` finds them (same tracer, same names, same axis roles): the
traced model is rewritten, ``create_feature_extractor``-style, to return a copy of every tap taken the
moment it is computed (so later in-place ops cannot change it). No hooks are left behind because none are
installed: the model's own modules run inside the rewritten graph, with ``model.training`` restored.

Each tap is reduced to one float per neuron per frame: frames run along ``time_axis`` (default: the last
axis, time for (B, C, F, T) and (B, C, T) maps); any other dropped axis is averaged. Taps without a time
axis ((B, C) outputs) give the same value in every frame. Taps of different time resolution (pooling in
time) are aligned to the finest frame rate by holding each coarse frame (frame ``t`` of ``T_out`` shows
frame ``floor(t * T_tap / T_out)``) or, with ``align="coarsest"``, to the coarsest by averaging fine frames
over each coarse frame's span. Frames of the examples of a batch follow one another.
"""
from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn
from tqdm import tqdm

from .connectivity import Space
from .extract import tap_spaces, trace
from .graph import Layer, NeuronGraph, layer_table
from .npz_io import read_arrays

ACTIVATIONS_FORMAT = 1
ALIGN_MODES = ("finest", "coarsest")


@dataclass(frozen=True)
class Activations:
    """One float per neuron per frame: ``values`` (T, N) float32 in graph vertex order."""

    values: np.ndarray
    layers: tuple[Layer, ...]
    frame_rate: float | None = None  # frames per second, when the caller knows it

    def __post_init__(self) -> None:
        n = self.layers[-1].stop if self.layers else 0
        if self.values.ndim != 2 or self.values.shape[1] != n:
            raise ValueError(f"values must have shape (T, {n}) for these layers, got {self.values.shape}")
        if self.values.dtype != np.float32:
            raise TypeError(f"values must be float32, got {self.values.dtype}")

    def save(self, path: str | os.PathLike) -> None:
        """Write to ``.npz`` (plain arrays, no pickle), atomically."""
        with ActivationsWriter(path, self.layers, len(self.values), self.frame_rate) as writer:
            writer.write(self.values)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Activations":
        """Read activations written by ``save``."""
        data = read_arrays(path, "activations", ("values", "layer_names", "layer_channels", "layer_sizes",
                                                 "frame_rate"), ACTIVATIONS_FORMAT)
        layers = layer_table(zip(data["layer_names"].tolist(), data["layer_channels"].tolist(),
                                 data["layer_sizes"].tolist()))
        rate = float(data["frame_rate"])
        return cls(data["values"].astype(np.float32, copy=False), layers, None if np.isnan(rate) else rate)


class ActivationsWriter:
    """Writes an ``Activations`` ``.npz`` block of frames by block, so a long recording's activations never need
    to fit in memory; the file appears under its name only once all ``n_frames`` frames are in.

    The frames are the ``values.npy`` member of the (uncompressed) zip, written as they come; ``Activations.load``
    and ``np.load`` read the result as any other.
    """

    def __init__(self, path: str | os.PathLike, layers: tuple[Layer, ...], n_frames: int,
                 frame_rate: float | None = None) -> None:
        self.path = os.fspath(path)
        self.n_neurons = layers[-1].stop if layers else 0
        self.n_frames, self.written = int(n_frames), 0
        self._partial = self.path + ".partial"
        try:
            self._zip = zipfile.ZipFile(self._partial, "w", zipfile.ZIP_STORED, allowZip64=True)
            for name, array in (("format_version", np.int64(ACTIVATIONS_FORMAT)),
                                ("layer_names", np.array([l.name for l in layers], dtype=np.str_)),
                                ("layer_channels", np.array([l.channels for l in layers], dtype=np.int64)),
                                ("layer_sizes", np.array([l.size for l in layers], dtype=np.int64)),
                                ("frame_rate", np.float64(np.nan if frame_rate is None else frame_rate))):
                with self._zip.open(f"{name}.npy", "w") as member:
                    np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)
            self._values = self._zip.open("values.npy", "w", force_zip64=True)
            np.lib.format.write_array_header_1_0(self._values, {
                "descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
                "shape": (self.n_frames, self.n_neurons)})
        except BaseException:
            os.unlink(self._partial)
            raise

    def write(self, frames: np.ndarray) -> None:
        """Append frames ``(T, N)``."""
        frames = np.ascontiguousarray(frames, dtype=np.float32)
        if frames.ndim != 2 or frames.shape[1] != self.n_neurons:
            raise ValueError(f"frames must have shape (T, {self.n_neurons}), got {frames.shape}")
        if self.written + len(frames) > self.n_frames:
            raise ValueError(f"more than the {self.n_frames} frames announced")
        self._values.write(frames.tobytes())
        self.written += len(frames)

    def __enter__(self) -> "ActivationsWriter":
        return self

    def __exit__(self, kind, *rest) -> None:
        try:
            self._values.close()
            self._zip.close()
            if kind is None and self.written != self.n_frames:
                raise ValueError(f"{self.written} frames written of the {self.n_frames} announced")
            if kind is None:
                os.replace(self._partial, self.path)
        finally:
            if os.path.exists(self._partial):
                os.unlink(self._partial)


class ActivationRecorder:
    """The model rewritten to return every tap of ``graph``, reduced to (B, T, N) frames."""

    def __init__(self, model: nn.Module, example_input: torch.Tensor | Sequence[torch.Tensor], graph: NeuronGraph,
                 *, time_axis: int | None = -1, align: str = "finest", keep_axis: int = 2,
                 keep_length: bool = False, leaf_modules: Sequence[type | str] = ()):
        if align not in ALIGN_MODES:
            raise ValueError(f"align must be one of {ALIGN_MODES}, got {align!r}")
        self.model, self.time_axis, self.align, self.layers = model, time_axis, align, graph.layers
        traced = trace(model, example_input, leaf_modules=leaf_modules)
        names = [layer.name for layer in graph.layers]
        known = set(traced.names.values())
        missing = [name for name in names if name not in known]
        if missing:
            raise ValueError(f"layers {missing} of the graph are not nodes of this model; was the graph extracted "
                             "from it with the same leaf_modules?")
        spaces = dict(tap_spaces(traced, names, keep_axis=keep_axis, keep_length=keep_length))
        for layer in graph.layers:
            space = spaces[layer.name]
            if (space.channels, space.size) != (layer.channels, layer.size):
                raise ValueError(f"layer {layer.name!r} is {layer.channels} x {layer.size} in the graph but "
                                 f"{space.channels} x {space.size} here; pass the keep_axis/keep_length used "
                                 "for extract")
        self.spaces = [spaces[name] for name in names]
        self.module = _tap_module(traced.module, [traced.node(name) for name in names])

    def __call__(self, inputs: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        """Frames of every neuron for a batch: (B, T, N) float32 on the inputs' device."""
        inputs = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                taps = self.module(*inputs)
        finally:
            self.model.train(was_training)
        frames = [_frames(value, space, self.time_axis) for value, space in zip(taps, self.spaces)]
        lengths = [f.shape[1] for f, timed in frames if timed]
        n_out = (max(lengths) if self.align == "finest" else min(lengths)) if lengths else 1
        return torch.cat([_resample(f, n_out, self.align) if timed else f.expand(-1, n_out, -1)
                          for f, timed in frames], dim=2).float()


def _tap_module(module: fx.GraphModule, taps: list[fx.Node]) -> fx.GraphModule:
    """A copy of the traced graph whose output is a clone of every tap, taken right after it runs."""
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for node in module.graph.nodes:
        if node.op == "output":
            break
        env[node] = graph.node_copy(node, lambda n: env[n])
    clones = [graph.call_function(torch.clone, (env[tap],)) for tap in taps]
    graph.output(tuple(clones))
    for clone, tap in zip(clones, taps):
        env[tap].append(clone)  # move the clone right after its tap
    graph.lint()
    return fx.GraphModule(module, graph)


def _frames(value: torch.Tensor, space: Space, time_axis: int | None) -> tuple[torch.Tensor, bool]:
    """A tap as (B, T, C*K) frames (T = 1 and False when it has no time axis)."""
    rank = value.dim()
    time = None
    if time_axis is not None and rank > 2:
        time = time_axis % rank
        if time in (0, space.channel_dim, space.kept_dim):
            time = None
    keep = [0] + ([time] if time is not None else []) + [space.channel_dim]
    keep += [space.kept_dim] if space.kept_dim is not None else []
    rest = [d for d in range(rank) if d not in keep]
    x = value.permute(keep + rest)
    if rest:
        x = x.float().mean(dim=tuple(range(len(keep), rank)))
    batch = x.shape[0]
    return x.reshape(batch, x.shape[1] if time is not None else 1, space.count), time is not None


def _resample(frames: torch.Tensor, n_out: int, align: str) -> torch.Tensor:
    n_in = frames.shape[1]
    if n_in == n_out:
        return frames
    if align == "finest":
        index = (torch.arange(n_out, device=frames.device) * n_in) // n_out
        return frames[:, index]
    return F.adaptive_avg_pool1d(frames.transpose(1, 2).float(), n_out).transpose(1, 2)


def record_activations(model: nn.Module, inputs: torch.Tensor | Sequence[torch.Tensor], graph: NeuronGraph, *,
                       time_axis: int | None = -1, align: str = "finest", frame_rate: float | None = None,
                       keep_axis: int = 2, keep_length: bool = False,
                       leaf_modules: Sequence[type | str] = ()) -> Activations:
    """Activations of every neuron of ``graph`` for ``inputs`` (the batch's examples one after another)."""
    recorder = ActivationRecorder(model, inputs, graph, time_axis=time_axis, align=align, keep_axis=keep_axis,
                                  keep_length=keep_length, leaf_modules=leaf_modules)
    frames = recorder(inputs)
    values = frames.reshape(-1, frames.shape[2]).cpu().numpy().astype(np.float32, copy=False)
    return Activations(values, graph.layers, frame_rate)


def activation_variance(model: nn.Module, batches: Iterable[torch.Tensor], graph: NeuronGraph, *,
                        per_frame: bool = False, time_axis: int | None = -1, align: str = "finest",
                        keep_axis: int = 2, keep_length: bool = False,
                        leaf_modules: Sequence[type | str] = ()) -> np.ndarray:
    """Variance of every neuron over a dataset, the layout's charges: over all frames of all examples, (N,),
    or with ``per_frame`` for each frame index over the examples, (T, N) (one charge set per snapshot)."""
    recorder = None
    moments = RunningMoments()
    for batch in tqdm(batches, desc="activation variance", unit="batch", disable=None):
        if recorder is None:
            recorder = ActivationRecorder(model, batch, graph, time_axis=time_axis, align=align,
                                          keep_axis=keep_axis, keep_length=keep_length, leaf_modules=leaf_modules)
        frames = recorder(batch).double().cpu().numpy()
        samples = frames if per_frame else frames.reshape(1, -1, frames.shape[2]).transpose(1, 0, 2)
        if moments.mean is not None and samples.shape[1:] != moments.mean.shape:
            raise ValueError(f"with per_frame=True every example needs the same frames; got {samples.shape[1]} "
                             f"after {moments.mean.shape[0]}")
        moments.add(samples)
    if moments.mean is None:
        raise ValueError("batches is empty; activation variance needs at least one batch")
    variance = moments.variance.astype(np.float32)
    return variance if per_frame else variance[0]


class RunningMoments:
    """Mean and variance over samples that arrive in batches (Chan et al.'s merge of Welford's sums, float64):
    the variance of a long recording without keeping its activations."""

    def __init__(self) -> None:
        self.count = 0
        self.mean: np.ndarray | None = None
        self._m2: np.ndarray | None = None

    def add(self, samples: np.ndarray) -> None:
        """Take in ``samples`` ``(n, ...)``: ``n`` more observations of every entry."""
        samples = np.asarray(samples, dtype=np.float64)
        n = samples.shape[0]
        if n == 0:
            return
        batch_mean = samples.mean(axis=0)
        batch_m2 = ((samples - batch_mean) ** 2).sum(axis=0)
        if self.mean is None:
            self.count, self.mean, self._m2 = n, batch_mean, batch_m2
            return
        delta = batch_mean - self.mean
        total = self.count + n
        self.mean = self.mean + delta * (n / total)
        self._m2 = self._m2 + batch_m2 + delta ** 2 * (self.count * n / total)
        self.count = total

    @property
    def variance(self) -> np.ndarray:
        """Population variance of every entry over the samples taken in so far."""
        if self.mean is None:
            raise ValueError("no samples yet; the variance needs at least one")
        return self._m2 / self.count
