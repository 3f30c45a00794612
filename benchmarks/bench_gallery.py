"""Benchmark the per-layer gallery: a whole gallery of a shipped model, timed, with every tap's gain and robustness.

    python benchmarks/bench_gallery.py --model lean --threads 2 --machine cpu2

Runs ``immersions gallery`` afresh (the output folder is emptied first) with its default settings and records the
wall time of the whole command, each tap's seconds, and per tap the mean activation on silence and on the grown
clip (the gain), the scores under +-0.5 s shifts (the fraction of the gain kept) and whether the tap meets the aim
(10x over silence, half of it kept). The gallery is run once (one run takes minutes), so its time is one run, not a
median. Writes ``benchmarks/results/gallery_<machine>.json``; the gallery itself stays in ``--gallery``.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import time
from pathlib import Path

import torch

from immersions.render.cli import main as immersions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="lean")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--gallery", type=Path, default=Path("out/bench_gallery"),
                        help="where the gallery is written (emptied first)")
    parser.add_argument("--machine", default=platform.node() or "local", help="name in the output file")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    shutil.rmtree(args.gallery, ignore_errors=True)
    load_before = list(os.getloadavg())
    started = time.perf_counter()
    status = immersions(["gallery", str(args.gallery), "--model", args.model, "--threads", str(args.threads),
                         "--device", "cpu"])
    wall = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"immersions gallery failed with status {status}")
    gallery = json.loads((args.gallery / "gallery.json").read_text(encoding="utf-8"))
    taps = [{key: record[key] for key in ("tap", "title", "silence_score", "score", "shifted_scores", "gain",
                                          "kept_under_shift", "meets_aim", "seconds")}
            for record in gallery["taps"]]
    gains = [tap["gain"] for tap in taps if tap["gain"] is not None]
    kept = [tap["kept_under_shift"] for tap in taps if tap["kept_under_shift"] is not None]
    result = {
        "benchmark": "gallery", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "torch_threads": args.threads,
                    "torch": torch.__version__, "python": platform.python_version(),
                    "load_average_1_5_15_before": load_before, "load_average_1_5_15_after": list(os.getloadavg())},
        "model": args.model, "settings": gallery["settings"], "aim": gallery["aim"],
        "wall_s": wall, "runs": 1, "taps_total": len(taps), "taps_meeting_aim": sum(t["meets_aim"] for t in taps),
        "median_gain": statistics.median(gains) if gains else None,
        "median_kept_under_shift": statistics.median(kept) if kept else None,
        "median_tap_s": statistics.median(t["seconds"] for t in taps), "taps": taps,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"gallery_{args.machine}.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}: {len(taps)} taps in {wall:.0f} s, {result['taps_meeting_aim']} meet the aim")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
