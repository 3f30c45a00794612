"""The latent map of a labelled corpus, written to a folder: features, projections, pictures, page, classifiers, moves.

What ``immersions map`` and its benchmark run. Everything goes into ``out_dir``:

    features.npz                   mean-pooled features of every clip (per kind) with labels, pieces, names
    map_<kind>_<method>.png        each projection, coloured by label, with a legend
    map.html, clips/NNNNN.flac     the interactive page and the clips it plays
    classify_<kind>.json / .png    linear probe, SVM and MLP on held-out pieces: scores, confusion matrices
    moves/<from>_to_<to>_*.wav     a clip moved between classes in c and made audible; moves.json
    map.json                       settings, files and the seconds each stage took
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile
from tqdm import tqdm

from immersions.cpc.data import AudioCorpus
from immersions.cpc.latent_map import (CLASSIFIERS, PROJECTIONS, LabelledClips, classify, labelled_clips, move_between,
                                       project)
from immersions.cpc.model import CPC
from immersions.cpc.optimize import OptimizeSettings
from immersions.cpc.probe import FEATURE_KINDS, extract_features

from .atomic import whole_file, write_json
from .defaults import MOVE_LR
from .map_figures import write_confusion_png, write_projection_png
from .map_page import write_map_page

logger = logging.getLogger(__name__)

METHOD_TITLES = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
CLIP_FOLDER = "clips"


@dataclass(frozen=True)
class MapSettings:
    """What to map and how: the label, projections, features, clips, split and moves."""

    label: str = "composer"
    methods: tuple[str, ...] = ("pca", "tsne")
    kinds: tuple[str, ...] = ("c",)
    clips_per_file: int = 8
    group_by: str = "piece"
    classifiers: tuple[str, ...] = CLASSIFIERS
    test_fraction: float = 0.25
    moves: tuple[tuple[str, str], ...] = ()
    move: OptimizeSettings = field(default_factory=lambda: OptimizeSettings(lr=MOVE_LR))
    batch_size: int = 16
    seed: int = 0
    n_jobs: int = 1

    def __post_init__(self) -> None:
        for name, values, allowed in (("method", self.methods, PROJECTIONS), ("features", self.kinds, FEATURE_KINDS),
                                      ("classifier", self.classifiers, CLASSIFIERS)):
            unknown = [value for value in values if value not in allowed]
            if unknown:
                raise ValueError(f"{name} {', '.join(map(repr, unknown))} is not one of {', '.join(allowed)}")
        if not self.methods or not self.kinds:
            raise ValueError("give at least one projection method and one kind of features")


def _slug(text: str) -> str:
    """A file-name-safe form of a label value."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "class"


def _write_sound(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    with whole_file(path) as partial:
        soundfile.write(partial, np.asarray(audio, dtype=np.float32), sample_rate, subtype="PCM_16",
                        format=path.suffix[1:].upper())


def make_map(model: CPC, corpus: AudioCorpus, out_dir: str | Path, settings: MapSettings = MapSettings(), *,
             title: str = "latent map") -> dict:
    """Map ``corpus`` into ``out_dir`` (see the module docstring); returns what ``map.json`` holds."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = seconds.get(stage, 0.0) + now - clock
        clock = now

    clips = labelled_clips(corpus, settings.label, settings.clips_per_file, group_by=settings.group_by)
    wanted = list(settings.kinds) + (["c"] if settings.moves and "c" not in settings.kinds else [])
    features = {kind: extract_features(model, corpus, clips.starts, settings.batch_size, kind) for kind in wanted}
    with whole_file(out / "features.npz") as partial:
        with open(partial, "wb") as handle:
            np.savez(handle, starts=clips.starts, labels=np.asarray(clips.labels), groups=np.asarray(clips.groups),
                     names=np.asarray(clips.names), **features)
    lap("features")
    projections: dict[str, np.ndarray] = {}
    files = ["features.npz"]
    for kind in settings.kinds:
        for method in settings.methods:
            positions = project(features[kind], method, seed=settings.seed, n_jobs=settings.n_jobs)
            lap(method)
            plot_title = f"{kind} · {METHOD_TITLES[method]}"
            projections[plot_title] = positions
            name = f"map_{kind}_{method}.png"
            write_projection_png(out / name, positions, clips.labels,
                                 f"{title}: mean-pooled {kind}, {METHOD_TITLES[method]}")
            files.append(name)
            lap("pictures")
    (out / CLIP_FOLDER).mkdir(exist_ok=True)
    clip_files = [f"{CLIP_FOLDER}/{index:05d}.flac" for index in range(len(clips))]
    for index in tqdm(range(len(clips)), desc="clips", unit="clip", leave=False):
        audio = corpus.clip(int(clips.starts[index, 0]), int(clips.starts[index, 1])).numpy()
        _write_sound(out / clip_files[index], audio, corpus.sample_rate)
    intro = (f"{len(clips)} clips of {len(set(clips.groups))} pieces, "
             f"{len(set(clips.labels))} values of {settings.label}.")
    write_map_page(out / "map.html", projections, clips.labels, clips.names, clip_files, label=settings.label,
                   title=title, intro=intro)
    files.append("map.html")
    lap("page")
    report: dict = {"title": title, "clips": len(clips), "pieces": len(set(clips.groups)),
                    "classes": sorted(set(clips.labels)), "settings": asdict(settings), "files": files}
    if settings.classifiers:
        report["classification"] = {}
        for kind in settings.kinds:
            result = classify(features[kind], clips, label=settings.label, kind=kind, names=settings.classifiers,
                              test_fraction=settings.test_fraction, seed=settings.seed)
            write_json(out / f"classify_{kind}.json", result.to_dict())
            write_confusion_png(out / f"classify_{kind}.png", result)
            files += [f"classify_{kind}.json", f"classify_{kind}.png"]
            report["classification"][kind] = {score.name: {"accuracy": score.accuracy, "macro_f1": score.macro_f1}
                                              for score in result.scores}
            report["classification"][kind]["chance"] = {"accuracy": result.chance_accuracy}
        lap("classifiers")
    if settings.moves:
        report["moves"] = _moves(model, corpus, clips, features["c"], out / "moves", settings)
        files.append("moves/moves.json")
        lap("moves")
    report["seconds"] = seconds
    write_json(out / "map.json", report)
    return report


def _moves(model: CPC, corpus: AudioCorpus, clips: LabelledClips, contexts: np.ndarray, folder: Path,
           settings: MapSettings) -> list[dict]:
    """Every requested move made audible: the source and inverted clips as wavs, the reports in moves.json."""
    folder.mkdir(exist_ok=True)
    reports = []
    for source, target in settings.moves:
        move, before, after = move_between(model, corpus, clips, contexts, source, target,
                                           test_fraction=settings.test_fraction, seed=settings.seed,
                                           settings=settings.move)
        stem = f"{_slug(source)}_to_{_slug(target)}"
        _write_sound(folder / f"{stem}_source.wav", before, corpus.sample_rate)
        _write_sound(folder / f"{stem}_moved.wav", after, corpus.sample_rate)
        reports.append({**asdict(move), "files": [f"{stem}_source.wav", f"{stem}_moved.wav"]})
        write_json(folder / "moves.json", reports)
    return reports


def movement_summary(moves: Sequence[dict]) -> list[str]:
    """One line per move: how far the probe's prediction went toward the target class."""
    return [f"{m['source']} -> {m['target']} ({m['clip']}): p({m['target']}) {m['probe_target_before']:.3f} -> "
            f"{m['probe_target_after']:.3f} after inversion ({m['probe_target_moved']:.3f} for the moved vector); "
            f"distance to it {m['distance_before']:.3f} -> {m['distance_after']:.3f}" for m in moves]
