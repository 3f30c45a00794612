"""Does a frame's brightness follow the music's loudness? Both light-level modes on recorded music.

    python benchmarks/bench_levels.py --seconds 60 --offset 20 --size 160x90 --fps 5 --machine cpu2

For every track of Debian's ``pushover-data`` themes (recorded game music, Ogg Vorbis; none of it in the
lean model's reference set, which is hyperrogue and planetblupi music), ``--seconds`` from ``--offset`` in are
heard by the lean model once; the same activations are then lit by ``reference`` levels (the model's stored
levels) and by ``clip`` levels (every layer against the clip) and drawn, frame by frame, on one force layout
(computed once, seeded, on the built-in demo music), as ``immersions render`` draws them. Per frame: the
mean pixel, and the sound's loudness, the RMS in dB over the last 1/fps s before the frame (what the frame's
activation step has heard). Reports Pearson's r of the two per track and mode, and the brightness of a
second of digital silence. Writes ``benchmarks/results/levels_<machine>.json`` and, with ``--stills``, one
PNG per mode of the same loud moment of the first track.
"""
from __future__ import annotations

import argparse
import glob
import json
import platform
from datetime import datetime, timezone
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from immersions.render import app
from immersions.render.animation import Timeline
from immersions.render.app_inputs import load_clip, load_model
from immersions.render.demo_audio import demo_clip
from immersions.render.levels import clip_levels, model_levels
from immersions.render.offscreen import Offscreen

MUSIC = "/work/data/pkgs/pushover-data/usr/share/pushover/themes/*.ogg"


def loudness_db(clip: np.ndarray, times: np.ndarray, window: float, rate: int) -> np.ndarray:
    """RMS in dB of the ``window`` seconds before each time (floor -100 dB)."""
    out = np.empty(len(times))
    for i, t in enumerate(times):
        stop = int(round(t * rate))
        block = clip[max(stop - int(window * rate), 0):max(stop, 1)]
        out[i] = 10 * np.log10(np.mean(block.astype(np.float64) ** 2) + 1e-10)
    return out


def frame_means(offscreen, scene, camera, timeline, snapshots, shown) -> np.ndarray:
    """Mean pixel (0-255) of every frame."""
    return np.array([frame.mean() for frame in app.render_frames(offscreen, scene, camera, timeline, snapshots,
                                                                  shown)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--music", default=MUSIC)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--offset", type=float, default=20.0)
    parser.add_argument("--size", default="160x90")
    parser.add_argument("--fps", type=float, default=5.0)
    parser.add_argument("--machine", default="cpu2")
    parser.add_argument("--stills", type=Path, default=None, help="folder for one PNG per mode (README)")
    parser.add_argument("--still-size", default="480x270")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    model = load_model("lean")
    rate = model.config.sample_rate
    listener = app.Listener(model)
    graph = listener.graph
    reference = model_levels("lean", model, graph.layers)
    if reference is None:
        raise RuntimeError("the lean model has no reference levels; run `immersions levels lean --audio ...`")
    demo_values, _ = listener.hear(demo_clip(8.0, sample_rate=rate, seed=0))
    layout = app.layout_for_clip(graph, app.normalize_per_layer(demo_values, graph), seed=0, progress=False)
    camera = app.view_camera(layout.positions, width / height)
    rows = []
    tracks = sorted(glob.glob(args.music))
    with Offscreen(width, height) as offscreen, app.build_scene(offscreen, layout, camera=camera) as scene:
        silence, _ = listener.hear(np.zeros(2 * rate, np.float32))
        silent_timeline = Timeline(args.fps, duration=1.0, activation_rate=listener.rate)
        silent = {"reference": float(frame_means(offscreen, scene, camera, silent_timeline, layout.positions,
                                                 reference.light(silence)).mean()),
                  "clip": float(frame_means(offscreen, scene, camera, silent_timeline, layout.positions,
                                            clip_levels(silence, graph).light(silence)).mean())}
        for track in tracks:
            clip = load_clip(track, rate, seconds=args.offset + args.seconds)[int(args.offset * rate):]
            values, step_rate = listener.hear(clip)
            timeline = Timeline(args.fps, duration=len(clip) / rate, activation_rate=step_rate,
                                activation_offset=1.0 / step_rate)
            loud = loudness_db(clip, timeline.frame_times(), 1.0 / args.fps, rate)
            row = {"track": Path(track).name, "seconds": len(clip) / rate, "loudness_db_range": [
                float(np.percentile(loud, 5)), float(np.percentile(loud, 95))]}
            for mode, levels in (("reference", reference), ("clip", clip_levels(values, graph))):
                means = frame_means(offscreen, scene, camera, timeline, layout.positions, levels.light(values))
                row[mode] = {"pearson_r": float(np.corrcoef(means, loud)[0, 1]), "mean_pixel": float(means.mean())}
            rows.append(row)
            print(json.dumps(row), flush=True)
    summary = {mode: {"median_r": float(np.median([r[mode]["pearson_r"] for r in rows])),
                      "min_r": float(min(r[mode]["pearson_r"] for r in rows)),
                      "max_r": float(max(r[mode]["pearson_r"] for r in rows)),
                      "silence_mean_pixel": silent[mode]} for mode in ("reference", "clip")}
    record = {"benchmark": "levels", "machine": args.machine, "platform": platform.platform(),
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "music": args.music,
              "seconds": args.seconds, "offset": args.offset, "size": args.size, "fps": args.fps,
              "reference_set": reference.info.get("clips"), "summary": summary, "rows": rows}
    out = Path(__file__).parent / "results" / f"levels_{args.machine}.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    if args.stills is not None:
        write_stills(args, listener, layout, reference, tracks[0])


def write_stills(args, listener, layout, reference, track: str) -> None:
    """One PNG per mode of the same moment of ``track``: its loudest frame-long stretch."""
    width, height = (int(v) for v in args.still_size.split("x"))
    rate = listener.model.config.sample_rate
    clip = load_clip(track, rate, seconds=args.offset + args.seconds)[int(args.offset * rate):]
    values, step_rate = listener.hear(clip)
    loud_step = int(np.argmax([np.mean(clip[int(i * rate / step_rate):int((i + 1) * rate / step_rate)] ** 2)
                               for i in range(len(values))]))
    timeline = Timeline(args.fps, duration=len(clip) / rate, activation_rate=step_rate)
    camera = app.view_camera(layout.positions, width / height)
    args.stills.mkdir(parents=True, exist_ok=True)
    with Offscreen(width, height) as offscreen, app.build_scene(offscreen, layout, camera=camera) as scene:
        for mode, levels in (("reference", reference), ("clip", clip_levels(values, listener.graph))):
            scene.update(positions=timeline.positions(layout.positions, loud_step / step_rate),
                         activations=levels.light(values[loud_step:loud_step + 1])[0])
            iio.imwrite(args.stills / f"levels_{mode}.png", offscreen.render(scene, camera))
    print(f"stills of {Path(track).name} at {loud_step / step_rate:.1f} s in {args.stills}")


if __name__ == "__main__":
    main()
