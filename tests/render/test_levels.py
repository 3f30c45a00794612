"""Reference light levels: measured by ``immersions levels``, stored beside the checkpoint, refused when stale."""
from __future__ import annotations

import logging

import numpy as np
import soundfile
import torch

from immersions.cpc.checkpoint import config_to_json, model_from_checkpoint, save_checkpoint
from immersions.render import app
from immersions.render.cli import main
from immersions.render.demo_audio import demo_clip
from immersions.render.levels import levels_path, model_levels

from .test_app import SAMPLE_RATE, tiny_model


def test_levels_command_writes_levels_that_renders_use(tmp_path, capsys, caplog):
    model = tiny_model()
    checkpoint = tmp_path / "tiny.pt"
    save_checkpoint(checkpoint, {"model_config": config_to_json(model.config), "model": model.state_dict()})
    folder = tmp_path / "reference"
    folder.mkdir()
    for seed in (1, 2):
        soundfile.write(folder / f"piece{seed}.wav", demo_clip(2.0, sample_rate=SAMPLE_RATE, seed=seed), SAMPLE_RATE)
    assert main(["levels", str(checkpoint), "--audio", str(folder)]) == 0
    assert levels_path(checkpoint) == tmp_path / "tiny.levels.npz" and levels_path(checkpoint).is_file()
    assert "2 clips" in capsys.readouterr().out
    loaded = model_from_checkpoint(checkpoint)
    graph = app.Listener(loaded).graph
    levels = model_levels(checkpoint, loaded, graph.layers)
    assert levels is not None and levels.info["clips"] == [str(folder / "piece1.wav"), str(folder / "piece2.wav")]
    assert np.all(levels.high > levels.low)
    with torch.no_grad():  # other weights: the stored levels no longer apply
        loaded.ar.blocks[0].conv.weight.mul_(1.01)
    with caplog.at_level(logging.WARNING):
        assert model_levels(checkpoint, loaded, graph.layers) is None
    assert "other weights" in caplog.text


def test_levels_command_names_missing_audio(tmp_path, capsys):
    assert main(["levels", "lean", "--audio", str(tmp_path / "nowhere")]) == 1
    assert "nowhere" in capsys.readouterr().err
