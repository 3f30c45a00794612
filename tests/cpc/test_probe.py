"""Linear probes: piece-wise splits, chance levels, a probe that finds a planted signal, the baseline."""
import json

import numpy as np
import pytest
import soundfile as sf

from immersions.cpc.checkpoint import config_to_json, save_checkpoint
from immersions.cpc.data import AudioCorpus
from immersions.cpc.probe import (ProbeReport, Score, Spread, TaskReport, chance_score, format_split_table,
                                  format_table, labelled_subset, logistic_probe, piece_split, run_probe,
                                  run_probe_splits, split_summary, supervised_baseline, validation_split)
from immersions.render.cli import main
from tests.cpc.test_train import tiny_model


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """Twelve pieces: 'tonal' ones a 200 Hz sine (random phase), 'noisy' ones white noise; 'instrument'
    is arbitrary."""
    root = tmp_path_factory.mktemp("labelled")
    rng = np.random.default_rng(0)
    rate = 8000
    t = np.arange(rate) / rate
    rows = ["path,composer,piece,instrument"]
    for index in range(12):
        composer = "tonal" if index % 2 else "noisy"
        audio = (np.sin(2 * np.pi * 200 * t + rng.uniform(0, 2 * np.pi)) if composer == "tonal"
                 else rng.uniform(-1, 1, rate))
        sf.write(root / f"p{index}.wav", (0.5 * audio).astype(np.float32), rate)
        rows.append(f"p{index}.wav,{composer},piece{index},{'a' if index % 3 else 'b'}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root


def test_piece_split_keeps_pieces_whole():
    pieces = [f"p{i // 4}" for i in range(40)]
    train, test = piece_split(pieces, 0.3, seed=1)
    assert len(train) + len(test) == 40 and len(test) > 0
    assert not {pieces[i] for i in train} & {pieces[i] for i in test}
    again = piece_split(pieces, 0.3, seed=1)
    assert np.array_equal(again[0], train)
    with pytest.raises(ValueError, match="test_fraction"):
        piece_split(pieces, 1.5, seed=0)


def test_chance_is_majority_class_and_prior_entropy():
    y = np.array([0, 0, 0, 1, 0, 0, 1, 1])
    train, test = np.arange(4), np.arange(4, 8)
    score = chance_score(y, train, test, 2)
    prior = np.array([4 / 6, 2 / 6])   # add-one smoothed 3:1
    assert score.accuracy == pytest.approx(0.5)
    assert score.loss == pytest.approx(-np.mean(np.log(prior[y[test]])))


def test_logistic_probe_finds_a_planted_direction():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    features = rng.normal(size=(300, 16)).astype(np.float32)
    features[:, 3] += 3.0 * y
    train, test = np.arange(200), np.arange(200, 300)
    fit = logistic_probe(features, y, train, test, 3, regularization=1.0)
    assert fit.score.accuracy > 0.85 and fit.regularization == 1.0 and fit.cv_accuracy is None
    shuffled = logistic_probe(features, rng.permutation(y), train, test, 3, regularization=1.0)
    assert shuffled.score.accuracy < 0.6


def test_probe_regularization_is_chosen_on_training_pieces_only():
    """Many noise features and few pieces: cross-validation over pieces picks strong regularisation, and
    the test clips cannot influence the choice (changing their labels changes nothing but the score)."""
    rng = np.random.default_rng(1)
    pieces = np.repeat([f"p{i}" for i in range(60)], 4)
    y = np.repeat(rng.integers(0, 2, 60), 4)
    features = rng.normal(size=(240, 200)).astype(np.float32)
    features[:, 0] += 1.5 * y
    train, test = np.arange(160), np.arange(160, 240)
    grid = (0.001, 0.01, 100.0)
    fit = logistic_probe(features, y, train, test, 2, groups=pieces, regularization=grid)
    assert fit.regularization < 100.0
    flipped = y.copy()
    flipped[test] = 1 - flipped[test]
    fit_flipped = logistic_probe(features, flipped, train, test, 2, groups=pieces, regularization=grid)
    assert (fit_flipped.regularization, fit_flipped.cv_accuracy) == (fit.regularization, fit.cv_accuracy)
    assert fit_flipped.score.accuracy == pytest.approx(1.0 - fit.score.accuracy)
    weak = logistic_probe(features, y, train, test, 2, regularization=100.0)
    assert fit.score.accuracy >= weak.score.accuracy
    with pytest.raises(ValueError, match="groups"):
        logistic_probe(features, y, train, test, 2, regularization=grid)


def test_labelled_subset_keeps_few_seeded_pieces_per_class():
    pieces = np.repeat([f"p{i}" for i in range(30)], 3)
    y = np.repeat(np.arange(30) % 3, 3)
    train = np.arange(0, 72)            # pieces p0..p23: eight per class
    subset = labelled_subset(train, y, pieces, 2, seed=4)
    assert set(subset) <= set(train.tolist())
    kept = {pieces[i] for i in subset}
    assert len(kept) == 6 and sorted(np.bincount(y[subset])) == [6, 6, 6]
    assert all(np.sum(np.asarray(pieces)[subset] == p) == 3 for p in kept)      # whole pieces
    assert np.array_equal(labelled_subset(train, y, pieces, 2, seed=4), subset)
    assert len(labelled_subset(train, y, pieces, 100, seed=0)) == len(train)
    with pytest.raises(ValueError, match="pieces_per_class"):
        labelled_subset(train, y, pieces, 0, seed=0)


def test_validation_split_holds_out_whole_pieces_of_every_class():
    pieces = np.repeat([f"p{i}" for i in range(40)], 2)
    y = np.repeat(np.arange(40) % 2, 2)
    train = np.arange(10, 80)
    fit, validation = validation_split(train, y, pieces, 0.2, seed=0)
    assert sorted(np.concatenate([fit, validation]).tolist()) == train.tolist()
    assert not {pieces[i] for i in fit} & {pieces[i] for i in validation}
    assert set(y[validation]) == {0, 1} and 0.1 < len(validation) / len(train) < 0.3
    with pytest.raises(ValueError, match="fraction"):
        validation_split(train, y, pieces, 0.0, seed=0)


def test_baseline_early_stops_on_training_pieces_only(labelled):
    """The baseline's tested step is one of its validation points, chosen without the test labels."""
    model = tiny_model()
    corpus = AudioCorpus.from_manifest(labelled / "manifest.csv", 8000, model.clip_samples(4))
    starts = corpus.evenly_spaced(2)
    entries = [corpus.entries[int(f)] for f in starts[:, 0]]
    pieces = [e.piece for e in entries]
    y = np.array([e.composer == "tonal" for e in entries], dtype=np.int64)
    train, test = piece_split(pieces, 0.25, seed=0)
    common = dict(steps=6, batch_size=4, seed=0, pieces=pieces, validation_fraction=0.25, eval_every=2)
    score, step = supervised_baseline(model.config, corpus, starts, y, train, test, 2, **common)
    assert step in (2, 4, 6) and 0.0 <= score.accuracy <= 1.0 and np.isfinite(score.loss)
    flipped = y.copy()
    flipped[test] = 1 - flipped[test]
    flipped_score, flipped_step = supervised_baseline(model.config, corpus, starts, flipped, train, test, 2,
                                                      **common)
    assert flipped_step == step
    assert flipped_score.accuracy == pytest.approx(1.0 - score.accuracy)
    _, fixed = supervised_baseline(model.config, corpus, starts, y, train, test, 2, steps=3, batch_size=4,
                                   validation_fraction=None)
    assert fixed == 3
    with pytest.raises(ValueError, match="pieces"):
        supervised_baseline(model.config, corpus, starts, y, train, test, 2, steps=3, batch_size=4)


def test_run_probe_with_few_labelled_pieces(labelled):
    model = tiny_model()
    corpus = AudioCorpus.from_manifest(labelled / "manifest.csv", 8000, model.clip_samples(4))
    full = run_probe(model, corpus, ["composer"], clips_per_file=2, test_fraction=0.34, seed=0, batch_size=4)
    few = run_probe(model, corpus, ["composer"], clips_per_file=2, test_fraction=0.34, seed=0, batch_size=4,
                    labelled_pieces_per_class=2, regularization=1.0)
    assert few.tasks[0].train_pieces == 4 < full.tasks[0].train_pieces
    assert few.tasks[0].test_clips == full.tasks[0].test_clips
    assert few.settings["labelled_pieces_per_class"] == 2
    assert few.tasks[0].probe_cv_accuracy is None          # a single C: nothing was cross-validated


def test_run_probe_beats_chance_on_separable_audio(labelled):
    model = tiny_model()
    corpus = AudioCorpus.from_manifest(labelled / "manifest.csv", 8000, model.clip_samples(4))
    report = run_probe(model, corpus, ["composer", "instrument"], clips_per_file=4, test_fraction=0.34,
                       seed=0, batch_size=8, baseline_steps=3)
    composer = report.tasks[0]
    assert composer.classes == ["noisy", "tonal"] and composer.test_pieces >= 2
    assert composer.train_clips + composer.test_clips == len(corpus.evenly_spaced(4))
    assert composer.probe.accuracy >= 0.9 > composer.chance.accuracy
    assert composer.baseline is not None and 0.0 <= composer.baseline.accuracy <= 1.0
    assert np.isfinite(composer.baseline.loss) and composer.baseline_step == 3
    assert 0.5 < composer.probe_cv_accuracy <= 1.0        # separable on the training pieces' folds too
    table = format_table(report)
    assert "composer" in table and "instrument" in table and "chance (2 classes)" in table
    assert "CV on training pieces" in table
    json.dumps(report.to_dict())


def test_run_probe_splits_gives_one_report_per_seed(labelled):
    """Each seed's report is the single-split run with that seed; different seeds test different pieces."""
    model = tiny_model()
    corpus = AudioCorpus.from_manifest(labelled / "manifest.csv", 8000, model.clip_samples(4))
    options = dict(clips_per_file=2, test_fraction=0.34, batch_size=4, regularization=1.0)
    reports = run_probe_splits(model, corpus, ["composer"], seeds=(0, 3), **options)
    assert [r.settings["seed"] for r in reports] == [0, 3]
    single = run_probe(model, corpus, ["composer"], seed=3, **options)
    assert single.tasks[0] == reports[1].tasks[0]
    assert reports[0].tasks[0].probe != reports[1].tasks[0].probe or \
        reports[0].tasks[0].chance != reports[1].tasks[0].chance
    with pytest.raises(ValueError, match="distinct"):
        run_probe_splits(model, corpus, ["composer"], seeds=(1, 1), **options)


def _report(seed, probe, baseline, task="composer"):
    """A one-task report with the given (loss, accuracy) pairs."""
    row = TaskReport(task=task, classes=["a", "b"], train_clips=8, test_clips=4, train_pieces=4, test_pieces=2,
                     probe=Score(*probe), chance=Score(0.69, 0.5), probe_regularization=1.0,
                     baseline=None if baseline is None else Score(*baseline), baseline_step=250)
    return ProbeReport(model="m", tasks=[row], settings={"seed": seed})


def test_split_summary_is_the_spread_over_splits_and_the_paired_lead():
    reports = [_report(0, (1.0, 0.6), (1.5, 0.5)), _report(1, (0.8, 0.7), (1.0, 0.7)), _report(2, (0.9, 0.8), (1.1, 0.6))]
    summary = split_summary(reports)["composer"]
    assert summary["probe"]["accuracy"].mean == pytest.approx(0.7)
    assert summary["probe"]["accuracy"].std == pytest.approx(0.1)          # sample std of 0.6, 0.7, 0.8
    lead = summary["probe_minus_baseline"]["accuracy"]
    assert (lead.low, lead.mean, lead.high) == pytest.approx((0.0, 0.1, 0.2))
    assert summary["probe_minus_baseline"]["loss"].mean == pytest.approx(-0.3)
    assert Spread.of([0.5]).std == 0.0
    table = format_split_table(reports)
    assert "3 piece-wise splits (seeds 0, 1, 2)" in table and "probe - supervised" in table and "+10.0" in table
    without = split_summary([_report(0, (1.0, 0.6), None), _report(1, (0.8, 0.7), (1.0, 0.7))])["composer"]
    assert set(without) == {"probe", "chance"}                              # a baseline on every split, or none
    with pytest.raises(ValueError, match="different tasks"):
        split_summary([_report(0, (1.0, 0.6), None), _report(1, (1.0, 0.6), None, task="instrument")])


def test_report_survives_json(labelled):
    report = _report(4, (1.0, 0.6), (1.5, 0.5))
    assert ProbeReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report


def test_cli_probe_writes_json(labelled, tmp_path, capsys):
    model = tiny_model()
    save_checkpoint(tmp_path / "tiny.pt", {"model_config": config_to_json(model.config), "model": model.state_dict()})
    out = tmp_path / "report.json"
    status = main(["probe", str(tmp_path / "tiny.pt"), str(labelled), "--tasks", "composer",
                   "--clips-per-file", "2", "--n-context", "4", "--out", str(out), "--test-fraction", "0.34"])
    assert status == 0
    assert "linear probe" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["tasks"][0]["task"] == "composer" and report["tasks"][0]["baseline"] is None


def test_cli_probe_several_seeds_writes_splits_and_summary(labelled, tmp_path, capsys):
    model = tiny_model()
    save_checkpoint(tmp_path / "tiny.pt", {"model_config": config_to_json(model.config), "model": model.state_dict()})
    out = tmp_path / "splits.json"
    status = main(["probe", str(tmp_path / "tiny.pt"), str(labelled), "--tasks", "composer", "--clips-per-file", "2",
                   "--n-context", "4", "--out", str(out), "--test-fraction", "0.34", "--seed", "0", "1",
                   "--regularization", "1.0"])
    assert status == 0
    assert "2 piece-wise splits (seeds 0, 1)" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert [split["settings"]["seed"] for split in report["splits"]] == [0, 1]
    assert set(report["summary"]["composer"]) == {"probe", "chance"}
    assert set(report["summary"]["composer"]["probe"]["accuracy"]) == {"mean", "std", "low", "high"}


def test_cli_probe_unknown_model_is_an_error(labelled, capsys):
    assert main(["probe", "no-such-model", str(labelled)]) == 1
    assert "no-such-model" in capsys.readouterr().err
