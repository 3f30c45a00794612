"""The track-identification probe: a split in time without leakage, seeded track choice, every row."""
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from immersions.cpc.checkpoint import config_to_json, save_checkpoint
from immersions.cpc.data import AudioCorpus
from immersions.cpc.track_probe import (choose_tracks, format_track_table, run_track_task, track_clips,
                                        untrained_like)
from immersions.render.cli import main
from tests.cpc.test_train import tiny_model

RATE = 8000
CLIP = RATE // 2  # half-second clips keep the tiny model fast


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """Two sources of six 'tracks' each: every track a chord of its own with noise, 6 to 9 s long."""
    root = tmp_path_factory.mktemp("recordings")
    rng = np.random.default_rng(0)
    rows = ["path,piece,source,track,duration,sample_rate,licence,original"]
    for source in ("alpha", "beta"):
        for index in range(6):
            seconds = 6 + index % 4
            t = np.arange(seconds * RATE) / RATE
            base = 150.0 * 2 ** (index / 3 + (source == "beta") / 7)
            audio = sum(np.sin(2 * np.pi * base * r * t) for r in (1.0, 1.5, 2.25)) / 3
            audio = 0.4 * audio + 0.05 * rng.standard_normal(len(t))
            sf.write(root / f"{source}{index}.wav", audio.astype(np.float32), RATE)
            rows.append(f"{source}{index}.wav,{source}/t{index},{source},t{index},{seconds},{RATE},x,none")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def corpus(recordings):
    return AudioCorpus.from_source(recordings, RATE, CLIP)


def test_split_in_time_without_leakage(corpus):
    files = choose_tracks(corpus, 4, CLIP, seed=1, source="beta")
    split = track_clips(corpus, files, CLIP)
    assert {corpus.entries[f].labels["source"] for f in files} == {"beta"}
    assert not set(split.train) & set(split.test)
    assert len(split.train) + len(split.test) == len(split.starts)
    for label, file_index in enumerate(files):
        mine = split.labels == label
        train_starts = split.starts[split.train][mine[split.train], 1]
        test_starts = split.starts[split.test][mine[split.test], 1]
        assert train_starts.max() + CLIP <= test_starts.min()  # test clips are later and share no sample
        count = len(corpus.audio[file_index]) // CLIP
        assert len(train_starts) == round(0.7 * count)
    train_blocks = {split.blocks[i] for i in split.train}
    assert all(block.split(":")[0].isdigit() for block in train_blocks)
    assert choose_tracks(corpus, 4, CLIP, seed=1, source="beta") == files


def test_too_many_tracks_is_a_clear_error(corpus):
    with pytest.raises(ValueError, match="source 'alpha' has 6 tracks"):
        choose_tracks(corpus, 7, CLIP, source="alpha")


def test_untrained_copy_is_seeded_and_leaves_global_state(corpus):
    model = tiny_model()
    state = torch.random.get_rng_state()
    first, again, other = untrained_like(model, 0), untrained_like(model, 0), untrained_like(model, 1)
    assert torch.equal(torch.random.get_rng_state(), state)
    weights = [dict(m.named_parameters())["encoder.blocks.0.conv1.weight"] for m in (first, again, other)]
    assert torch.equal(weights[0], weights[1]) and not torch.equal(weights[0], weights[2])


def test_track_task_rows(corpus):
    report = run_track_task(tiny_model(), corpus, name="alpha", source="alpha", n_tracks=5, seed=0,
                            untrained_seeds=(0, 1), taps=("encoder.blocks.0.relu1",), baseline_steps=4,
                            batch_size=8, baseline_eval_every=2)
    assert set(report.rows) == {"c", "scaleogram mean+std", "untrained c", "tap encoder.blocks.0.relu1",
                                "supervised from scratch", "chance"}
    assert len(report.rows["untrained c"]) == 2
    # five chords apart in pitch: the input's statistics tell the tracks apart
    assert report.rows["scaleogram mean+std"][0].accuracy > 0.9
    assert report.rows["chance"][0].accuracy <= 0.4
    table = format_track_table([report])
    assert "untrained c" in table and "±" in table


def test_probe_command_runs_the_track_task_on_recordings(recordings, tmp_path, capsys):
    checkpoint = tmp_path / "tiny.pt"
    model = tiny_model()
    save_checkpoint(checkpoint, {"model_config": config_to_json(model.config), "model": model.state_dict()})
    out = tmp_path / "tracks.json"
    assert main(["probe", str(checkpoint), str(recordings), "--tracks", "4", "--untrained-seeds", "0",
                 "--clip-seconds", "0.5",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "alpha" in printed and "beta" in printed and "scaleogram mean+std" in printed
    saved = json.loads(out.read_text())
    assert [t["name"] for t in saved["track_tasks"]] == ["alpha", "beta"]
    assert main(["probe", str(checkpoint), str(recordings), "--sources", "gamma"]) == 1
    assert "gamma" in capsys.readouterr().err
