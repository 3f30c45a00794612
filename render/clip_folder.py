"""Where input optimisation's clips go: each written as soon as it exists, then the loop and the scores.

A long or live run can be stopped at any moment without losing a finished clip; ``finish`` adds
``loop.wav`` (every clip in a row) and ``scores.json`` (what grew each clip and how its objective went).
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import soundfile

from immersions.cpc.optimize import OptimizedClip


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
        self.path.mkdir(parents=True, exist_ok=True)
        path = self.path / f"clip_{len(self.clips):03d}.wav"
        soundfile.write(path, clip.audio, self.sample_rate)
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
        soundfile.write(loop, np.concatenate(self.clips), self.sample_rate)
        report = {**self.report, "sample_rate": self.sample_rate, "clips": self.records}
        (self.path / "scores.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
        return loop
