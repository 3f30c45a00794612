"""Where input optimisation's clips go: each written as soon as it exists, then the loop and the scores.

A long or live run can be stopped at any moment without losing a finished clip (each file appears whole, once
complete); ``finish`` adds ``loop.wav`` (every clip in a row) and ``scores.json`` (what grew each clip and how
its objective went). A clip with non-finite samples is refused, and a non-finite score is written as null, so
``scores.json`` is always valid JSON.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from immersions.cpc.optimize import OptimizedClip

from .atomic import write_json, write_wav


class ClipFolder:
    """Writes ``clip_000.wav``, ``clip_001.wav``, ... into ``path``; ``report`` heads ``scores.json``."""

    def __init__(self, path: str | Path, sample_rate: int, report: dict) -> None:
        self.path = Path(path)
        self.sample_rate = int(sample_rate)
        self.report = dict(report)
        self.clips: list[np.ndarray] = []
        self.records: list[dict] = []

    def add(self, clip: OptimizedClip) -> Path:
        """Write the next clip and remember its scores; returns its path. The clip is remembered first and
        forgotten again if its file is not written, so an interrupt (Ctrl-C, SIGTERM) at any point leaves the
        records and the files in agreement."""
        path = self.path / f"clip_{len(self.clips):03d}.wav"
        if not np.isfinite(clip.audio).all():
            raise ValueError(f"clip {path.name} has non-finite samples (NaN or infinity); it is not written "
                             "(lower --lr?)")
        self.clips.append(clip.audio)
        self.records.append({"file": path.name, "objective": clip.objective, "settings": asdict(clip.settings),
                             "initial_score": clip.initial_score, "final_score": clip.final_score,
                             "step_scores": clip.scores})
        try:
            return write_wav(path, clip.audio, self.sample_rate)
        except BaseException:
            self.clips.pop()
            self.records.pop()
            raise

    def finish(self) -> Path | None:
        """Write ``loop.wav`` and ``scores.json``; returns the loop's path (None when no clip was added)."""
        if not self.clips:
            return None
        loop = write_wav(self.path / "loop.wav", np.concatenate(self.clips), self.sample_rate)
        write_json(self.path / "scores.json", {**self.report, "sample_rate": self.sample_rate, "clips": self.records})
        return loop
