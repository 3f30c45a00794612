"""All-pairs repulsion in chunks: O(N^2) work, O(chunk * N) memory; the reference for every approximation."""
from __future__ import annotations

import torch

from . import DEFAULT_SOFTENING


def repulsion(pos: torch.Tensor, charge: torch.Tensor, k: float, theta: float = 0.0, *,
              softening: float = DEFAULT_SOFTENING, chunk: int = 1024) -> torch.Tensor:
    """Exact repulsive force on every point; ``theta`` is accepted for interface parity and ignored."""
    if pos.ndim != 3 or charge.shape != pos.shape[:2]:
        raise ValueError(f"pos must be (B, N, D) and charge (B, N); got {tuple(pos.shape)} and "
                         f"{tuple(charge.shape)}")
    out = torch.empty_like(pos)
    eps2 = softening * softening
    for start in range(0, pos.shape[1], chunk):
        p = pos[:, start:start + chunk]
        diff = p[:, :, None, :] - pos[:, None, :, :]            # (B, c, N, D)
        dist2 = diff.square().sum(-1) + eps2                     # (B, c, N)
        scale = charge[:, None, :] * dist2.pow(-(k + 1) / 2)     # q_j / |d|^(k+1)
        out[:, start:start + chunk] = (diff * scale[..., None]).sum(2)
    return out * charge[..., None]
