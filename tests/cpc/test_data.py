"""Audio folder and manifest reading: decoding, mono, resampling, skipping odd files, seeded crops."""
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np
import pytest
import soundfile as sf
import torch

from immersions.cpc.data import AudioCorpus, RandomCrops, _decode_cached, read_manifest, resample


def _tone(seconds: float, rate: int, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.5 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    return np.stack([tone] * channels, axis=1) if channels > 1 else tone


@pytest.fixture
def folder(tmp_path):
    sf.write(tmp_path / "a.wav", _tone(1.0, 8000), 8000)
    sf.write(tmp_path / "b.flac", _tone(0.5, 16000, channels=2), 16000)
    sf.write(tmp_path / "c.ogg", _tone(1.0, 16000, 220.0), 16000)
    sf.write(tmp_path / "short.wav", _tone(0.01, 8000), 8000)
    (tmp_path / "broken.wav").write_bytes(b"not audio at all")
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 8000)
    return tmp_path


def test_folder_decodes_resamples_and_skips_odd_files(folder, caplog):
    with caplog.at_level(logging.WARNING):
        corpus = AudioCorpus.from_folder(folder, sample_rate=16000, clip_samples=4000)
    assert sorted(p.name for p in corpus.paths) == ["a.wav", "b.flac", "c.ogg"]
    for name in ("short.wav", "broken.wav", "empty.wav"):
        assert name in caplog.text
    lengths = {p.name: len(a) for p, a in zip(corpus.paths, corpus.audio)}
    assert lengths == {"a.wav": 16000, "b.flac": 8000, "c.ogg": 16000}
    assert all(a.dtype == np.float16 for a in corpus.audio)


def test_resampled_tone_keeps_its_frequency():
    out = resample(_tone(1.0, 8000, 440.0), 8000, 44100)
    assert len(out) == 44100 and out.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spectrum) - 440) <= 1


def test_nothing_usable_names_the_folder(tmp_path):
    sf.write(tmp_path / "short.wav", _tone(0.01, 8000), 8000)
    with pytest.raises(ValueError, match=str(tmp_path)):
        AudioCorpus.from_folder(tmp_path, sample_rate=8000, clip_samples=4000)


def test_npy_cache_is_reused(folder, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    first = AudioCorpus.from_folder(folder, 16000, 4000, cache_dir=cache)
    cached = {p: p.stat().st_mtime_ns for p in cache.glob("*.npy")}
    assert len(cached) >= 3
    second = AudioCorpus.from_folder(folder, 16000, 4000, cache_dir=cache)
    assert {p: p.stat().st_mtime_ns for p in cache.glob("*.npy")} == cached
    for a, b in zip(first.audio, second.audio):
        np.testing.assert_array_equal(a, b)


def test_processes_sharing_a_cache_never_read_a_partial_file(tmp_path):
    """Ranks of a distributed run decode the same files into one cache at once; each must read whole audio."""
    sf.write(tmp_path / "long.wav", _tone(20.0, 16000), 16000)
    cache = tmp_path / "cache"
    cache.mkdir()
    decode = partial(_decode_cached, tmp_path / "long.wav", 16000, cache)
    for _ in range(3):
        for stale in cache.iterdir():
            stale.unlink()
        with ThreadPoolExecutor(max_workers=8) as pool:
            decoded = list(pool.map(lambda _: np.asarray(decode()), range(16)))
        for audio in decoded:
            np.testing.assert_array_equal(audio, decoded[0])
        assert [p.suffix for p in cache.iterdir()] == [".npy"] and not list(cache.glob("*.partial*"))


def test_random_crops_are_seeded_and_inside_files(folder):
    corpus = AudioCorpus.from_folder(folder, 16000, 4000)
    crops = RandomCrops(corpus, length=50, seed=3)
    again = RandomCrops(corpus, length=50, seed=3)
    other = RandomCrops(corpus, length=50, seed=4)
    batch = torch.stack([crops[i] for i in range(50)])
    assert batch.shape == (50, 4000) and batch.dtype == torch.float32
    torch.testing.assert_close(batch, torch.stack([again[i] for i in range(50)]))
    assert not torch.equal(batch, torch.stack([other[i] for i in range(50)]))
    full = np.concatenate([np.asarray(a, np.float32) for a in corpus.audio])
    for clip in batch[:5].numpy():   # every crop is a contiguous piece of some file
        hits = np.flatnonzero(full == clip[0])
        assert any(np.array_equal(full[h:h + 4000], clip) for h in hits)


def test_clip_at_covers_every_start_position(folder):
    corpus = AudioCorpus.from_folder(folder, 16000, 4000)
    last = corpus.total_positions - 1
    torch.testing.assert_close(corpus.clip_at(0), corpus.clip(0, 0))
    end_file = len(corpus) - 1
    torch.testing.assert_close(corpus.clip_at(last), corpus.clip(end_file, len(corpus.audio[end_file]) - 4000))
    with pytest.raises(ValueError, match="start"):
        corpus.clip(0, len(corpus.audio[0]))


def test_manifest_csv_and_json_keep_labels(folder):
    rows = [{"path": "a.wav", "composer": "x", "piece": "p1", "instrument": "organ"},
            {"path": "c.ogg", "composer": "y", "piece": "p2", "instrument": "piano"},
            {"path": "short.wav", "composer": "y", "piece": "p3", "instrument": "piano"}]
    (folder / "m.json").write_text(json.dumps(rows))
    header = "path,composer,piece,instrument\n"
    (folder / "m.csv").write_text(header + "".join(",".join(r.values()) + "\n" for r in rows))
    for name in ("m.json", "m.csv"):
        entries = read_manifest(folder / name)
        assert [e.path for e in entries] == [(folder / r["path"]).resolve() for r in rows]
        corpus = AudioCorpus.from_manifest(folder / name, 16000, 4000)
        assert [e.piece for e in corpus.entries] == ["p1", "p2"]   # the short file is skipped with its row
        assert [e.label("instrument") for e in corpus.entries] == ["organ", "piano"]
        with pytest.raises(ValueError, match="tempo"):
            corpus.entries[0].label("tempo")


def test_manifest_missing_column_is_an_error(tmp_path):
    (tmp_path / "m.csv").write_text("path,composer\na.wav,x\n")
    with pytest.raises(ValueError, match="piece"):
        read_manifest(tmp_path / "m.csv")


def test_evenly_spaced_clips_span_each_file(folder):
    corpus = AudioCorpus.from_folder(folder, 16000, 4000)
    starts = corpus.evenly_spaced(3)
    per_file = np.bincount(starts[:, 0], minlength=len(corpus))
    lengths = [len(a) for a in corpus.audio]
    assert per_file.tolist() == [3 if n >= 8000 else 2 for n in lengths]
    for index, length in enumerate(lengths):
        mine = starts[starts[:, 0] == index, 1]
        assert mine[0] == 0 and mine[-1] == length - 4000
    clips = corpus.clips(starts)
    assert clips.shape == (len(starts), 4000)
    torch.testing.assert_close(clips[-1], corpus.clip(*map(int, starts[-1])))


def test_grouped_crops_keep_each_block_inside_one_label(tmp_path):
    """Blocks of group_size clips share the label; blocks draw different labels; plain crops mix them."""
    rows = ["path,composer,piece,instrument"]
    for i in range(6):
        sf.write(tmp_path / f"f{i}.wav", _tone(1.0, 8000, 200.0 + 50 * i), 8000)
        rows.append(f"f{i}.wav,c{i % 2},p{i},{'organ' if i < 3 else 'piano'}")
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    corpus = AudioCorpus.from_manifest(tmp_path / "manifest.csv", 8000, 2000)
    audio = [np.asarray(a, np.float32) for a in corpus.audio]

    def instrument_of(clip: torch.Tensor) -> str:
        owners = {corpus.entries[f].label("instrument") for f, a in enumerate(audio)
                  if any(np.array_equal(a[s:s + 2000], clip.numpy()) for s in range(len(a) - 1999))}
        assert len(owners) == 1
        return owners.pop()

    grouped = RandomCrops(corpus, length=40, seed=1, group_by="instrument", group_size=4)
    blocks = [{instrument_of(grouped[b * 4 + i]) for i in range(4)} for b in range(10)]
    assert all(len(block) == 1 for block in blocks)
    assert {next(iter(block)) for block in blocks} == {"organ", "piano"}
    again = RandomCrops(corpus, length=40, seed=1, group_by="instrument", group_size=4)
    torch.testing.assert_close(grouped[13], again[13])
    mixed = RandomCrops(corpus, length=40, seed=1)
    assert any(len({instrument_of(mixed[b * 4 + i]) for i in range(4)}) == 2 for b in range(10))


def test_grouped_crops_need_labels(folder):
    corpus = AudioCorpus.from_folder(folder, 16000, 4000)
    with pytest.raises(ValueError, match="group_by='instrument'"):
        RandomCrops(corpus, length=4, group_by="instrument", group_size=2)
