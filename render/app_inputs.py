"""What the application pipeline starts from: a CPC model (shipped, random or a checkpoint) and a mono clip."""
from __future__ import annotations

import logging
from math import gcd
from pathlib import Path

import numpy as np
import soundfile
import torch
from scipy.signal import resample_poly

from immersions.cpc import checkpoint
from immersions.cpc.config import CONFIGS
from immersions.cpc.model import CPC

logger = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def load_model(spec: str | Path = "lean", *, seed: int = 0) -> CPC:
    """The CPC model named by ``spec`` (a checkpoint path or a shipped model's name), in eval mode.

    A config name (``lean``, ``seed``) with no shipped checkpoint of that name gives a randomly initialised
    model (seeded by ``seed``) with a logged warning, so the demo runs on any install.
    """
    try:
        return checkpoint.load_model(spec)
    except FileNotFoundError as missing:
        if str(spec) not in CONFIGS:
            raise
        logger.warning("%s; using a randomly initialised %r model (seed %d) instead", missing, str(spec), seed)
        torch.manual_seed(seed)
        return CPC(CONFIGS[str(spec)]).eval()


def load_clip(path: str | Path, sample_rate: int, *, seconds: float | None = None) -> np.ndarray:
    """A sound file as mono float32 at ``sample_rate`` (channels averaged, resampled), cut to ``seconds``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file {str(path)!r} does not exist")
    if seconds is not None and not (np.isfinite(seconds) and seconds > 0):
        raise ValueError(f"seconds must be a positive number, got {seconds!r}")
    try:
        with soundfile.SoundFile(path) as sound:
            frames = sound.frames if seconds is None else min(sound.frames, int(np.ceil(seconds * sound.samplerate)))
            data = _read_mono(sound, frames)
            source_rate = sound.samplerate
    except soundfile.LibsndfileError as exc:
        raise ValueError(f"cannot read audio file {str(path)!r} ({exc}); use one of {AUDIO_SUFFIXES}") from exc
    if len(data) == 0:
        raise ValueError(f"audio file {str(path)!r} holds no samples")
    return resample(data, source_rate, sample_rate)


def _read_mono(sound: soundfile.SoundFile, frames: int, block: int = 1 << 20) -> np.ndarray:
    """Up to ``frames`` frames of an open sound file, channels averaged block by block: a long stereo
    recording never sits in memory as float32 channels (an hour at 44.1 kHz would take 1.3 GB)."""
    mono = np.empty(frames, np.float32)
    filled = 0
    while filled < frames:
        data = sound.read(min(block, frames - filled), dtype="float32", always_2d=True)
        if len(data) == 0:
            break
        mono[filled:filled + len(data)] = data.mean(axis=1)
        filled += len(data)
    return mono[:filled]


def resample(samples: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Mono samples from ``source_rate`` to ``target_rate`` (polyphase, anti-aliased), float32."""
    if source_rate != target_rate:
        common = gcd(int(source_rate), int(target_rate))
        samples = resample_poly(samples, int(target_rate) // common, int(source_rate) // common)
        logger.info("resampled %d Hz audio to %d Hz", source_rate, target_rate)
    return np.ascontiguousarray(samples, dtype=np.float32)
