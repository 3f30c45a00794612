"""Picture and sound that tell the truth: silence dark, no flash at the start, the network framed whole, a stereo
clip's channels kept, a layout without activations dimly lit. Videos are read back with ffmpeg."""
from __future__ import annotations

import subprocess

import imageio_ffmpeg
import numpy as np
import pytest
import soundfile

from immersions.cpc.checkpoint import config_to_json, save_checkpoint
from immersions.layout.forces import ForceParams
from immersions.layout.layout import Layout
from immersions.layout.synthetic import king_grid
from immersions.render import app
from immersions.render.app_inputs import load_model
from immersions.render.cli import main
from immersions.render.demo_audio import demo_clip
from immersions.render.levels import measure_reference_levels, model_levels
from immersions.render.offscreen import Offscreen
from immersions.render.scene import Scene

from .test_app import SAMPLE_RATE, _grid_layout, egl, tiny_model  # noqa: F401 (egl is a fixture)

FLASH_FACTOR = 1.5  # frame 0 may be at most this many times the median frame's brightness


def frame_brightness(path) -> np.ndarray:
    """Mean pixel (0-255) of every frame of a video, decoded by ffmpeg."""
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = reader.__next__()
    width, height = meta["size"]
    means = [np.frombuffer(frame, np.uint8).reshape(height, width, 3).mean() for frame in reader]
    return np.array(means)


def layout_with(graph, positions: np.ndarray) -> Layout:
    """A layout of ``graph`` holding the given snapshots ``(S, N, 2)``."""
    count, n = positions.shape[:2]
    return Layout(positions.astype(np.float32), graph, ForceParams(), 0, np.ones((count, n), np.float32),
                  np.zeros((count, n, 2), np.float32), np.ones(count, np.float32), np.zeros(n, bool))


def test_silence_renders_dark_and_music_lights(tmp_path, egl):
    """Reference levels measured on other music: a silent clip's video stays black, a musical one lights."""
    model = tiny_model()
    listener = app.Listener(model)
    reference = [(f"seed {seed}", demo_clip(3.0, sample_rate=SAMPLE_RATE, seed=seed)) for seed in (11, 12, 13)]
    levels = measure_reference_levels(listener, reference)
    layout = _grid_layout(listener.graph)
    brightness = {}
    for name, clip in (("silence", np.zeros(2 * SAMPLE_RATE, np.float32)),
                       ("music", demo_clip(2.0, sample_rate=SAMPLE_RATE, seed=2))):
        video = tmp_path / f"{name}.mp4"
        app.render_activation_video(model, clip, SAMPLE_RATE, video, width=96, height=64, fps=8, layout=layout,
                                    levels=levels, max_edges=0, progress=False)
        brightness[name] = frame_brightness(video)
    assert brightness["silence"].max() < 0.3  # black up to the encoder's rounding
    assert brightness["music"].mean() > 0.6


def test_shipped_model_lights_nothing_in_silence():
    model = load_model("lean")
    listener = app.Listener(model)
    levels = model_levels("lean", model, listener.graph.layers)
    assert levels is not None, "cpc/assets/lean.levels.npz is missing or stale: run `immersions levels lean`"
    silence, _ = listener.hear(np.zeros(3 * model.config.sample_rate, np.float32))
    assert levels.light(silence).max() == 0.0
    music, _ = listener.hear(demo_clip(4.0, sample_rate=model.config.sample_rate, seed=1))
    assert levels.light(music).mean() > 0.02


@pytest.mark.parametrize("mode", ["clip", "reference"])
def test_no_flash_at_the_start(tmp_path, egl, mode):
    """The lean model's first frame is no brighter than FLASH_FACTOR times the median frame (it was 2.5x:
    the network's zero padding read as loud sound)."""
    model = load_model("lean")
    listener = app.Listener(model)
    levels = model_levels("lean", model, listener.graph.layers) if mode == "reference" else None
    rate = model.config.sample_rate
    clip = demo_clip(5.0, sample_rate=rate, seed=0)
    layout = _grid_layout(listener.graph)
    video = tmp_path / "start.mp4"
    app.render_activation_video(model, clip, rate, video, width=96, height=64, fps=10, layout=layout, levels=levels,
                                max_edges=0, progress=False)
    brightness = frame_brightness(video)
    assert brightness[0] <= FLASH_FACTOR * np.median(brightness)


def test_camera_frames_the_whole_network(egl):
    """A network wide on its input side and thin at its end, as the demo's: the lit pixels fill the frame up to
    the margins, centred, and touch no edge of it (nothing cut off)."""
    graph = king_grid(60)
    rng = np.random.default_rng(0)
    x = 10 * np.sqrt(rng.random(graph.n_vertices))  # dense where the triangle is tall
    y = (rng.random(graph.n_vertices) - 0.5) * (10.5 - x)
    snapshots = np.stack([np.stack([x, y], axis=1), np.stack([x * 1.05, y], axis=1)])
    snapshots[1, 0] = (200.0, 90.0)  # one straggler flung far out
    layout = layout_with(graph, snapshots)
    width, height = 320, 180
    camera = app.view_camera(layout.positions, width / height)
    with Offscreen(width, height) as offscreen, app.build_scene(offscreen, layout, camera=camera,
                                                                         max_edges=0) as scene:
        scene.update(activations=np.ones(graph.n_vertices, np.float32))
        image = offscreen.render(scene, camera).max(axis=2)
    rows, columns = np.nonzero(image > 20)
    top, bottom = rows.min(), height - 1 - rows.max()
    left, right = columns.min(), width - 1 - columns.max()
    assert min(top, bottom, left, right) >= 1, "the network touches the frame's edge: cut off"
    assert max(top, bottom) <= 0.1 * height and abs(top - bottom) <= 0.03 * height  # fills the height, centred
    assert abs(left - right) <= 0.03 * width


def test_stereo_clip_keeps_its_channels_in_the_video(tmp_path, egl):
    model = tiny_model()
    save_checkpoint(tmp_path / "tiny.pt", {"model_config": config_to_json(model.config), "model": model.state_dict()})
    t = np.arange(int(1.5 * SAMPLE_RATE)) / SAMPLE_RATE
    left, right = 0.5 * np.sin(2 * np.pi * 440 * t), 0.5 * np.sin(2 * np.pi * 1000 * t)
    soundfile.write(tmp_path / "stereo.wav", np.stack([left, right], axis=1).astype(np.float32), SAMPLE_RATE)
    video = tmp_path / "stereo.mp4"
    assert main(["render", "--model", str(tmp_path / "tiny.pt"), "--audio", str(tmp_path / "stereo.wav"),
                 "--out", str(video), "--size", "64x48", "--fps", "4", "--max-edges", "0", "--levels", "clip"]) == 0
    decoded = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(video), "-map", "0:a:0",
                              "-f", "f32le", "-"], capture_output=True, check=True).stdout
    header = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-i", str(video)], capture_output=True, text=True).stderr
    assert "stereo" in header
    sound = np.frombuffer(decoded, np.float32).reshape(-1, 2)[SAMPLE_RATE // 4:SAMPLE_RATE]
    for channel, tone in ((0, 440), (1, 1000)):
        spectrum = np.abs(np.fft.rfft(sound[:, channel]))
        rate = 48000 if "48000 Hz" in header else SAMPLE_RATE
        assert np.argmax(spectrum) * rate / len(sound) == pytest.approx(tone, rel=0.02)


def test_layout_without_activations_is_dimly_lit(ctx):
    """What ``view LAYOUT.npz`` and the Qt example draw without activations (``Scene.rest``)."""
    side = 40
    cells = np.stack(np.meshgrid(np.arange(side), np.arange(side)), axis=-1).reshape(-1, 2).astype(np.float32)
    layer_index = np.repeat(np.arange(4), len(cells) // 4)
    with Scene(ctx, cells, layer_index) as scene:
        black = scene.snapshot(160, 160)[..., :3].mean()
        scene.rest()
        lit = scene.snapshot(160, 160)[..., :3]
    assert black < 1.0
    assert lit.mean() > 10.0 and lit.max() < 200  # lit, but dimly
