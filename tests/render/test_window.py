"""The viewer without a display: a clear error, and its controls, clocks and audio looping on their own."""
import sys

import numpy as np
import pytest

from immersions.render.camera import Camera
from immersions.render.loops import Loop, LoopQueue
from immersions.render.window import Controls, Window, WallClock, layer_bounds, open_clock, require_display


def test_require_display_names_the_alternative():
    with pytest.raises(RuntimeError, match="immersions render"):
        require_display(environ={}, platform="linux")
    require_display(environ={"DISPLAY": ":0"}, platform="linux")
    require_display(environ={"WAYLAND_DISPLAY": "wayland-0"}, platform="linux")
    require_display(environ={}, platform="darwin")


def test_window_without_display_raises(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    with pytest.raises(RuntimeError, match="no display.*immersions render"):
        Window(np.zeros((3, 2), np.float32))


def test_window_argument_errors():
    with pytest.raises(ValueError, match="snapshots"):
        Window(np.zeros((3, 3), np.float32))
    with pytest.raises(ValueError, match="sample_rate"):
        Window(np.zeros((3, 2), np.float32), audio=np.zeros(100, np.float32))


def test_wall_clock_pauses():
    now = [10.0]
    clock = WallClock(timer=lambda: now[0])
    now[0] = 12.0
    assert clock.time() == pytest.approx(2.0)
    clock.toggle()
    now[0] = 20.0
    assert clock.paused and clock.time() == pytest.approx(2.0)
    clock.toggle()
    now[0] = 21.0
    assert not clock.paused and clock.time() == pytest.approx(3.0)


def test_open_clock_falls_back_without_sounddevice(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    clock = open_clock(LoopQueue(Loop.of(np.zeros(100, np.float32), None), 100 / 44100), 44100)
    assert isinstance(clock, WallClock)
    assert "sounddevice" in caplog.text


class FakeScene:
    show_edges = True


class CountingClock:
    toggles = 0

    def toggle(self):
        self.toggles += 1


@pytest.fixture
def controls():
    positions = np.array([[0, 0], [1, 1], [10, 10], [12, 11], [20, -5]], np.float32)
    camera = Camera.fitted(positions, aspect=1.0)
    shots = []
    return Controls(camera, FakeScene(), CountingClock(), lambda: positions, np.array([0, 0, 1, 1, 2]),
                    lambda: shots.append(1) or "shot.png")


def test_keys(controls):
    assert controls.key("space") and controls.clock.toggles == 1
    assert controls.key("e") and controls.scene.show_edges is False
    assert controls.key("e") and controls.scene.show_edges is True
    assert not controls.key("q") and not controls.key("escape")


def test_callers_actions_take_other_letters(controls):
    pressed = []
    mine = Controls(controls.camera, FakeScene(), CountingClock(), controls.positions, None, lambda: "shot.png",
                    actions={"n": lambda: pressed.append("n")})
    assert mine.key("n") and mine.key("x") and pressed == ["n"]
    with pytest.raises(ValueError, match="keys \\['e', 's'\\] are the viewer's own"):
        Controls(controls.camera, FakeScene(), CountingClock(), controls.positions, None, lambda: "shot.png",
                 actions={"e": print, "s": print, "n": print})


def test_focus_glides_to_layer(controls):
    controls.key("2")
    assert controls.camera.moving
    while controls.camera.advance(0.1):
        pass
    xmin, ymin, xmax, ymax = controls.camera.bounds()
    assert xmin <= 10 and xmax >= 12 and ymin <= 10 and ymax >= 11
    assert xmax - xmin < 5, "the view should close in on the layer, not keep the whole graph"
    controls.key("tab")
    assert controls.focused == 2
    controls.key("tab")
    assert controls.focused == 0
    controls.key("9")
    assert controls.focused == 0, "a missing layer leaves the focus alone"
    assert layer_bounds(controls.positions(), controls.layer_index, 2) == (20.0, -5.0, 20.0, -5.0)


def test_drag_and_zoom_around_cursor(controls):
    camera = controls.camera
    before = camera.center.copy()
    controls.drag(100, 0, height=400)
    assert camera.center[0] == pytest.approx(before[0] - 100 * camera.height / 400)
    under_cursor = camera.pixel_to_world(50, 300, 400, 400)
    height = camera.height
    controls.scroll(2, 50, 300, 400, 400)
    assert camera.height == pytest.approx(height / 1.15 ** 2)
    np.testing.assert_allclose(camera.pixel_to_world(50, 300, 400, 400), under_cursor, atol=1e-9)


def test_window_draws_resizes_and_saves_screenshot(display, no_egl_context, tmp_path):
    import imageio.v3 as iio

    rng = np.random.default_rng(0)
    snapshots = rng.normal(size=(3, 40, 2)).astype(np.float32)
    with Window(snapshots, activations=np.ones((12, 40), np.float32), layer_index=np.repeat(np.arange(4), 10),
                size=(96, 64), screenshot_dir=tmp_path) as window:
        window.draw(0.3)
        image = iio.imread(window.screenshot())
        assert image.shape[2] == 3 and image.max() > 100 and image.min() < 20
        assert window.ctx.error == "GL_NO_ERROR"
        window._glfw.set_window_size(window._handle, 120, 80)
        window._glfw.poll_events()
        window.draw(0.5)
        assert window._target().size == window.framebuffer_size()


def test_window_switches_to_a_published_loop_at_the_next_pass(display, no_egl_context, tmp_path):
    import imageio.v3 as iio

    snapshots = np.random.default_rng(1).normal(size=(40, 2)).astype(np.float32)
    dark = Loop.of(np.zeros(1000, np.float32), np.zeros((10, 40), np.float32))
    loops = LoopQueue(dark, 1.0)
    with Window(snapshots, loops=loops, sample_rate=1000, layer_index=np.repeat(np.arange(4), 10),
                size=(96, 64), screenshot_dir=tmp_path) as window:
        loops.publish(Loop.of(np.zeros(1000, np.float32), np.ones((10, 40), np.float32), title="bright"))
        window.draw(0.5)                                    # still the first pass: dark
        before = iio.imread(window.screenshot()).max()
        assert window.title == "immersions"
        window.draw(1.5)                                    # the second pass plays the published loop
        after = iio.imread(window.screenshot()).max()
        assert after > before + 50 and window.title == "bright"
        window.draw(0.7)                                    # a pass keeps its loop once fixed
        assert iio.imread(window.screenshot()).max() == before
    with pytest.raises(ValueError, match="either loops"):
        Window(snapshots, loops=loops, activations=np.ones((10, 40), np.float32))


def test_view_command_without_display_says_what_to_do(monkeypatch, capsys, tmp_path):
    from immersions.render.cli import main

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    _, layout_path, _, _ = saved_layout_files(tmp_path)  # the files are checked before the display
    assert main(["view", str(layout_path)]) == 1
    assert "immersions render" in capsys.readouterr().err


class FakeStream:
    """Stands in for sounddevice.OutputStream: the test pulls blocks as the device would."""

    def __init__(self, samplerate, channels, dtype, callback):
        self.channels, self.callback, self.active, self.latency = channels, callback, False, 0.01

    def start(self):
        self.active = True

    def stop(self):
        self.active = False

    def close(self):
        self.active = False

    def pull(self, frames):
        out = np.empty((frames, self.channels), np.float32)
        self.callback(out, frames, None, None)
        return out


def test_audio_clock_follows_samples_played(monkeypatch):
    import types

    from immersions.render.window import AudioClock

    monkeypatch.setitem(sys.modules, "sounddevice", types.SimpleNamespace(OutputStream=FakeStream))
    track = np.arange(1000, dtype=np.float32)
    loops = LoopQueue(Loop.of(track, None), 1.0)
    clock = open_clock(loops, 1000)
    assert isinstance(clock, AudioClock) and not clock.paused
    block = clock._stream.pull(600)
    np.testing.assert_array_equal(block[:, 0], track[:600])
    loops.publish(Loop.of(-track, None))                 # heard from the next pass on, not mid-pass
    block = clock._stream.pull(600)
    np.testing.assert_array_equal(block[:, 0], np.r_[track[600:], -track[:200]])
    assert clock.time() == pytest.approx(1.2 - 0.01)
    clock.toggle()
    assert clock.paused
    clock.close()


def saved_layout_files(tmp_path, activation_layers=None):
    """A tiny two-layer layout, activations recorded at 20 frames/s and a stereo sound file."""
    layout_io = pytest.importorskip("immersions.layout.io")
    from immersions.layout.activations import Activations
    from immersions.layout.forces import ForceParams
    from immersions.layout.graph import NeuronGraph, layer_table
    from immersions.layout.layout import Layout

    layers = layer_table([("conv1", 2, 5), ("conv2", 3, 4)])
    n = layers[-1].stop
    graph = NeuronGraph.from_edges(layers, np.arange(10), np.arange(10, 20))
    rng = np.random.default_rng(0)
    layout = Layout(rng.normal(size=(2, n, 2)).astype(np.float32), graph, ForceParams(), 0,
                    np.ones((2, n), np.float32), np.zeros((2, n, 2), np.float32), np.ones(2, np.float32),
                    np.zeros(n, bool))
    layout_path = layout_io.save_layout(layout, tmp_path / "layout.npz")
    recorded_layers = layers if activation_layers is None else layer_table(activation_layers)
    activations_path = tmp_path / "activations.npz"
    values = rng.random((9, recorded_layers[-1].stop)).astype(np.float32)
    Activations(values, recorded_layers, 20.0).save(activations_path)
    audio_path = tmp_path / "clip.wav"
    import soundfile
    soundfile.write(audio_path, np.zeros((4410, 2), np.float32), 44100)
    return layout, layout_path, activations_path, audio_path


def test_view_loads_layout_activations_and_audio(tmp_path):
    from immersions.render.commands.view import load_view_data

    layout, layout_path, activations_path, audio_path = saved_layout_files(tmp_path)
    data = load_view_data(layout_path, activations_path, audio_path)
    np.testing.assert_array_equal(data.snapshots, layout.positions)
    np.testing.assert_array_equal(data.layer_index, [0] * 10 + [1] * 12)
    np.testing.assert_array_equal(data.edges, layout.graph.edges)
    assert data.activations.shape == (9, 22) and data.activation_rate == 20.0
    assert data.audio.shape == (4410, 2) and data.sample_rate == 44100
    assert load_view_data(layout_path, None, None).activations is None


def test_view_rejects_activations_of_another_network(tmp_path):
    from immersions.render.commands.view import load_view_data

    _, layout_path, activations_path, _ = saved_layout_files(tmp_path, [("conv1", 2, 5), ("fc", 1, 12)])
    with pytest.raises(ValueError, match="fc"):
        load_view_data(layout_path, activations_path, None)
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        load_view_data(layout_path, None, tmp_path / "missing.wav")


def test_view_command_draws_at_most_max_edges(display, no_egl_context, tmp_path, monkeypatch):
    from immersions.render.cli import main

    _, layout_path, activations_path, _ = saved_layout_files(tmp_path)
    drawn = []
    monkeypatch.setattr(Window, "run", lambda window: drawn.append(window.scene.n_edges_drawn))
    assert main(["view", str(layout_path), "--activations", str(activations_path), "--max-edges", "3",
                 "--size", "64x48"]) == 0
    assert main(["view", str(layout_path), "--size", "64x48"]) == 0
    assert drawn == [3, 10]                                 # the layout's graph has 10 edges


def test_window_without_activations_shows_the_network_dimly_lit(display, no_egl_context, tmp_path):
    import imageio.v3 as iio

    cells = np.stack(np.meshgrid(np.arange(12), np.arange(8)), axis=-1).reshape(-1, 2).astype(np.float32)
    with Window(cells, layer_index=np.repeat(np.arange(4), 24), size=(96, 64), screenshot_dir=tmp_path) as window:
        window.draw(0.1)
        image = iio.imread(window.screenshot())
    assert image.mean() > 10 and image.max() < 200  # the network shows, dimly; it was 1/255 (black)
