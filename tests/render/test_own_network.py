"""A user's network: loading it by import path or as a torch.export program (and the errors), the AudioModel
contract, and the log-mel sound-event CNN through ``immersions render`` offscreen."""
from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import soundfile
import torch
from torch import nn

from immersions.layout.activations import Activations
from immersions.layout.extract import extract
from immersions.layout.io import load_layout
from immersions.render.app_inputs import load_model
from immersions.render.audio_model import DEFAULT_SAMPLE_RATE, AudioModel
from immersions.render.cli import main
from immersions.render.clip_listener import ClipListener
from immersions.render.example_networks import LogMel, SoundEventCNN, seeded, sound_event_cnn
from immersions.render.video import probe_video

HERE = "tests.render.test_own_network"
SIZE = (64, 48)
FPS = 8


def tiny_sound_event_cnn() -> AudioModel:
    """The example architecture at a size that lays out in a moment: 16 mels, 2/4/4 channels, 3 events."""
    return AudioModel(seeded(lambda: SoundEventCNN((2, 4, 4), n_events=3), seed=1), sample_rate=16_000,
                      front_end=LogMel(n_mels=16), min_samples=512)


def raw_waveform_net() -> nn.Module:
    """A plain module (no contract): a raw-waveform 1-D conv net."""
    return nn.Sequential(nn.Conv1d(1, 3, 64, stride=32), nn.ReLU(), nn.Conv1d(3, 4, 4, stride=2), nn.Tanh())


def failing_factory() -> nn.Module:
    raise RuntimeError("no weights here")


def not_a_model() -> dict:
    return {"weights": 1}


NOT_CALLABLE = 42


def test_import_path_gives_the_factorys_model_in_eval_mode():
    model = load_model(f"{HERE}:tiny_sound_event_cnn")
    assert isinstance(model, AudioModel) and not model.training
    assert model.sample_rate == 16_000


def test_a_plain_module_is_taken_as_a_raw_waveform_network():
    model = load_model(f"{HERE}:raw_waveform_net")
    assert isinstance(model, AudioModel) and model.sample_rate == DEFAULT_SAMPLE_RATE
    listener = ClipListener(model)
    assert [layer.name for layer in listener.graph.layers] == ["1", "3"]
    values, rate = listener.hear(np.zeros(DEFAULT_SAMPLE_RATE, dtype=np.float32))
    assert rate == pytest.approx(DEFAULT_SAMPLE_RATE / 32)
    assert values.shape == (len(values), listener.graph.n_vertices) and len(values) > 400


@pytest.mark.parametrize("spec, error, says", [
    ("no_such_package.nets:build", ValueError, "cannot import module 'no_such_package.nets'"),
    (f"{HERE}:missing", ValueError, "has no attribute 'missing'"),
    (f"{HERE}:failing_factory", ValueError, "the factory raised RuntimeError: no weights here"),
    (f"{HERE}:not_a_model", TypeError, "returned a dict, not a torch.nn.Module"),
    (f"{HERE}:NOT_CALLABLE", TypeError, "is a int, not a function"),
])
def test_import_path_errors_name_the_spec_and_the_cause(spec, error, says):
    with pytest.raises(error, match=f"--model '{spec}'") as caught:
        load_model(spec)
    assert says in str(caught.value)


def test_cli_turns_a_failing_factory_into_one_line(tmp_path, capsys):
    assert main(["render", "--model", f"{HERE}:failing_factory", "--out", str(tmp_path / "v.mp4")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("immersions render: error: --model") and "no weights here" in err[-1]
    assert not list(tmp_path.iterdir())


def test_an_unknown_name_suggests_the_forms_of_your_own_network():
    with pytest.raises(FileNotFoundError, match="package.module:factory"):
        load_model("no-such-model")


def test_exported_program_loads_as_its_module(tmp_path):
    network = raw_waveform_net().eval()
    example = torch.randn(1, 1, 4096, generator=torch.Generator().manual_seed(0))
    path = tmp_path / "net.pt2"
    torch.export.save(torch.export.export(network, (example,)), path)
    model = load_model(path)
    assert isinstance(model, AudioModel)
    torch.testing.assert_close(model(example), network(example))


def test_render_refuses_an_exported_program_it_cannot_trace_in_one_line(tmp_path, capsys):
    path = tmp_path / "net.pt2"
    torch.export.save(torch.export.export(raw_waveform_net().eval(), (torch.zeros(1, 1, 16_000),)), path)
    assert main(["render", "--model", str(path), "--out", str(tmp_path / "v.mp4"), "--seconds", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("immersions render: error: torch.fx cannot trace ExportedNetwork")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.pt2"]


def test_a_bad_exported_program_is_refused_by_name(tmp_path):
    path = tmp_path / "broken.pt2"
    path.write_bytes(b"not a zip archive")
    with pytest.raises(ValueError, match="broken.pt2.*is not a torch.export program"):
        load_model(path)
    with pytest.raises(FileNotFoundError, match="missing.pt2"):
        load_model(tmp_path / "missing.pt2")


def test_the_example_network_is_seeded_without_touching_torchs_generator():
    state = torch.random.get_rng_state()
    first, second = sound_event_cnn(seed=3), sound_event_cnn(seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    for a, b in zip(first.parameters(), second.parameters()):
        assert torch.equal(a, b)
    assert not torch.equal(next(sound_event_cnn(seed=4).parameters()), next(first.parameters()))


def test_extract_lays_out_the_example_networks_taps():
    model = sound_event_cnn()
    graph = extract(model.network, model.inputs(torch.zeros(16_000)))
    assert [(layer.name, layer.channels, layer.size) for layer in graph.layers] == [
        ("block1.2", 8, 32), ("block2.2", 16, 16), ("block3.2", 16, 8), ("events", 10, 1)]
    assert graph.n_edges > 0


def test_listener_steps_follow_the_front_ends_frames():
    listener = ClipListener(tiny_sound_event_cnn())
    assert listener.rate == pytest.approx(100.0)  # one log-mel frame per 160 samples at 16 kHz
    clip = np.random.default_rng(0).standard_normal(8000).astype(np.float32)
    values = listener.values(clip)
    assert listener.n_steps(clip) == len(values) == 1 + 8000 // 160
    assert np.array_equal(np.concatenate(list(listener.chunks(clip, 0.1))), values)
    assert np.array_equal(listener.step(clip, 7), values[7])
    with pytest.raises(ValueError, match="at least 512"):
        listener.values(np.zeros(100, dtype=np.float32))


def test_render_draws_the_example_network_listening_to_a_clip(tmp_path, gl_context):
    """(``gl_context``: skipped where no EGL driver is installed.)"""
    clip = 0.3 * np.sin(2 * np.pi * 440 * np.arange(22050) / 22050).astype(np.float32)
    soundfile.write(tmp_path / "clip.wav", clip, 22050)
    video = tmp_path / "clip.mp4"
    with contextlib.redirect_stdout(io.StringIO()):
        status = main(["render", "--model", f"{HERE}:tiny_sound_event_cnn", "--audio", str(tmp_path / "clip.wav"),
                       "--out", str(video), "--size", f"{SIZE[0]}x{SIZE[1]}", "--fps", str(FPS)])
    assert status == 0
    info = probe_video(video)
    assert (info["width"], info["height"]) == SIZE and info["n_frames"] == FPS
    assert info["audio_duration"] == pytest.approx(1.0, abs=0.03)
    layout = load_layout(video.with_suffix(".npz"))
    assert [layer.name for layer in layout.graph.layers] == ["block1.2", "block2.2", "block3.2", "events"]
    recorded = Activations.load(video.with_suffix(".activations.npz"))
    assert recorded.values.shape == (1 + 16_000 // 160, layout.graph.n_vertices)
    assert recorded.frame_rate == pytest.approx(100.0)


def test_commands_that_run_on_cpc_only_refuse_another_network_in_one_line(tmp_path, capsys):
    status = main(["optimize", str(tmp_path / "out"), "--model", f"{HERE}:tiny_sound_event_cnn", "--objective", "ar"])
    assert status == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("immersions optimize: error: --model") and "CPC models only" in err
    assert not list(tmp_path.iterdir())
