"""The application pipeline end to end on a tiny CPC model, its inputs, and the demo music."""
from __future__ import annotations

import contextlib
import io

import imageio.v3 as iio
import numpy as np
import pytest
import soundfile
import torch

from immersions.cpc.checkpoint import config_to_json, save_checkpoint
from immersions.cpc.config import ARBlockSpec, CPCConfig, EncoderBlockSpec
from immersions.cpc.model import CPC
from immersions.layout.activations import Activations
from immersions.layout.forces import ForceParams
from immersions.layout.io import load_layout
from immersions.layout.layout import Layout
from immersions.layout.synthetic import king_grid
from immersions.render import app
from immersions.render.app_inputs import load_clip, load_model
from immersions.render.cli import main
from immersions.render.demo_audio import demo_clip
from immersions.render.offscreen import create_context
from immersions.render.video import probe_video

SAMPLE_RATE = 16000
SIZE = (160, 120)
FPS = 12
CLIP_RATE = 22050
BRIGHT, DARK = 0, 1  # channels of the last AR tap forced on and off


def tiny_config() -> CPCConfig:
    """Two encoder blocks (one time pool) and two AR blocks (one more pool): about 130 neurons."""
    return CPCConfig(name="tiny", sample_rate=SAMPLE_RATE, hop=256, n_bins=24, fmin=500.0, bins_per_octave=12,
                     encoder=(EncoderBlockSpec(4, (3, 3), 2, (1, 5)), EncoderBlockSpec(6, (1, 3), 1, (1, 3))),
                     ar=(ARBlockSpec(8, 2), ARBlockSpec(8, 1, 2)), prediction_steps=2, prediction_gap=0)


def tiny_model() -> CPC:
    """A seeded tiny model whose last tap has one neuron always strongly on and one always off."""
    torch.manual_seed(0)
    model = CPC(tiny_config()).eval()
    with torch.no_grad():
        model.ar.blocks[-1].bn.bias[BRIGHT] = 50.0
        model.ar.blocks[-1].bn.bias[DARK] = -50.0
    return model


@pytest.fixture(scope="module")
def egl():
    try:
        create_context("egl").release()
    except RuntimeError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, egl):
    """``immersions render`` of a 1-s .wav (at another sample rate than the model's) through a checkpoint of
    the tiny model: the whole pipeline, with the layout computed and saved next to the video."""
    folder = tmp_path_factory.mktemp("render")
    model = tiny_model()
    save_checkpoint(folder / "tiny.pt", {"model_config": config_to_json(model.config), "model": model.state_dict()})
    clip = demo_clip(1.0, sample_rate=CLIP_RATE, seed=1)
    soundfile.write(folder / "clip.wav", clip, CLIP_RATE)
    video = folder / "clip.mp4"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main(["render", "--model", str(folder / "tiny.pt"), "--audio", str(folder / "clip.wav"),
                       "--out", str(video), "--size", f"{SIZE[0]}x{SIZE[1]}", "--fps", str(FPS)])
    assert status == 0
    return {"video": video, "clip": clip, "model": model, "folder": folder, "printed": printed.getvalue()}


def test_render_command_prints_the_files_it_wrote(rendered):
    video = rendered["video"]
    for path in (video, video.with_suffix(".npz"), video.with_suffix(".activations.npz")):
        assert path.is_file() and str(path) in rendered["printed"]
    assert f"immersions view {video.with_suffix('.npz')}" in rendered["printed"]


def test_video_has_every_frame_and_the_clip_as_sound(rendered):
    info = probe_video(rendered["video"])
    duration = len(rendered["clip"]) / CLIP_RATE
    assert info["n_frames"] == round(duration * FPS)
    assert (info["width"], info["height"]) == SIZE
    assert info["audio_duration"] == pytest.approx(duration, abs=0.03)


def test_layout_saved_next_to_the_video_matches_the_graph(rendered):
    layout = load_layout(rendered["video"].with_suffix(".npz"))
    network = app.AnalysisNetwork(rendered["model"])
    graph = app.neuron_graph(network, rendered["model"].config.n_bins)
    assert layout.graph.layers == graph.layers
    assert layout.positions.shape == (4, graph.n_vertices, 2)  # the default snapshot count
    assert app.reusable_layout(layout, graph) is layout
    with pytest.raises(ValueError, match="another model"):
        app.reusable_layout(layout, king_grid(4))


def test_activations_are_saved_per_step_with_their_rate(rendered):
    recorded = Activations.load(rendered["folder"] / "clip.activations.npz")
    layout = load_layout(rendered["video"].with_suffix(".npz"))
    assert recorded.layers == layout.graph.layers
    frames = SAMPLE_RATE * len(rendered["clip"]) // CLIP_RATE // 256  # resampled to the model's rate
    assert recorded.values.shape == (-(-frames // 2), layout.graph.n_vertices)  # one step per pooled frame pair
    assert recorded.frame_rate == pytest.approx(SAMPLE_RATE / 512)
    last = layout.graph.layers[-1]
    assert (recorded.values[:, last.start + BRIGHT] > 10).all() and (recorded.values[:, last.start + DARK] == 0).all()


def _grid_layout(graph) -> Layout:
    """Every neuron on its own cell of a unit grid: discs never overlap."""
    n = graph.n_vertices
    side = int(np.ceil(np.sqrt(n)))
    cells = np.stack(np.meshgrid(np.arange(side), np.arange(side)), axis=-1).reshape(-1, 2)[:n]
    return Layout(cells[None].astype(np.float32), graph, ForceParams(), 0, np.ones((1, n), np.float32),
                  np.zeros((1, n, 2), np.float32), np.ones(1, np.float32), np.zeros(n, bool))


def _pixel(world: np.ndarray, camera) -> tuple[int, int]:
    """Row and column of a world point in an image of SIZE (top row first)."""
    xmin, ymin, xmax, ymax = camera.bounds()
    column = (world[0] - xmin) / (xmax - xmin) * SIZE[0]
    row = (ymax - world[1]) / (ymax - ymin) * SIZE[1]
    return int(row), int(column)


def test_strongly_active_neuron_lights_up_where_the_layout_puts_it(tmp_path, egl):
    model = tiny_model()
    graph = app.neuron_graph(app.AnalysisNetwork(model), model.config.n_bins)
    layout = _grid_layout(graph)
    clip = demo_clip(1.0, sample_rate=SAMPLE_RATE, seed=2)
    app.render_activation_video(model, clip, SAMPLE_RATE, tmp_path / "grid.mp4", width=SIZE[0], height=SIZE[1],
                                fps=4, layout=layout, still_path=tmp_path / "grid.png", max_edges=0, progress=False)
    assert not (tmp_path / "grid.npz").exists()  # a given layout is not written again
    still = iio.imread(tmp_path / "grid.png").astype(np.int32)
    assert still.shape == (SIZE[1], SIZE[0], 3)
    camera = app.view_camera(layout.positions, SIZE[0] / SIZE[1])
    last = graph.layers[-1]

    def brightness(vertex: int) -> int:
        row, column = _pixel(layout.positions[0, vertex], camera)
        return int(still[max(row - 1, 0):row + 2, max(column - 1, 0):column + 2].sum(axis=2).max())

    assert brightness(last.start + BRIGHT * last.size) > 300  # the colormap's top end
    assert brightness(last.start + DARK * last.size) < 30


def test_activation_rate_recovers_the_step_stride():
    assert app.activation_rate(31, 62, 256, SAMPLE_RATE) == pytest.approx(SAMPLE_RATE / 512)
    assert app.activation_rate(11, 43, 1024, 44100) == pytest.approx(44100 / 4096)
    with pytest.raises(ValueError, match="at least 2"):
        app.activation_rate(1, 4, 256, SAMPLE_RATE)


def test_charges_follow_variance_per_window():
    values = np.zeros((8, 3), np.float32)
    values[:4, 0] = [0, 1, 0, 1]  # neuron 0 busy in the first half only
    values[4:, 1] = [0, 1, 0, 1]  # neuron 1 in the second half
    static, windows = app.layout_charges(values, 2)
    assert static.shape == (3,) and windows.shape == (2, 3)
    assert static[0] == pytest.approx(static[1]) and static[2] < static[0]
    assert windows[0, 0] > windows[0, 1] and windows[1, 1] > windows[1, 0]


def test_missing_audio_file_is_named(tmp_path, capsys):
    missing = tmp_path / "no-such-clip.wav"
    with pytest.raises(FileNotFoundError, match="no-such-clip.wav"):
        load_clip(missing, SAMPLE_RATE)
    (tmp_path / "text.wav").write_text("not a sound file")
    with pytest.raises(ValueError, match="text.wav"):
        load_clip(tmp_path / "text.wav", SAMPLE_RATE)
    assert main(["render", "--audio", str(missing), "--out", str(tmp_path / "v.mp4")]) == 1
    assert "no-such-clip.wav" in capsys.readouterr().err
    assert main(["render", "--layout", str(tmp_path / "no-such-layout.npz")]) == 1
    assert "no-such-layout.npz" in capsys.readouterr().err


def test_bad_size_and_model_are_rejected(tmp_path, capsys):
    assert main(["render", "--size", "wide"]) == 1
    assert "WIDTHxHEIGHT" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_model(tmp_path / "nope.pt")


def test_clip_is_mixed_to_mono_resampled_and_cut(tmp_path):
    t = np.arange(8000) / 8000
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.zeros_like(t)], axis=1).astype(np.float32)
    path = tmp_path / "tone.flac"
    soundfile.write(path, stereo, 8000)
    clip = load_clip(path, SAMPLE_RATE, seconds=0.5)
    assert clip.dtype == np.float32 and clip.shape == (SAMPLE_RATE // 2,)
    spectrum = np.abs(np.fft.rfft(clip))
    assert np.argmax(spectrum) * SAMPLE_RATE / len(clip) == pytest.approx(440, abs=4)
    assert np.abs(clip).max() == pytest.approx(0.5, abs=0.02)  # the silent channel halves the mix


def test_demo_clip_is_seeded_polyphonic_music():
    clip = demo_clip(2.0, sample_rate=SAMPLE_RATE, seed=3)
    assert clip.shape == (2 * SAMPLE_RATE,) and clip.dtype == np.float32
    assert np.array_equal(clip, demo_clip(2.0, sample_rate=SAMPLE_RATE, seed=3))
    assert not np.array_equal(clip, demo_clip(2.0, sample_rate=SAMPLE_RATE, seed=4))
    assert np.abs(clip).max() == pytest.approx(0.8)
    spectrum = np.abs(np.fft.rfft(clip[:SAMPLE_RATE]))
    strong = spectrum > 0.1 * spectrum.max()
    peaks = np.count_nonzero(strong[1:-1] & (spectrum[1:-1] >= spectrum[:-2]) & (spectrum[1:-1] >= spectrum[2:]))
    assert peaks >= 5  # several notes and their harmonics sound together
    envelope = np.abs(clip).reshape(-1, SAMPLE_RATE // 20).max(axis=1)
    assert envelope.max() > 2 * envelope.min()  # notes start and decay


def test_short_clip_is_refused():
    with pytest.raises(ValueError, match="too short"):
        app.clip_scaleogram(tiny_model(), np.zeros(300, np.float32))


def test_demo_command_is_registered():
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--help"])
    assert exit_info.value.code == 0



def test_video_name_and_folder_are_checked_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="clip.avi"):
        app.render_activation_video(tiny_model(), np.zeros(SAMPLE_RATE, np.float32), SAMPLE_RATE, tmp_path / "clip.avi")
    with pytest.raises(FileNotFoundError, match="missing-folder"):
        app.render_activation_video(tiny_model(), np.zeros(SAMPLE_RATE, np.float32), SAMPLE_RATE,
                                    tmp_path / "missing-folder" / "clip.mp4")



def test_each_layer_is_scaled_to_its_own_range():
    graph = king_grid(4)  # one layer of 16 neurons
    rng = np.random.default_rng(0)
    small = rng.random((50, 16)).astype(np.float32) * 1e-3
    shown = app.normalize_per_layer(small, graph)
    assert shown.min() >= 0 and shown.max() == 1.0
    assert np.quantile(shown, 0.5) > 0.3  # tiny raw activations still show, not only the largest
    assert np.allclose(app.normalize_per_layer(small * 1e3, graph), shown, atol=1e-5)


def test_camera_frames_every_snapshot():
    snapshots = np.random.default_rng(1).normal(size=(3, 500, 2)).astype(np.float32)
    snapshots[2] += 5.0  # the last snapshot drifts away
    points = snapshots.reshape(-1, 2).copy()
    xmin, ymin, xmax, ymax = app.view_camera(snapshots, 16 / 9).bounds()
    assert (points[:, 0] >= xmin).all() and (points[:, 0] <= xmax).all()
    assert (points[:, 1] >= ymin).all() and (points[:, 1] <= ymax).all()
    snapshots[1, 7] = (1000.0, -1000.0)  # a straggler flung far out is left out of the view
    assert app.view_camera(snapshots, 16 / 9).bounds() == pytest.approx((xmin, ymin, xmax, ymax))


def test_only_strongly_active_neurons_are_lit():
    graph = king_grid(4)  # one layer of 16 neurons
    rng = np.random.default_rng(0)
    values = (1.0 + 0.05 * rng.standard_normal((200, 16))).astype(np.float32)  # every neuron busy at ~1
    values[100, 3] = 10.0  # one neuron far above its typical level, once
    shown = app.light_levels(values, graph)
    assert shown[100, 3] == 1.0
    assert np.median(shown) == 0.0  # the typical level stays dark, although far above 0
    assert (shown > 0.5).mean() < 0.1  # (scaled from 0 instead, nearly every entry would be above half)
    assert np.allclose(app.light_levels(values * 1e3, graph), shown, atol=1e-5)
    with pytest.raises(ValueError, match="dark_quantile"):
        app.light_levels(values, graph, dark_quantile=0.999)


def test_one_wild_neuron_does_not_dominate_the_charges():
    values = np.random.default_rng(0).standard_normal((40, 200)).astype(np.float32)
    values[:, 0] *= 30  # 900 times the variance of the others
    static, windows = app.layout_charges(values, 2)
    assert static[0] < 2 * np.median(static)
    assert (windows[:, 0] < 2 * np.median(windows, axis=1)).all()


def test_landscape_lays_the_long_axis_along_x_with_the_input_on_the_left():
    model = tiny_model()
    graph = app.neuron_graph(app.AnalysisNetwork(model), model.config.n_bins)
    n = graph.n_vertices
    rng = np.random.default_rng(0)
    depth = np.linspace(0.0, 10.0, n)  # vertices run from the first layer to the last
    positions = np.stack([-0.5 * depth, -0.866 * depth], axis=1) + rng.normal(scale=0.3, size=(n, 2))
    layout = _grid_layout(graph).with_state(positions=positions[None].astype(np.float32))
    turned = app.landscape(layout).positions[0]
    extent = turned.max(axis=0) - turned.min(axis=0)
    assert extent[0] > 3 * extent[1]
    first, last = graph.layers[0], graph.layers[-1]
    assert turned[first.start:first.stop, 0].mean() < turned[last.start:last.stop, 0].mean()
    distances = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
    assert np.allclose(np.linalg.norm(turned[:, None] - turned[None], axis=-1), distances, atol=1e-4)
