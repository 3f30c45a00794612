"""``immersions map``: the files it writes, its errors, and its page in a real headless browser."""
import json
import re
import shutil

import numpy as np
import pytest
import soundfile as sf

from immersions.cpc.checkpoint import config_to_json, save_checkpoint
from immersions.render.cli import main
from immersions.render.map_page import write_map_page
from tests.cpc.test_latent_map import write_recordings
from tests.cpc.test_train import tiny_model

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    model = tiny_model()
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_checkpoint(path, {"model_config": config_to_json(model.config), "model": model.state_dict()})
    return path


@pytest.fixture(scope="module")
def mapped(tmp_path_factory, checkpoint):
    """A map of a recordings-style corpus by its ``source`` column, split by track, with one move."""
    root = tmp_path_factory.mktemp("map")
    data = write_recordings(root / "data")
    out = root / "out"
    status = main(["map", str(checkpoint), str(data), str(out), "--label", "source", "--group-by", "track",
                   "--clips-per-file", "3", "--n-context", "4", "--test-fraction", "0.34",
                   "--features", "c", "z", "--move", "noisy", "tonal", "--move-steps", "5"])
    assert status == 0
    return out


def test_map_writes_pictures_page_clips_scores_and_moves(mapped):
    report = json.loads((mapped / "map.json").read_text())
    assert report["clips"] == 36 and report["classes"] == ["noisy", "tonal"]
    for kind in ("c", "z"):
        for method in ("pca", "tsne"):
            assert (mapped / f"map_{kind}_{method}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        scores = json.loads((mapped / f"classify_{kind}.json").read_text())
        assert [s["name"] for s in scores["scores"]] == ["linear", "svm", "mlp"]
        assert not set(scores["train_groups"]) & set(scores["test_groups"])
        assert (mapped / f"classify_{kind}.png").is_file()
    features = np.load(mapped / "features.npz")
    assert features["c"].shape[0] == features["z"].shape[0] == 36
    page = (mapped / "map.html").read_text()
    assert not re.search(r"<script[^>]+src=", page)          # plotly.js is inside, nothing is fetched
    clips = json.loads(re.search(r"const CLIPS = (\[.*?\]);", page).group(1))
    assert len(clips) == 36 and all((mapped / clip).is_file() for clip in clips)
    audio, rate = sf.read(mapped / clips[0])
    assert rate == 8000 and len(audio) == tiny_model().clip_samples(4)
    moves = json.loads((mapped / "moves" / "moves.json").read_text())
    assert moves[0]["source"] == "noisy" and moves[0]["target"] == "tonal"
    assert all((mapped / "moves" / name).is_file() for name in moves[0]["files"])
    assert not list(mapped.rglob("*.partial*"))


def test_map_names_a_missing_label_and_the_columns(tmp_path, checkpoint, capsys):
    data = write_recordings(tmp_path / "data", files=4)
    status = main(["map", str(checkpoint), str(data), str(tmp_path / "out"), "--label", "instrument",
                   "--n-context", "4"])
    assert status == 1
    error = capsys.readouterr().err
    assert "immersions map: error: label 'instrument' is not a column" in error
    assert "source, track" in error


def test_page_rejects_projections_of_the_wrong_size(tmp_path):
    with pytest.raises(ValueError, match="'pca'"):
        write_map_page(tmp_path / "map.html", {"pca": np.zeros((3, 2))}, ["a", "b"], ["x", "y"], ["1.wav", "2.wav"],
                       label="composer", title="t")
    assert not list(tmp_path.iterdir())


def _browser():
    """A launched headless chromium via playwright, or a skip saying what is missing."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    return sync_api.sync_playwright()


def test_page_in_a_headless_browser_hovers_and_plays(mapped):
    with _browser() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            errors = []
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            requests = []
            page.on("request", lambda request: requests.append(request.url))
            page.goto((mapped / "map.html").as_uri())
            page.wait_for_function("document.querySelectorAll('.plot').length === 4 && "
                                   "[...document.querySelectorAll('.plot')].every(d => d.querySelector('.point'))")
            points = page.locator("#map-0 .point")
            assert points.count() == 36
            points.first.scroll_into_view_if_needed()
            box = points.first.bounding_box()
            x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            page.mouse.move(x, y)   # plotly's drag layer above the points takes the pointer events
            page.wait_for_selector("#map-0 .hovertext")
            hover = page.locator("#map-0 .hovertext").text_content()
            assert re.search(r"t\d+\.wav @ [\d.]+ s", hover) and re.search(r"source: (tonal|noisy)", hover)
            page.mouse.click(x, y)
            page.wait_for_function("() => { const p = document.getElementById('player');"
                                   " return p.src && !p.paused && p.currentTime > 0; }", timeout=15000)
            source = page.evaluate("document.getElementById('player').src")
            assert re.search(r"/clips/\d{5}\.flac$", source)
            assert errors == []
            assert all(url.startswith("file://") or url.startswith("data:") for url in requests)
        finally:
            browser.close()
