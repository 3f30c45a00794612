"""Per-call time and accuracy of the repulsion backends versus N, with openTSNE's Barnes-Hut as a peer.

    python benchmarks/bench_repulsion.py --n 10000 100000 1000000 --backend exact bh_numba bh_torch
    python benchmarks/bench_repulsion.py --device cuda --n 10000 100000 1000000 --backend exact bh_torch bh_triton

(``bh_triton`` needs CUDA tensors: on a CPU it runs only in Triton's interpreter, set up with
``TRITON_INTERPRET=1``, far too slow to time.)

Times are medians over ``--repeats`` calls after ``--warmup`` calls (CUDA synchronised). Accuracy is the
per-vertex relative force error against the float64 exact sum on ``--sample`` random targets. The peer,
openTSNE's quad tree + ``estimate_negative_gradient_bh``, evaluates the t-SNE kernel instead of ours but
does the same tree work (build + one BH traversal per point), so it is reported as a tree-work reference.
Writes one JSON file to ``benchmarks/results/repulsion_<machine>.json``.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from immersions.layout.backends import exact, get_backend

RESULTS = Path(__file__).resolve().parent / "results"


def make_points(n: int, batch: int, distribution: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` float32 point sets in the unit square with unit-mean charges."""
    g = torch.Generator().manual_seed(seed)
    if distribution == "uniform":
        pos = torch.rand(batch, n, 2, generator=g)
    else:
        centres = torch.rand(batch, 16, 2, generator=g)
        label = torch.randint(0, 16, (batch, n), generator=g)
        pos = torch.gather(centres, 1, label[..., None].expand(-1, -1, 2)) + 0.03 * torch.randn(batch, n, 2,
                                                                                                  generator=g)
    charge = 0.5 + torch.rand(batch, n, generator=g)
    return pos, charge


def timed(fn, warmup: int, repeats: int, device: torch.device) -> tuple[list[float], object]:
    """Seconds per call of ``fn`` (after warm-up) and its last result."""
    result = None
    for _ in range(warmup):
        result = fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        result = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return times, result


def relative_error(force: torch.Tensor, pos: torch.Tensor, charge: torch.Tensor, k: float,
                   targets: torch.Tensor) -> dict[str, float]:
    """Median / 99th percentile / max of |f - f_exact| / |f_exact| over ``targets`` of snapshot 0."""
    ref = exact.repulsion(pos[:1].double(), charge[:1].double(), k, targets=targets, chunk=16)[0]
    err = ((force[0, targets].double() - ref).norm(dim=-1) / ref.norm(dim=-1)).numpy()
    return {"median": float(np.median(err)), "p99": float(np.quantile(err, 0.99)), "max": float(err.max())}


def opentsne_peer(pos: torch.Tensor, theta: float, warmup: int, repeats: int) -> dict | None:
    """Time openTSNE's quad-tree build + BH negative gradient on the same points (t-SNE kernel)."""
    try:
        from openTSNE import _tsne
        from openTSNE.quad_tree import QuadTree
    except ImportError:
        return None
    emb = pos[0].double().numpy().copy()
    threads = os.cpu_count() or 1

    def call():
        gradient = np.zeros_like(emb)
        tree = QuadTree(emb)
        _tsne.estimate_negative_gradient_bh(tree, emb, gradient, theta=theta, dof=1, num_threads=threads)
        return gradient

    times, _ = timed(call, warmup, repeats, torch.device("cpu"))
    import openTSNE
    return {"backend": "openTSNE_bh (peer: t-SNE kernel, same tree work)", "version": openTSNE.__version__,
            "batch": 1, "threads": threads, "times_s": times, "median_s": statistics.median(times)}


def machine(device: torch.device) -> dict:
    """Where the numbers come from."""
    import numba
    info = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "numba": numba.__version__, "device": str(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    try:
        info["load_average"] = os.getloadavg()
    except OSError:
        pass
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--backend", nargs="+", default=["exact", "bh_numba", "bh_torch"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=1, help="snapshots per call (B)")
    parser.add_argument("--distribution", choices=["uniform", "clustered"], default="uniform")
    parser.add_argument("--k", type=float, default=1.0)
    parser.add_argument("--theta", type=float, default=0.5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--large-repeats", type=int, default=2, help="repeats for N >= 1e6")
    parser.add_argument("--large-warmup", type=int, default=1, help="warm-up calls for N >= 1e6")
    parser.add_argument("--exact-max-n", type=int, default=100_000, help="skip timing exact above this N")
    parser.add_argument("--sample", type=int, default=500, help="targets for the error against exact")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu{os.cpu_count()}"
    out = args.out or RESULTS / f"repulsion_{name.lower().replace(' ', '-')}.json"
    rows = []
    for n in args.n:
        pos, charge = make_points(n, args.batch, args.distribution, args.seed)
        targets = torch.randperm(n, generator=torch.Generator().manual_seed(args.seed))[:args.sample]
        large = n >= 1_000_000
        repeats, warmup = (args.large_repeats, args.large_warmup) if large else (args.repeats, args.warmup)
        for backend in args.backend:
            if backend == "exact" and n > args.exact_max_n:
                continue
            if backend == "bh_numba" and device.type != "cpu":
                continue
            repulsion = get_backend(backend)
            p, q = pos.to(device), charge.to(device)
            times, force = timed(lambda: repulsion(p, q, args.k, args.theta), warmup, repeats, device)
            row = {"n": n, "backend": backend, "batch": args.batch, "times_s": times,
                   "median_s": statistics.median(times),
                   "error": relative_error(force.cpu(), pos, charge, args.k, targets)}
            rows.append(row)
            print(f"N={n:>8}  {backend:<9} {row['median_s'] * 1e3:10.1f} ms  "
                  f"median err {row['error']['median']:.2e}  p99 {row['error']['p99']:.2e}", flush=True)
        if not args.no_peers:
            peer = opentsne_peer(pos, args.theta, warmup, repeats)
            if peer is not None:
                rows.append({"n": n, **peer})
                print(f"N={n:>8}  openTSNE  {peer['median_s'] * 1e3:10.1f} ms  (t-SNE kernel peer)", flush=True)
    record = {"benchmark": "repulsion", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
              "parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "machine": machine(device), "rows": rows,
              "notes": "CPU-only machine: no GPU rows were measured; bh_torch ran on CPU torch." if
              device.type == "cpu" else ""}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
