"""Where a CPC model puts labelled clips: pooled features, 2-D projections, classifiers, moves between classes.

After the NSynth latent-space study: embeddings of labelled clips are classified by a linear probe, an SVM
and an MLP (split by piece, as ``probe`` splits, so no classifier scores by recognising a piece it has
seen), projected to two dimensions with PCA, t-SNE (openTSNE) or UMAP to be looked at, and moved from one
class to another by the study's linear map between class means. A moved context vector is made audible by
feature inversion: a clip is optimised, starting from the source clip, until its mean-pooled c matches it.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.decomposition import PCA
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from tqdm import tqdm

from .data import AudioCorpus, ManifestEntry
from .model import CPC
from .objectives import match
from .optimize import OptimizedClip, OptimizeSettings, optimize_clip
from .probe import PROBE_REGULARIZATION, encode_labels, grouped_search, piece_split, probe_pipeline
from .settings import CLASSIFIERS, PROJECTIONS

logger = logging.getLogger(__name__)

SVM_REGULARIZATION = (0.1, 1.0, 10.0)
"""SVM margin penalties C searched by grouped cross-validation on the training pieces."""
MLP_ALPHA = (1e-4, 1e-2, 1.0)
"""MLP weight decays searched the same way; the layers are the study's three hidden layers of 250 ReLUs."""


@dataclass(frozen=True)
class LabelledClips:
    """Clips of a labelled corpus: where they start, their label, the group a split keeps whole, a name."""

    starts: np.ndarray        # (N, 2) file index, start sample
    labels: list[str]
    groups: list[str]         # each clip's piece (or track): no group is on both sides of a split
    names: list[str]          # "file.flac @ 12.3 s"

    def __len__(self) -> int:
        return len(self.labels)


def manifest_columns(entry: ManifestEntry) -> list[str]:
    """The label columns a manifest row offers: composer, piece and every further column."""
    return ["composer", "piece", *sorted(entry.labels)]


def entry_label(entry: ManifestEntry, column: str, option: str = "label") -> str:
    """The value of ``column`` for a manifest row; a ValueError naming ``option`` and the available columns
    when the manifest has no such column."""
    if column not in manifest_columns(entry):
        raise ValueError(f"{option} {column!r} is not a column of the manifest; available: "
                         f"{', '.join(manifest_columns(entry))}")
    return entry.label(column)


def labelled_clips(corpus: AudioCorpus, label: str, clips_per_file: int, *, group_by: str = "piece"
                   ) -> LabelledClips:
    """Up to ``clips_per_file`` evenly spaced clips of every file, with the file's ``label`` and ``group_by``
    columns."""
    if not corpus.entries:
        raise ValueError("a map needs a labelled corpus: give a manifest (.csv/.json) or a folder holding "
                         "manifest.csv")
    entry_label(corpus.entries[0], label)
    entry_label(corpus.entries[0], group_by, "group_by")
    starts = corpus.evenly_spaced(clips_per_file)
    entries = [corpus.entries[int(f)] for f in starts[:, 0]]
    names = [f"{corpus.paths[int(f)].name} @ {s / corpus.sample_rate:.1f} s" for f, s in starts]
    return LabelledClips(starts=starts, labels=[entry_label(e, label) for e in entries],
                         groups=[entry_label(e, group_by, "group_by") for e in entries], names=names)


def project(features: np.ndarray, method: str, *, seed: int = 0, n_jobs: int = 1, progress: bool = True
            ) -> np.ndarray:
    """2-D positions ``(N, 2)`` float32 of standardised features by ``pca``, ``tsne`` (openTSNE, PCA-initialised)
    or ``umap`` (umap-learn, when installed); the same seed gives the same positions."""
    if method not in PROJECTIONS:
        raise ValueError(f"method {method!r} is not one of {PROJECTIONS}")
    if features.ndim != 2 or len(features) < 3:
        raise ValueError(f"features must be (N, D) with N >= 3 clips, got shape {features.shape}")
    scaled = StandardScaler().fit_transform(np.asarray(features, dtype=np.float64))
    if method == "pca":
        return PCA(n_components=2, svd_solver="full").fit_transform(scaled).astype(np.float32)
    if method == "tsne":
        return _tsne(scaled, seed, n_jobs, progress)
    return _umap(scaled, seed, n_jobs)


def _tsne(scaled: np.ndarray, seed: int, n_jobs: int, progress: bool) -> np.ndarray:
    """openTSNE with a perplexity the clip count allows, a progress bar over its iterations."""
    from openTSNE import TSNE

    exaggeration_iters, iters, every = 250, 500, 25
    bar = tqdm(total=exaggeration_iters + iters, desc="t-SNE", unit="it", leave=False, disable=not progress)

    def advance(iteration: int, error: float, embedding: np.ndarray) -> None:
        bar.update(every)

    tsne = TSNE(n_components=2, perplexity=min(30.0, (len(scaled) - 1) / 3.0), initialization="pca",
                early_exaggeration_iter=exaggeration_iters, n_iter=iters, random_state=seed, n_jobs=n_jobs,
                callbacks=advance, callbacks_every_iters=every, verbose=False)
    try:
        return np.asarray(tsne.fit(scaled), dtype=np.float32)
    finally:
        bar.close()


def _umap(scaled: np.ndarray, seed: int, n_jobs: int) -> np.ndarray:
    try:
        from umap import UMAP
    except ImportError as exc:
        raise RuntimeError("method 'umap' needs the umap-learn package: pip install 'immersions[umap]'") from exc
    reducer = UMAP(n_components=2, n_neighbors=min(15, len(scaled) - 1), random_state=seed, n_jobs=n_jobs)
    return np.asarray(reducer.fit_transform(scaled), dtype=np.float32)


def classifier(name: str, seed: int = 0) -> tuple[BaseEstimator, dict[str, Sequence[object]]]:
    """A standardising pipeline of the named classifier and the settings its grouped search tries."""
    if name == "linear":
        return probe_pipeline(seed), {"logisticregression__C": list(PROBE_REGULARIZATION)}
    if name == "svm":
        return (make_pipeline(StandardScaler(), SVC(kernel="rbf", random_state=seed)),
                {"svc__C": list(SVM_REGULARIZATION)})
    if name == "mlp":
        return (make_pipeline(StandardScaler(), MLPClassifier((250, 250, 250), max_iter=400, random_state=seed)),
                {"mlpclassifier__alpha": list(MLP_ALPHA)})
    raise ValueError(f"classifier {name!r} is not one of {CLASSIFIERS}")


@dataclass
class ClassifierScore:
    """One classifier's test accuracy, the per-class precision, recall, F1 and support, and its confusion
    matrix (rows: true class, columns: predicted), with the setting its cross-validation chose."""

    name: str
    accuracy: float
    macro_f1: float
    cv_accuracy: float
    setting: dict[str, float]
    precision: list[float]
    recall: list[float]
    f1: list[float]
    support: list[int]
    confusion: list[list[int]]


@dataclass
class Classification:
    """Every classifier's scores on one piece-wise split of a labelled clip set."""

    label: str
    features: str
    classes: list[str]
    seed: int
    train_clips: int
    test_clips: int
    train_groups: list[str]
    test_groups: list[str]
    chance_accuracy: float
    scores: list[ClassifierScore] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Plain JSON-ready dict."""
        return asdict(self)


def classify(features: np.ndarray, clips: LabelledClips, *, label: str = "label", kind: str = "c",
             names: Sequence[str] = CLASSIFIERS, test_fraction: float = 0.25, seed: int = 0) -> Classification:
    """Fit each named classifier on the training pieces of ``probe.piece_split`` (its setting chosen by grouped
    cross-validation on them alone) and score it on the held-out pieces."""
    y, classes = encode_labels(clips.labels)
    if len(classes) < 2:
        raise ValueError(f"label {label!r} has a single class {classes}; nothing to classify")
    train, test = piece_split(clips.groups, test_fraction, seed)
    groups = np.asarray(clips.groups)
    majority = np.bincount(y[train], minlength=len(classes)).argmax()
    result = Classification(label=label, features=kind, classes=classes, seed=seed, train_clips=len(train),
                            test_clips=len(test), train_groups=sorted(set(groups[train].tolist())),
                            test_groups=sorted(set(groups[test].tolist())),
                            chance_accuracy=float(np.mean(y[test] == majority)))
    every_class = np.arange(len(classes))
    for name in tqdm(names, desc="classifiers", unit="model", leave=False):
        estimator, grid = classifier(name, seed)
        fitted, cv_accuracy = grouped_search(estimator, grid, features, y, train, clips.groups, seed=seed)
        predicted = fitted.predict(features[test])
        precision, recall, f1, support = precision_recall_fscore_support(
            y[test], predicted, labels=every_class, zero_division=0)
        chosen = {key.split("__")[-1]: float(fitted.get_params()[key]) for key in grid}
        result.scores.append(ClassifierScore(
            name=name, accuracy=float(np.mean(predicted == y[test])), macro_f1=float(np.mean(f1)),
            cv_accuracy=cv_accuracy, setting=chosen, precision=precision.tolist(), recall=recall.tolist(),
            f1=f1.tolist(), support=support.astype(int).tolist(),
            confusion=confusion_matrix(y[test], predicted, labels=every_class).tolist()))
        logger.info("%s on %s: test accuracy %.3f (cv %.3f, %s)", name, label, result.scores[-1].accuracy,
                    cv_accuracy, chosen)
    return result


def class_map(source_mean: np.ndarray, target_mean: np.ndarray) -> np.ndarray:
    """The study's linear map between class means: the matrix ``M`` closest to the identity with
    ``M @ source_mean == target_mean``, ``I + (b - a) a^T / |a|^2``. A clip's component along the source
    mean is carried to the target mean; what is orthogonal to it, the clip's own character, is kept."""
    a = np.asarray(source_mean, dtype=np.float64)
    b = np.asarray(target_mean, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"class means must be vectors of one size, got {a.shape} and {b.shape}")
    norm = float(a @ a)
    if norm == 0.0:
        raise ValueError("the source class mean is zero: no linear map carries it to the target")
    return np.eye(len(a)) + np.outer(b - a, a) / norm


@torch.no_grad()
def pooled_context(model: CPC, audio: np.ndarray) -> np.ndarray:
    """Mean-pooled c ``(Dc,)`` of one mono clip at the model's rate."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    _, c = model(torch.as_tensor(np.asarray(audio, dtype=np.float32), device=device)[None])
    model.train(was_training)
    return c[0].float().mean(dim=0).cpu().numpy()


def context_tap(model: CPC) -> str:
    """The tap whose output is c: the last autoregressive block's nonlinearity."""
    return model.tap_names()[-1]


def invert_context(model: CPC, target: np.ndarray, start: np.ndarray,
                   settings: OptimizeSettings = OptimizeSettings(), *, progress: bool = True) -> OptimizedClip:
    """Feature inversion: ``start`` optimised, with the article's regularisers, until its mean-pooled c is
    close to ``target`` (the ``match`` objective on the context tap)."""
    objective = match(context_tap(model), torch.as_tensor(np.asarray(target, dtype=np.float32)))
    return optimize_clip(model, objective, start, settings, progress=progress)


@dataclass
class Move:
    """A clip moved from one class to another in c and made audible; the linear probe's probability of the
    target class for the clip, its linearly moved c, and the c of the inverted clip."""

    source: str
    target: str
    clip: str
    probe_target_before: float
    probe_target_moved: float
    probe_target_after: float
    predicted_before: str
    predicted_after: str
    distance_before: float    # relative squared distance of the clip's c to the moved vector
    distance_after: float     # ... of the inverted clip's c
    steps: int


def move_between(model: CPC, corpus: AudioCorpus, clips: LabelledClips, contexts: np.ndarray, source: str,
                 target: str, *, test_fraction: float = 0.25, seed: int = 0,
                 settings: OptimizeSettings = OptimizeSettings(), progress: bool = True
                 ) -> tuple[Move, np.ndarray, np.ndarray]:
    """Move a held-out ``source`` clip to the ``target`` class: the class means and the linear probe come from
    the training pieces of ``probe.piece_split`` only; the moved clip is the held-out source clip nearest its
    class mean. Returns the report, the source audio and the inverted audio."""
    y, classes = encode_labels(clips.labels)
    for name in (source, target):
        if name not in classes:
            raise ValueError(f"class {name!r} is not a value of the label; classes: {', '.join(classes)}")
    if source == target:
        raise ValueError(f"moving from {source!r} to itself moves nothing; give two different classes")
    train, test = piece_split(clips.groups, test_fraction, seed)
    s, t = classes.index(source), classes.index(target)
    for index, name in ((s, source), (t, target)):
        if not np.any(y[train] == index):
            raise ValueError(f"class {name!r} has no training clips in this split (seed {seed})")
    candidates = test[y[test] == s]
    if len(candidates) == 0:
        raise ValueError(f"class {source!r} has no held-out clip in this split (seed {seed}) to move")
    source_mean = contexts[train][y[train] == s].mean(axis=0)
    target_mean = contexts[train][y[train] == t].mean(axis=0)
    chosen = int(candidates[np.argmin(np.linalg.norm(contexts[candidates] - source_mean, axis=1))])
    moved = class_map(source_mean, target_mean) @ contexts[chosen]
    estimator, grid = classifier("linear", seed)
    probe, _ = grouped_search(estimator, grid, contexts, y, train, clips.groups, seed=seed)
    audio = corpus.clips(clips.starts[chosen:chosen + 1])[0].numpy()
    inverted = invert_context(model, moved, audio, settings, progress=progress)
    after = pooled_context(model, inverted.audio)
    column = list(probe.classes_).index(t)
    probabilities = probe.predict_proba(np.stack([contexts[chosen], moved, after]).astype(np.float32))
    predicted = probe.predict(np.stack([contexts[chosen], after]))
    report = Move(source=source, target=target, clip=clips.names[chosen],
                  probe_target_before=float(probabilities[0, column]),
                  probe_target_moved=float(probabilities[1, column]),
                  probe_target_after=float(probabilities[2, column]),
                  predicted_before=classes[int(predicted[0])], predicted_after=classes[int(predicted[1])],
                  distance_before=-inverted.initial_score, distance_after=-inverted.final_score,
                  steps=len(inverted.scores))
    logger.info("move %s -> %s of %s: p(target) %.3f -> %.3f (moved vector %.3f)", source, target, report.clip,
                report.probe_target_before, report.probe_target_after, report.probe_target_moved)
    return report, audio, inverted.audio
