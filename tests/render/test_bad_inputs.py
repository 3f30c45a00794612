"""Bad input through the command line: exit status 1, one line naming the file, option or value, no traceback,
and no file left behind (every argument is checked before any work)."""
from __future__ import annotations

import argparse
import json
import logging
import math
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from immersions.cpc.optimize import OptimizedClip, OptimizeSettings
from immersions.layout.graph_io import save_graph
from immersions.layout.synthetic import king_grid
from immersions.render.app_inputs import load_clip, read_sound
from immersions.render.cli import main
from immersions.render.clip_folder import ClipFolder
from immersions.render.offscreen import create_context

RATE = 22050


def refused(argv: list[str], capsys, *names: str, folder: Path) -> str:
    """Run the command, require it to refuse in one line naming ``names``, and ``folder`` to be unchanged."""
    before = sorted(folder.rglob("*"))
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err and "error:" in err
    for name in names:
        assert name in err, (name, err)
    assert sorted(folder.rglob("*")) == before, "a refused command left files behind"
    return err


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    """Files of the wrong kind, each named after what it is."""
    made = {}

    def keep(name: str) -> Path:
        made[name] = tmp_path / name
        return made[name]

    keep("random.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    keep("plain.pkl").write_bytes(pickle.dumps({"weights": [1.0, 2.0]}))
    torch.save(argparse.Namespace(weights=torch.zeros(3)), keep("objects.pt"))  # a pickle of objects
    np.savez(keep("other.npz"), x=np.zeros(3))
    np.save(keep("single.npy"), np.zeros(3))
    keep("single.npy").rename(keep("single.npz"))
    keep("random.npz").write_bytes(np.random.default_rng(1).bytes(4096))
    save_graph(king_grid(3), keep("graph.npz"))
    whole = keep("graph.npz").read_bytes()
    keep("truncated.npz").write_bytes(whole[: len(whole) // 2])
    nan = np.zeros(RATE, np.float32)
    nan[100:200] = np.nan
    soundfile.write(keep("nan.wav"), nan, RATE, subtype="FLOAT")
    keep("folder.wav").mkdir()
    return made


@pytest.mark.parametrize("command", ["render", "optimize"])
@pytest.mark.parametrize("name", ["random.pt", "plain.pkl", "objects.pt"])
def test_a_model_that_is_no_checkpoint_is_named_and_unsafe_loading_never_suggested(command, name, files,
                                                                                   tmp_path, capsys):
    extra = ["--out", str(tmp_path / "v.mp4")] if command == "render" else [str(tmp_path / "out"),
                                                                          "--objective", "ar"]
    err = refused([command, "--model", str(files[name]), *extra], capsys, name,
                  "not a checkpoint of this project", folder=tmp_path)
    assert "weights_only" not in err


@pytest.mark.parametrize("name, says", [("truncated.npz", "not a readable .npz"), ("random.npz", "not a readable"),
                                        ("single.npz", "single array"), ("other.npz", "another program"),
                                        ("folder.wav", "folder")])
def test_wrong_npz_files_are_named_by_layout_view_and_render(name, says, files, tmp_path, capsys):
    path = str(files[name])
    refused(["layout", path if name.endswith(".npz") else path + "/g.npz", "--out", str(tmp_path / "l.npz")],
            capsys, name, folder=tmp_path)
    refused(["view", path], capsys, name, says, folder=tmp_path)
    refused(["render", "--layout", path, "--out", str(tmp_path / "v.mp4")], capsys, name, says, folder=tmp_path)


def test_a_layout_or_activations_file_where_a_graph_is_expected_says_what_it_is(files, tmp_path, capsys):
    from immersions.layout.activations import Activations
    from immersions.layout.io import save_layout
    from immersions.layout.simulate import ForceLayout

    graph = king_grid(3)
    save_layout(ForceLayout(seed=0).fit(graph), tmp_path / "layout.npz")
    Activations(np.zeros((2, 9), np.float32), graph.layers).save(tmp_path / "acts.npz")
    refused(["layout", str(tmp_path / "layout.npz"), "--out", str(tmp_path / "l.npz")], capsys,
            "layout.npz", "a saved layout file, not a graph file", folder=tmp_path)
    refused(["layout", str(tmp_path / "acts.npz"), "--out", str(tmp_path / "l.npz")], capsys,
            "acts.npz", "a saved activations file, not a graph file", folder=tmp_path)
    refused(["view", str(files["graph.npz"])], capsys, "graph.npz", "a saved graph file, not a layout file",
            folder=tmp_path)


def test_nan_audio_is_named_before_anything_is_written(files, tmp_path, capsys):
    refused(["render", "--audio", str(files["nan.wav"]), "--out", str(tmp_path / "v.mp4")], capsys,
            "nan.wav", "100 non-finite samples", folder=tmp_path)
    refused(["optimize", str(tmp_path / "out"), "--objective", "ar", "--start", str(files["nan.wav"]), "--steps", "1"],
            capsys, "nan.wav", "non-finite", folder=tmp_path)


def test_a_folder_given_as_audio_is_called_a_folder(files, tmp_path, capsys):
    refused(["render", "--audio", str(files["folder.wav"]), "--out", str(tmp_path / "v.mp4")], capsys,
            "folder.wav", "is a folder", folder=tmp_path)
    refused(["optimize", str(tmp_path / "out"), "--objective", "ar", "--start", str(files["folder.wav"])], capsys,
            "folder.wav", "is a folder", folder=tmp_path)


@pytest.mark.parametrize("argv, names", [
    (["optimize", "--objective", "ar", "--loops", "0"], ["--loops", "'0'"]),
    (["optimize", "--objective", "ar", "--loops", "-2"], ["--loops", "'-2'"]),
    (["optimize", "--objective", "ar", "--seconds", "-1"], ["--seconds", "'-1'"]),
    (["optimize", "--objective", "ar", "--size", "1280", "720"], ["--size", "'1280'"]),
    (["view", "l.npz", "--size", "0x0"], ["--size", "'0x0'"]),
    (["view", "l.npz", "--size", "0", "0"], ["--size", "'0'"]),
    (["view", "l.npz", "--cycle", "0"], ["--cycle", "'0'"]),
    (["view", "l.npz", "--fps", "nan"], ["--fps", "'nan'"]),
    (["render", "--size", "wide"], ["--size", "'wide'"]),
    (["demo", "--size", "0x720"], ["--size", "'0x720'"]),
    (["layout", "king-grid:4", "--size", "0"], ["--size", "0"]),
    (["layout", "king-grid:4", "--png", "picture.xyz"], ["--png", "picture.xyz"]),
    (["layout", "king-grid:4", "--out", "no-folder/l.npz"], ["--out", "no-folder/l.npz", "does not exist"]),
    (["layout", "king-grid:4", "--png", "no-folder/l.png"], ["--png", "no-folder/l.png", "does not exist"]),
    (["graph", "audio", "--out", "no-folder/g.npz"], ["--out", "no-folder/g.npz", "does not exist"]),
    (["render", "--out", "no-folder/v.mp4"], ["--out", "no-folder/v.mp4", "does not exist"]),
])
def test_bad_values_are_named_with_their_option(argv, names, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    refused(argv, capsys, *names, folder=tmp_path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
def test_a_cuda_device_on_a_machine_without_one_is_refused_first(tmp_path, capsys):
    refused(["layout", "king-grid:4", "--device", "cuda", "--out", str(tmp_path / "l.npz")], capsys,
            "--device 'cuda'", "no CUDA device", folder=tmp_path)
    refused(["optimize", str(tmp_path / "out"), "--objective", "ar", "--device", "cuda"], capsys,
            "--device 'cuda'", folder=tmp_path)
    refused(["layout", "king-grid:4", "--device", "gpu0", "--out", str(tmp_path / "l.npz")], capsys,
            "--device 'gpu0'", folder=tmp_path)


def test_a_frame_larger_than_the_gl_driver_renders_is_refused_before_any_work(tmp_path, capsys):
    try:
        create_context().release()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    refused(["render", "--size", "99999x99999", "--seconds", "1", "--out", str(tmp_path / "v.mp4")], capsys,
            "99999x99999", "pixels a side", folder=tmp_path)


def test_a_wav_shorter_than_its_header_is_read_with_a_warning_naming_both_durations(tmp_path, caplog):
    path = tmp_path / "cut.wav"
    soundfile.write(path, np.full(3 * 8000, 0.1, np.float32), 8000, subtype="PCM_16")
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) - 2 * 2 * 8000])  # the header still promises 3 s; 1 s is left
    with caplog.at_level(logging.WARNING):
        clip = load_clip(path, 8000)
    assert len(clip) == 8000
    assert "cut.wav" in caplog.text and "3.00 s" in caplog.text and "1.00 s" in caplog.text
    caplog.clear()
    soundfile.write(path, np.full(8000, 0.1, np.float32), 8000)
    with caplog.at_level(logging.WARNING):
        read_sound(path)
    assert caplog.text == "", "a whole file reads without a warning"


def _clip(audio: np.ndarray, final: float) -> OptimizedClip:
    return OptimizedClip(audio=audio, scores=[0.0, final], initial_score=0.0, final_score=final,
                         objective="ar", settings=OptimizeSettings(steps=1))


def test_scores_json_stays_valid_json_and_non_finite_clips_are_not_written(tmp_path):
    folder = ClipFolder(tmp_path / "out", RATE, {"model": "lean", "score": math.inf})
    folder.add(_clip(np.zeros(100, np.float32), math.nan))
    with pytest.raises(ValueError, match="clip_001.wav has non-finite samples"):
        folder.add(_clip(np.full(100, np.nan, np.float32), 1.0))
    folder.finish()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["clip_000.wav", "loop.wav", "scores.json"]

    def strict(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    report = json.loads((tmp_path / "out" / "scores.json").read_text(), parse_constant=strict)
    assert report["score"] is None and report["clips"][0]["final_score"] is None
    assert report["clips"][0]["step_scores"] == [0.0, None]


def test_steer_without_python_osc_says_how_to_install_it_from_the_clone(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "pythonosc.udp_client", None)
    refused(["steer", "/pitch_shift", "4"], capsys, "pip install -e '.[osc]'", folder=tmp_path)
