"""Files that appear whole or not at all: each is written under a temporary name next to it and renamed into
place, so an interrupted command never leaves a half-written output (and a resumed one can trust what it finds)."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
import soundfile

from immersions.layout.npz_io import default_file_mode, whole_file

__all__ = ["default_file_mode", "whole_file", "write_text", "write_json", "json_safe", "write_wav", "write_png"]


def write_text(path: str | Path, text: str) -> Path:
    """``text`` as UTF-8, atomically."""
    with whole_file(path) as partial:
        partial.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | Path, value: Any) -> Path:
    """``value`` as indented JSON, atomically; non-finite floats (JSON has none) are written as null."""
    return write_text(path, json.dumps(json_safe(value), indent=2, allow_nan=False) + "\n")


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, infinity) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Mono ``audio`` in [-1, 1] as 16-bit WAV, atomically."""
    with whole_file(path) as partial:
        soundfile.write(partial, np.asarray(audio, dtype=np.float32), int(sample_rate), subtype="PCM_16")
    return Path(path)


def write_png(path: str | Path, image: np.ndarray) -> Path:
    """An ``(H, W, 3)`` uint8 image as PNG, atomically."""
    with whole_file(path) as partial:
        iio.imwrite(partial, image)
    return Path(path)
