"""``immersions gallery`` on a tiny model: the files, the page (in a real headless Chromium), resuming."""
import json
import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import soundfile as sf

from immersions.cpc.checkpoint import config_to_json, save_checkpoint
from immersions.render.cli import main
from tests.cpc.test_train import tiny_model

SECONDS = 4.0
CHROMIUM = Path("/usr/bin/chromium")
TAPS = tiny_model().tap_names()


def _gallery_args(out: Path, checkpoint: Path, clip: Path | None = None, steps: int = 1) -> list[str]:
    extra = [] if clip is None else ["--clip", str(clip)]
    return ["gallery", str(out), "--model", str(checkpoint), "--steps", str(steps), "--threads", "1", *extra]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A tiny model's checkpoint and a 4-s stereo clip at 16 kHz (twice the model's rate)."""
    root = tmp_path_factory.mktemp("gallery")
    model = tiny_model()
    checkpoint = root / "tiny.pt"
    save_checkpoint(checkpoint, {"model_config": config_to_json(model.config), "model": model.state_dict()})
    clip = root / "clip.wav"
    t = np.arange(int(SECONDS * 16000)) / 16000
    tone = 0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 2 * t) > 0)
    sf.write(clip, np.stack([tone, tone], axis=1), 16000)
    return checkpoint, clip


@pytest.fixture(scope="module")
def gallery(inputs, tmp_path_factory):
    """A finished gallery of every tap, with the clip auralised through each."""
    checkpoint, clip = inputs
    out = tmp_path_factory.mktemp("built") / "gallery"
    assert main(_gallery_args(out, checkpoint, clip)) == 0
    return out


def test_every_tap_gets_its_files_in_network_order(gallery):
    report = json.loads((gallery / "gallery.json").read_text())
    assert [record["tap"] for record in report["taps"]] == TAPS
    assert report["taps"][0]["title"] == "Encoder Block 0 Convolution 1"
    assert report["taps"][-1]["title"] == "Autoregressive Model Block 1"
    for index, record in enumerate(report["taps"]):
        folder = gallery / "taps" / f"{index:02d}_{record['tap']}"
        assert record["folder"] == folder.name
        clip, rate = sf.read(folder / "clip.wav")
        assert rate == 8000 and len(clip) == SECONDS * rate
        heard, heard_rate = sf.read(folder / "auralised.wav")
        assert heard_rate == 16000 and len(heard) == SECONDS * 16000           # the given clip's rate and length
        assert iio.imread(folder / "scaleogram.png").shape[:2] == (2 * 24, 2 * 1000)
        assert iio.imread(folder / "auralised.png").ndim == 3
        assert set(record["shifted_scores"]) == {"-0.5", "+0.5"} and len(record["step_scores"]) == 1
        assert isinstance(record["meets_aim"], bool) and record["seconds"] > 0
    assert not list(gallery.rglob(".*partial*"))
    page = (gallery / "index.html").read_text()
    assert page.count("<section") == len(TAPS) and "Autoregressive Model Block 1" in page
    assert "http" not in page                                  # nothing to fetch from anywhere


def test_a_gallery_resumes_where_it_stopped(inputs, gallery, tmp_path, monkeypatch, capsys):
    checkpoint, _ = inputs
    from immersions.cpc import gallery as command  # the command imports portrait from here when it runs

    calls = []
    real = command.portrait

    def stopping(*args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(args[1])
        return real(*args, **kwargs)

    out = tmp_path / "partial"
    monkeypatch.setattr(command, "portrait", stopping)
    assert main(_gallery_args(out, checkpoint)) == 130                 # stopped during the third tap
    assert [r["tap"] for r in json.loads((out / "gallery.json").read_text())["taps"]] == TAPS[:2]
    assert (out / "index.html").read_text().count("<section") == 2
    assert not list(out.rglob(".*partial*"))
    monkeypatch.setattr(command, "portrait", real)
    first = {path: path.stat().st_mtime_ns for path in out.glob("taps/*/portrait.json")}
    assert main(_gallery_args(out, checkpoint)) == 0
    assert "2 of 6 taps are done" in capsys.readouterr().out
    assert all(path.stat().st_mtime_ns == stamp for path, stamp in first.items())  # the finished ones kept
    assert len(json.loads((out / "gallery.json").read_text())["taps"]) == len(TAPS)
    assert main(_gallery_args(out, checkpoint, steps=2)) == 1                 # other settings: refused
    assert "other settings (optimize" in capsys.readouterr().err
    assert main(_gallery_args(tmp_path / "x", checkpoint) + ["--taps", "ar.blocks.7.relu"]) == 1
    assert "ar.blocks.7.relu" in capsys.readouterr().err


def test_the_page_plays_and_shows_everything_in_headless_chromium(gallery, tmp_path):
    if not CHROMIUM.is_file():
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install playwright)")
    page_folder = tmp_path / "copy"
    shutil.copytree(gallery, page_folder)                # the page works wherever the folder goes
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"])
        try:
            page = browser.new_page()
            errors, requests = [], []
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("request", lambda request: requests.append(request.url))
            page.goto((page_folder / "index.html").as_uri(), wait_until="load")
            page.wait_for_function("[...document.querySelectorAll('audio')].every(a => a.readyState >= 1)",
                                   timeout=30000)
            widths = page.evaluate("[...document.images].map(image => image.naturalWidth)")
            durations = page.evaluate("[...document.querySelectorAll('audio')].map(audio => audio.duration)")
        finally:
            browser.close()
    assert errors == []
    assert all(url.startswith("file://") or url.startswith("data:") for url in requests)
    assert len(widths) == 2 * len(TAPS) and min(widths) > 0
    assert len(durations) == 2 * len(TAPS) and durations == pytest.approx([SECONDS] * len(durations), abs=0.01)
