"""Neuron-graph extraction: vertices, edges, time (median of repeats) and peak memory per zoo model.

    python benchmarks/bench_graph.py --models vgg16 resnet18 audio --size 224 --repeats 3

Every model runs in its own subprocess so its peak resident memory (``ru_maxrss``) is its own; the
resident size after building the model (weights, imports) is recorded too, so the extraction's share is
visible. If ``immersions.layout.hierarchy`` exists, ``build_hierarchy(graph)`` is timed on the same graph.
Extraction is CPU work (tracing, shape propagation, sparse index arithmetic), so there are no GPU rows.
Writes ``benchmarks/results/graph_<machine>.json``.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).resolve().parent / "results"


def _rss_gib() -> float:
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2 ** 30


def _timed(fn, warmup: int, repeats: int) -> tuple[object, list[float]]:
    result = None
    for _ in range(warmup):
        result = None  # free the previous result first, so peak memory is one result's
        result = fn()
    times = []
    for _ in range(repeats):
        result = None
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, times


def build_model(name: str, size: int) -> tuple[torch.nn.Module, torch.Tensor]:
    """A zoo model with its input (``size`` x ``size`` images), or ``cpc-<config>`` on 4 s of audio."""
    if name.startswith("cpc-"):
        from immersions.cpc.config import CONFIGS
        from immersions.cpc.model import CPC

        config = CONFIGS[name[4:]]
        torch.manual_seed(0)
        return CPC(config).eval(), torch.randn(1, 4 * config.sample_rate)
    from immersions.layout import zoo

    return zoo.build(name, input_shape=None if name == "audio" else (1, 3, size, size))


def measure(model_name: str, size: int, warmup: int, repeats: int, max_edges: int, hierarchy_max_edges: int) -> dict:
    """One model's row (runs in the child process)."""
    from immersions.layout.extract import extract

    model, example = build_model(model_name, size)
    rss_model = _rss_gib()
    graph, times = _timed(lambda: extract(model, example, max_edges=max_edges), warmup, repeats)
    row = {
        "model": model_name, "input_shape": list(example.shape), "layers": len(graph.layers),
        "vertices": graph.n_vertices, "edges": graph.n_edges,
        "graph_bytes": int(graph.edges.nbytes + graph.weights.nbytes),
        "extract_median_s": statistics.median(times), "extract_times_s": times,
        "rss_after_model_gib": rss_model, "peak_rss_gib": _rss_gib(),
    }
    if importlib.util.find_spec("immersions.layout.hierarchy") is None:
        row["hierarchy"] = "skipped: immersions.layout.hierarchy is not installed"
    elif graph.n_edges > hierarchy_max_edges:
        row["hierarchy"] = f"skipped: more than --hierarchy-max-edges={hierarchy_max_edges} edges"
    else:
        from immersions.layout.hierarchy import build_hierarchy
        from immersions.layout.synthetic import king_grid
        build_hierarchy(king_grid(4))  # compiles (or loads) the coarsening kernels outside the timing
        hierarchy, h_times = _timed(lambda: build_hierarchy(graph), 0, max(1, repeats // 2))
        row.update({"hierarchy_median_s": statistics.median(h_times), "hierarchy_times_s": h_times,
                    "hierarchy_levels": len(hierarchy.levels), "peak_rss_with_hierarchy_gib": _rss_gib()})
    row["load_1min"] = os.getloadavg()[0]
    return row


def machine() -> dict:
    return {"platform": platform.platform(), "processor": platform.processor(), "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "cuda": torch.cuda.is_available()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["audio", "resnet18", "vgg16"],
                        help="zoo names, or cpc-<config> (e.g. cpc-seed) when immersions.cpc is installed")
    parser.add_argument("--size", type=int, default=224, help="image side for vgg16/resnet18")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-edges", type=int, default=500_000_000)
    parser.add_argument("--hierarchy-max-edges", type=int, default=250_000_000,
                        help="time build_hierarchy only on graphs up to this many edges")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help="JSON path (default: results/graph_<machine>.json)")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.size, args.warmup, args.repeats, args.max_edges,
                                 args.hierarchy_max_edges)))
        return
    rows = []
    for name in args.models:
        cmd = [sys.executable, __file__, "--child", name, "--size", str(args.size), "--warmup", str(args.warmup),
               "--repeats", str(args.repeats), "--max-edges", str(args.max_edges),
               "--hierarchy-max-edges", str(args.hierarchy_max_edges)]
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(f"{name:>9}: {r['vertices']:>9,} vertices {r['edges']:>12,} edges  extract {r['extract_median_s']:7.2f} s"
              f"  peak {r['peak_rss_gib']:.2f} GiB (model {r['rss_after_model_gib']:.2f})"
              + (f"  hierarchy {r['hierarchy_median_s']:.2f} s" if "hierarchy_median_s" in r else ""))
    tag = "cuda" if torch.cuda.is_available() else f"cpu{os.cpu_count()}"
    out = Path(args.out) if args.out else RESULTS / f"graph_{tag}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {"benchmark": "graph", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": machine(), "parameters": vars(args) | {"child": None},
              "notes": "extraction runs on the CPU; no GPU rows", "rows": rows}
    out.write_text(json.dumps(record, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
