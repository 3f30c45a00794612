"""Live input optimisation: loops grow in the background, are written at once, and reach the window."""
import threading
import time

import numpy as np
import pytest
import soundfile

from immersions.cpc.objectives import Objective, channel
from immersions.cpc.loop_control import LoopControl, optimize_loop
from immersions.cpc.optimize import OptimizeSettings, start_clip
from immersions.render.clip_folder import ClipFolder
from immersions.render.app import Listener
from immersions.render.live import RESTART_KEYS, LoopGrower, restart_keys, run_live
from immersions.render.loops import LoopQueue
from tests.render.test_app import SAMPLE_RATE, tiny_model

SECONDS = 0.5
OBJECTIVE = channel("ar.blocks.1.relu", 2)
SETTINGS = OptimizeSettings(steps=2, lr=5e-3, seed=1)


def _wait_for(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _start():
    return start_clip("noise", int(SECONDS * SAMPLE_RATE), 0)


def test_grower_writes_and_publishes_each_clip_until_stopped(tmp_path):
    model = tiny_model()
    stop = threading.Event()
    clips = optimize_loop(model, OBJECTIVE, _start(), None, SETTINGS, progress=False, stop=stop)
    listener = Listener(model)
    first = next(clips)
    folder = ClipFolder(tmp_path, SAMPLE_RATE, {"objective": OBJECTIVE.description})
    folder.add(first)
    loops = LoopQueue(listener.loop(first.audio), SECONDS)
    grower = LoopGrower(clips, listener, loops, folder, stop).start()
    _wait_for(lambda: loops.published >= 2)
    grower.stop()
    assert not grower.running and len(folder.clips) >= 3
    newest = loops.at_pass(1)
    assert newest.activations.shape[1] == listener.graph.n_vertices
    assert 0.0 <= newest.activations.min() and newest.activations.max() <= 1.0
    audio, rate = soundfile.read(tmp_path / "clip_002.wav", dtype="float32")
    assert rate == SAMPLE_RATE
    np.testing.assert_allclose(audio, folder.clips[2], atol=1e-4)          # written as 16-bit PCM
    bounded = list(optimize_loop(model, OBJECTIVE, _start(), 3, SETTINGS, progress=False))
    np.testing.assert_array_equal(folder.clips[2], bounded[2].audio)       # the same clips as offline
    assert folder.finish() == tmp_path / "loop.wav"


def test_grower_hands_its_error_to_stop(tmp_path):
    model = tiny_model()
    listener = Listener(model)
    loops = LoopQueue(listener.loop(_start()), SECONDS)

    def failing():
        raise RuntimeError("out of memory on purpose")
        yield

    grower = LoopGrower(failing(), listener, loops, ClipFolder(tmp_path, SAMPLE_RATE, {}), threading.Event()).start()
    _wait_for(lambda: not grower.running)
    with pytest.raises(RuntimeError, match="live optimiser failed: out of memory on purpose"):
        grower.stop()


def test_run_live_shows_new_loops_in_the_window(display, no_egl_context, tmp_path, monkeypatch):
    """The whole live path with the window's loop replaced by a few draws once a second loop is published."""
    from immersions.render.window import Window

    seen = {}

    def draw_a_few(window):
        _wait_for(lambda: window.loops.published >= 1)
        for seconds in (0.1, SECONDS + 0.1):
            window.draw(seconds)
        seen["passes"] = [window.loops.at_pass(i) for i in (0, 1)]
        seen["error"], seen["title"], seen["keys"] = window.ctx.error, window.title, set(window.controls.actions)

    def steer(activations):                # a controller changes the objective while the first clip grows
        control.set_objective(OBJECTIVE)
        return OBJECTIVE(activations)

    monkeypatch.setattr(Window, "run", draw_a_few)
    folder = ClipFolder(tmp_path / "live", SAMPLE_RATE, {})
    control = LoopControl(Objective(steer, "steered", OBJECTIVE.taps), SETTINGS)
    run_live(tiny_model(), control, _start(), folder, n_clips=3, size=(96, 64))
    assert seen["error"] == "GL_NO_ERROR"
    assert seen["passes"][0] is not seen["passes"][1]                       # the second pass plays the new loop
    assert seen["passes"][0].title == "immersions live - steered"
    assert seen["title"] == seen["passes"][1].title == f"immersions live - {OBJECTIVE.description}"
    assert seen["keys"] == set(RESTART_KEYS)
    assert (tmp_path / "live" / "layout.npz").is_file() and 2 <= len(folder.clips) <= 3
    again = ClipFolder(tmp_path / "again", SAMPLE_RATE, {})
    run_live(tiny_model(), LoopControl(OBJECTIVE, SETTINGS), _start(), again, n_clips=2, size=(96, 64),
             layout=tmp_path / "live" / "layout.npz")                        # a saved layout is reused
    assert not (tmp_path / "again" / "layout.npz").exists()


def test_restart_keys_ask_the_control_for_a_fresh_start():
    control = LoopControl(OBJECTIVE, SETTINGS)
    for key, action in restart_keys(control).items():
        action()
        assert control.take().restart == RESTART_KEYS[key]
    assert sorted(RESTART_KEYS.values()) == ["noise", "origin", "silence"]


def test_run_live_checks_a_given_layout_before_growing_anything(display, tmp_path, monkeypatch):
    from immersions.render import live

    monkeypatch.setattr(live, "grow_loop", lambda *a, **k: pytest.fail("optimised before the layout was checked"))
    folder = ClipFolder(tmp_path / "out", SAMPLE_RATE, {})
    with pytest.raises(FileNotFoundError):
        run_live(tiny_model(), LoopControl(OBJECTIVE, SETTINGS), _start(), folder, layout=tmp_path / "missing.npz")
    assert folder.clips == []


def test_live_command_without_display_says_what_to_do(monkeypatch, capsys, tmp_path):
    import sys

    from immersions.render.cli import main

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert main(["optimize", str(tmp_path / "out"), "--objective", "ar.blocks.8.relu:0", "--live"]) == 1
    assert "immersions render" in capsys.readouterr().err and not (tmp_path / "out").exists()
