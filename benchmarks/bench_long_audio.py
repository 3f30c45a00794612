"""Long recordings: wall time per audio minute and peak memory of ``immersions render`` for 1, 10 and 60 minutes.

    python benchmarks/bench_long_audio.py --minutes 1 10 60 --size 320x180 --fps 2 --machine cpu2

The input is recorded music: the first 12 tracks of Debian's ``drascula-music`` (Ogg Vorbis, stereo, 44.1 kHz,
about 15 minutes), decoded once, joined one after another and looped to each length, written as a 16-bit
stereo WAV. Each length is rendered by ``immersions render`` (lean model, its reference levels, layout
computed) in a fresh process, so the peak resident memory (``ru_maxrss``) is that render's own. (The children's
``ru_maxrss``, recorded as ``ffmpeg_peak_rss_mib``, counts the interpreter forked before it became ffmpeg.) The frame size and rate are small so that an hour renders in reasonable time here; the
pipeline's memory does not depend on them beyond one frame. Writes ``benchmarks/results/long_audio_<machine>.json``.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import soundfile

MUSIC = "/work/data/pkgs/drascula-music/usr/share/scummvm/drascula/audio/*.ogg"
RATE = 44100
RUN_ONE = """
import resource, sys, time
from immersions.render.cli import main
start = time.perf_counter()
status = main(sys.argv[1:])
wall = time.perf_counter() - start
print("BENCH", status, wall, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
      resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, flush=True)
"""


def long_clip(path: Path, minutes: float, tracks: list[np.ndarray]) -> None:
    """Write ``minutes`` of the tracks joined and looped as a 16-bit stereo WAV, block by block."""
    total = round(minutes * 60 * RATE)
    with soundfile.SoundFile(path, "w", RATE, 2, "PCM_16") as out:
        written = 0
        while written < total:
            for track in tracks:
                take = track[:total - written]
                out.write(take)
                written += len(take)
                if written >= total:
                    break


def load_tracks(pattern: str) -> list[np.ndarray]:
    """The first 12 tracks matching ``pattern`` as stereo 16-bit at 44.1 kHz (mono tracks doubled)."""
    tracks = []
    for name in sorted(glob.glob(pattern))[:12]:
        data, rate = soundfile.read(name, dtype="int16", always_2d=True)
        if rate != RATE:
            raise ValueError(f"{name} is at {rate} Hz; this benchmark joins 44.1 kHz tracks")
        tracks.append(data if data.shape[1] == 2 else np.repeat(data[:, :1], 2, axis=1))
    if not tracks:
        raise FileNotFoundError(f"no music matches {pattern}")
    return tracks


def render_once(clip: Path, out: Path, size: str, fps: float) -> dict:
    """One ``immersions render`` in a fresh interpreter: wall seconds and peak RSS (MiB) of it and of ffmpeg."""
    command = [sys.executable, "-c", RUN_ONE, "render", "--audio", str(clip), "--out", str(out), "--size", size,
               "--fps", str(fps)]
    load_before = os.getloadavg()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    line = next((l for l in result.stdout.splitlines() if l.startswith("BENCH")), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"render failed:\n{result.stderr[-3000:]}")
    _, status, wall, rss_kib, child_kib = line.split()
    return {"wall_s": float(wall), "peak_rss_mib": int(rss_kib) / 1024, "ffmpeg_peak_rss_mib": int(child_kib) / 1024,
            "load_before": load_before, "load_after": os.getloadavg(), "video_bytes": out.stat().st_size,
            "activations_bytes": out.with_suffix(".activations.npz").stat().st_size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 60])
    parser.add_argument("--size", default="320x180")
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--music", default=MUSIC, help="glob of 44.1 kHz tracks to join and loop")
    parser.add_argument("--machine", default="cpu2")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    tracks = load_tracks(args.music)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-long-") as folder:
        for minutes in args.minutes:
            clip = Path(folder) / f"clip_{minutes:g}min.wav"
            long_clip(clip, minutes, tracks)
            row = {"minutes": minutes, **render_once(clip, Path(folder) / f"clip_{minutes:g}min.mp4", args.size,
                                                     args.fps)}
            row["wall_s_per_audio_minute"] = row["wall_s"] / minutes
            rows.append(row)
            print(json.dumps(row), flush=True)
            for path in Path(folder).iterdir():
                path.unlink()
    record = {"benchmark": "long_audio", "machine": args.machine, "platform": platform.platform(),
              "python": platform.python_version(), "cpus": os.cpu_count(),
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "input": f"the first {len(tracks)} tracks of {args.music} joined and looped, 16-bit stereo WAV at {RATE} Hz",
              "size": args.size, "fps": args.fps, "model": "lean", "levels": "reference", "runs": 1, "rows": rows}
    out = args.out or Path(__file__).parent / "results" / f"long_audio_{args.machine}.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
