"""``immersions auralise`` and ``immersions dream`` from the command line: files, lengths, rates, errors."""
import json

import imageio.v3 as iio
import numpy as np
import soundfile as sf

from immersions.cpc.checkpoint import config_to_json, save_checkpoint
from immersions.cpc.scaleogram import band_frequencies
from immersions.render.cli import main
from tests.cpc.test_auralise import BAND_A, BAND_B, POSITION, TAP, _amplitude_at, band_model


def _checkpoint(model, tmp_path):
    path = tmp_path / "band.pt"
    save_checkpoint(path, {"model_config": config_to_json(model.config), "model": model.state_dict()})
    return path


def test_auralise_keeps_the_clips_length_and_rate_and_writes_the_figure(tmp_path, capsys):
    model = band_model()
    checkpoint = _checkpoint(model, tmp_path)
    rate, bands = 16000, band_frequencies(model.config)                 # twice the model's rate
    t = np.arange(int(1.2 * rate)) / rate
    mono = 0.3 * np.sin(2 * np.pi * bands[BAND_A] * t) + 0.3 * np.sin(2 * np.pi * bands[BAND_B] * t)
    clip = tmp_path / "two_bands.wav"
    sf.write(clip, np.stack([mono, mono], axis=1), rate)               # stereo: heard as its mean
    out = tmp_path / "out"
    assert main(["auralise", str(clip), str(out), "--objective", f"{TAP}:0:{POSITION}", "--model", str(checkpoint),
                 "--method", "guided", "--threads", "1"]) == 0
    heard, heard_rate = sf.read(out / "auralised.wav")
    assert heard_rate == rate and heard.shape == mono.shape
    assert _amplitude_at(heard, bands[BAND_A], rate) > 0.15 and _amplitude_at(heard, bands[BAND_B], rate) < 0.005
    figure = iio.imread(out / "auralised.png")
    assert figure.shape[0] == 3 * 2 * model.config.n_bins + 2 * 6 and figure.shape[2] == 3
    report = json.loads((out / "auralise.json").read_text())
    assert report["method"] == "guided" and report["sample_rate"] == rate and report["score"] > 0
    assert report["files"] == {"audio": "auralised.wav", "figure": "auralised.png"}
    assert "auralised.wav" in capsys.readouterr().out
    assert not list(out.glob(".*partial*"))
    bad = tmp_path / "bad"
    assert main(["auralise", str(clip), str(bad), "--objective", "ar.blocks.7.relu", "--model", str(checkpoint)]) == 1
    assert "ar.blocks.7.relu" in capsys.readouterr().err and not bad.exists()
    assert main(["auralise", str(tmp_path / "none.wav"), str(bad), "--objective", TAP, "--model",
                 str(checkpoint)]) == 1
    assert "none.wav" in capsys.readouterr().err


def test_dream_writes_the_kept_steps_and_the_scores(tmp_path, capsys):
    model = band_model()
    checkpoint = _checkpoint(model, tmp_path)
    rate = model.config.sample_rate
    clip, target = tmp_path / "clip.wav", tmp_path / "target.wav"
    rng = np.random.default_rng(0)
    sf.write(clip, 0.05 * rng.standard_normal(rate // 2), rate)
    sf.write(target, 0.05 * rng.standard_normal(rate), rate)
    out = tmp_path / "dream"
    assert main(["dream", str(clip), str(out), "--objective", "ar.blocks.1.relu:1", "--model", str(checkpoint),
                 "--function", "target", "--target", str(target), "--steps", "4", "--save-every", "2",
                 "--threads", "1"]) == 0
    report = json.loads((out / "scores.json").read_text())
    assert len(report["scores"]) == 5 and report["settings"]["function"] == "target"
    assert report["files"] == {"2": "step_0002.wav", "4": "step_0004.wav"}
    last, last_rate = sf.read(out / "dream.wav")
    assert last_rate == rate and len(last) == rate // 2
    np.testing.assert_allclose(sf.read(out / "step_0004.wav")[0], last)
    assert "dream.wav" in capsys.readouterr().out
    assert main(["dream", str(clip), str(tmp_path / "x"), "--objective", "ar.blocks.1.relu", "--model",
                 str(checkpoint), "--function", "target"]) == 1
    assert "--target" in capsys.readouterr().err
    assert main(["dream", str(clip), str(tmp_path / "x"), "--objective", "ar.blocks.1.relu", "--model",
                 str(checkpoint), "--threshold", "2"]) == 1
    assert "threshold=2" in capsys.readouterr().err and not (tmp_path / "x").exists()
