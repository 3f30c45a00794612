"""Corpus rendering from music21 scores through FluidSynth (skipped when either is missing)."""
import shutil

import numpy as np
import pytest
import soundfile as sf

from immersions.cpc.corpus import ENSEMBLES, build_corpus, find_soundfont, plan_jobs
from immersions.cpc.data import read_manifest

pytest.importorskip("music21")
if shutil.which("fluidsynth") is None:
    pytest.skip("fluidsynth is not installed", allow_module_level=True)
try:
    SOUNDFONT = find_soundfont()
except RuntimeError:
    pytest.skip("no General MIDI soundfont installed", allow_module_level=True)


def test_plan_is_seeded_and_varies_ensembles(tmp_path):
    plan = plan_jobs(tmp_path, ["bach", "ryansMammoth"], 12, SOUNDFONT, 22050, 5.0, "flac", seed=1)
    again = plan_jobs(tmp_path, ["bach", "ryansMammoth"], 12, SOUNDFONT, 22050, 5.0, "flac", seed=1)
    other = plan_jobs(tmp_path, ["bach", "ryansMammoth"], 12, SOUNDFONT, 22050, 5.0, "flac", seed=2)
    assert plan == again and plan != other
    assert [j.composer for j in plan] == ["bach"] * 12 + ["ryansMammoth"] * 12
    assert len({j.piece for j in plan}) == 24
    assert len({j.instrument for j in plan}) > 2 and {j.instrument for j in plan} <= set(ENSEMBLES)


def test_sources_are_scores_with_unique_names(tmp_path):
    plan = plan_jobs(tmp_path, ["monteverdi"], 200, SOUNDFONT, 22050, 5.0, "flac", seed=0)
    assert len({j.out_path for j in plan}) == len({j.piece for j in plan}) == len(plan) > 10
    assert not [j.source for j in plan if j.source.endswith(".rntxt")]


def test_excluded_pieces_are_never_picked(tmp_path):
    labelled = plan_jobs(tmp_path, ["monteverdi"], 30, SOUNDFONT, 22050, 5.0, "flac", seed=0)
    taken = frozenset(j.piece for j in labelled)
    rest = plan_jobs(tmp_path, ["monteverdi"], 200, SOUNDFONT, 22050, 5.0, "flac", seed=0, exclude_pieces=taken)
    everything = plan_jobs(tmp_path, ["monteverdi"], 200, SOUNDFONT, 22050, 5.0, "flac", seed=0)
    assert not taken & {j.piece for j in rest}
    assert len(rest) == len(everything) - len(taken)


def test_unknown_composer_and_format_are_errors(tmp_path):
    with pytest.raises(ValueError, match="nobody"):
        plan_jobs(tmp_path, ["nobody"], 1, SOUNDFONT, 22050, 5.0, "flac", seed=0)
    with pytest.raises(ValueError, match="mp3"):
        plan_jobs(tmp_path, ["bach"], 1, SOUNDFONT, 22050, 5.0, "mp3", seed=0)


def test_renders_pieces_with_manifest(tmp_path):
    entries = build_corpus(tmp_path, ["ryansMammoth", "oneills1850"], 1, seed=0, max_seconds=4.0,
                           audio_format="ogg")
    assert len(entries) == 2
    manifest = read_manifest(tmp_path / "manifest.csv")
    assert [m.composer for m in manifest] == ["ryansMammoth", "oneills1850"]
    for entry, row in zip(entries, manifest):
        audio, rate = sf.read(str(row.path))
        assert rate == 22050 and audio.ndim == 1
        assert 1.0 < len(audio) / rate <= 4.0
        assert abs(len(audio) / rate - entry.duration) < 0.01
        assert row.label("instrument") == entry.instrument
        assert 0.5 < np.abs(audio).max() <= 1.0     # peak-normalised, not silent

    other = build_corpus(tmp_path / "other", ["oneills1850"], 1, seed=0, max_seconds=2.0, audio_format="ogg",
                         exclude_manifests=[tmp_path / "manifest.csv"])
    assert other[0].composer == "oneills1850" and other[0].piece != entries[1].piece
