"""Argument checks shared by every repulsion backend, so they all reject the same inputs the same way."""
from __future__ import annotations

import math

import torch


def check_inputs(pos: torch.Tensor, charge: torch.Tensor, k: float, theta: float, softening: float,
                 dims: tuple[int, ...] = (2, 3)) -> None:
    """Raise TypeError/ValueError naming the argument when the repulsion inputs are unusable."""
    for name, value in (("pos", pos), ("charge", charge)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if not pos.is_floating_point():
        raise TypeError(f"pos must be a floating-point tensor, got dtype {pos.dtype}")
    if pos.ndim != 3 or pos.shape[2] not in dims:
        raise ValueError(f"pos must have shape (B, N, D) with D in {dims}, got {tuple(pos.shape)}")
    if tuple(charge.shape) != tuple(pos.shape[:2]):
        raise ValueError(f"charge must have shape (B, N) = {tuple(pos.shape[:2])}, got {tuple(charge.shape)}")
    if charge.device != pos.device:
        raise ValueError(f"charge is on {charge.device} but pos is on {pos.device}; both must share a device")
    if not (math.isfinite(k) and k > 0):
        raise ValueError(f"k must be a finite exponent > 0, got {k!r}")
    if not (math.isfinite(theta) and theta >= 0):
        raise ValueError(f"theta must be a finite opening angle >= 0, got {theta!r}")
    if not (math.isfinite(softening) and softening >= 0):
        raise ValueError(f"softening must be a finite length >= 0, got {softening!r}")
