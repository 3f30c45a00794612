"""Vertex charges from activation variance: busy neurons push harder and get more room in the layout."""
from __future__ import annotations

import numpy as np


def charges_from_variance(variance: np.ndarray, *, floor: float = 0.05, power: float = 1.0) -> np.ndarray:
    """Per-neuron variance ``(N,)`` or per-snapshot ``(S, N)`` -> float32 charges with mean 1 per snapshot.

    Charges are ``floor + (1 - floor) * v**power / mean(v**power)``, so every vertex keeps at least ``floor``
    (no vertex stops repelling) and the mean stays exactly 1. A snapshot whose variance is zero everywhere
    gets uniform charges.
    """
    values = np.asarray(variance, dtype=np.float64)
    if values.ndim not in (1, 2):
        raise ValueError(f"variance must have shape (N,) or (S, N), got {values.shape}")
    if values.shape[-1] == 0:
        raise ValueError(f"variance must hold at least one neuron, got shape {values.shape}")
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        raise ValueError(f"variance has {bad} non-finite (NaN or inf) entries out of {values.size}")
    negative = int(np.count_nonzero(values < 0))
    if negative:
        raise ValueError(f"variance has {negative} negative entries out of {values.size}; "
                         f"the smallest is {values.min()}")
    if not 0 < floor <= 1:
        raise ValueError(f"floor must lie in (0, 1], got {floor}")
    if not (np.isfinite(power) and power > 0):
        raise ValueError(f"power must be finite and > 0, got {power}")

    peak = values.max(axis=-1, keepdims=True)
    scaled = np.divide(values, peak, out=np.zeros_like(values), where=peak > 0) ** power  # in [0, 1]: no overflow
    mean = scaled.mean(axis=-1, keepdims=True)
    relative = np.divide(scaled, mean, out=np.ones_like(scaled), where=mean > 0)
    return (floor + (1.0 - floor) * relative).astype(np.float32)
