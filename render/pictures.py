"""Pictures of what the network hears: scaleograms and masks as coloured images, stacked into figures.

Plain arrays through ``colormaps`` (no plotting library): low frequencies at the bottom, time to the right,
each bin and frame drawn as a ``scale`` pixel block; panels stack top to bottom with a white gap between.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .colormaps import colormap

GAP = 6  # white pixel rows between stacked panels


def map_image(values: np.ndarray, low: float, high: float, *, colormap_name: str = "magma",
              scale: tuple[int, int] = (2, 2)) -> np.ndarray:
    """A ``(bands, frames)`` map as an ``(H, W, 3)`` uint8 image: ``low``..``high`` across the colour table,
    the first band at the bottom, each value ``scale`` = (rows, columns) pixels."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or not values.size:
        raise ValueError(f"a map picture needs a non-empty (bands, frames) array, got shape {values.shape}")
    if not high > low:
        high = low + 1.0
    table = (colormap(colormap_name) * 255).round().astype(np.uint8)
    index = np.clip((values - low) / (high - low), 0.0, 1.0) * (len(table) - 1)
    image = table[np.nan_to_num(index).round().astype(int)][::-1]
    return np.repeat(np.repeat(image, scale[0], axis=0), scale[1], axis=1)


def stack_panels(panels: Sequence[np.ndarray], gap: int = GAP) -> np.ndarray:
    """Images of one width stacked top to bottom, ``gap`` white rows apart."""
    if not panels or len({panel.shape[1] for panel in panels}) != 1:
        raise ValueError("stack_panels needs one or more images of the same width")
    white = np.full((gap, panels[0].shape[1], 3), 255, dtype=np.uint8)
    rows = [part for panel in panels for part in (panel, white)][:-1]
    return np.concatenate(rows, axis=0)


def log_power_range(log_power: np.ndarray, floor: float, dynamic_range: float = 12.0) -> tuple[float, float]:
    """The colour range of a log-power scaleogram: its maximum and ``dynamic_range`` (natural log units,
    12 = 52 dB) below it, never below the power floor."""
    high = float(np.max(log_power))
    return max(floor, high - dynamic_range), high


def auralisation_figure(clip_log_power: np.ndarray, mask: np.ndarray, result_log_power: np.ndarray,
                        floor: float) -> np.ndarray:
    """Choi et al.'s figure 3 as one image: the clip's scaleogram, the mask (black 0 .. white 1) and the
    auralised clip's scaleogram on the clip's colour scale, top to bottom."""
    low, high = log_power_range(clip_log_power, floor)
    frames = min(clip_log_power.shape[1], mask.shape[1], result_log_power.shape[1])
    return stack_panels([map_image(clip_log_power[:, :frames], low, high),
                         map_image(mask[:, :frames], 0.0, 1.0, colormap_name="gray"),
                         map_image(result_log_power[:, :frames], low, high)])
