"""The recordings corpus: decoding real encoded files (libsndfile), loudness, trimming, manifest, exclusion."""
import logging

import numpy as np
import pytest
import soundfile as sf

from immersions.cpc.data import AudioCorpus, read_manifest
from immersions.cpc.recordings import (TARGET_LOUDNESS, build_recordings, detect_licence, normalise_loudness,
                                       trim_silence)
from immersions.render.cli import main

pyloudnorm = pytest.importorskip("pyloudnorm")
RATE = 22050


def _music(seconds: float, rate: int, channels: int, pitch: float, seed: int) -> np.ndarray:
    """A few seconds of chords with noise, at a level far from the target loudness."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    mono = sum(np.sin(2 * np.pi * pitch * ratio * t) for ratio in (1.0, 1.25, 1.5)) / 3
    mono = 0.05 * mono + 0.002 * rng.standard_normal(len(t))
    return np.stack([mono * (1 + 0.3 * c) for c in range(channels)], axis=1).astype(np.float32)


@pytest.fixture
def folders(tmp_path):
    """Two sources of generated files: ogg vorbis, opus, flac and wav; mono and stereo; 8 to 96 kHz; a silent file
    and a corrupt one; a DEP-5 copyright file in one of them."""
    first, second = tmp_path / "pack-a", tmp_path / "pack-b"
    (first / "music").mkdir(parents=True)
    (second / "usr" / "share" / "doc" / "pack-b").mkdir(parents=True)
    silence = np.zeros((RATE, 1), dtype=np.float32)
    sf.write(first / "music" / "one.ogg", np.concatenate([silence, _music(3, RATE, 1, 220, 0), silence]),
             RATE, format="OGG", subtype="VORBIS")
    sf.write(first / "music" / "two.flac", _music(3, 96000, 2, 330, 1), 96000, format="FLAC")
    (first / "music-en").mkdir()
    (first / "music-en" / "two.flac").symlink_to(first / "music" / "two.flac")  # the same track again
    sf.write(first / "silent.wav", np.zeros((3 * 8000, 1), dtype=np.float32), 8000)
    (first / "broken.ogg").write_bytes(b"OggS not really an ogg file" * 50)
    sf.write(second / "three.wav", _music(3, 8000, 2, 440, 2), 8000)
    sf.write(second / "four.opus", _music(3, 48000, 2, 550, 3), 48000, format="OGG", subtype="OPUS")
    (second / "usr" / "share" / "doc" / "pack-b" / "copyright").write_text(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
        "Files: *\nCopyright: someone\nLicense: CC-BY-SA-3.0\n text\n")
    return first, second


def test_builds_uniform_tracks_and_manifest(folders, tmp_path, caplog):
    first, second = folders
    out = tmp_path / "corpus"
    with caplog.at_level(logging.WARNING):
        entries = build_recordings([str(first), f"named={second}"], out, sample_rate=RATE, min_seconds=1.0)
    assert sorted(e.piece for e in entries) == ["named/four", "named/three", "pack-a/music/one", "pack-a/music/two"]
    messages = caplog.text
    assert "broken.ogg" in messages and "not a readable audio file" in messages
    assert "silent.wav" in messages
    manifest = read_manifest(out / "manifest.csv")
    assert {m.piece for m in manifest} == {e.piece for e in entries}
    by_piece = {e.piece: e for e in entries}
    assert by_piece["named/three"].licence == "CC-BY-SA-3.0" and by_piece["pack-a/music/one"].licence == "unknown"
    assert by_piece["pack-a/music/one"].source == "pack-a" and by_piece["pack-a/music/one"].track == "music/one"
    meter = pyloudnorm.Meter(RATE)
    for row in manifest:
        audio, rate = sf.read(str(row.path), dtype="float32")
        assert rate == RATE and audio.ndim == 1
        assert abs(meter.integrated_loudness(audio.astype(np.float64)) - TARGET_LOUDNESS) < 1.0
        assert abs(float(row.labels["duration"]) - len(audio) / rate) < 1e-3
    # one.ogg had a second of silence at each end: trimmed to the 3 s of sound (to a trimming frame)
    one = sf.info(str(out / entries[[e.piece for e in entries].index("pack-a/music/one")].path))
    assert 3.0 <= one.duration < 3.0 + 2 * 2048 / RATE


def test_rebuild_resumes_and_exclude_leaves_tracks_out(folders, tmp_path):
    first, second = folders
    out = tmp_path / "corpus"
    entries = build_recordings([str(first)], out, sample_rate=RATE, min_seconds=1.0)
    written = {e.path: (out / e.path).stat().st_mtime_ns for e in entries}
    again = build_recordings([str(first)], out, sample_rate=RATE, min_seconds=1.0)
    assert {e.path: (out / e.path).stat().st_mtime_ns for e in again} == written
    rest = build_recordings([str(first), str(second)], tmp_path / "rest", sample_rate=RATE, min_seconds=1.0,
                            exclude_manifests=[out / "manifest.csv"])
    assert sorted(e.piece for e in rest) == ["pack-b/four", "pack-b/three"]
    assert not list((tmp_path / "rest").rglob("*.partial*"))


def test_trim_and_loudness():
    sound = 0.3 * np.sin(np.linspace(0, 2000, 10000)).astype(np.float32)
    padded = np.concatenate([np.zeros(5000, np.float32), sound, np.full(7000, 1e-5, np.float32)])
    trimmed = trim_silence(padded, frame=1000)
    assert 10000 <= len(trimmed) <= 12000 and np.abs(trimmed).max() == pytest.approx(0.3, abs=1e-3)
    assert trim_silence(np.zeros(4000, np.float32)).size == 0
    loud = normalise_loudness(np.tile(sound, 10), 22050, target=-20.0)
    assert pyloudnorm.Meter(22050).integrated_loudness(loud.astype(np.float64)) == pytest.approx(-20.0, abs=0.5)
    spiky = np.zeros(44100, np.float32)
    spiky[::4410] = 0.5  # almost silent but for clicks: loudness gain would clip, the peak ceiling holds
    assert np.abs(normalise_loudness(spiky, 22050)).max() <= 0.99 + 1e-6


def test_licence_from_dep5(tmp_path):
    (tmp_path / "doc").mkdir()
    (tmp_path / "doc" / "copyright").write_text("Files: a\nLicense: GPL-2+\n\nFiles: b\nLicense: CC0-1.0\n")
    assert detect_licence(tmp_path) == "GPL-2+ / CC0-1.0"
    assert detect_licence(tmp_path / "doc") == "GPL-2+ / CC0-1.0"


def test_corpus_reads_recordings_manifest(folders, tmp_path):
    first, _ = folders
    build_recordings([str(first)], tmp_path / "corpus", sample_rate=RATE, min_seconds=1.0)
    corpus = AudioCorpus.from_source(tmp_path / "corpus", RATE, RATE)
    assert len(corpus) == 2 and {e.label("source") for e in corpus.entries} == {"pack-a"}
    with pytest.raises(ValueError, match="composer"):
        corpus.entries[0].label("composer")  # recordings have no composer column: the error lists the columns


def test_command_line(folders, tmp_path, capsys):
    first, second = folders
    assert main(["data", "recordings", str(first), str(second), str(tmp_path / "c"), "--sample-rate", str(RATE),
                 "--min-seconds", "1"]) == 0
    assert "4 tracks" in capsys.readouterr().out
    assert main(["data", "recordings", str(tmp_path / "nowhere"), str(tmp_path / "d")]) == 1
    assert "nowhere" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
