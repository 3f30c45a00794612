"""All-pairs repulsion in chunks: O(N^2) work, O(chunk * N) memory; the reference for every approximation."""
from __future__ import annotations

import torch

from . import DEFAULT_SOFTENING
from ._checks import check_inputs


def repulsion(pos: torch.Tensor, charge: torch.Tensor, k: float, theta: float = 0.0, *,
              softening: float = DEFAULT_SOFTENING, chunk: int = 1024,
              targets: torch.Tensor | None = None) -> torch.Tensor:
    """Exact repulsive force on every point (or only on the vertex indices ``targets``, giving (B, T, D));
    ``theta`` is accepted for interface parity and ignored. Computes in the dtype of ``pos``."""
    check_inputs(pos, charge, k, theta, softening, dims=(1, 2, 3))
    charge = charge.to(pos.dtype)
    if targets is not None:
        if targets.ndim != 1 or targets.dtype not in (torch.int32, torch.int64):
            raise ValueError(f"targets must be a 1-D integer index tensor, got {targets.dtype} {tuple(targets.shape)}")
        targets = targets.to(pos.device)
    count = pos.shape[1] if targets is None else targets.shape[0]
    out = pos.new_empty((pos.shape[0], count, pos.shape[2]))
    eps2 = softening * softening
    for begin in range(0, count, chunk):
        rows = slice(begin, begin + chunk) if targets is None else targets[begin:begin + chunk]
        p, q = pos[:, rows], charge[:, rows]
        diff = p[:, :, None, :] - pos[:, None, :, :]            # (B, c, N, D)
        dist2 = diff.square().sum(-1) + eps2                     # (B, c, N)
        inverse = torch.where(dist2 > 0, dist2.pow(-(k + 1) / 2), 0.0)  # coincident pairs: no force
        scale = charge[:, None, :] * inverse                     # q_j / |d|^(k+1)
        out[:, begin:begin + chunk] = (diff * scale[..., None]).sum(2) * q[..., None]
    return out
