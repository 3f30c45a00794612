"""Input optimisation: it raises the objective, is seeded, leaves the model as it was, and loops."""
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from immersions.cpc.checkpoint import config_to_json, save_checkpoint
from immersions.cpc.loop_control import optimize_loop
from immersions.cpc.objectives import channel, neuron
from immersions.cpc.optimize import (OptimizeSettings, clip_score, forward_to_taps, optimize_clip, recorded_taps,
                                     redirected_relus, start_clip)
from immersions.cpc.regularizers import Regularization
from immersions.render.cli import main
from tests.cpc.test_train import tiny_model

SECONDS = 0.5


@pytest.fixture(scope="module")
def model():
    return tiny_model().eval()


def _noise(model, seed: int = 0) -> np.ndarray:
    return start_clip("noise", int(SECONDS * model.config.sample_rate), seed)


def test_start_clips_are_seeded_and_named():
    silence, noise = start_clip("silence", 4000, 0), start_clip("noise", 4000, 0)
    assert silence.dtype == noise.dtype == np.float32 and len(silence) == 4000
    assert 0 < np.abs(silence).max() < 1e-3 and 0.04 < noise.std() < 0.06
    assert np.array_equal(noise, start_clip("noise", 4000, 0))
    assert not np.array_equal(noise, start_clip("noise", 4000, 1))
    with pytest.raises(ValueError, match="'drums' is not one of"):
        start_clip("drums", 4000)


def test_recorded_taps_fill_and_leave_no_hooks(model):
    names = ["encoder.blocks.1.relu2", "ar.blocks.1.relu"]
    with recorded_taps(model, names) as taps:
        model(torch.zeros(1, 4000))
    assert taps["encoder.blocks.1.relu2"].dim() == 4 and taps["ar.blocks.1.relu"].dim() == 3
    assert all(not module._forward_hooks for module in model.modules())
    with pytest.raises(ValueError, match="unknown taps \\['nope'\\]; this model's taps are"):
        with recorded_taps(model, ["nope"]):
            pass


def test_forward_to_taps_stops_after_the_last_tap_it_needs(model):
    """An early tap's outputs equal the full pass's, and no module after it runs."""
    scaleogram = model.scaleogram(torch.from_numpy(_noise(model))[None])
    with recorded_taps(model, model.tap_names()) as full:
        model.ar(model.encoder(scaleogram))
    ran = []
    handle = model.encoder.blocks[1].conv1.register_forward_hook(lambda *_: ran.append(True))
    try:
        early = forward_to_taps(model, ["encoder.blocks.0.relu2", "encoder.blocks.0.relu1"], scaleogram)
    finally:
        handle.remove()
    assert sorted(early) == ["encoder.blocks.0.relu1", "encoder.blocks.0.relu2"] and not ran
    torch.testing.assert_close(early["encoder.blocks.0.relu2"], full["encoder.blocks.0.relu2"])
    assert forward_to_taps(model, ["ar.blocks.1.relu"], scaleogram)["ar.blocks.1.relu"].shape == \
        full["ar.blocks.1.relu"].shape
    assert all(not module._forward_hooks for module in model.modules())


def test_redirected_relus_change_gradients_only():
    """Forward values stay the model's own; a tap that is zero everywhere still passes a gradient upward."""
    model = tiny_model().eval()
    audio = torch.from_numpy(_noise(model))[None]
    objective = channel("ar.blocks.1.relu", 0)
    with torch.no_grad():
        plain = model(audio)[1]
        with redirected_relus(model):
            redirected = model(audio)[1]
    torch.testing.assert_close(plain, redirected)
    with torch.no_grad():      # silence channel 0 of the last tap: every input to its ReLU negative
        model.ar.blocks[1].bn.bias[0] = -1e3
    for redirect, expect_gradient in ((False, False), (True, True)):
        waveform = audio.clone().requires_grad_(True)
        with recorded_taps(model, objective.taps) as taps:
            if redirect:
                with redirected_relus(model):
                    model(waveform)
            else:
                model(waveform)
        score = objective(taps).sum()
        assert float(score.detach()) == 0.0
        (-score).backward()                                 # the optimiser descends on minus the objective
        assert (waveform.grad.abs().sum() > 0) == expect_gradient
    assert all(not module._forward_hooks for module in model.modules())


@pytest.mark.parametrize("regularization", [Regularization.off(), Regularization(time_shift=0.02, mask_frames=8,
                                                                                   mask_bins=4, denoise_every=5)])
def test_optimisation_raises_the_objective(model, regularization):
    objective = channel("ar.blocks.1.relu", 1) + neuron("encoder.blocks.1.relu2", 2, 3)
    start = _noise(model)
    settings = OptimizeSettings(steps=30, lr=5e-3, regularization=regularization, seed=1)
    result = optimize_clip(model, objective, start, settings, progress=False)
    assert result.final_score > result.initial_score + 0.05
    assert result.initial_score == pytest.approx(clip_score(model, objective, start))
    assert result.audio.shape == start.shape and result.audio.dtype == np.float32
    assert np.all(np.isfinite(result.audio)) and np.abs(result.audio).max() <= 1.0
    assert len(result.scores) == 30 and not np.array_equal(result.audio, start)


def test_optimisation_from_silence_moves_the_clip(model):
    objective = channel("ar.blocks.1.relu", 1)
    start = start_clip("silence", int(SECONDS * model.config.sample_rate))
    settings = OptimizeSettings(steps=20, lr=5e-3, regularization=Regularization.off())
    result = optimize_clip(model, objective, start, settings, progress=False)
    assert result.final_score > result.initial_score and np.abs(result.audio).max() > 10 * np.abs(start).max()


def test_optimisation_is_seeded_and_leaves_the_model_unchanged():
    model = tiny_model().train()
    before = {name: value.clone() for name, value in model.state_dict().items()}
    objective = channel("ar.blocks.0.relu", 0)
    settings = OptimizeSettings(steps=8, lr=5e-3, seed=3)
    first = optimize_clip(model, objective, _noise(model), settings, progress=False)
    again = optimize_clip(model, objective, _noise(model), settings, progress=False)
    other = optimize_clip(model, objective, _noise(model), OptimizeSettings(steps=8, lr=5e-3, seed=4), progress=False)
    assert np.array_equal(first.audio, again.audio) and first.scores == again.scores
    assert not np.array_equal(first.audio, other.audio)
    assert model.training and all(p.requires_grad and p.grad is None for p in model.parameters())
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())


def test_each_loop_grows_from_the_last(model):
    objective = channel("ar.blocks.1.relu", 1)
    clips = list(optimize_loop(model, objective, _noise(model), 3, OptimizeSettings(steps=4, lr=5e-3, seed=2),
                               progress=False))
    assert len(clips) == 3
    for previous, following in zip(clips, clips[1:]):
        assert following.initial_score == pytest.approx(previous.final_score)
    with pytest.raises(ValueError, match="n_clips=0"):
        next(optimize_loop(model, objective, _noise(model), 0))


def test_endless_loop_runs_until_stopped(model):
    """n_clips=None goes on until the stop event is set; a clip cut short is not yielded."""
    import threading

    objective = channel("ar.blocks.1.relu", 1)
    stop = threading.Event()
    settings = OptimizeSettings(steps=3, lr=5e-3, seed=2)
    clips = []
    for clip in optimize_loop(model, objective, _noise(model), None, settings, progress=False, stop=stop):
        clips.append(clip)
        if len(clips) == 4:
            stop.set()
    assert len(clips) == 4 and all(len(c.scores) == 3 for c in clips)
    bounded = list(optimize_loop(model, objective, _noise(model), 2, settings, progress=False))
    assert np.array_equal(bounded[1].audio, clips[1].audio)                # same clips as a bounded loop
    cut = optimize_clip(model, objective, _noise(model), settings, progress=False, stop=stop)
    assert cut.scores == [] and np.array_equal(cut.audio, _noise(model))  # stopped before the first step
    assert list(optimize_loop(model, objective, _noise(model), 3, settings, progress=False, stop=stop)) == []
    with pytest.raises(ValueError, match="stop event"):
        next(optimize_loop(model, objective, _noise(model), None, settings))


def test_bad_clips_and_settings_are_errors(model):
    objective = channel("ar.blocks.1.relu", 0)
    with pytest.raises(ValueError, match="at least 512"):
        optimize_clip(model, objective, np.zeros(100, dtype=np.float32))
    with pytest.raises(ValueError, match="mono"):
        optimize_clip(model, objective, np.zeros((2, 4000), dtype=np.float32))
    with pytest.raises(ValueError, match="channel 99 is out of range"):
        optimize_clip(model, channel("ar.blocks.1.relu", 99), _noise(model), progress=False)
    with pytest.raises(ValueError, match="lr=0"):
        OptimizeSettings(lr=0)


def test_cli_optimize_writes_clips_loop_and_scores(model, tmp_path, capsys):
    checkpoint = tmp_path / "tiny.pt"
    save_checkpoint(checkpoint, {"model_config": config_to_json(model.config), "model": model.state_dict()})
    out = tmp_path / "out"
    status = main(["optimize", str(out), "--model", str(checkpoint), "--objective", "ar.blocks.1.relu:1",
                   "encoder.blocks.1.relu2:2:3", "--start", "noise", "--seconds", str(SECONDS), "--steps", "3",
                   "--loops", "2", "--masks", "1", "--mask-bins", "4"])
    assert status == 0
    clip, rate = sf.read(out / "clip_001.wav")
    loop, _ = sf.read(out / "loop.wav")
    assert rate == model.config.sample_rate and len(loop) == 2 * len(clip) == 2 * SECONDS * rate
    report = json.loads((out / "scores.json").read_text())
    assert [c["file"] for c in report["clips"]] == ["clip_000.wav", "clip_001.wav"]
    assert report["settings"]["regularization"]["masks"] == 1 and len(report["clips"][0]["step_scores"]) == 3
    assert "loop.wav" in capsys.readouterr().out
    recording = tmp_path / "start.wav"
    stereo = _noise(model, seed=5)[:, None].repeat(2, axis=1)
    sf.write(recording, stereo, 2 * model.config.sample_rate)                 # at twice the model rate
    assert main(["optimize", str(tmp_path / "from_file"), "--model", str(checkpoint), "--objective",
                 "ar.blocks.1.relu", "--start", str(recording), "--seconds", str(SECONDS / 2), "--steps", "2"]) == 0
    from_file, _ = sf.read(tmp_path / "from_file" / "loop.wav")
    assert len(from_file) == SECONDS / 2 * model.config.sample_rate       # mono, resampled, cut to --seconds
    assert main(["optimize", "--model", str(checkpoint), "--list-taps"]) == 0
    assert "ar.blocks.1.relu" in capsys.readouterr().out
    bad = tmp_path / "bad"
    assert main(["optimize", str(bad), "--model", str(checkpoint), "--objective", "ar.blocks.9.relu:0",
                 "--seconds", str(SECONDS)]) == 1
    assert "ar.blocks.9.relu" in capsys.readouterr().err and not bad.exists()


def test_sigterm_ends_a_long_loop_like_ctrl_c_keeping_the_finished_clips(model, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    checkpoint = tmp_path / "tiny.pt"
    save_checkpoint(checkpoint, {"model_config": config_to_json(model.config), "model": model.state_dict()})
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "immersions.render.cli", "optimize", str(out), "--model",
                                str(checkpoint), "--objective", "ar.blocks.1.relu:1", "--seconds", str(SECONDS),
                                "--steps", "2", "--loops", "100000", "--threads", "1"],
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "clip_001.wav").exists():
        assert process.poll() is None and time.monotonic() < deadline, "no clip came"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted" in err
    report = json.loads((out / "scores.json").read_text())
    loop, _ = sf.read(out / "loop.wav")
    assert len(report["clips"]) >= 2 and len(loop) == len(report["clips"]) * SECONDS * model.config.sample_rate
