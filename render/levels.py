"""Light levels: how brightly each neuron is drawn, against the model's reference levels or against the clip.

``reference`` (the default when the model has them): a neuron lights in proportion to how far its activation
rises above its level at rest and its typical level on a reference set of music, stored with the model. So
digital silence (the resting state) stays dark, and a loud, busy passage lights more neurons than a quiet
one. The reference levels of a neuron are ``low``: the larger of its activation in silence and its
``DARK_QUANTILE`` over the reference clips, and ``high``: ``low`` plus the distance from that quantile to its
``BRIGHT_QUANTILE``. Silence is part of the definition because many early neurons fire hardest when nothing
is heard (the log power of silence lies far below anything in music); measured against music alone, silence
lit a fifth of the lean model's neurons fully.

``clip``: every layer normalised to its own clip (the layer's ``DARK_QUANTILE`` of the clip dark, its
``BRIGHT_QUANTILE`` fully lit), as the article's videos do: every clip uses the whole brightness range,
however quiet, so brightness shows which neurons stand out within the clip, not how loud it is.

Reference levels live beside the checkpoint, ``<checkpoint>.levels.npz`` (plain arrays, no pickle), together
with a digest of the weights they were measured on: a retrained model with stale levels falls back to
``clip`` with a warning. ``immersions levels MODEL --audio FILES...`` measures and writes them.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from immersions.layout.graph import Layer, NeuronGraph, layer_table
from immersions.layout.npz_io import whole_file

logger = logging.getLogger(__name__)

DARK_QUANTILE = 0.75
BRIGHT_QUANTILE = 0.995
LEVELS_FORMAT = 1
LEVELS_SUFFIX = ".levels.npz"
SILENCE_SECONDS = 2.0  # after the warm-up the network's response to silence is constant


@dataclass(frozen=True)
class Levels:
    """Per-neuron ``low`` (dark) and ``high`` (fully lit) activations ``(N,)``; ``light`` maps to [0, 1]."""

    low: np.ndarray
    high: np.ndarray
    mode: str
    info: dict = field(default_factory=dict)

    def light(self, values: np.ndarray) -> np.ndarray:
        """Activations ``(T, N)`` as light levels in [0, 1], float32."""
        span = self.high - self.low
        scale = np.divide(1.0, span, out=np.zeros_like(span), where=span > 0)
        return np.clip((np.asarray(values, np.float32) - self.low) * scale, 0.0, 1.0).astype(np.float32)


def clip_levels(values: np.ndarray, graph: NeuronGraph, *, dark_quantile: float = DARK_QUANTILE,
                bright_quantile: float = BRIGHT_QUANTILE) -> Levels:
    """Levels of ``clip`` mode from the clip's activations ``(T, N)`` (all its steps, or an even sample)."""
    if not 0 <= dark_quantile < bright_quantile <= 1:
        raise ValueError(f"need 0 <= dark_quantile < bright_quantile <= 1, got {dark_quantile} and {bright_quantile}")
    low = np.empty(graph.n_vertices, np.float32)
    high = np.empty(graph.n_vertices, np.float32)
    for layer in graph.layers:
        block = values[:, layer.start:layer.stop]
        dark, bright = np.quantile(block, [dark_quantile, bright_quantile])
        low[layer.start:layer.stop], high[layer.start:layer.stop] = dark, bright if bright > dark else dark + 1.0
    return Levels(low, high, "clip")


def reference_levels(reference: np.ndarray, silence: np.ndarray, *, dark_quantile: float = DARK_QUANTILE,
                     bright_quantile: float = BRIGHT_QUANTILE, info: dict | None = None) -> Levels:
    """Levels of ``reference`` mode from activations ``(T, N)`` over reference clips and ``(N,)`` in silence."""
    dark, bright = np.quantile(np.asarray(reference, np.float32), [dark_quantile, bright_quantile], axis=0)
    low = np.maximum(dark, np.asarray(silence, np.float32))
    span = np.maximum(bright - dark, 1e-6)
    return Levels(low.astype(np.float32), (low + span).astype(np.float32), "reference",
                  {"dark_quantile": dark_quantile, "bright_quantile": bright_quantile, **(info or {})})


def model_digest(model: torch.nn.Module) -> str:
    """SHA-256 of the model's parameters and buffers (names, shapes, values): which weights levels belong to."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def levels_path(spec: str | os.PathLike) -> Path:
    """Where the reference levels of a model live: ``<checkpoint>.levels.npz`` beside a checkpoint file, or
    beside the shipped checkpoint of that name in ``cpc/assets``."""
    path = Path(spec)
    if path.suffix == ".pt" or path.is_file():
        return path.with_name(path.stem + LEVELS_SUFFIX)
    with resources.as_file(resources.files("immersions.cpc") / "assets") as assets:
        return Path(assets) / f"{spec}{LEVELS_SUFFIX}"


def save_levels(levels: Levels, path: str | os.PathLike, layers: tuple[Layer, ...], digest: str) -> Path:
    """Write reference levels with their layers and model digest (atomically)."""
    path = Path(path)
    with whole_file(path) as partial:
        np.savez(partial, format_version=np.int64(LEVELS_FORMAT), low=levels.low, high=levels.high,
                 layer_names=np.array([l.name for l in layers], dtype=np.str_),
                 layer_channels=np.array([l.channels for l in layers], dtype=np.int64),
                 layer_sizes=np.array([l.size for l in layers], dtype=np.int64),
                 model_digest=np.str_(digest), info=np.str_(json.dumps(levels.info, sort_keys=True)))
    return path


def load_levels(path: str | os.PathLike, layers: tuple[Layer, ...], digest: str) -> Levels:
    """Reference levels from ``path``, checked to belong to the model (layers and weights digest)."""
    with np.load(path, allow_pickle=False) as data:
        if int(data["format_version"]) != LEVELS_FORMAT:
            raise ValueError(f"{os.fspath(path)!r} has levels format {int(data['format_version'])}; this version "
                             f"reads {LEVELS_FORMAT}")
        stored = layer_table(zip(data["layer_names"].tolist(), data["layer_channels"].tolist(),
                                 data["layer_sizes"].tolist()))
        if stored != layers:
            raise ValueError(f"the levels in {os.fspath(path)!r} belong to another network")
        if str(data["model_digest"]) != digest:
            raise ValueError(f"the levels in {os.fspath(path)!r} were measured on other weights of this network; "
                             "measure them again with `immersions levels`")
        return Levels(data["low"].astype(np.float32), data["high"].astype(np.float32), "reference",
                      json.loads(str(data["info"])))


def model_levels(spec: str | os.PathLike, model: torch.nn.Module, layers: tuple[Layer, ...]) -> Levels | None:
    """The stored reference levels of the model ``spec`` names, or None (logged) when it has none that fit."""
    path = levels_path(spec)
    if not path.is_file():
        logger.warning("model %s has no reference levels (%s); lighting every layer against the clip instead. "
                       "Measure them with `immersions levels %s --audio ...`", spec, path, spec)
        return None
    try:
        return load_levels(path, layers, model_digest(model))
    except ValueError as exc:
        logger.warning("%s; lighting every layer against the clip instead", exc)
        return None


def even_sample(n_steps: int, budget: int) -> int:
    """Every how many steps to keep so that at most ``budget`` of ``n_steps`` are kept."""
    return max(-(-n_steps // max(budget, 1)), 1)


def measure_reference_levels(listener, clips: Iterable[tuple[str, np.ndarray]], *, max_steps: int = 20_000,
                             dark_quantile: float = DARK_QUANTILE,
                             bright_quantile: float = BRIGHT_QUANTILE) -> Levels:
    """Reference levels of ``listener``'s model (``app.Listener``) over named mono clips at the model's rate:
    quantiles over at most about ``max_steps`` steps, an even sample of each clip's steps."""
    clips = list(clips)
    if not clips:
        raise ValueError("the reference set is empty; give at least one clip")
    rate = listener.model.config.sample_rate
    total = sum(listener.chunked.grid.n_steps(len(audio)) for _, audio in clips)
    every = even_sample(total, max_steps)
    kept = [block[::every].copy() for _, audio in clips for block in listener.chunks(audio)]  # views keep blocks
    silence, _ = listener.hear(np.zeros(round(SILENCE_SECONDS * rate), np.float32))
    info = {"clips": [name for name, _ in clips], "seconds": sum(len(a) for _, a in clips) / rate,
            "steps_used": int(sum(len(k) for k in kept))}
    return reference_levels(np.concatenate(kept), silence[-1], dark_quantile=dark_quantile,
                            bright_quantile=bright_quantile, info=info)
