"""Benchmark the CPC model: scaleogram forward+backward vs nnAudio's CQT, inference latency, training throughput.

    python benchmarks/bench_cpc.py --device cpu --configs lean seed --repeats 3

Rows:
- ``scaleogram``: forward + backward (gradient to the waveform) of one batch of clips, ours against
  nnAudio's ``CQT1992v2`` (one conv with every kernel padded to the longest) and ``CQT2010v2``
  (multi-rate, octave by octave) at the same sample rate, hop, bins and fmin, when nnAudio is installed.
- ``inference``: one clip, eval mode, ``no_grad``, audio to (z, c), per config.
- ``probe_features``: a batch of ``--probe-batch`` clips to mean-pooled c, as the probes extract their
  features, reported as clips per second.
- ``train_step``: forward, CPC loss, backward and an Adam step on a batch of clips, per config,
  reported as clips per second; on CUDA also with autocast (bfloat16) when ``--amp`` is given.
- ``optimize``: input optimisation of one clip from noise for ``--optimize-steps`` steps with the default
  regularisers (the objective: channel 0 of the last tap), per config, reported as steps per second; the
  time includes the two clean scoring passes before and after.

Times are medians over ``--repeats`` after ``--warmup`` runs, with CUDA synchronisation. Writes
``benchmarks/results/cpc_<machine>.json``.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from immersions.cpc.config import CONFIGS
from immersions.cpc.model import CPC
from immersions.cpc.objectives import channel
from immersions.cpc.optimize import OptimizeSettings, optimize_clip, start_clip
from immersions.cpc.scaleogram import Scaleogram


def _timed(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> dict:
    """Median, min and all wall times of ``fn`` in seconds, synchronising CUDA around each call."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "min_s": min(times), "times_s": times}


def _forward_backward(module: torch.nn.Module, audio: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        x = audio.detach().requires_grad_(True)
        module(x).float().mean().backward()
    return run


def bench_scaleogram(args: argparse.Namespace, device: torch.device) -> list[dict]:
    config = CONFIGS["seed"]
    audio = torch.randn(args.batch, int(args.seconds * config.sample_rate), device=device,
                        generator=torch.Generator(device=device).manual_seed(args.seed))
    candidates = {"immersions.Scaleogram": lambda: Scaleogram(config)}
    try:
        from nnAudio import features
    except ImportError:
        features = None
    if features is not None:
        common = dict(sr=config.sample_rate, hop_length=config.hop, fmin=config.fmin, n_bins=config.n_bins,
                      bins_per_octave=config.bins_per_octave, output_format="Magnitude", verbose=False)
        candidates["nnAudio.CQT1992v2"] = lambda: features.CQT1992v2(**common)
        candidates["nnAudio.CQT2010v2"] = lambda: features.CQT2010v2(**common)
    rows = []
    for name, build in candidates.items():
        module = build().to(device)
        row = {"row": "scaleogram", "implementation": name, "batch": args.batch, "seconds": args.seconds}
        row.update(_timed(_forward_backward(module, audio), device, args.warmup, args.repeats))
        rows.append(row)
        print(f"scaleogram fwd+bwd {name:24s} {row['median_s'] * 1e3:9.1f} ms")
    if features is None:
        rows.append({"row": "scaleogram", "implementation": "nnAudio", "note": "not installed"})
    return rows


def bench_model(args: argparse.Namespace, device: torch.device, name: str) -> list[dict]:
    config = CONFIGS[name]
    torch.manual_seed(args.seed)
    model = CPC(config).to(device)
    samples = int(args.seconds * config.sample_rate)
    generator = torch.Generator(device=device).manual_seed(args.seed)
    clip = torch.randn(1, samples, device=device, generator=generator)
    batch = torch.randn(args.train_batch, samples, device=device, generator=generator)
    rows = []

    model.eval()

    def infer() -> None:
        with torch.no_grad():
            model(clip)
    row = {"row": "inference", "config": name, "batch": 1, "seconds": args.seconds}
    row.update(_timed(infer, device, args.warmup, args.repeats))
    rows.append(row)
    print(f"inference {name:5s} one {args.seconds:.0f}-s clip {row['median_s'] * 1e3:9.1f} ms")

    probe_batch = torch.randn(args.probe_batch, samples, device=device, generator=generator)

    def features() -> None:
        with torch.no_grad():
            model(probe_batch)[1].mean(dim=1)
    row = {"row": "probe_features", "config": name, "batch": args.probe_batch, "seconds": args.seconds}
    row.update(_timed(features, device, args.warmup, args.repeats))
    row["clips_per_s"] = args.probe_batch / row["median_s"]
    rows.append(row)
    print(f"probe features {name:5s} batch {args.probe_batch}: {row['clips_per_s']:8.2f} clips/s")

    model.train()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)
    amp_modes = [False] + ([True] if args.amp and device.type == "cuda" else [])
    for amp in amp_modes:
        def step() -> None:
            optimiser.zero_grad(set_to_none=True)
            autocast = torch.autocast("cuda", dtype=torch.bfloat16) if amp else contextlib.nullcontext()
            with autocast:
                z, c = model(batch)
                loss, _ = model.loss(z.float(), c.float())
            loss.backward()
            optimiser.step()
        row = {"row": "train_step", "config": name, "batch": args.train_batch, "seconds": args.seconds, "amp": amp}
        row.update(_timed(step, device, args.warmup, args.repeats))
        row["clips_per_s"] = args.train_batch / row["median_s"]
        rows.append(row)
        print(f"train step {name:5s} amp={amp!s:5s} batch {args.train_batch}: {row['clips_per_s']:8.2f} clips/s")

    model.eval()
    objective = channel(model.tap_names()[-1], 0)
    start = start_clip("noise", samples, args.seed)
    settings = OptimizeSettings(steps=args.optimize_steps, seed=args.seed)
    row = {"row": "optimize", "config": name, "seconds": args.seconds, "steps": args.optimize_steps}
    row.update(_timed(lambda: optimize_clip(model, objective, start, settings, progress=False), device,
                      args.warmup, args.repeats))
    row["steps_per_s"] = args.optimize_steps / row["median_s"]
    rows.append(row)
    print(f"optimize {name:5s} {args.optimize_steps} steps: {row['steps_per_s']:8.2f} steps/s")
    return rows


def machine_info(device: torch.device) -> dict:
    info = {"platform": platform.platform(), "processor": platform.processor(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "torch": torch.__version__, "numpy": np.__version__, "device": str(device),
            "load_average_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}
    try:
        import nnAudio
        info["nnAudio"] = getattr(nnAudio, "__version__", "installed")
    except ImportError:
        info["nnAudio"] = None
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--configs", nargs="+", default=["lean", "seed"], choices=sorted(CONFIGS))
    parser.add_argument("--seconds", type=float, default=4.0, help="clip length")
    parser.add_argument("--batch", type=int, default=4, help="clips per scaleogram batch")
    parser.add_argument("--train-batch", type=int, default=4, help="clips per training step")
    parser.add_argument("--probe-batch", type=int, default=16, help="clips per probe feature batch")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--optimize-steps", type=int, default=20, help="input-optimisation steps per timed run")
    parser.add_argument("--amp", action="store_true", help="also time bfloat16 autocast training (CUDA only)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--machine", default=platform.node() or "local", help="name in the output file")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"--device {args.device} requested but CUDA is not available")

    rows = bench_scaleogram(args, device)
    for name in args.configs:
        rows += bench_model(args, device, name)
    record = {
        "benchmark": "cpc",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(device),
        "parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "gpu": ("not measured: this run had no CUDA device; run with --device cuda --amp on a GPU machine"
                if device.type != "cuda" else "measured on machine.gpu"),
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"cpc_{args.machine}.json"
    path.write_text(json.dumps(record, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
