"""The offline activation video of the audio model's graph: seconds of video per wall-clock second, by stage.

    python benchmarks/bench_video_pipeline.py --model lean --seconds 10 --size 1920x1080 --fps 30 --repeats 2

Runs the stages of ``immersions.render.app`` one by one on the demo music, as the CLI does (the same light
levels drawn, the same camera and disc size, frames in ``app.VIDEO_PIXEL_FORMAT`` unless ``--pixel-format``
says otherwise): graph extraction, activations (front end + recorded taps), layout (static multilevel +
batched snapshots), draw + read-back of every frame (``Offscreen.frames``, including the GPU's yuv420p
conversion, frames discarded) for each ``--max-edges``, encoding (``write_video`` with sound, fed with
pre-rendered frames so it is timed alone) and the streamed end-to-end render (draw, read-back and encoding
overlapped in two processes, as the CLI runs it) for each libx264 ``--presets``. Wall-clock, process CPU
and child-process (ffmpeg) CPU seconds are recorded, and the 1-minute load average before and after (the
machine may be shared). Writes ``benchmarks/results/video_pipeline_<machine>.json``.

The OpenGL context is whatever EGL provides (Mesa llvmpipe on a CPU-only machine; the renderer string
is recorded); the layout runs on the CPU (``bh_numba``), as the CLI's does.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np
import torch

from immersions.render import app
from immersions.render.animation import Timeline
from immersions.render.app_inputs import load_model
from immersions.render.demo_audio import demo_clip
from immersions.render.offscreen import Offscreen
from immersions.render.video import PIXEL_FORMATS, write_video

T = TypeVar("T")


def timed(step: Callable[[], T]) -> tuple[T, dict]:
    """Run ``step`` once: its result and its wall, process CPU and child-process CPU seconds."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    start, start_cpu = time.perf_counter(), time.process_time()
    result = step()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return result, {"wall_s": time.perf_counter() - start, "cpu_s": time.process_time() - start_cpu,
                    "child_cpu_s": (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)}


def repeated(step: Callable[[], object], repeats: int) -> dict:
    """Medians (and all values) of ``repeats`` timed runs of ``step``."""
    runs = [timed(step)[1] for _ in range(repeats)]
    summary = {f"median_{key}": statistics.median(run[key] for run in runs) for key in runs[0]}
    return {**summary, "runs": runs}


def per_frame(timing: dict, n_frames: int) -> dict:
    """Milliseconds per frame: wall, and CPU of this process plus its children (ffmpeg)."""
    cpu = timing["median_cpu_s"] + timing["median_child_cpu_s"]
    return {"wall_ms_per_frame": 1000 * timing["median_wall_s"] / n_frames, "cpu_ms_per_frame": 1000 * cpu / n_frames}


def machine() -> dict:
    return {"platform": platform.platform(), "processor": platform.processor(), "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lean", help="lean, seed or a checkpoint (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length (default: %(default)s)")
    parser.add_argument("--size", default="1920x1080", help="WIDTHxHEIGHT (default: %(default)s)")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--snapshots", type=int, default=4, help="snapshot layouts (default: %(default)s)")
    parser.add_argument("--max-edges", type=int, nargs="+", default=[app.DEFAULT_MAX_EDGES, 0],
                        help="edges drawn, one draw row each; the first also streams (default: %(default)s)")
    parser.add_argument("--presets", nargs="+", default=[app.DEFAULT_PRESET, "ultrafast"],
                        help="libx264 presets to encode and stream with (default: %(default)s)")
    parser.add_argument("--pixel-format", default=app.VIDEO_PIXEL_FORMAT, choices=PIXEL_FORMATS,
                        help="frames read back and piped to ffmpeg (default: %(default)s)")
    parser.add_argument("--x264-threads", type=int, default=None, help="libx264 threads (default: ffmpeg's choice)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of the draw and encode stages")
    parser.add_argument("--warmup", type=int, default=10, help="frames drawn before timing")
    parser.add_argument("--encode-frames", type=int, default=30, help="distinct pre-rendered frames to encode")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--machine", default="cpu2", help="name in the results file (default: %(default)s)")
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).parent / "results")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    load_before = os.getloadavg()[0]
    width, height = (int(v) for v in args.size.lower().split("x"))
    model = load_model(args.model, seed=args.seed)
    sample_rate = model.config.sample_rate
    clip = demo_clip(args.seconds, sample_rate=sample_rate, seed=args.seed)
    network = app.AnalysisNetwork(model)

    graph, graph_time = timed(lambda: app.neuron_graph(network, model.config.n_bins))
    scaleogram, front_time = timed(lambda: app.clip_scaleogram(model, clip))
    values, tap_time = timed(lambda: app.clip_activations(network, scaleogram, graph))
    layout, layout_time = timed(lambda: app.layout_for_clip(graph, app.normalize_per_layer(values, graph),
                                                            n_snapshots=args.snapshots, snapshot_iterations=30,
                                                            seed=args.seed, progress=False))
    shown = app.light_levels(values, graph)
    rate = app.activation_rate(len(values), scaleogram.shape[-1], model.config.hop, sample_rate)
    timeline = Timeline(args.fps, duration=len(clip) / sample_rate, activation_rate=rate, activation_offset=1 / rate)

    video_seconds = timeline.duration
    draw_rows, encode_rows, streamed_rows = [], [], []
    with Offscreen(width, height) as offscreen:
        renderer = offscreen.ctx.info["GL_RENDERER"]
        camera = app.view_camera(layout.positions, width / height)
        encoder = {"pixel_format": args.pixel_format, "threads": args.x264_threads}
        for max_edges in args.max_edges:
            with app.build_scene(offscreen, layout, camera=camera, max_edges=max_edges, seed=args.seed) as scene:
                def frames():
                    return app.render_frames(offscreen, scene, camera, timeline, layout.positions, shown,
                                             args.pixel_format)

                for _ in itertools.islice(frames(), args.warmup):
                    pass
                draw = repeated(lambda: sum(1 for _ in frames()), args.repeats)
                draw_rows.append({"max_edges": max_edges, **draw, **per_frame(draw, timeline.n_frames)})
                if max_edges != args.max_edges[0]:
                    continue
                stills = list(itertools.islice(frames(), args.encode_frames))
                with tempfile.TemporaryDirectory() as folder:
                    target = Path(folder) / "bench.mp4"
                    for preset in args.presets:
                        encode = repeated(lambda: write_video(
                            target, itertools.islice(itertools.cycle(stills), timeline.n_frames), args.fps, audio=clip,
                            sample_rate=sample_rate, n_frames=timeline.n_frames, preset=preset, progress=False,
                            **encoder), args.repeats)
                        encode_rows.append({"preset": preset, **encode, **per_frame(encode, timeline.n_frames),
                                            "bytes": target.stat().st_size})
                        streamed = repeated(lambda: write_video(
                            target, frames(), args.fps, audio=clip, sample_rate=sample_rate,
                            n_frames=timeline.n_frames, preset=preset, progress=False, **encoder), args.repeats)
                        cpu = streamed["median_cpu_s"] + streamed["median_child_cpu_s"]
                        streamed_rows.append({"max_edges": max_edges, "preset": preset, **streamed,
                                              **per_frame(streamed, timeline.n_frames),
                                              "video_seconds_per_wall_second": video_seconds / streamed["median_wall_s"],
                                              "video_seconds_per_cpu_second": video_seconds / cpu})

    prepare = graph_time["wall_s"] + front_time["wall_s"] + tap_time["wall_s"]
    fastest = min(row["median_wall_s"] for row in streamed_rows)
    record = {
        "benchmark": "video_pipeline",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {**machine(), "gl_renderer": renderer, "name": args.machine,
                    "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
                    "llvmpipe_threads": os.environ.get("LP_NUM_THREADS", "default (one per CPU)")},
        "parameters": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                       "neurons": graph.n_vertices, "edges": graph.n_edges, "activation_steps": len(values),
                       "activation_rate_hz": rate, "frames": timeline.n_frames, "video_seconds": video_seconds},
        "stages": {"graph": graph_time, "front_end": front_time, "activations": tap_time, "layout": layout_time},
        "draw_readback": draw_rows,
        "encode": encode_rows,
        "streamed_render": streamed_rows,
        "video_seconds_per_wall_second": {
            "fastest_streamed_render": video_seconds / fastest,
            "with_activations": video_seconds / (prepare + fastest),
            "with_layout": video_seconds / (prepare + layout_time["wall_s"] + fastest),
        },
        "gpu": (None if torch.cuda.is_available() else
                "not measured: this machine has no GPU; the same script measures one where its EGL driver is present"),
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / f"video_pipeline_{args.machine}.json"
    path.write_text(json.dumps(record, indent=2))
    print(json.dumps({"stages_wall_s": {k: v["wall_s"] for k, v in record["stages"].items()},
                      "draw_ms": {row["max_edges"]: row["cpu_ms_per_frame"] for row in draw_rows},
                      "streamed": [{k: row[k] for k in ("max_edges", "preset", "video_seconds_per_wall_second",
                                                        "video_seconds_per_cpu_second")} for row in streamed_rows]},
                     indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
