"""Frames per second of the rendering core: neurons at 1080p, per render path, draw only and draw +
read-back, with matplotlib's Agg scatter as the peer where installed.

    python benchmarks/bench_render.py --sizes 10000 100000 1000000 --width 1920 --height 1080

Writes ``benchmarks/results/render_<machine>.json``. The OpenGL context is whatever EGL provides: Mesa
llvmpipe on a CPU-only machine, the vendor driver on a GPU machine (the renderer string is recorded),
so the same script measures GPU rows there. Every timed frame streams new activations, draws and ends
with ``ctx.finish()`` (the GL counterpart of a CUDA synchronise); read-back rows go through
``Offscreen.frames`` (two alternating pixel buffers).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from immersions.render.camera import Camera
from immersions.render.offscreen import Offscreen
from immersions.render.scene import Scene


def synthetic_network(n: int, layers: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of ``n`` neurons in ``layers`` blobs along a curve, and their layer index."""
    rng = np.random.default_rng(seed)
    layer_index = np.minimum(np.arange(n) * layers // n, layers - 1)
    angle = layer_index / layers * 2.5 * np.pi
    centres = np.stack([np.cos(angle), np.sin(angle)], axis=1) * (1.0 + layer_index[:, None] / layers)
    positions = centres + rng.normal(scale=0.35, size=(n, 2))
    return positions.astype(np.float32), layer_index


def timed_frames(frame: Callable[[int], None], warmup: int, repeats: int,
                 per_call: int = 1) -> tuple[list[float], list[float]]:
    """Wall-clock and process CPU seconds per frame of ``repeats`` calls of ``frame(i)`` (each drawing
    ``per_call`` frames) after ``warmup`` unmeasured ones. CPU time counts every thread of the process,
    llvmpipe's rasteriser threads included, so it is a load-independent measure of the work on a
    shared machine."""
    for i in range(warmup):
        frame(i)
    wall, cpu = [], []
    for i in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        frame(warmup + i)
        wall.append((time.perf_counter() - start) / per_call)
        cpu.append((time.process_time() - start_cpu) / per_call)
    return wall, cpu


def row(name: str, timings: tuple[list[float], list[float]], **extra) -> dict:
    wall, cpu = timings
    median = statistics.median(wall)
    return {"name": name, **extra, "median_s": median, "min_s": min(wall), "times_s": wall,
            "frames_per_s": 1.0 / median, "cpu_median_s": statistics.median(cpu),
            "frames_per_cpu_s": 1.0 / max(statistics.median(cpu), 1e-9)}


def bench_mode(offscreen: Offscreen, positions: np.ndarray, layer_index: np.ndarray, activations: np.ndarray,
               mode: str, args: argparse.Namespace) -> list[dict]:
    """Draw-only, draw + read-back and (index map) geometry-change rows for one render path."""
    ctx, n = offscreen.ctx, len(positions)
    camera = Camera.fitted(positions, args.width / args.height)
    edges = None
    if args.edges_per_neuron:
        rng = np.random.default_rng(args.seed + 1)
        edges = rng.integers(0, n, size=(n * args.edges_per_neuron, 2))
    rows = []
    with Scene(ctx, positions, layer_index, edges=edges, mode=mode) as scene:
        def draw(i: int) -> None:
            scene.update(activations=activations[i % len(activations)])
            scene.draw(offscreen.fbo, camera, flip_y=True)
            ctx.finish()

        common = {"neurons": n, "mode": mode, "edges": scene.n_edges_drawn}
        rows.append(row("draw", timed_frames(draw, args.warmup, args.repeats), **common))

        def draw_and_read(i: int) -> None:
            def cameras():
                for k in range(args.readback_frames):
                    scene.update(activations=activations[(i + k) % len(activations)])
                    yield camera
            for _ in offscreen.frames(scene, cameras()):
                pass

        rows.append(row("draw+readback", timed_frames(draw_and_read, 1, max(1, args.repeats // 2),
                                                      per_call=args.readback_frames), **common))
        if mode == "indexmap":
            moved = [positions + np.float32(1e-4 * (k + 1)) for k in range(2)]

            def move_and_draw(i: int) -> None:
                scene.update(positions=moved[i % 2])
                draw(i)

            rows.append(row("draw after moving neurons (index map rebuilt)",
                            timed_frames(move_and_draw, 1, max(1, args.repeats // 2)), **common))
    return rows


def bench_matplotlib(positions: np.ndarray, activations: np.ndarray, args: argparse.Namespace) -> list[dict]:
    """Peer: matplotlib Agg scatter of the same neurons, new colours per frame, RGBA buffer read back."""
    try:
        import matplotlib
    except ImportError:
        return []
    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    dpi = 100
    figure = Figure(figsize=(args.width / dpi, args.height / dpi), dpi=dpi, facecolor="black")
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_axes((0, 0, 1, 1), facecolor="black")
    axes.set_axis_off()
    points = axes.scatter(positions[:, 0], positions[:, 1], c=activations[0], s=1.0, cmap="inferno",
                          linewidths=0, vmin=0.0, vmax=1.0)

    def frame(i: int) -> None:
        points.set_array(activations[i % len(activations)])
        canvas.draw()
        np.asarray(canvas.buffer_rgba())

    return [row("matplotlib Agg scatter (peer), draw+readback",
                timed_frames(frame, 1, max(1, args.repeats // 2)), neurons=len(positions),
                mode="matplotlib", matplotlib=matplotlib.__version__)]


def describe(entry: dict) -> str:
    return (f"{entry['neurons']:>8} {entry['mode']:<10} {entry['name']:<48} {entry['frames_per_s']:8.2f} frames/s"
            f"  ({entry['cpu_median_s'] * 1e3:7.1f} ms CPU per frame)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--modes", nargs="+", default=["instanced", "indexmap"], choices=["instanced", "indexmap"])
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--layers", type=int, default=10)
    parser.add_argument("--edges-per-neuron", type=int, default=0)
    parser.add_argument("--activation-frames", type=int, default=4, help="distinct activation vectors cycled")
    parser.add_argument("--readback-frames", type=int, default=4, help="frames per pipelined read-back run")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--peer-max-neurons", type=int, default=100_000,
                        help="run the matplotlib peer only up to this size")
    parser.add_argument("--backend", default="egl")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--machine", default=platform.node() or "local", help="name in the output file")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    load_before = os.getloadavg()
    rows = []
    with Offscreen(args.width, args.height, backend=args.backend) as offscreen:
        renderer = {key: offscreen.ctx.info[key] for key in ("GL_RENDERER", "GL_VERSION", "GL_VENDOR")}
        for n in args.sizes:
            positions, layer_index = synthetic_network(n, args.layers, args.seed)
            rng = np.random.default_rng(args.seed)
            activations = rng.random((args.activation_frames, n), dtype=np.float32)
            for mode in args.modes:
                rows.extend(bench_mode(offscreen, positions, layer_index, activations, mode, args))
                print(*map(describe, rows[-(3 if mode == "indexmap" else 2):]), sep="\n", flush=True)
            if n <= args.peer_max_neurons:
                rows.extend(bench_matplotlib(positions, activations, args))
                if rows[-1]["mode"] == "matplotlib":
                    print(describe(rows[-1]), flush=True)

    import moderngl
    import torch

    software = any(name in renderer["GL_RENDERER"].lower() for name in ("llvmpipe", "softpipe", "swrast"))
    record = {
        "benchmark": "render",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpu_count": os.cpu_count(),
                    "load_average_before": load_before, "load_average_after": os.getloadavg(),
                    "python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
                    "moderngl": moderngl.__version__, **renderer},
        "gpu": ("not measured: this run used a software rasteriser; run the script on a GPU machine for GPU rows"
                if software else "measured on the GPU named in machine.GL_RENDERER"),
        "results": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"render_{args.machine}.json"
    path.write_text(json.dumps(record, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
