"""Barnes-Hut repulsion on the CPU with Numba: one Morton-sorted quadtree (octree in 3-D) per snapshot."""
from __future__ import annotations

import numpy as np
import torch

from . import DEFAULT_SOFTENING
from ._checks import check_inputs
from ._quadtree_numba import repulsion_one

LEAF_SIZE = 8


def repulsion(pos: torch.Tensor, charge: torch.Tensor, k: float, theta: float, *,
              softening: float = DEFAULT_SOFTENING, leaf_size: int = LEAF_SIZE) -> torch.Tensor:
    """Approximate repulsion: a cell whose size / distance to its charge centre is below ``theta`` acts
    as one charge at that centre. ``pos (B, N, D)`` with D in (2, 3), CPU tensors; returns ``pos``'s dtype."""
    check_inputs(pos, charge, k, theta, softening)
    if pos.device.type != "cpu":
        raise ValueError(f"bh_numba runs on the CPU, got pos on {pos.device}; use 'bh_torch' on GPUs")
    if not (isinstance(leaf_size, int) and leaf_size >= 1):
        raise ValueError(f"leaf_size must be an int >= 1, got {leaf_size!r}")
    pos_np = pos.detach().contiguous().numpy()
    charge_np = charge.detach().contiguous().numpy()
    out = np.zeros(pos_np.shape, np.float64)
    for b in range(pos_np.shape[0]):
        repulsion_one(pos_np[b], charge_np[b], k, theta, softening, leaf_size, out[b])
    return torch.from_numpy(out).to(pos.dtype)
