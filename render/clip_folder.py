"""Where input optimisation's clips go: each written as soon as it exists, then the loop and the scores.

A long or live run can be stopped at any moment without losing a finished clip; ``finish`` adds
``loop.wav`` (every clip in a row) and ``scores.json`` (what grew each clip and how its objective went).
Every file is written whole (temporary file, then renamed); a clip with non-finite samples is refused, and
a non-finite score is written as null, so ``scores.json`` is always valid JSON.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from immersions.cpc.optimize import OptimizedClip
from immersions.layout.npz_io import whole_file


class ClipFolder:
    """Writes ``clip_000.wav``, ``clip_001.wav``, ... into ``path``; ``report`` heads ``scores.json``."""

    def __init__(self, path: str | Path, sample_rate: int, report: dict) -> None:
        self.path = Path(path)
        self.sample_rate = int(sample_rate)
        self.report = dict(report)
        self.clips: list[np.ndarray] = []
        self.records: list[dict] = []

    def add(self, clip: OptimizedClip) -> Path:
        """Write the next clip and remember its scores; returns its path."""
        path = self.path / f"clip_{len(self.clips):03d}.wav"
        if not np.isfinite(clip.audio).all():
            raise ValueError(f"clip {path.name} has non-finite samples (NaN or infinity); it is not written "
                             "(lower --lr?)")
        self.path.mkdir(parents=True, exist_ok=True)
        self._write_sound(path, clip.audio)
        self.clips.append(clip.audio)
        self.records.append({"file": path.name, "objective": clip.objective, "settings": asdict(clip.settings),
                             "initial_score": clip.initial_score, "final_score": clip.final_score,
                             "step_scores": clip.scores})
        return path

    def finish(self) -> Path | None:
        """Write ``loop.wav`` and ``scores.json``; returns the loop's path (None when no clip was added)."""
        if not self.clips:
            return None
        loop = self.path / "loop.wav"
        self._write_sound(loop, np.concatenate(self.clips))
        report = {**self.report, "sample_rate": self.sample_rate, "clips": self.records}
        with whole_file(self.path / "scores.json") as partial:
            partial.write_text(json.dumps(json_safe(report), indent=2, allow_nan=False), encoding="utf-8")
        return loop

    def _write_sound(self, path: Path, samples: np.ndarray) -> None:
        """A WAV file written whole: a half-written clip never sits under its final name."""
        with whole_file(path) as partial:
            soundfile.write(partial, samples, self.sample_rate)


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, infinity; JSON has none) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value
