"""Writing what the network hears: an auralised clip with its figure, and a clip's scaleogram picture.

Shared by ``immersions auralise`` and the gallery, so both write the same files the same (atomic) way.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from immersions.cpc.auralise import Auralisation
from immersions.cpc.model import CPC
from immersions.cpc.spectral import log_power

from .app_inputs import resample
from .atomic import write_png, write_wav
from .pictures import auralisation_figure, log_power_range, map_image


def _floor(model: CPC) -> float:
    return float(np.log(model.config.power_floor))


def write_scaleogram(path: str | Path, model: CPC, clip: np.ndarray) -> Path:
    """The log-power scaleogram of ``clip`` (at the model's rate) as the model hears it, as a PNG."""
    values = log_power(model, clip)
    return write_png(path, map_image(values, *log_power_range(values, _floor(model))))


def write_auralisation(folder: str | Path, stem: str, model: CPC, clip: np.ndarray, result: Auralisation,
                       sample_rate: int) -> dict[str, str]:
    """``STEM.wav`` (the auralised clip at ``sample_rate``, its own rate) and ``STEM.png`` (the clip's scaleogram,
    the mask, the result's scaleogram; ``clip`` is the given clip at the model's rate) in ``folder``; returns
    the files' names by kind."""
    folder = Path(folder)
    wav = write_wav(folder / f"{stem}.wav", result.audio, sample_rate)
    heard = resample(result.audio, sample_rate, model.config.sample_rate)
    figure = auralisation_figure(log_power(model, clip), result.mask, log_power(model, heard), _floor(model))
    png = write_png(folder / f"{stem}.png", figure)
    return {"audio": wav.name, "figure": png.name}
