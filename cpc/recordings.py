"""Build a corpus of real recordings: every audio file under some folders, decoded once and made uniform.

The score corpus is General-MIDI renders; a model trained only on those hears recorded music poorly. This
builder takes recorded music as it comes (ogg vorbis, opus, flac, mp3 or wav, any rate, mono or stereo), decodes it with
libsndfile (through soundfile), mixes it to mono, resamples it to the model's rate, normalises its
integrated loudness (ITU-R BS.1770, through pyloudnorm) and drops leading and trailing silence. Each track
becomes one FLAC file and one manifest row (source, track, duration, licence), so training and the track
probe read it like the score corpus. A track already written by an interrupted build is kept, not decoded
again.
"""
from __future__ import annotations

import csv
import logging
import os
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf
from tqdm import tqdm

from .corpus import parallel_map


logger = logging.getLogger(__name__)

RECORDING_SUFFIXES = (".ogg", ".oga", ".opus", ".flac", ".mp3", ".wav")
MANIFEST_NAME = "manifest.csv"
TARGET_LOUDNESS = -23.0
"""Integrated loudness (LUFS) every track is brought to: EBU R 128's programme level, with headroom."""
PEAK_CEILING = 0.99
SILENCE_DB = -60.0
"""A frame whose RMS is this far below full scale counts as silence when trimming the ends."""
SILENCE_FRAME = 2048
LOUDNORM_HINT = "install it with `pip install pyloudnorm` (or `pip install -e '.[corpus]'` from a clone)"


@dataclass(frozen=True)
class RecordingEntry:
    """One decoded track: a manifest row (path relative to the manifest's folder).

    ``piece`` is ``source/track``, the identity that splits and ``--exclude`` match on.
    """

    path: str
    piece: str
    source: str
    track: str
    duration: float
    sample_rate: int
    licence: str
    original: str


@dataclass(frozen=True)
class Source:
    """A folder of recordings and the name its tracks are filed under."""

    name: str
    folder: Path
    licence: str


@dataclass(frozen=True)
class DecodeJob:
    """Everything a worker needs to decode and write one track."""

    original: str
    out_path: str
    sample_rate: int
    min_seconds: float
    max_seconds: float | None


def parse_source(spec: str) -> tuple[str, Path]:
    """``NAME=FOLDER`` or ``FOLDER`` (named after the folder) -> (name, folder)."""
    name, sep, folder = spec.partition("=")
    path = Path(folder if sep else spec)
    if not path.is_dir():
        raise FileNotFoundError(f"recordings folder {path} does not exist (from {spec!r})")
    name = name if sep else path.resolve().name
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", name):
        raise ValueError(f"source name {name!r} (from {spec!r}) must be letters, digits, '.', '_', '+' or '-'")
    return name, path


def detect_licence(folder: Path) -> str:
    """The licences named in machine-readable (DEP-5) copyright files under a folder, e.g. a Debian
    package's ``usr/share/doc/*/copyright``; ``unknown`` when there are none."""
    names: list[str] = []
    for copyright_file in sorted(folder.rglob("copyright")):
        try:
            text = copyright_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for match in re.finditer(r"^License:[ \t]*(\S[^\n]*)$", text, flags=re.MULTILINE):
            if match.group(1).strip() not in names:
                names.append(match.group(1).strip())
    return " / ".join(names) if names else "unknown"


def list_recordings(folder: Path) -> list[Path]:
    """Audio files below a folder, sorted; a file reached again through a symbolic link (a game's
    per-language folders linking one soundtrack, say) is listed once, under its first name."""
    seen: set[Path] = set()
    files = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in RECORDING_SUFFIXES and p.is_file()):
        real = path.resolve()
        if real not in seen:
            seen.add(real)
            files.append(path)
    return files


def track_name(folder: Path, path: Path) -> str:
    """A track's name inside its source: its path below the folder, without suffix."""
    return path.relative_to(folder).with_suffix("").as_posix()


def trim_silence(audio: np.ndarray, threshold_db: float = SILENCE_DB, frame: int = SILENCE_FRAME) -> np.ndarray:
    """Drop leading and trailing frames whose RMS lies below ``threshold_db`` dBFS; empty if all do."""
    if audio.size == 0:
        return audio
    count = -(-len(audio) // frame)
    padded = np.zeros(count * frame, dtype=np.float64)
    padded[: len(audio)] = audio
    rms = np.sqrt(np.mean(padded.reshape(count, frame) ** 2, axis=1))
    loud = np.flatnonzero(rms > 10.0 ** (threshold_db / 20.0))
    if loud.size == 0:
        return audio[:0]
    return audio[loud[0] * frame: min(len(audio), (loud[-1] + 1) * frame)]


def normalise_loudness(audio: np.ndarray, sample_rate: int, target: float = TARGET_LOUDNESS) -> np.ndarray:
    """Scale to ``target`` LUFS integrated loudness (BS.1770), then down if a peak would pass the ceiling."""
    try:
        import pyloudnorm
    except ImportError as exc:
        raise RuntimeError("loudness normalisation needs the Python package pyloudnorm; " + LOUDNORM_HINT) from exc
    meter = pyloudnorm.Meter(sample_rate)
    loudness = meter.integrated_loudness(audio.astype(np.float64)) if len(audio) >= sample_rate // 2 else -np.inf
    if not np.isfinite(loudness):  # too short or gated away entirely: fall back on the peak
        gain = PEAK_CEILING / max(float(np.abs(audio).max()), 1e-9)
    else:
        gain = 10.0 ** ((target - loudness) / 20.0)
    peak = float(np.abs(audio).max()) * gain
    if peak > PEAK_CEILING:
        gain *= PEAK_CEILING / peak
    return (audio * gain).astype(np.float32)


def decode(path: str | Path, sample_rate: int) -> np.ndarray:
    """Decode any readable file to mono float32 at ``sample_rate``; a clear error names a bad file."""
    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, OSError, ValueError) as exc:  # soundfile's LibsndfileError is a RuntimeError
        raise ValueError(f"{path} is not a readable audio file: {exc}") from exc
    if audio.size == 0:
        raise ValueError(f"{path} holds no audio samples")
    if not np.isfinite(audio).all():
        raise ValueError(f"{path} holds non-finite samples (NaN or infinity)")
    from .data import resample  # here: it brings torch, which the command line's help does without

    return resample(audio.mean(axis=1), rate, sample_rate)


def decode_track(job: DecodeJob) -> float:
    """Decode, normalise, trim and write one track as FLAC; returns its duration in seconds.

    A track already written (an interrupted build) is not decoded again; the file is written under a
    partial name and renamed, so a build killed half-way leaves no truncated track behind.
    """
    out_path = Path(job.out_path)
    if out_path.is_file():
        info = sf.info(str(out_path))
        return info.frames / info.samplerate
    try:
        seconds = sf.info(job.original).duration
    except (RuntimeError, OSError, ValueError) as exc:
        raise ValueError(f"{job.original} is not a readable audio file: {exc}") from exc
    if seconds < job.min_seconds:  # effects and jingles: not worth decoding
        raise ValueError(f"{job.original} lasts {seconds:.1f} s, less than min_seconds={job.min_seconds}")
    audio = trim_silence(decode(job.original, job.sample_rate))
    if len(audio) < job.min_seconds * job.sample_rate:
        raise ValueError(f"{job.original} has {len(audio) / job.sample_rate:.1f} s of sound after trimming "
                         f"silence, less than min_seconds={job.min_seconds}")
    if job.max_seconds is not None:
        audio = audio[: int(job.max_seconds * job.sample_rate)]
    audio = normalise_loudness(audio, job.sample_rate)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(out_path.stem + ".partial.flac")
    sf.write(str(partial), audio, job.sample_rate, format="FLAC", subtype="PCM_16")
    os.replace(partial, out_path)
    return len(audio) / job.sample_rate


def _decode_or_error(job: DecodeJob) -> tuple[DecodeJob, float | None, str]:
    """Worker wrapper: a file that cannot be used is reported and skipped, not fatal."""
    try:
        return job, decode_track(job), ""
    except (ValueError, RuntimeError, OSError) as exc:
        return job, None, str(exc)


def write_manifest(entries: Sequence[RecordingEntry], path: Path) -> None:
    """Write the manifest CSV atomically (one row per track, columns = RecordingEntry fields)."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=[f.name for f in fields(RecordingEntry)])
        writer.writeheader()
        for entry in entries:
            writer.writerow(asdict(entry))
    os.replace(partial, path)


def build_recordings(source_specs: Sequence[str], out_dir: str | Path, *, sample_rate: int = 44100,
                     min_seconds: float = 20.0, max_seconds: float | None = None, workers: int = 1,
                     licence: str | None = None,
                     exclude_manifests: Sequence[str | Path] = ()) -> list[RecordingEntry]:
    """Decode every recording under the source folders into ``out_dir`` and write ``manifest.csv``.

    ``source_specs``: folders, or ``NAME=FOLDER`` to choose the source's name. Files shorter than
    ``min_seconds`` of sound (sound effects, jingles, spoken lines) and unreadable files are skipped with a
    warning naming them; tracks listed (as ``source/track``) in any of ``exclude_manifests`` are left out.
    ``licence`` overrides the licences found in DEP-5 copyright files under each folder.
    """
    if sample_rate < 8000:
        raise ValueError(f"sample_rate={sample_rate} must be at least 8000")
    if min_seconds < 0 or (max_seconds is not None and max_seconds <= 0):
        raise ValueError(f"min_seconds={min_seconds} must be >= 0 and max_seconds={max_seconds} positive")
    if workers < 1:
        raise ValueError(f"workers={workers} must be at least 1")
    if not source_specs:
        raise ValueError("give at least one folder of recordings")
    sources = []
    for spec in source_specs:
        name, folder = parse_source(spec)
        if any(name == other.name for other in sources):
            raise ValueError(f"two sources are named {name!r}; name them apart with NAME=FOLDER")
        sources.append(Source(name, folder, licence or detect_licence(folder)))
    from .data import read_manifest  # here: it brings torch, which the command line's help does without

    exclude = frozenset(entry.piece for manifest in exclude_manifests for entry in read_manifest(manifest))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs, rows = [], []
    for source in sources:
        files = list_recordings(source.folder)
        if not files:
            logger.warning("source %s (%s) holds no %s files", source.name, source.folder,
                           "/".join(RECORDING_SUFFIXES))
        for path in files:
            track = track_name(source.folder, path)
            piece = f"{source.name}/{track}"
            if piece in exclude:
                continue
            out_path = out_dir / "audio" / source.name / (track.replace("/", "__") + ".flac")
            jobs.append(DecodeJob(str(path), str(out_path), sample_rate, min_seconds, max_seconds))
            rows.append((source, track, piece))
    entries = []
    by_original = {job.original: row for job, row in zip(jobs, rows)}
    decoded = parallel_map(_decode_or_error, jobs, workers)
    for job, duration, error in tqdm(decoded, total=len(jobs), desc="decoding", unit="track"):
        if duration is None:
            logger.warning("skipped %s: %s", job.original, error)
            continue
        source, track, piece = by_original[job.original]
        entries.append(RecordingEntry(path=Path(job.out_path).relative_to(out_dir).as_posix(), piece=piece,
                                      source=source.name, track=track, duration=round(duration, 3),
                                      sample_rate=sample_rate, licence=source.licence, original=job.original))
    if not entries:
        raise RuntimeError(f"no usable recording under {', '.join(str(s.folder) for s in sources)}")
    write_manifest(entries, out_dir / MANIFEST_NAME)
    logger.info("wrote %d of %d recordings into %s", len(entries), len(jobs), out_dir)
    return entries
