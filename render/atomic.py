"""Files that appear whole or not at all: each is written under a temporary name next to it and renamed into
place, so an interrupted command never leaves a half-written output (and a resumed one can trust what it finds)."""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import imageio.v3 as iio
import numpy as np
import soundfile


def default_file_mode() -> int:
    """The mode a plainly created file gets under the current umask (mkstemp makes files private)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A fresh temporary path next to ``path`` with the same suffix (writers that go by the suffix pick the
    right format), renamed onto ``path`` when the block ends normally and deleted otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".partial" + path.suffix)
    os.close(handle)
    partial = Path(name)
    try:
        yield partial
        partial.chmod(default_file_mode())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> Path:
    """``text`` as UTF-8, atomically."""
    with atomic_path(path) as partial:
        partial.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | Path, value: Any) -> Path:
    """``value`` as indented JSON, atomically."""
    return write_text(path, json.dumps(value, indent=2) + "\n")


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Mono ``audio`` in [-1, 1] as 16-bit WAV, atomically."""
    with atomic_path(path) as partial:
        soundfile.write(partial, np.asarray(audio, dtype=np.float32), int(sample_rate), subtype="PCM_16")
    return Path(path)


def write_png(path: str | Path, image: np.ndarray) -> Path:
    """An ``(H, W, 3)`` uint8 image as PNG, atomically."""
    with atomic_path(path) as partial:
        iio.imwrite(partial, image)
    return Path(path)
