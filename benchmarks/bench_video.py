"""Throughput of the video path: encoding frames (+ sound) with ``write_video``, from RGB frames and from
yuv420p frames (what ``Offscreen`` hands over after its GPU conversion; here converted once in numpy),
imageio's own ffmpeg writer as the peer, and the per-frame animation state (``Timeline.states``) for a
large layout.

    python benchmarks/bench_video.py --width 640 --height 360 --frames 120 --neurons 200000

Writes ``benchmarks/results/video_<machine>.json``. Everything here runs on the CPU (ffmpeg, numpy);
there is no GPU code path to measure.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from immersions.render.animation import Timeline
from immersions.render.offscreen import YUV420P_COEFFICIENTS
from immersions.render.video import probe_video, write_video


def make_frames(count: int, width: int, height: int, seed: int) -> list[np.ndarray]:
    """Moving gradients plus noise: content the encoder cannot collapse to nothing."""
    rng = np.random.default_rng(seed)
    x = np.arange(width)[None, :]
    y = np.arange(height)[:, None]
    frames = []
    for i in range(count):
        frame = np.empty((height, width, 3), np.uint8)
        frame[..., 0] = (x * 3 + i * 5) % 256
        frame[..., 1] = (y * 2 + i * 3) % 256
        frame[..., 2] = rng.integers(0, 64, size=(height, width), dtype=np.uint8)
        frames.append(frame)
    return frames


def as_yuv420p(frame: np.ndarray) -> np.ndarray:
    """An even-sized RGB frame in yuv420p layout, ``(3 * H // 2, W)``: BT.709 limited range, 2x2 chroma means."""
    rgb = frame.astype(np.float32) / 255
    height, width = frame.shape[:2]
    blocks = rgb.reshape(height // 2, 2, width // 2, 2, 3).mean(axis=(1, 3))
    planes = [rgb @ YUV420P_COEFFICIENTS[0, :3] + YUV420P_COEFFICIENTS[0, 3],
              blocks @ YUV420P_COEFFICIENTS[1, :3] + YUV420P_COEFFICIENTS[1, 3],
              blocks @ YUV420P_COEFFICIENTS[2, :3] + YUV420P_COEFFICIENTS[2, 3]]
    flat = np.concatenate([np.rint(plane * 255).ravel() for plane in planes])
    return flat.astype(np.uint8).reshape(3 * height // 2, width)


def timed(run: Callable[[], object], warmup: int, repeats: int) -> list[float]:
    """Wall-clock seconds of ``repeats`` runs after ``warmup`` unmeasured ones."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def imageio_peer(path: Path, frames: list[np.ndarray], fps: float, crf: int, preset: str) -> Callable[[], None]:
    """imageio's v2 ffmpeg writer with the same codec settings (no sound track, no atomic rename)."""
    import imageio.v2 as imageio

    def run() -> None:
        options = dict(fps=fps, codec="libx264", quality=None, macro_block_size=1, ffmpeg_log_level="error",
                       ffmpeg_params=["-crf", str(crf), "-preset", preset])
        with imageio.get_writer(path, **options) as writer:
            for frame in frames:
                writer.append_data(frame)
    return run


def row(name: str, times: list[float], frames: int, **extra) -> dict:
    median = statistics.median(times)
    return {"name": name, "median_s": median, "min_s": min(times), "times_s": times,
            "frames_per_s": frames / median, **extra}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--crf", type=int, default=18)
    parser.add_argument("--presets", nargs="+", default=["veryfast", "medium"])
    parser.add_argument("--neurons", type=int, default=200_000)
    parser.add_argument("--snapshots", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--machine", default=platform.node() or "local", help="name in the output file")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    frames = make_frames(args.frames, args.width, args.height, args.seed)
    inputs = {"rgb24": frames, "yuv420p": [as_yuv420p(frame) for frame in frames]}
    duration = args.frames / args.fps
    sample_rate = 44100
    rng = np.random.default_rng(args.seed)
    audio = (0.1 * rng.standard_normal(int(duration * sample_rate))).astype(np.float32)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "bench.mp4"
        for preset in args.presets:
            def ours(with_sound: bool, pixel_format: str) -> None:
                write_video(target, inputs[pixel_format], args.fps, audio=audio if with_sound else None,
                            sample_rate=sample_rate if with_sound else None, n_frames=args.frames, crf=args.crf,
                            preset=preset, pixel_format=pixel_format, progress=False)

            for pixel_format in inputs:
                for with_sound in (False, True):
                    times = timed(lambda: ours(with_sound, pixel_format), args.warmup, args.repeats)
                    rows.append(row("write_video+audio" if with_sound else "write_video", times, args.frames,
                                    preset=preset, audio=with_sound, pixel_format=pixel_format))
            times = timed(imageio_peer(target, frames, args.fps, args.crf, preset), args.warmup, args.repeats)
            rows.append(row("imageio.get_writer (peer)", times, args.frames, preset=preset, audio=False))
        write_video(target, frames, args.fps, audio=audio, sample_rate=sample_rate, progress=False)
        rows.append(row("probe_video", timed(lambda: probe_video(target), args.warmup, args.repeats), args.frames))

    snapshots = rng.normal(size=(args.snapshots, args.neurons, 2)).astype(np.float32)
    timeline = Timeline(60.0, n_frames=args.frames)
    values = rng.random((max(2, int(timeline.duration * timeline.activation_rate) + 1), args.neurons),
                        dtype=np.float32)
    for interpolation in ("cubic", "linear"):
        times = timed(lambda: sum(1 for _ in timeline.states(snapshots, values, interpolation)), args.warmup,
                      args.repeats)
        rows.append(row("Timeline.states", times, args.frames, interpolation=interpolation, neurons=args.neurons))

    import imageio_ffmpeg
    import torch

    record = {
        "benchmark": "video",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpu_count": os.cpu_count(),
                    "python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
                    "imageio_ffmpeg": imageio_ffmpeg.__version__, "ffmpeg": imageio_ffmpeg.get_ffmpeg_version()},
        "gpu": "not measured: encoding and interpolation run on the CPU",
        "results": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"video_{args.machine}.json"
    path.write_text(json.dumps(record, indent=2))
    for entry in rows:
        label = " ".join(f"{k}={entry[k]}" for k in ("preset", "audio", "pixel_format", "interpolation")
                         if k in entry)
        print(f"{entry['name']:<28} {label:<48} median {entry['median_s'] * 1e3:9.1f} ms  "
              f"{entry['frames_per_s']:8.1f} frames/s")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
