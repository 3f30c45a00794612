"""Audio for CPC: decode a folder or a labelled manifest once, keep it as float16, crop clips by seed.

Decoding and resampling dominate the cost of reading audio, so every file is decoded once, mixed to mono,
resampled to the model's rate and held as float16 in memory (optionally cached as ``.npy`` files that later
runs memory-map). Training then draws crops by index from a seed, which makes every rank of a distributed
run and every resumed run see exactly the clips it would have seen.
"""
from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from math import gcd
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf
import torch
from scipy.signal import resample_poly
from tqdm import tqdm

logger = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
MANIFEST_COLUMNS = ("path", "piece")
"""Columns every manifest row needs; ``composer`` and any other column are optional labels."""


@dataclass(frozen=True)
class ManifestEntry:
    """One labelled audio file: absolute path, piece (or track), composer (empty for recordings), and any
    further label columns."""

    path: Path
    composer: str
    piece: str
    labels: dict[str, str] = field(default_factory=dict)

    def label(self, task: str) -> str:
        """The label of this file for a task (``composer``, ``piece`` or any extra manifest column)."""
        if task == "piece" or (task == "composer" and self.composer):
            return getattr(self, task)
        if task not in self.labels:
            available = ("composer",) * bool(self.composer) + ("piece", *sorted(self.labels))
            raise ValueError(f"task={task!r} is not a manifest column; available: {', '.join(available)}")
        return self.labels[task]


def read_manifest(path: str | Path) -> list[ManifestEntry]:
    """Read a CSV or JSON manifest (columns/keys path, piece, and optionally composer, ...); paths are
    relative to it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest {path} does not exist")
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    elif path.suffix.lower() == ".json":
        loaded = json.loads(path.read_text(encoding="utf-8"))
        rows = loaded["entries"] if isinstance(loaded, dict) else loaded
    else:
        raise ValueError(f"manifest {path} has suffix {path.suffix!r}; allowed: .csv, .json")
    entries = []
    for number, row in enumerate(rows):
        missing = [c for c in MANIFEST_COLUMNS if not str(row.get(c) or "").strip()]
        if missing:
            raise ValueError(f"manifest {path} row {number} lacks {', '.join(missing)} "
                             f"(required columns: {', '.join(MANIFEST_COLUMNS)})")
        extra = {k: str(v) for k, v in row.items() if k not in (*MANIFEST_COLUMNS, "composer")}
        entries.append(ManifestEntry(path=(path.parent / row["path"]).resolve(), composer=str(row.get("composer") or ""),
                                     piece=str(row["piece"]), labels=extra))
    return entries


def list_audio_files(folder: str | Path) -> list[Path]:
    """Every wav/flac/ogg file below a folder, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"audio folder {folder} does not exist")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Polyphase resampling of a 1-D float signal between integer rates."""
    if from_rate == to_rate:
        return audio
    divisor = gcd(from_rate, to_rate)
    return resample_poly(audio, to_rate // divisor, from_rate // divisor).astype(np.float32)


def load_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Decode a file, mix it to mono and resample it: float32 of shape ``(samples,)``."""
    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return resample(audio.mean(axis=1), rate, sample_rate)


def _cache_path(cache_dir: Path, path: Path, sample_rate: int) -> Path:
    """A cache file name that changes when the source file or the target rate changes."""
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{sample_rate}"
    return cache_dir / f"{hashlib.sha1(key.encode()).hexdigest()}.npy"


def _decode_cached(path: Path, sample_rate: int, cache_dir: Path | None) -> np.ndarray:
    """Decoded float16 audio, read from or written to the ``.npy`` cache when there is one."""
    if cache_dir is None:
        return load_audio(path, sample_rate).astype(np.float16)
    cached = _cache_path(cache_dir, path, sample_rate)
    if cached.is_file():
        return np.load(cached, mmap_mode="r")
    audio = load_audio(path, sample_rate).astype(np.float16)
    # A partial file of this process's own: processes sharing the cache (ranks of a distributed run, a
    # probe beside a training run) may decode the same file at once, and each renames only what it wrote.
    handle, partial = tempfile.mkstemp(dir=cache_dir, prefix=cached.stem + ".", suffix=".partial.npy")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.save(stream, audio)
        os.replace(partial, cached)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return np.load(cached, mmap_mode="r")


class AudioCorpus:
    """Decoded mono float16 audio of many files at one sample rate, long enough for one clip each."""

    def __init__(self, paths: Sequence[str | Path], sample_rate: int, clip_samples: int, *,
                 cache_dir: str | Path | None = None, entries: Sequence[ManifestEntry] | None = None,
                 source: str = "the given files"):
        if sample_rate <= 0:
            raise ValueError(f"sample_rate={sample_rate} must be positive")
        if clip_samples <= 0:
            raise ValueError(f"clip_samples={clip_samples} must be positive")
        if entries is not None and len(entries) != len(paths):
            raise ValueError(f"entries has {len(entries)} items but paths has {len(paths)}")
        cache = Path(cache_dir) if cache_dir is not None else None
        if cache is not None:
            cache.mkdir(parents=True, exist_ok=True)
        self.sample_rate = sample_rate
        self.clip_samples = clip_samples
        self.paths: list[Path] = []
        self.entries: list[ManifestEntry] = []
        self.audio: list[np.ndarray] = []
        for index, path in enumerate(tqdm(paths, desc="decoding audio", unit="file", leave=False)):
            path = Path(path)
            try:
                audio = _decode_cached(path, sample_rate, cache)
            except (RuntimeError, OSError, ValueError) as exc:  # soundfile raises LibsndfileError (RuntimeError)
                logger.warning("skipping unreadable audio file %s: %s", path, exc)
                continue
            if len(audio) < clip_samples:
                logger.warning("skipping %s: %d samples, shorter than one clip of %d", path, len(audio),
                               clip_samples)
                continue
            self.paths.append(path)
            self.audio.append(audio)
            if entries is not None:
                self.entries.append(entries[index])
        if not self.audio:
            raise ValueError(f"no usable audio in {source}: every file was unreadable, empty or shorter "
                             f"than {clip_samples} samples at {sample_rate} Hz")
        positions = np.array([len(a) - clip_samples + 1 for a in self.audio], dtype=np.int64)
        self._ends = np.cumsum(positions)

    @classmethod
    def from_folder(cls, folder: str | Path, sample_rate: int, clip_samples: int, *,
                    cache_dir: str | Path | None = None) -> "AudioCorpus":
        """Every wav/flac/ogg file below a folder."""
        return cls(list_audio_files(folder), sample_rate, clip_samples, cache_dir=cache_dir, source=str(folder))

    @classmethod
    def from_manifest(cls, manifest: str | Path, sample_rate: int, clip_samples: int, *,
                      cache_dir: str | Path | None = None) -> "AudioCorpus":
        """The files of a manifest, keeping their labels in ``entries``."""
        entries = read_manifest(manifest)
        return cls([e.path for e in entries], sample_rate, clip_samples, cache_dir=cache_dir,
                   entries=entries, source=str(manifest))

    @classmethod
    def from_source(cls, source: str | Path, sample_rate: int, clip_samples: int, *,
                    cache_dir: str | Path | None = None) -> "AudioCorpus":
        """A folder, or a manifest file (``.csv``/``.json``); a folder holding manifest.csv uses it."""
        source = Path(source)
        if source.is_dir() and (source / "manifest.csv").is_file():
            source = source / "manifest.csv"
        if source.is_file():
            return cls.from_manifest(source, sample_rate, clip_samples, cache_dir=cache_dir)
        return cls.from_folder(source, sample_rate, clip_samples, cache_dir=cache_dir)

    def __len__(self) -> int:
        return len(self.audio)

    @property
    def total_positions(self) -> int:
        """Number of distinct clip start positions over all files."""
        return int(self._ends[-1])

    @property
    def positions_per_file(self) -> np.ndarray:
        """Number of clip start positions in each file."""
        return np.diff(self._ends, prepend=0)

    def clip(self, file_index: int, start: int) -> torch.Tensor:
        """One float32 clip of ``clip_samples`` from a file, starting at a sample."""
        audio = self.audio[file_index]
        if not 0 <= start <= len(audio) - self.clip_samples:
            raise ValueError(f"start={start} is outside 0..{len(audio) - self.clip_samples} for {self.paths[file_index]}")
        return torch.from_numpy(np.asarray(audio[start:start + self.clip_samples], dtype=np.float32))

    def clip_at(self, position: int) -> torch.Tensor:
        """The clip at a global position in ``0..total_positions-1`` (uniform over all start samples)."""
        file_index = int(np.searchsorted(self._ends, position, side="right"))
        first = 0 if file_index == 0 else int(self._ends[file_index - 1])
        return self.clip(file_index, position - first)

    def evenly_spaced(self, clips_per_file: int) -> np.ndarray:
        """Start positions ``(N, 2)`` of (file index, start sample): up to ``clips_per_file`` evenly spaced
        clips per file, overlapping by at most half a clip."""
        if clips_per_file < 1:
            raise ValueError(f"clips_per_file={clips_per_file} must be at least 1")
        starts = []
        for index, audio in enumerate(self.audio):
            last = len(audio) - self.clip_samples
            count = min(clips_per_file, last // max(self.clip_samples // 2, 1) + 1)
            starts += [(index, int(start)) for start in np.linspace(0, last, count).astype(np.int64)]
        return np.array(starts, dtype=np.int64).reshape(-1, 2)

    def clips(self, starts: np.ndarray) -> torch.Tensor:
        """The float32 clips ``(N, clip_samples)`` at (file index, start sample) pairs."""
        return torch.stack([self.clip(int(f), int(s)) for f, s in starts])


class RandomCrops(torch.utils.data.Dataset):
    """``length`` random clips of a corpus; clip ``i`` depends only on (seed, i), so any sampler (also a
    DistributedSampler across ranks) and any resumed run draw the same clips.

    With ``group_by`` (a manifest column such as ``instrument``), every block of ``group_size``
    consecutive clips comes from files sharing one value of that label, drawn per block from the seed.
    A batch made of one block cannot be told apart by that label, so a contrastive loss must use what
    varies inside it: grouping by ensemble keeps CPC from scoring on timbre alone.
    """

    def __init__(self, corpus: AudioCorpus, length: int, seed: int = 0, *, group_by: str | None = None,
                 group_size: int = 1):
        if length < 1:
            raise ValueError(f"length={length} must be at least 1")
        if group_size < 1:
            raise ValueError(f"group_size={group_size} must be at least 1")
        self.corpus = corpus
        self.length = length
        self.seed = seed
        self.group_size = group_size
        self._groups = self._group_positions(corpus, group_by) if group_by is not None else None

    @staticmethod
    def _group_positions(corpus: AudioCorpus, group_by: str) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per label value: its files and the cumulative count of their clip start positions."""
        if not corpus.entries:
            raise ValueError(f"group_by={group_by!r} needs a labelled corpus (a manifest), got plain files")
        labels = [entry.label(group_by) for entry in corpus.entries]
        positions = corpus.positions_per_file
        groups = []
        for value in sorted(set(labels)):
            files = np.array([i for i, label in enumerate(labels) if label == value], dtype=np.int64)
            groups.append((files, np.cumsum(positions[files])))
        return groups

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} outside 0..{self.length - 1}")
        rng = np.random.default_rng([self.seed, index])
        if self._groups is None:
            return self.corpus.clip_at(int(rng.integers(self.corpus.total_positions)))
        # the third key keeps the per-block stream apart from the per-clip streams [seed, index]
        block_rng = np.random.default_rng([self.seed, index // self.group_size, len(self._groups)])
        files, ends = self._groups[int(block_rng.integers(len(self._groups)))]
        position = int(rng.integers(ends[-1]))
        slot = int(np.searchsorted(ends, position, side="right"))
        return self.corpus.clip(int(files[slot]), position - (0 if slot == 0 else int(ends[slot - 1])))
