"""Linear probes of a CPC model's contexts c, against chance and a supervised model trained from scratch.

The question is how much composer or instrument information the self-supervised features carry in a
linearly readable form. Clips are split by piece (no piece contributes clips to both sides), so a probe
cannot score by recognising a recording it has already seen. Features are c mean-pooled over each clip;
the probe is a standardised multinomial logistic regression whose regularisation is chosen by
cross-validation over the training pieces only (grouped folds, so no piece is on both sides of a fold
either); the test pieces are seen once, at the end. The baseline is the same architecture with a
linear head on mean-pooled c, trained end to end with cross-entropy from random weights on the same split;
its number of steps is chosen the same way, on held-out training pieces (early stopping), never on the test.
Both can be restricted to a few labelled pieces per class: the regime the self-supervised features are for.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import GridSearchCV, GroupShuffleSplit, StratifiedGroupKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn
from tqdm import tqdm

from .config import CPCConfig
from .data import AudioCorpus
from .model import CPC
from .settings import FEATURE_KINDS, PROBE_REGULARIZATION

logger = logging.getLogger(__name__)

"""Inverse regularisation strengths C searched by the probe's grouped cross-validation."""


@dataclass(frozen=True)
class Score:
    """Evaluation cross-entropy (nats) and accuracy on the held-out pieces."""

    loss: float
    accuracy: float


@dataclass(frozen=True)
class ProbeFit:
    """A fitted probe's test score and regularisation C, and, when C was searched, the chosen C's mean
    grouped cross-validation accuracy on the training pieces: a number to compare checkpoints by without
    looking at the test pieces."""

    score: Score
    regularization: float
    cv_accuracy: float | None = None


@dataclass
class TaskReport:
    """Probe, baseline and chance scores of one labelling task."""

    task: str
    classes: list[str]
    train_clips: int
    test_clips: int
    train_pieces: int
    test_pieces: int
    probe: Score
    chance: Score
    probe_regularization: float
    probe_cv_accuracy: float | None = None
    baseline: Score | None = None
    baseline_step: int | None = None


@dataclass
class ProbeReport:
    """Every task's scores plus what produced them."""

    model: str
    tasks: list[TaskReport]
    settings: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "ProbeReport":
        """The report that ``to_dict`` gave (e.g. read back from JSON), to summarise saved splits."""
        def score(value: dict | None) -> Score | None:
            return None if value is None else Score(**value)

        tasks = [TaskReport(**{**task, "probe": score(task["probe"]), "chance": score(task["chance"]),
                               "baseline": score(task.get("baseline"))}) for task in values["tasks"]]
        return cls(model=values["model"], tasks=tasks, settings=dict(values.get("settings", {})))


def piece_split(pieces: Sequence[str], test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train/test clip indices with every piece wholly on one side (GroupShuffleSplit on piece)."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction={test_fraction} must lie in (0, 1)")
    groups = np.asarray(pieces)
    if len(set(groups.tolist())) < 2:
        raise ValueError(f"need at least 2 pieces to split, got {len(set(groups.tolist()))}")
    splitter = GroupShuffleSplit(n_splits=1, test_size=test_fraction, random_state=seed)
    train, test = next(splitter.split(np.zeros(len(groups)), groups=groups))
    return np.sort(train), np.sort(test)


def labelled_subset(train: np.ndarray, y: np.ndarray, pieces: Sequence[str], pieces_per_class: int,
                    seed: int) -> np.ndarray:
    """The training clips of at most ``pieces_per_class`` seeded-random pieces of every class."""
    if pieces_per_class < 1:
        raise ValueError(f"pieces_per_class={pieces_per_class} must be >= 1")
    rng = np.random.default_rng(seed)
    groups = np.asarray(pieces)[train]
    kept: set[str] = set()
    for label in np.unique(y[train]):
        candidates = sorted(set(groups[y[train] == label].tolist()))
        kept.update(rng.choice(candidates, size=min(pieces_per_class, len(candidates)), replace=False).tolist())
    return train[np.isin(groups, sorted(kept))]


def validation_split(train: np.ndarray, y: np.ndarray, pieces: Sequence[str], fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Fit/validation clip indices from ``train``: one fold of a class-stratified split by piece."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction={fraction} must lie in (0, 1)")
    groups = np.asarray(pieces)[train]
    if len(set(groups.tolist())) < 2:
        raise ValueError("a validation split needs at least 2 training pieces")
    folds = StratifiedGroupKFold(n_splits=max(2, round(1.0 / fraction)), shuffle=True, random_state=seed)
    fit, validation = next(folds.split(np.zeros(len(train)), y[train], groups=groups))
    return train[fit], train[validation]



@torch.no_grad()
def extract_features(model: CPC, corpus: AudioCorpus, starts: np.ndarray, batch_size: int = 16,
                     kind: str = "c") -> np.ndarray:
    """Mean-pooled contexts c ``(N, Dc)`` (or encodings z ``(N, D)`` with ``kind="z"``) float32 of the clips
    at ``starts`` (model in eval mode)."""
    if kind not in FEATURE_KINDS:
        raise ValueError(f"features={kind!r} is not one of {FEATURE_KINDS}")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    features = []
    for first in tqdm(range(0, len(starts), batch_size), desc=f"features {kind}", unit="batch", leave=False):
        z, c = model(corpus.clips(starts[first:first + batch_size]).to(device))
        features.append((c if kind == "c" else z).float().mean(dim=1).cpu().numpy())
    model.train(was_training)
    return np.concatenate(features).astype(np.float32)


def encode_labels(labels: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Class indices ``(N,)`` and the sorted class names."""
    classes = sorted(set(labels))
    lookup = {name: i for i, name in enumerate(classes)}
    return np.array([lookup[name] for name in labels], dtype=np.int64), classes


def chance_score(y: np.ndarray, train: np.ndarray, test: np.ndarray, n_classes: int) -> Score:
    """Predicting the training class frequencies: their cross-entropy and the majority class's accuracy."""
    prior = (np.bincount(y[train], minlength=n_classes) + 1.0) / (len(train) + n_classes)
    loss = float(-np.log(prior[y[test]]).mean())
    return Score(loss=loss, accuracy=float(np.mean(y[test] == np.argmax(prior))))


def probe_pipeline(seed: int = 0) -> Pipeline:
    """The linear probe: standardised features into multinomial logistic regression (C left to set)."""
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))


def grouped_search(estimator: BaseEstimator, grid: dict[str, Sequence[object]], features: np.ndarray,
                   y: np.ndarray, train: np.ndarray, groups: Sequence[str], *, seed: int = 0
                   ) -> tuple[BaseEstimator, float]:
    """``estimator`` with the ``grid`` setting of best mean accuracy over grouped k-fold cross-validation on
    the training clips alone (``groups``: each clip's piece; folds stratified by class so every class is in
    every fold's training part), refitted on all of them; and that accuracy."""
    train_groups = np.asarray(groups)[train]
    fewest = min(len(set(train_groups[y[train] == label].tolist())) for label in np.unique(y[train]))
    if fewest < 2:
        raise ValueError(f"a class has {fewest} training piece(s): searching {', '.join(grid)} needs at "
                         "least 2 per class; pass a single value instead")
    folds = StratifiedGroupKFold(n_splits=min(5, fewest), shuffle=True, random_state=seed)
    search = GridSearchCV(estimator, grid, cv=folds, scoring="accuracy", error_score="raise")
    search.fit(features[train], y[train], groups=train_groups)
    return search.best_estimator_, float(search.best_score_)


def logistic_probe(features: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, n_classes: int,
                   *, groups: Sequence[str] | None = None,
                   regularization: float | Sequence[float] = PROBE_REGULARIZATION,
                   seed: int = 0) -> ProbeFit:
    """Standardise, fit multinomial logistic regression on train, score on test.

    A single ``regularization`` is used as given; a sequence is searched by grouped k-fold
    cross-validation on the training clips (``groups``: each clip's piece; folds stratified by class so
    every class is in every fold's training part), scored by accuracy.
    """
    probe = probe_pipeline(seed)
    candidates = [regularization] if np.isscalar(regularization) else list(regularization)
    cv_accuracy = None
    if len(candidates) == 1:
        probe.set_params(logisticregression__C=float(candidates[0])).fit(features[train], y[train])
    else:
        if groups is None:
            raise ValueError("searching the regularization needs groups (the piece of every clip)")
        probe, cv_accuracy = grouped_search(probe, {"logisticregression__C": candidates}, features, y, train,
                                            groups, seed=seed)
    probabilities = np.zeros((len(test), n_classes))
    probabilities[:, probe.classes_] = probe.predict_proba(features[test])
    probabilities = np.clip(probabilities, 1e-7, 1.0)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    loss = log_loss(y[test], probabilities, labels=np.arange(n_classes))
    score = Score(loss=float(loss), accuracy=float(np.mean(probabilities.argmax(axis=1) == y[test])))
    return ProbeFit(score, float(probe.named_steps["logisticregression"].C), cv_accuracy)


class ContextClassifier(nn.Module):
    """CPC encoder + autoregressive model + a linear layer on mean-pooled c: the supervised baseline."""

    def __init__(self, config: CPCConfig, n_classes: int):
        super().__init__()
        self.model = CPC(config)
        self.head = nn.Linear(self.model.context_size, n_classes)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        _, c = self.model(audio)
        return self.head(c.mean(dim=1))


@torch.no_grad()
def _score_classifier(classifier: ContextClassifier, corpus: AudioCorpus, starts: np.ndarray, y: np.ndarray,
                      clips: np.ndarray, batch_size: int, device: str | torch.device) -> Score:
    """Cross-entropy and accuracy of ``classifier`` (put in eval mode) on the clips ``clips``."""
    classifier.eval()
    logits = torch.cat([classifier(corpus.clips(starts[chunk]).to(device)).float().cpu()
                        for chunk in np.array_split(clips, max(1, len(clips) // batch_size))])
    targets = torch.from_numpy(y[clips])
    return Score(loss=float(nn.functional.cross_entropy(logits, targets).item()),
                 accuracy=float((logits.argmax(dim=1) == targets).float().mean().item()))


def supervised_baseline(config: CPCConfig, corpus: AudioCorpus, starts: np.ndarray, y: np.ndarray,
                        train: np.ndarray, test: np.ndarray, n_classes: int, *, steps: int, batch_size: int,
                        lr: float = 1e-3, seed: int = 0, device: str | torch.device = "cpu",
                        pieces: Sequence[str] | None = None, validation_fraction: float | None = 0.2,
                        eval_every: int = 250) -> tuple[Score, int]:
    """Train ``ContextClassifier`` from random weights on the train clips; score it on the test clips.

    A class-stratified ``validation_fraction`` of the training pieces (``pieces``: each clip's piece) is held
    out, and the weights of the step with the best validation accuracy (then loss) after every ``eval_every``
    steps are the ones tested: early stopping, so the step count is never tuned on the test. With
    ``validation_fraction=None`` it trains on all of ``train`` for exactly ``steps``. Returns the score and
    the step whose weights were tested.
    """
    if steps < 1 or batch_size < 2 or eval_every < 1:
        raise ValueError(f"steps={steps} and eval_every={eval_every} must be >= 1 and batch_size={batch_size} >= 2")
    if validation_fraction is None:
        fit, validation = train, None
    elif pieces is None:
        raise ValueError("early stopping on held-out pieces needs pieces (the piece of every clip)")
    else:
        fit, validation = validation_split(train, y, pieces, validation_fraction, seed)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    classifier = ContextClassifier(config, n_classes).to(device)
    optimizer = torch.optim.AdamW(classifier.parameters(), lr=lr)
    targets = torch.from_numpy(y)
    best_key, best_step, best_state = None, steps, None
    for step in tqdm(range(1, steps + 1), desc="baseline", unit="step", leave=False):
        classifier.train()
        batch = rng.choice(fit, size=batch_size, replace=len(fit) < batch_size)
        loss = nn.functional.cross_entropy(classifier(corpus.clips(starts[batch]).to(device)),
                                           targets[batch].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if validation is not None and (step % eval_every == 0 or step == steps):
            score = _score_classifier(classifier, corpus, starts, y, validation, batch_size, device)
            if best_key is None or (score.accuracy, -score.loss) > best_key:
                best_key, best_step = (score.accuracy, -score.loss), step
                best_state = {name: value.detach().clone() for name, value in classifier.state_dict().items()}
            logger.info("baseline step %d: validation accuracy %.3f, loss %.3f", step, score.accuracy, score.loss)
    if best_state is not None:
        classifier.load_state_dict(best_state)
    return _score_classifier(classifier, corpus, starts, y, test, batch_size, device), best_step


def run_probe(model: CPC, corpus: AudioCorpus, tasks: Sequence[str] = ("composer", "instrument"), *,
              seed: int = 0, **options: object) -> ProbeReport:
    """Probe every task on the piece-wise split drawn by ``seed``; ``options`` as for ``run_probe_splits``."""
    return run_probe_splits(model, corpus, tasks, seeds=(seed,), **options)[0]


def run_probe_splits(model: CPC, corpus: AudioCorpus, tasks: Sequence[str] = ("composer", "instrument"), *,
                     seeds: Sequence[int] = (0,), clips_per_file: int = 8, test_fraction: float = 0.25,
                     batch_size: int = 16, baseline_steps: int = 0, baseline_lr: float = 1e-3,
                     model_name: str = "model", regularization: float | Sequence[float] = PROBE_REGULARIZATION,
                     baseline_validation: float | None = 0.2, baseline_eval_every: int = 250,
                     labelled_pieces_per_class: int | None = None) -> list[ProbeReport]:
    """One report per seed, each on its own piece-wise split (features are extracted once for all of them).

    One split's numbers move with which pieces land on the test side; several seeds show by how much.
    ``baseline_steps`` > 0 also trains the baselines. ``baseline_validation``: fraction of training pieces
    the baseline early-stops on (None: train for exactly ``baseline_steps``). ``labelled_pieces_per_class``:
    probe and baseline learn from only that many training pieces per class (seeded); the test pieces stay
    the same.
    """
    if not corpus.entries:
        raise ValueError("the corpus has no labels: build it from a manifest (path, composer, piece, ...)")
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds={list(seeds)} must be one or more distinct split seeds")
    starts = corpus.evenly_spaced(clips_per_file)
    entries = [corpus.entries[int(f)] for f in starts[:, 0]]
    pieces = [e.piece for e in entries]
    features = extract_features(model, corpus, starts, batch_size)
    device = next(model.parameters()).device
    settings = {"clips_per_file": clips_per_file, "test_fraction": test_fraction,
                "probe_regularization": np.atleast_1d(regularization).tolist(),
                "baseline_steps": baseline_steps, "baseline_batch_size": batch_size, "baseline_lr": baseline_lr,
                "baseline_validation": baseline_validation, "baseline_eval_every": baseline_eval_every,
                "labelled_pieces_per_class": labelled_pieces_per_class,
                "clip_seconds": round(corpus.clip_samples / corpus.sample_rate, 3), "files": len(corpus),
                "composer_counts": dict(Counter(e.composer for e in corpus.entries))}
    reports = []
    for seed in seeds:
        split_train, test = piece_split(pieces, test_fraction, seed)
        task_reports = []
        for task in tasks:
            y, classes = encode_labels([e.label(task) for e in entries])
            if len(classes) < 2:
                raise ValueError(f"task {task!r} has a single class {classes}; nothing to probe")
            train = (labelled_subset(split_train, y, pieces, labelled_pieces_per_class, seed)
                     if labelled_pieces_per_class else split_train)
            missing = sorted(set(classes) - {classes[i] for i in y[train]})
            if missing:
                logger.warning("task %s, seed %d: classes %s have no training clips in this split", task, seed, missing)
            fit = logistic_probe(features, y, train, test, len(classes), groups=pieces,
                                 regularization=regularization, seed=seed)
            report = TaskReport(
                task=task, classes=classes, train_clips=len(train), test_clips=len(test),
                train_pieces=len({pieces[i] for i in train}), test_pieces=len({pieces[i] for i in test}),
                probe=fit.score, chance=chance_score(y, train, test, len(classes)),
                probe_regularization=fit.regularization, probe_cv_accuracy=fit.cv_accuracy)
            if baseline_steps > 0:
                report.baseline, report.baseline_step = supervised_baseline(
                    model.config, corpus, starts, y, train, test, len(classes), steps=baseline_steps,
                    batch_size=batch_size, lr=baseline_lr, seed=seed, device=device,
                    pieces=pieces, validation_fraction=baseline_validation, eval_every=baseline_eval_every)
            task_reports.append(report)
            logger.info("task %s, seed %d: probe %.3f vs chance %.3f", task, seed, report.probe.accuracy,
                        report.chance.accuracy)
        reports.append(ProbeReport(model=model_name, tasks=task_reports, settings={**settings, "seed": seed}))
    return reports


@dataclass(frozen=True)
class Spread:
    """Mean, sample standard deviation and range of one number over several splits."""

    mean: float
    std: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> "Spread":
        """The spread of ``values`` (std 0 for a single value)."""
        array = np.asarray(values, dtype=np.float64)
        std = float(array.std(ddof=1)) if len(array) > 1 else 0.0
        return cls(float(array.mean()), std, float(array.min()), float(array.max()))


def split_summary(reports: Sequence[ProbeReport]) -> dict[str, dict[str, dict[str, Spread]]]:
    """Per task, the spread over splits of each row's loss and accuracy: ``probe``, ``chance``, and with
    baselines ``baseline`` and ``probe_minus_baseline`` (the paired difference, split by split)."""
    if not reports:
        raise ValueError("no reports to summarise")
    names = [[task.task for task in report.tasks] for report in reports]
    if any(n != names[0] for n in names):
        raise ValueError(f"the reports probe different tasks: {names}")
    summary: dict[str, dict[str, dict[str, Spread]]] = {}
    for index, task in enumerate(names[0]):
        rows = [report.tasks[index] for report in reports]
        scores = {"probe": [r.probe for r in rows]}
        if all(r.baseline is not None for r in rows):
            scores["baseline"] = [r.baseline for r in rows]
            scores["probe_minus_baseline"] = [Score(r.probe.loss - r.baseline.loss,
                                                    r.probe.accuracy - r.baseline.accuracy) for r in rows]
        scores["chance"] = [r.chance for r in rows]
        summary[task] = {row: {"loss": Spread.of([s.loss for s in values]),
                               "accuracy": Spread.of([s.accuracy for s in values])}
                         for row, values in scores.items()}
    return summary


def splits_to_dict(reports: Sequence[ProbeReport]) -> dict:
    """Several splits' reports and their summary, JSON-ready."""
    return {"splits": [report.to_dict() for report in reports],
            "summary": {task: {row: {name: asdict(spread) for name, spread in values.items()}
                               for row, values in rows.items()}
                        for task, rows in split_summary(reports).items()}}


def format_split_table(reports: Sequence[ProbeReport]) -> str:
    """The spread over splits as a text table: mean ± std (lowest to highest) per task and row."""
    seeds = ", ".join(str(report.settings.get("seed")) for report in reports)
    labels = {"probe": f"CPC {reports[0].model} + linear probe", "baseline": "supervised from scratch",
              "chance": "chance", "probe_minus_baseline": "probe - supervised"}
    lines = [f"{len(reports)} piece-wise splits (seeds {seeds}): mean ± std (lowest .. highest)",
             f"{'':<34} {'task':<12} {'loss':>15} {'accuracy (%)':>28}"]
    for task, rows in split_summary(reports).items():
        for row, spread in rows.items():
            loss, accuracy = spread["loss"], spread["accuracy"]
            sign = "+" if row == "probe_minus_baseline" else ""
            lines.append(f"{labels[row]:<34} {task:<12} {loss.mean:>{sign}7.3f} ± {loss.std:5.3f} "
                         f"{100 * accuracy.mean:>{sign}7.1f} ± {100 * accuracy.std:4.1f} "
                         f"({100 * accuracy.low:{sign}.1f} .. {100 * accuracy.high:{sign}.1f})")
    return "\n".join(lines)


def format_table(report: ProbeReport) -> str:
    """The report as a text table: loss and accuracy per task for probe, baseline and chance."""
    lines = [f"{'model':<34} {'task':<12} {'loss':>7} {'accuracy':>9}   (test: clips / pieces)"]
    for task in report.tasks:
        baseline = "supervised from scratch" + (f" ({task.baseline_step} st.)" if task.baseline_step else "")
        rows = [(f"CPC {report.model} + linear probe", task.probe), (baseline, task.baseline),
                (f"chance ({len(task.classes)} classes)", task.chance)]
        for label, score in rows:
            if score is not None:
                lines.append(f"{label:<34} {task.task:<12} {score.loss:>7.3f} {100 * score.accuracy:>8.2f}%"
                             f"   ({task.test_clips} / {task.test_pieces})")
        if task.probe_cv_accuracy is not None:
            lines.append(f"{'  probe, CV on training pieces':<34} {task.task:<12} {'':>7} "
                         f"{100 * task.probe_cv_accuracy:>8.2f}%   (C = {task.probe_regularization:g})")
    return "\n".join(lines)
