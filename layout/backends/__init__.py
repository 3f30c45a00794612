"""Repulsion backends behind one signature, picked by name or given as a callable.

Every backend computes, for each of ``B`` independent point sets (snapshots or graphs),
``r_i = q_i * sum_j q_j (p_i - p_j) / (|p_i - p_j|^2 + softening^2)^((k+1)/2)``
as ``repulsion(pos (B, N, D), charge (B, N), k, theta, *, softening) -> (B, N, D)``.
Coincident points exert no force on each other, also when ``softening`` is 0 (the pair term is 0/0);
a softening > 0 keeps every other pair finite too.
"""
from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # the names and the softening are read without torch (the command line's help)
    import torch

logger = logging.getLogger(__name__)

DEFAULT_SOFTENING = 1e-3


class Repulsion(Protocol):
    def __call__(self, pos: torch.Tensor, charge: torch.Tensor, k: float, theta: float, *,
                 softening: float = DEFAULT_SOFTENING) -> torch.Tensor: ...


# name -> module that defines ``repulsion``; imported on first use so numba compiles only when needed.
BACKENDS: dict[str, str] = {
    "exact": "immersions.layout.backends.exact",
    "bh_numba": "immersions.layout.backends.bh_numba",
    "bh_torch": "immersions.layout.backends.bh_torch",
    "bh_triton": "immersions.layout.backends.bh_triton",
}


def get_backend(backend: str | Repulsion, device: torch.device | str = "cpu") -> Repulsion:
    """Resolve a backend name (or ``"auto"``, or any callable) to a repulsion function."""
    if callable(backend):
        return backend
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a name or a callable, got {type(backend).__name__}")
    name = backend.replace("-", "_").lower()
    if name == "auto":
        import torch

        name = "bh_torch" if torch.device(device).type == "cuda" else "bh_numba"
        name = name if name in BACKENDS else "exact"
        logger.info("repulsion backend 'auto' chose %r for device %s", name, device)
    if name not in BACKENDS:
        raise ValueError(f"unknown repulsion backend {backend!r}; choose one of {sorted(BACKENDS)} or 'auto', "
                         "or pass a callable repulsion(pos, charge, k, theta)")
    return importlib.import_module(BACKENDS[name]).repulsion
