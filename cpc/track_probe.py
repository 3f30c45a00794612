"""The article's track-identification task: which of N recordings does a 4-s clip come from?

Every track is cut into non-overlapping clips; a linear probe is fitted on the first 70 % of each track's
clips and tested on the last 30 %, so a test clip never shares a sample with a training clip. The probe's
regularisation is chosen by cross-validation over the training clips grouped in blocks of neighbouring clips
(a fold never holds a clip whose neighbour is in another fold's training part). Beside the model's contexts c,
the same probe reads the same network untrained (several seeded initialisations), the model's own input (mean
and standard deviation over time of the log-power scaleogram) and, with ``taps``, any tap's output; a
supervised network of the same architecture trained from scratch (early-stopped on held-out blocks of the
training part) and chance complete the table.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from .data import AudioCorpus
from .model import CPC
from .optimize import forward_to_taps
from .probe import PROBE_REGULARIZATION, Score, chance_score, logistic_probe, supervised_baseline

logger = logging.getLogger(__name__)

TRAIN_FRACTION = 0.7
BLOCK_CLIPS = 4
"""Neighbouring clips per cross-validation group (16 s at 4-s clips)."""


@dataclass(frozen=True)
class TrackClips:
    """Non-overlapping clips of the chosen tracks and their split."""

    starts: np.ndarray  # (N, 2) file index, start sample
    labels: np.ndarray  # (N,) track class
    blocks: list[str]  # (N,) cross-validation group: track and block of neighbouring clips
    train: np.ndarray  # clip indices, the first TRAIN_FRACTION of every track
    test: np.ndarray  # clip indices, the rest
    tracks: list[str]  # class names (the manifest's piece)


@dataclass
class TrackTaskReport:
    """One track task: every feature row's test score, and what it was measured on."""

    name: str
    tracks: list[str]
    train_clips: int
    test_clips: int
    rows: dict[str, list[Score]] = field(default_factory=dict)  # feature name -> one score per seed/run
    cv_accuracy: dict[str, float] = field(default_factory=dict)  # feature name -> CV accuracy on training clips
    baseline_step: int | None = None

    def to_dict(self) -> dict:
        """Plain JSON-ready dict."""
        return asdict(self)


def choose_tracks(corpus: AudioCorpus, n_tracks: int, clip_samples: int, *, min_clips: int = 10,
                  seed: int = 0, source: str | None = None) -> list[int]:
    """Seeded choice of ``n_tracks`` file indices of one source holding at least ``min_clips`` clips each."""
    if n_tracks < 2:
        raise ValueError(f"n_tracks={n_tracks} must be at least 2")
    if not corpus.entries:
        raise ValueError("the track task needs a manifest (path, piece, source, ...)")
    eligible = [i for i, (entry, audio) in enumerate(zip(corpus.entries, corpus.audio))
                if (source is None or entry.labels.get("source") == source) and len(audio) // clip_samples >= min_clips]
    if len(eligible) < n_tracks:
        where = f"source {source!r}" if source else "the corpus"
        raise ValueError(f"{where} has {len(eligible)} tracks of at least {min_clips} clips of "
                         f"{clip_samples / corpus.sample_rate:.1f} s; n_tracks={n_tracks} asked for more")
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(eligible, size=n_tracks, replace=False).tolist())


def track_clips(corpus: AudioCorpus, files: Sequence[int], clip_samples: int,
                train_fraction: float = TRAIN_FRACTION, block_clips: int = BLOCK_CLIPS) -> TrackClips:
    """Cut each chosen track into non-overlapping clips and split it in time: first part train, rest test."""
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction={train_fraction} must lie in (0, 1)")
    if block_clips < 1:
        raise ValueError(f"block_clips={block_clips} must be at least 1")
    starts, labels, blocks, train, test = [], [], [], [], []
    for label, file_index in enumerate(files):
        count = len(corpus.audio[file_index]) // clip_samples
        cut = int(round(train_fraction * count))
        if cut < 1 or cut >= count:
            raise ValueError(f"{corpus.paths[file_index]} gives {count} clips: too few to split")
        for k in range(count):
            (train if k < cut else test).append(len(starts))
            starts.append((file_index, k * clip_samples))
            labels.append(label)
            blocks.append(f"{label}:{k // block_clips}")
    return TrackClips(starts=np.array(starts, dtype=np.int64), labels=np.array(labels, dtype=np.int64),
                      blocks=blocks, train=np.array(train), test=np.array(test),
                      tracks=[corpus.entries[i].piece for i in files])


def untrained_like(model: CPC, seed: int) -> CPC:
    """The same architecture with freshly initialised weights, drawn from ``seed`` without touching the
    global random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh = CPC(model.config)
    device = next(model.parameters()).device
    return fresh.to(device).eval()


@torch.no_grad()
def pooled_features(fn: Callable[[torch.Tensor], torch.Tensor], corpus: AudioCorpus, starts: np.ndarray,
                    batch_size: int = 16, device: str | torch.device = "cpu", desc: str = "features") -> np.ndarray:
    """``fn(audio batch) -> (B, F)`` over all clips at ``starts``: float32 ``(N, F)``."""
    out = []
    for first in tqdm(range(0, len(starts), batch_size), desc=desc, unit="batch", leave=False):
        out.append(fn(corpus.clips(starts[first:first + batch_size]).to(device)).float().cpu().numpy())
    return np.concatenate(out).astype(np.float32)


def context_mean(model: CPC) -> Callable[[torch.Tensor], torch.Tensor]:
    """c mean-pooled over time, as the composer probe reads it."""
    return lambda audio: model(audio)[1].mean(dim=1)


def scaleogram_statistics(model: CPC) -> Callable[[torch.Tensor], torch.Tensor]:
    """Mean and standard deviation over time of the model's log-power scaleogram: its input's statistics."""
    def features(audio: torch.Tensor) -> torch.Tensor:
        power = model.scaleogram(audio)[:, 0]  # (B, F, T)
        return torch.cat([power.mean(dim=-1), power.std(dim=-1)], dim=1)
    return features


def tap_mean(model: CPC, tap: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """A tap's output mean-pooled over time (last axis), flattened over channel and frequency; the network is
    computed only as far as the tap (``forward_to_taps``)."""
    if tap not in model.tap_names():
        raise ValueError(f"tap {tap!r} is not a module of the model; taps: {', '.join(model.tap_names())}")
    return lambda audio: forward_to_taps(model, [tap], model.scaleogram(audio))[tap].mean(dim=-1).flatten(1)


def run_track_task(model: CPC, corpus: AudioCorpus, *, name: str, source: str | None = None,
                   n_tracks: int = 15, seed: int = 0, untrained_seeds: Sequence[int] = (0, 1, 2),
                   taps: Sequence[str] = (), baseline_steps: int = 0, baseline_lr: float = 1e-3,
                   batch_size: int = 16, regularization: float | Sequence[float] = PROBE_REGULARIZATION,
                   baseline_eval_every: int = 250) -> TrackTaskReport:
    """Probe one track task (the tracks of ``source``, or of the whole corpus) with every feature row.

    The clips are the corpus's clip length (``TRACK_CLIP_SECONDS`` as the command line loads it).
    """
    files = choose_tracks(corpus, n_tracks, corpus.clip_samples, seed=seed, source=source)
    split = track_clips(corpus, files, corpus.clip_samples)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    report = TrackTaskReport(name=name, tracks=split.tracks, train_clips=len(split.train),
                             test_clips=len(split.test))
    try:
        rows: list[tuple[str, Callable[[torch.Tensor], torch.Tensor]]] = [
            ("c", context_mean(model)), ("scaleogram mean+std", scaleogram_statistics(model))]
        rows += [(f"untrained c (seed {s})", context_mean(untrained_like(model, s))) for s in untrained_seeds]
        rows += [(f"tap {tap}", tap_mean(model, tap)) for tap in taps]
        for row, fn in rows:
            features = pooled_features(fn, corpus, split.starts, batch_size, device, desc=row)
            fit = logistic_probe(features, split.labels, split.train, split.test, len(files), groups=split.blocks,
                                 regularization=regularization, seed=seed)
            key = "untrained c" if row.startswith("untrained c") else row
            report.rows.setdefault(key, []).append(fit.score)
            if fit.cv_accuracy is not None and key not in report.cv_accuracy:
                report.cv_accuracy[key] = fit.cv_accuracy
            logger.info("%s, %s: test accuracy %.3f", name, row, fit.score.accuracy)
        if baseline_steps > 0:
            score, report.baseline_step = supervised_baseline(
                model.config, corpus, split.starts, split.labels, split.train, split.test, len(files),
                steps=baseline_steps, batch_size=batch_size, lr=baseline_lr, seed=seed, device=device,
                pieces=split.blocks, validation_fraction=0.2, eval_every=baseline_eval_every)
            report.rows["supervised from scratch"] = [score]
        report.rows["chance"] = [chance_score(split.labels, split.train, split.test, len(files))]
    finally:
        model.train(was_training)
    return report


def format_track_table(reports: Sequence[TrackTaskReport]) -> str:
    """Rows of features, a column per task: test accuracy (mean ± std over seeds where there are several)."""
    names = [r.name for r in reports]
    order: list[str] = []
    for report in reports:
        order += [row for row in report.rows if row not in order]
    lines = [f"{'features':<40}" + "".join(f"{n:>24}" for n in names)]
    for row in order:
        cells = []
        for report in reports:
            scores = report.rows.get(row)
            if not scores:
                cells.append(f"{'—':>24}")
                continue
            accuracy = np.array([s.accuracy for s in scores]) * 100
            text = f"{accuracy.mean():.1f} %" + (f" ± {accuracy.std(ddof=1):.1f}" if len(scores) > 1 else "")
            cells.append(f"{text:>24}")
        lines.append(f"{row:<40}" + "".join(cells))
    lines.append(f"{'(test clips / tracks)':<40}" + "".join(f"{f'{r.test_clips} / {len(r.tracks)}':>24}"
                                                            for r in reports))
    return "\n".join(lines)


def probe_sources(corpus: AudioCorpus) -> list[str]:
    """The manifest's sources, sorted (each one track task)."""
    sources = sorted({entry.labels.get("source", "") for entry in corpus.entries} - {""})
    if not sources:
        raise ValueError("the manifest has no source column: build it with `immersions data recordings`")
    return sources

