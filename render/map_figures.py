"""Pictures of a latent map: clips projected to 2-D coloured by label, and classifiers' confusion matrices.

Drawn with matplotlib's Agg canvas (no display needed) and written atomically.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from immersions.cpc.latent_map import Classification

from .atomic import whole_file

MAX_LEGEND_ENTRIES = 40


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def class_colours(classes: Sequence[str]) -> dict[str, str]:
    """One distinct hex colour per class, the same on the picture and the page (tab10, then tab20, then hsv)."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    count = len(classes)
    palette = colormaps["tab10" if count <= 10 else "tab20" if count <= 20 else "hsv"]
    values = range(count) if count <= 20 else np.linspace(0.0, 1.0, count, endpoint=False)
    return {name: to_hex(palette(value)) for name, value in zip(classes, values)}


def write_projection_png(path: str | Path, positions: np.ndarray, labels: Sequence[str], title: str,
                         size: tuple[float, float] = (8.0, 6.0)) -> Path:
    """A scatter of ``positions`` ``(N, 2)`` coloured by label, with a legend (up to ``MAX_LEGEND_ENTRIES``)."""
    labels = np.asarray(labels)
    classes = sorted(set(labels.tolist()))
    colours = class_colours(classes)
    figure = _figure(*size)
    axes = figure.add_subplot()
    for name in classes:
        chosen = labels == name
        axes.scatter(positions[chosen, 0], positions[chosen, 1], s=10, alpha=0.8, color=colours[name],
                     label=f"{name} ({int(chosen.sum())})", linewidths=0)
    axes.set_title(title)
    axes.set_xticks([])
    axes.set_yticks([])
    if len(classes) <= MAX_LEGEND_ENTRIES:
        axes.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="small", markerscale=2, frameon=False)
    with whole_file(path) as partial:
        figure.savefig(partial, format="png")
    return Path(path)


def write_confusion_png(path: str | Path, result: Classification) -> Path:
    """Every classifier's confusion matrix (rows true, columns predicted; counts) side by side, titled with its
    test accuracy and macro F1."""
    count = len(result.scores)
    side = max(3.5, 0.45 * len(result.classes) + 2.0)
    figure = _figure(side * count, side + 0.6)
    for index, score in enumerate(result.scores):
        axes = figure.add_subplot(1, count, index + 1)
        matrix = np.asarray(score.confusion)
        axes.imshow(matrix, cmap="Blues")
        ticks = np.arange(len(result.classes))
        axes.set_xticks(ticks, result.classes, rotation=90, fontsize="small")
        axes.set_yticks(ticks, result.classes if index == 0 else [], fontsize="small")
        for (row, column), value in np.ndenumerate(matrix):
            if value:
                axes.text(column, row, str(value), ha="center", va="center", fontsize="x-small",
                          color="white" if value > matrix.max() / 2 else "black")
        axes.set_title(f"{score.name}: {100 * score.accuracy:.1f} %, F1 {score.macro_f1:.2f}", fontsize="medium")
        axes.set_xlabel("predicted")
        if index == 0:
            axes.set_ylabel(f"true {result.label}")
    figure.suptitle(f"{result.label} from mean-pooled {result.features}: {result.test_clips} held-out clips of "
                    f"{len(result.test_groups)} pieces (chance {100 * result.chance_accuracy:.1f} %)",
                    fontsize="medium")
    with whole_file(path) as partial:
        figure.savefig(partial, format="png")
    return Path(path)
