"""Stream rendered frames and a sound track into an H.264 + AAC ``.mp4`` through the ffmpeg of imageio-ffmpeg.

Frames arrive one at a time (a generator from ``Offscreen.frames``), so a long render never holds the
whole video in memory. Each frame is piped to ffmpeg by a writer thread while the caller renders the next
one. Frames are RGB (``"rgb24"``) or already in the encoder's planar 4:2:0 layout (``"yuv420p"``, see
``immersions.render.offscreen``), which halves the bytes piped and leaves ffmpeg no colour conversion to
do. Either way the video is BT.709, limited range, and tagged so, so players show the colours drawn.
The sound track is trimmed or padded with silence to the video's length, and the file appears under its
final name only once ffmpeg has finished: a failed render leaves nothing behind and never replaces an
earlier file.
"""
from __future__ import annotations

import logging
import os
import re
import subprocess
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, suppress
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

import imageio_ffmpeg
import numpy as np
import soundfile
from tqdm import tqdm

from .defaults import PRESETS
from .atomic import default_file_mode

logger = logging.getLogger(__name__)

VIDEO_CODEC = "libx264"
AUDIO_CODEC = "aac"
DEFAULT_CRF = 18
AUDIO_BITRATE = "192k"
PIXEL_FORMATS = ("rgb24", "yuv420p")
RGB_TAGS = ("-color_primaries", "bt709", "-color_trc", "bt709")
COLOR_TAGS = ("-colorspace", "bt709", *RGB_TAGS, "-color_range", "tv")
"""ffmpeg options stating BT.709 in limited range: the stream's tags, and the yuv420p input's description
(RGB input is described by ``RGB_TAGS``: BT.709 primaries and transfer, as sRGB's)."""
RGB_TO_YUV = "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p"


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: float,
    *,
    audio: str | Path | np.ndarray | None = None,
    sample_rate: int | None = None,
    n_frames: int | None = None,
    crf: int = DEFAULT_CRF,
    preset: str = "medium",
    pixel_format: str = "rgb24",
    threads: int | None = None,
    progress: bool = True,
) -> Path:
    """Encode uint8 frames at ``fps`` (with an optional sound track) and return the path.

    ``pixel_format`` "rgb24": frames are ``(H, W, 3)`` RGB; odd sizes are padded (bottom and right, black)
    to the even sizes 4:2:0 needs. "yuv420p": frames are ``(3 * H // 2, W)`` planar BT.709 limited-range
    frames of even ``W`` and ``H`` (``Offscreen.frames(..., pixel_format="yuv420p")``), encoded as they are.
    ``audio`` is a sound file ffmpeg can read or an array ``(samples,)`` / ``(samples, channels)`` at
    ``sample_rate``; it is cut or padded with silence to the video's duration. ``n_frames``, when given,
    is the number of frames to take from ``frames`` (too few is an error) and the progress bar's total.
    ``crf`` (0 best .. 51 worst) and ``preset`` are libx264's quality and speed settings, ``threads`` its
    thread count (None: ffmpeg's choice from the CPU count). A frame is piped while the next one is made,
    so a generator must not change a frame after yielding it (yield a fresh array each time).
    """
    path = Path(path)
    fps = _check_fps(fps)
    if not isinstance(crf, (int, np.integer)) or not 0 <= crf <= 51:
        raise ValueError(f"crf must be an integer in [0, 51] (lower is better), got {crf!r}")
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    if pixel_format not in PIXEL_FORMATS:
        raise ValueError(f"pixel_format must be one of {PIXEL_FORMATS}, got {pixel_format!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, (int, np.integer))
                                or threads < 1):
        raise ValueError(f"threads must be a positive integer or None (ffmpeg's choice), got {threads!r}")
    if n_frames is not None and (not isinstance(n_frames, (int, np.integer)) or n_frames < 1):
        raise ValueError(f"n_frames must be a positive integer or None, got {n_frames!r}")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"output folder {str(path.parent)!r} does not exist")
    with ExitStack() as stack:
        audio_path = _audio_file(audio, sample_rate, stack)
        partial = _partial_file(path, stack)
        # With n_frames the duration is known up front and the sound is encoded in the same pass;
        # otherwise a second pass adds it once the last frame is in.
        sound = None if audio_path is None or n_frames is None else (audio_path, float(n_frames / fps))
        settings = _EncoderSettings(fps, crf, preset, pixel_format, threads, sound)
        written = _encode(partial, frames, n_frames, settings, progress)
        if audio_path is not None and sound is None:
            video_only, partial = partial, _partial_file(path, stack)
            _mux(video_only, audio_path, float(written / fps), partial)
        if partial.stat().st_size == 0:
            raise RuntimeError(f"ffmpeg wrote no data for {str(path)!r}; see its messages above")
        partial.chmod(default_file_mode())
        os.replace(partial, path)
    logger.info("wrote %s: %d frames at %s fps%s", path, written, fps, " with sound" if audio_path else "")
    return path


def _partial_file(path: Path, stack: ExitStack) -> Path:
    """A fresh temporary file next to ``path`` (same file system, so the final rename is atomic),
    deleted when ``stack`` closes unless it has been renamed by then."""
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".partial" + path.suffix)
    os.close(handle)
    stack.callback(Path(name).unlink, missing_ok=True)
    return Path(name)


def _check_fps(fps: float) -> Fraction:
    """The frame rate as an exact fraction (so 30000/1001 stays exact)."""
    if isinstance(fps, bool) or not isinstance(fps, (int, float, Fraction, np.integer, np.floating)):
        raise TypeError(f"fps must be a number, got {type(fps).__name__}")
    if not np.isfinite(float(fps)) or fps <= 0:
        raise ValueError(f"fps must be a positive finite number, got {fps!r}")
    return Fraction(fps).limit_denominator(1001)


def _audio_file(audio: str | Path | np.ndarray | None, sample_rate: int | None, stack: ExitStack) -> str | None:
    """A path ffmpeg can read for ``audio``: the file itself, or a temporary WAV holding the array."""
    if audio is None:
        if sample_rate is not None:
            raise ValueError("sample_rate was given without audio; pass audio=array together with sample_rate")
        return None
    if isinstance(audio, (str, Path)):
        if sample_rate is not None:
            raise ValueError(f"sample_rate is only for audio arrays; {str(audio)!r} carries its own rate")
        if not Path(audio).is_file():
            raise FileNotFoundError(f"audio file {str(audio)!r} does not exist")
        return str(audio)
    if not isinstance(audio, np.ndarray):
        raise TypeError(f"audio must be a path, a numpy array or None, got {type(audio).__name__}")
    if sample_rate is None or isinstance(sample_rate, bool) or int(sample_rate) != sample_rate or sample_rate <= 0:
        raise ValueError(f"an audio array needs a positive integer sample_rate, got {sample_rate!r}")
    if audio.ndim not in (1, 2) or audio.shape[0] == 0 or not np.issubdtype(audio.dtype, np.number):
        raise ValueError(f"audio array must be numeric with shape (samples,) or (samples, channels), "
                         f"got {audio.dtype} {audio.shape}")
    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="immersions-audio-"))
    wav = os.path.join(folder, "track.wav")
    soundfile.write(wav, np.asarray(audio, dtype=np.float32), int(sample_rate), subtype="FLOAT")
    return wav


def _check_frame(frame: object, index: int, pixel_format: str, size: tuple[int, int] | None) -> np.ndarray:
    """The frame as a contiguous uint8 array of ``pixel_format``, or an error naming its index."""
    if not isinstance(frame, np.ndarray):
        raise TypeError(f"frame {index} must be a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise TypeError(f"frame {index} must have dtype uint8, got {frame.dtype}")
    if pixel_format == "rgb24":
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] < 1 or frame.shape[1] < 1:
            raise ValueError(f"frame {index} must have shape (H, W, 3) for rgb24, got {frame.shape}")
    elif frame.ndim != 2 or frame.shape[0] % 3 or frame.shape[1] % 2 or frame.shape[0] < 3 or frame.shape[1] < 2:
        raise ValueError(f"frame {index} must have shape (3 * H // 2, W) with even H and W for yuv420p, "
                         f"got {frame.shape}")
    if size is not None and _frame_size(frame, pixel_format) != size:
        raise ValueError(f"frame {index} has size {_frame_size(frame, pixel_format)} (width, height) but frame 0 "
                         f"has {size}; all frames must match")
    return np.ascontiguousarray(frame)


def _frame_size(frame: np.ndarray, pixel_format: str) -> tuple[int, int]:
    """``(width, height)`` of the picture a checked frame holds."""
    if pixel_format == "rgb24":
        return frame.shape[1], frame.shape[0]
    return frame.shape[1], frame.shape[0] * 2 // 3


def _take(frames: Iterable[np.ndarray], n_frames: int | None) -> Iterator[np.ndarray]:
    """The first ``n_frames`` frames (all of them when None); fewer than asked is an error."""
    count = 0
    for frame in frames:
        if n_frames is not None and count == n_frames:
            return
        yield frame
        count += 1
    if count == 0:
        raise ValueError("frames yielded no frame; a video needs at least one")
    if n_frames is not None and count < n_frames:
        raise ValueError(f"frames yielded {count} frames but n_frames={n_frames}")


class _EncoderSettings(NamedTuple):
    """What the encoding ffmpeg process is told, besides the frame size."""

    fps: Fraction
    crf: int
    preset: str
    pixel_format: str
    threads: int | None
    sound: tuple[str, float] | None  # (audio file, video duration in seconds) to add in the same pass


def _sound_options(duration: float) -> list[str]:
    """Encode the sound track padded with silence and cut to ``duration`` seconds."""
    return ["-c:a", AUDIO_CODEC, "-b:a", AUDIO_BITRATE, "-af", f"apad,atrim=end={duration!r}"]


def _encoder_command(partial: Path, size: tuple[int, int], settings: _EncoderSettings) -> list[str]:
    """ffmpeg reading raw ``size`` frames from stdin and writing BT.709 H.264 (and the sound) to ``partial``."""
    width, height = size
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", settings.pixel_format, "-s", f"{width}x{height}",
               "-r", f"{settings.fps.numerator}/{settings.fps.denominator}"]
    command += COLOR_TAGS if settings.pixel_format == "yuv420p" else RGB_TAGS  # the input, as it is
    command += ["-i", "-"]
    if settings.sound is None:
        command += ["-an"]
    else:
        audio_path, duration = settings.sound
        command += ["-i", audio_path, "-map", "0:v:0", "-map", "1:a:0", *_sound_options(duration)]
    command += ["-c:v", VIDEO_CODEC, "-crf", str(int(settings.crf)), "-preset", settings.preset]
    if settings.threads is not None:
        command += ["-threads", str(int(settings.threads))]
    if settings.pixel_format == "rgb24":
        pad = ["pad=width=ceil(iw/2)*2:height=ceil(ih/2)*2:x=0:y=0:color=black"] if width % 2 or height % 2 else []
        command += ["-vf", ",".join([*pad, RGB_TO_YUV])]
    return command + ["-pix_fmt", "yuv420p", *COLOR_TAGS, "-movflags", "+faststart", str(partial)]


class _EncoderProcess:
    """One ffmpeg process encoding the raw frames piped to it. ``send`` hands a frame to a writer thread
    and returns at once (after the previous frame is through), so the caller renders frame ``i + 1``
    while frame ``i`` goes down the pipe."""

    def __init__(self, command: list[str], stack: ExitStack):
        self._stderr = stack.enter_context(tempfile.TemporaryFile())
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                         stderr=self._stderr)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ffmpeg-pipe")
        self._pending: Future | None = None

    def _messages(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace").strip()

    def _wait_for_pipe(self) -> None:
        if self._pending is None:
            return
        pending, self._pending = self._pending, None
        try:
            pending.result()
        except OSError as exc:  # BrokenPipeError: ffmpeg has exited
            self._process.wait()
            raise RuntimeError(f"ffmpeg stopped taking frames ({exc}):\n{self._messages()}") from exc

    def send(self, frame: np.ndarray) -> None:
        """Queue one contiguous frame for the pipe."""
        self._wait_for_pipe()
        self._pending = self._writer.submit(self._process.stdin.write, frame)

    def finish(self) -> None:
        """Send the last frame, close the pipe and wait for ffmpeg; RuntimeError with its messages if it failed."""
        try:
            self._wait_for_pipe()
            self._process.stdin.close()
        finally:
            self._writer.shutdown()
        if self._process.wait() != 0:
            raise RuntimeError(f"ffmpeg failed (exit status {self._process.returncode}):\n{self._messages()}")

    def abort(self) -> None:
        """Stop ffmpeg at once (its output is discarded) and the writer thread."""
        self._process.kill()
        self._writer.shutdown(wait=True, cancel_futures=True)
        self._process.wait()
        with suppress(BrokenPipeError):  # flushing to the killed process
            self._process.stdin.close()


def _encode(
    partial: Path,
    frames: Iterable[np.ndarray],
    n_frames: int | None,
    settings: _EncoderSettings,
    progress: bool,
) -> int:
    """Feed every frame to one ffmpeg process writing ``partial``; returns the number of frames."""
    encoder, size, count = None, None, 0
    bar = tqdm(total=n_frames, unit="frame", desc="encoding video", disable=not progress)
    with ExitStack() as stack:
        try:
            for count, frame in enumerate(_take(frames, n_frames)):
                frame = _check_frame(frame, count, settings.pixel_format, size)
                if encoder is None:
                    size = _frame_size(frame, settings.pixel_format)
                    encoder = _EncoderProcess(_encoder_command(partial, size, settings), stack)
                encoder.send(frame)
                bar.update(1)
            if encoder is not None:
                encoder.finish()
        except BaseException:
            if encoder is not None:
                encoder.abort()
            raise
        finally:
            bar.close()
    return count + 1


def _mux(video: Path, audio_path: str, duration: float, output: Path) -> None:
    """Copy the encoded video and add the sound track, padded with silence and cut to ``duration`` seconds.

    A second pass because without ``n_frames`` the duration is known only once the last frame is in;
    ``-shortest`` in the first pass can overshoot by up to a few hundred milliseconds on short clips.
    """
    result = _run_ffmpeg(["-v", "error", "-y", "-i", str(video), "-i", audio_path, "-map", "0:v:0", "-map", "1:a:0",
                          "-c:v", "copy", *_sound_options(duration), "-movflags", "+faststart", str(output)])
    if result.returncode != 0:
        raise RuntimeError(f"ffmpeg could not add the sound track {audio_path!r}:\n{result.stderr.strip()}")


def _run_ffmpeg(args: list[str], binary: bool = False) -> subprocess.CompletedProcess:
    """Run the imageio-ffmpeg binary with ``args`` and capture its output."""
    return subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", *args],
                          capture_output=True, text=not binary, check=False)


_DURATION = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_VIDEO = re.compile(r"Stream #\S+.*?Video:\s*(\w+).*?,\s*(\d+)x(\d+)[\s,\[].*?,\s*([\d.]+(?:k)?)\s*(?:fps|tbr)")
_AUDIO = re.compile(r"Stream #\S+.*?Audio:\s*(\w+).*?,\s*(\d+)\s*Hz")


def probe_video(path: str | Path) -> dict:
    """Measure a video file: exact frame count, fps, duration, size, codecs and the decoded audio length.

    Returns ``dict(n_frames, fps, duration, width, height, audio_duration, audio_codec, video_codec)``;
    the audio entries are None when the file has no sound track.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video file {str(path)!r} does not exist")
    header = _run_ffmpeg(["-i", str(path)]).stderr
    video = _VIDEO.search(header)
    duration = _DURATION.search(header)
    if video is None or duration is None:
        raise ValueError(f"{str(path)!r} has no readable video stream; ffmpeg said:\n{header.strip()}")
    hours, minutes, seconds = duration.groups()
    info = {
        "video_codec": video.group(1),
        "width": int(video.group(2)),
        "height": int(video.group(3)),
        "fps": _parse_rate(video.group(4)),
        "duration": int(hours) * 3600 + int(minutes) * 60 + float(seconds),
        "n_frames": _count_frames(path),
        "audio_codec": None,
        "audio_duration": None,
    }
    audio = _AUDIO.search(header)
    if audio is not None:
        info["audio_codec"] = audio.group(1)
        info["audio_duration"] = _decoded_audio_seconds(path, int(audio.group(2)))
    return info


def _parse_rate(text: str) -> float:
    """ffmpeg's printed frame rate (``30``, ``29.97``, ``1k``) as a float."""
    return float(text[:-1]) * 1000 if text.endswith("k") else float(text)


def _count_frames(path: Path) -> int:
    """Exact number of video packets, counted by remuxing the stream to nowhere."""
    result = _run_ffmpeg(["-nostats", "-progress", "pipe:1", "-i", str(path), "-map", "0:v:0", "-c", "copy",
                          "-f", "null", "-"])
    counts = re.findall(r"^frame=(\d+)$", result.stdout, flags=re.MULTILINE)
    if result.returncode != 0 or not counts:
        raise RuntimeError(f"ffmpeg could not count the frames of {str(path)!r}:\n{result.stderr.strip()}")
    return int(counts[-1])


def _decoded_audio_seconds(path: Path, sample_rate: int) -> float:
    """Length of the first sound track after decoding (encoder priming removed), in seconds."""
    result = _run_ffmpeg(["-v", "error", "-i", str(path), "-map", "0:a:0", "-ac", "1", "-f", "s16le", "-"],
                         binary=True)
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip()
        raise RuntimeError(f"ffmpeg could not decode the sound of {str(path)!r}:\n{message}")
    return len(result.stdout) / 2 / sample_rate
