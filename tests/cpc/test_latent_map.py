"""The latent map's library: labels from any manifest column, projections, classifiers split by piece, moves."""
import importlib.util

import numpy as np
import pytest
import soundfile as sf
import torch
from sklearn.pipeline import Pipeline

from immersions.cpc.data import AudioCorpus
from immersions.cpc.latent_map import (CLASSIFIERS, LabelledClips, class_map, classify, context_tap, invert_context,
                                       labelled_clips, move_between, pooled_context, project)
from immersions.cpc.objectives import match
from immersions.cpc.optimize import OptimizeSettings, clip_score, recorded_taps
from immersions.cpc.probe import extract_features, piece_split
from immersions.cpc.regularizers import Regularization
from tests.cpc.test_train import tiny_model


def write_recordings(root, rate=8000, files=12):
    """A recordings-style manifest (source, track, licence columns beside the required ones): 'tonal' files a
    200 Hz sine, 'noisy' ones white noise, one track each."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    t = np.arange(rate) / rate
    rows = ["path,composer,piece,source,track,licence"]
    for index in range(files):
        source = "tonal" if index % 2 else "noisy"
        audio = (np.sin(2 * np.pi * 200 * t + rng.uniform(0, 2 * np.pi)) if source == "tonal"
                 else rng.uniform(-1, 1, rate))
        sf.write(root / f"t{index}.wav", (0.5 * audio).astype(np.float32), rate)
        rows.append(f"t{index}.wav,unknown,piece{index},{source},track{index},CC0")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    return write_recordings(tmp_path_factory.mktemp("recordings"))


@pytest.fixture(scope="module")
def model():
    return tiny_model().eval()


@pytest.fixture(scope="module")
def corpus(recordings, model):
    return AudioCorpus.from_source(recordings, model.config.sample_rate, model.clip_samples(4))


def test_any_manifest_column_is_a_label(corpus):
    clips = labelled_clips(corpus, "source", 3, group_by="track")
    assert len(clips) == len(clips.starts) == 36
    assert set(clips.labels) == {"tonal", "noisy"} and len(set(clips.groups)) == 12
    assert clips.names[0].startswith("t0.wav @ ")


def test_a_missing_label_names_it_and_the_columns(corpus):
    with pytest.raises(ValueError, match=r"label 'instrument' .*available: composer, piece, licence, source, track"):
        labelled_clips(corpus, "instrument", 2)
    with pytest.raises(ValueError, match="group_by 'album'"):
        labelled_clips(corpus, "source", 2, group_by="album")


def _blobs(n=90, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    features = rng.normal(size=(n, 12)).astype(np.float32)
    features[:, :6] += 3.0 * y[:, None]   # several channels carry the class, as features of a model do
    return features, y


@pytest.mark.parametrize("method", ["pca", "tsne", "umap"])
def test_projection_shapes_and_seeded_determinism(method):
    if method == "umap" and importlib.util.find_spec("umap") is None:
        pytest.skip("umap-learn is not installed (pip install 'immersions[umap]')")
    features, y = _blobs()
    first = project(features, method, seed=3, progress=False)
    assert first.shape == (90, 2) and first.dtype == np.float32 and np.isfinite(first).all()
    assert np.array_equal(first, project(features, method, seed=3, progress=False))
    # the classes, far apart in 12-D, stay apart in 2-D
    centres = np.stack([first[y == k].mean(axis=0) for k in range(3)])
    spread = max(np.linalg.norm(first[y == k] - centres[k], axis=1).mean() for k in range(3))
    assert np.linalg.norm(centres[0] - centres[2]) > spread


def test_projection_rejects_unknown_methods_and_too_few_clips():
    with pytest.raises(ValueError, match="'mds'"):
        project(np.zeros((10, 3)), "mds")
    with pytest.raises(ValueError, match="N >= 3"):
        project(np.zeros((2, 3)), "pca")


def test_classifiers_never_see_a_test_piece(monkeypatch):
    features, y = _blobs(120, 3)
    features[:, -1] = np.arange(len(features))   # the clip's own index rides along in the last column
    groups = [f"piece{i // 4}" for i in range(len(features))]
    clips = LabelledClips(starts=np.zeros((len(features), 2), dtype=np.int64),
                          labels=[f"class{k}" for k in y], groups=groups, names=[str(i) for i in range(len(y))])
    seen: set[int] = set()
    original = Pipeline.fit

    def recording_fit(self, X, *args, **kwargs):
        seen.update(np.asarray(X)[:, -1].astype(int).tolist())
        return original(self, X, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "fit", recording_fit)
    result = classify(features, clips, label="class", seed=2)
    train, test = piece_split(groups, 0.25, seed=2)
    assert seen == set(train.tolist())       # every fit, cross-validation folds included, on training clips only
    assert not {groups[i] for i in seen} & set(result.test_groups)
    assert [score.name for score in result.scores] == list(CLASSIFIERS)
    for score in result.scores:
        assert score.accuracy > 0.9
        matrix = np.asarray(score.confusion)
        assert matrix.shape == (3, 3) and matrix.sum() == result.test_clips == len(test)
        assert score.support == matrix.sum(axis=1).tolist()
        assert len(score.precision) == len(score.recall) == len(score.f1) == 3


def test_class_map_carries_the_source_mean_to_the_target_and_keeps_the_rest():
    rng = np.random.default_rng(0)
    a, b, other = rng.normal(size=(3, 8))
    other -= (other @ a) / (a @ a) * a   # orthogonal to the source mean
    matrix = class_map(a, b)
    assert np.allclose(matrix @ a, b)
    assert np.allclose(matrix @ other, other)
    assert np.allclose(matrix @ (2 * a + other), 2 * b + other)
    with pytest.raises(ValueError, match="zero"):
        class_map(np.zeros(3), np.ones(3))


def test_context_tap_time_mean_is_the_pooled_context(model, corpus):
    audio = corpus.clips(corpus.evenly_spaced(1)[:1])
    with torch.no_grad(), recorded_taps(model, [context_tap(model)]) as taps:
        _, c = model(audio)
    assert torch.allclose(taps[context_tap(model)].mean(dim=-1), c.mean(dim=1), atol=1e-6)
    assert np.allclose(pooled_context(model, audio[0].numpy()), c[0].mean(dim=0).numpy(), atol=1e-6)


def test_match_objective_scores_distance_and_checks_the_size():
    target = torch.tensor([1.0, 2.0])
    acts = {"tap": torch.tensor([[[1.0, 1.0], [2.0, 2.0]], [[0.0, 0.0], [0.0, 0.0]]])}  # (B=2, C=2, T=2)
    assert torch.allclose(match("tap", target)(acts), torch.tensor([0.0, -1.0]))
    with pytest.raises(ValueError, match="3 channels"):
        match("tap", target)({"tap": torch.zeros(1, 3, 4)})


def test_feature_inversion_brings_c_closer_to_the_target(model, corpus):
    starts = corpus.evenly_spaced(1)
    source, other = corpus.clips(starts[[0, 1]]).numpy()
    target = pooled_context(model, other)
    objective = match(context_tap(model), torch.from_numpy(target))
    before = -clip_score(model, objective, source)
    settings = OptimizeSettings(steps=40, lr=5e-3, regularization=Regularization(), seed=0)
    result = invert_context(model, target, source, settings, progress=False)
    after = np.sum((pooled_context(model, result.audio) - target) ** 2) / np.sum(target ** 2)
    assert -result.final_score == pytest.approx(after, rel=1e-4)
    assert after < 0.85 * before
    assert np.mean(result.scores[-10:]) > np.mean(result.scores[:10])   # the regularised steps improve too


def test_move_between_reports_the_probe_and_the_distance(model, corpus):
    clips = labelled_clips(corpus, "source", 3, group_by="track")
    contexts = extract_features(model, corpus, clips.starts, kind="c")
    settings = OptimizeSettings(steps=30, lr=5e-3, seed=0)
    move, before, after = move_between(model, corpus, clips, contexts, "noisy", "tonal", test_fraction=0.34,
                                       settings=settings, progress=False)
    assert (move.source, move.target, move.steps) == ("noisy", "tonal", 30)
    train, test = piece_split(clips.groups, 0.34, seed=0)
    assert clips.names.index(move.clip) in set(test.tolist())    # a held-out clip is the one moved
    assert before.shape == after.shape == (corpus.clip_samples,)
    assert move.distance_after < move.distance_before
    for p in (move.probe_target_before, move.probe_target_moved, move.probe_target_after):
        assert 0.0 <= p <= 1.0
    with pytest.raises(ValueError, match="'brass' is not a value"):
        move_between(model, corpus, clips, contexts, "brass", "tonal", settings=settings)
