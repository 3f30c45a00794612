"""What the application pipeline starts from: a model (a shipped, random or checkpointed CPC model, or a user's
network) and a mono clip."""
from __future__ import annotations

import logging
import struct
from math import gcd
from pathlib import Path

import numpy as np
import soundfile
import torch
from scipy.signal import resample_poly
from torch import nn

from immersions.cpc import checkpoint
from immersions.cpc.config import CONFIGS
from immersions.cpc.model import CPC

from .audio_model import as_audio_model
from .user_model import EXPORT_SUFFIX, is_import_path, model_from_export, model_from_factory

logger = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def load_model(spec: str | Path = "lean", *, seed: int = 0) -> nn.Module:
    """The model named by ``spec``, in eval mode: a CPC checkpoint path or a shipped model's name, or a user's
    network (``user_model``): ``package.module:factory`` or a ``torch.export`` program ``.pt2``, as the pipeline
    takes it (``audio_model.as_audio_model``).

    A config name (``lean``, ``seed``) with no shipped checkpoint of that name gives a randomly initialised
    model (seeded by ``seed``) with a logged warning, so the demo runs on any install.
    """
    if is_import_path(spec):
        return as_audio_model(model_from_factory(str(spec)))
    if Path(spec).suffix == EXPORT_SUFFIX:
        return as_audio_model(model_from_export(spec))
    try:
        return checkpoint.load_model(spec)
    except FileNotFoundError as missing:
        if str(spec) not in CONFIGS:
            raise FileNotFoundError(f"{missing}; your own network is package.module:factory or a torch.export "
                                    f"{EXPORT_SUFFIX}") from None
        logger.warning("%s; using a randomly initialised %r model (seed %d) instead", missing, str(spec), seed)
        torch.manual_seed(seed)
        return CPC(CONFIGS[str(spec)]).eval()


def load_cpc_model(spec: str | Path = "lean", *, seed: int = 0) -> CPC:
    """``load_model`` for the commands that run on CPC models only: another network is refused by name."""
    model = load_model(spec, seed=seed)
    if not isinstance(model, CPC):
        raise TypeError(f"--model {str(spec)!r} is a {type(model).__name__}: this command runs on CPC models only "
                        "(your own network works with render)")
    return model


def check_device(name: str | None) -> str:
    """The torch device ``name`` (None: cuda when there is one, else cpu), refused when this machine lacks it."""
    if name is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name!r} is not a torch device (e.g. cpu, cuda, cuda:1)") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"--device {name!r}: this machine has no CUDA device (or torch {torch.__version__} "
                             "was built without CUDA); use --device cpu")
        if device.index is not None and device.index >= count:
            raise ValueError(f"--device {name!r}: this machine has {count} CUDA device(s)")
    elif device.type != "cpu":
        raise ValueError(f"--device {name!r}: use cpu or cuda[:N]")
    return name


def check_audio_path(path: str | Path) -> Path:
    """``path`` as a Path when it is a file; a missing file or a folder is an error that says which."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"audio file {str(path)!r} is a folder; give a sound file ({', '.join(AUDIO_SUFFIXES)})")
    if not path.is_file():
        raise FileNotFoundError(f"audio file {str(path)!r} does not exist")
    return path


def read_sound(path: str | Path, *, seconds: float | None = None) -> tuple[np.ndarray, int]:
    """The samples ``(frames, channels)`` float32 of a sound file, the first ``seconds`` only if given, and its
    sample rate. Non-finite samples are an error (they would turn into full-scale noise or NaN further on); a
    WAV file shorter than its header says is read as far as it goes, with a warning."""
    path = check_audio_path(path)
    if seconds is not None and not (np.isfinite(seconds) and seconds > 0):
        raise ValueError(f"seconds must be a positive number, got {seconds!r}")
    try:
        with soundfile.SoundFile(path) as sound:
            frames = sound.frames if seconds is None else min(sound.frames, int(np.ceil(seconds * sound.samplerate)))
            data = sound.read(frames, dtype="float32", always_2d=True)
            rate, held = sound.samplerate, sound.frames
    except soundfile.LibsndfileError as exc:
        raise ValueError(f"cannot read audio file {str(path)!r} ({exc}); use one of {AUDIO_SUFFIXES}") from exc
    if len(data) == 0:
        raise ValueError(f"audio file {str(path)!r} holds no samples")
    bad = np.count_nonzero(~np.isfinite(data))
    if bad:
        raise ValueError(f"audio file {str(path)!r} holds {bad} non-finite samples (NaN or infinity) of {data.size}; "
                         "repair or re-export it")
    promised = wav_header_frames(path)
    if promised is not None and promised > held:
        logger.warning("audio file %r is cut short: its header promises %.2f s, it holds %.2f s; using those %.2f s",
                       str(path), promised / rate, held / rate, held / rate)
    return data, rate


def wav_header_frames(path: Path) -> int | None:
    """The frame count a RIFF/WAVE header promises (its data chunk's size), or None for other files and for
    streamed WAVs that leave the size open. libsndfile reports only the frames actually present."""
    with open(path, "rb") as file:
        head = file.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        block_align = None
        while chunk := file.read(8):
            if len(chunk) < 8:
                return None
            name, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if name == b"fmt ":
                body = file.read(size + (size & 1))
                block_align = struct.unpack_from("<H", body, 12)[0] if len(body) >= 14 else None
            elif name == b"data":
                if not block_align or size in (0, 0xFFFFFFFF):
                    return None
                return size // block_align
            else:
                file.seek(size + (size & 1), 1)
    return None


def read_clip(path: str | Path, *, seconds: float | None = None) -> tuple[np.ndarray, int]:
    """A sound file as mono float32 at its own rate (channels averaged), cut to ``seconds``, and that rate."""
    data, source_rate = read_sound(path, seconds=seconds)
    return np.ascontiguousarray(data.mean(axis=1), dtype=np.float32), source_rate


def load_clip(path: str | Path, sample_rate: int, *, seconds: float | None = None) -> np.ndarray:
    """A sound file as mono float32 at ``sample_rate`` (channels averaged, resampled), cut to ``seconds``."""
    samples, source_rate = read_clip(path, seconds=seconds)
    return resample(samples, source_rate, sample_rate)


def resample(samples: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Mono samples from ``source_rate`` to ``target_rate`` (polyphase, anti-aliased), float32."""
    if source_rate != target_rate:
        common = gcd(int(source_rate), int(target_rate))
        samples = resample_poly(samples, int(target_rate) // common, int(source_rate) // common)
        logger.info("resampled %d Hz audio to %d Hz", source_rate, target_rate)
    return np.ascontiguousarray(samples, dtype=np.float32)
