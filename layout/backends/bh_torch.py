"""Barnes-Hut repulsion in pure torch, batched over snapshots, for GPUs (and CPUs) with no host syncs."""
from __future__ import annotations

import torch

from . import DEFAULT_SOFTENING
from ._bvh_torch import frontier_width, hilbert_order, summarize, traverse, tree_shape
from ._checks import check_inputs

LEAF_MIN = 8
PAIRS_PER_CHUNK = 2 ** 24  # bounds the (B, leaves, leaf, candidates) intermediates of one traversal chunk


def repulsion(pos: torch.Tensor, charge: torch.Tensor, k: float, theta: float, *,
              softening: float = DEFAULT_SOFTENING, leaf_min: int = LEAF_MIN,
              pairs_per_chunk: int = PAIRS_PER_CHUNK) -> torch.Tensor:
    """Approximate repulsion on ``pos (B, N, D)`` (D in 2, 3) on the device and in the dtype of ``pos``:
    cells with ``size / distance < theta`` seen from a whole target leaf act as one charge."""
    check_inputs(pos, charge, k, theta, softening)
    if not (isinstance(leaf_min, int) and leaf_min >= 1):
        raise ValueError(f"leaf_min must be an int >= 1, got {leaf_min!r}")
    b, n, d = pos.shape
    if n == 0:
        return torch.zeros_like(pos)
    pos = pos.detach()
    charge = charge.detach().to(pos.dtype)
    levels, leaf = tree_shape(n, leaf_min)
    padded = leaf * 2 ** levels
    order = hilbert_order(pos)
    rel = torch.gather(pos - pos.amin(1, keepdim=True), 1, order[..., None].expand(-1, -1, d))
    sorted_charge = torch.gather(charge, 1, order)
    if padded > n:  # zero-charge copies of the last point: they change no box and exert no force
        rel = torch.cat([rel, rel[:, -1:].expand(-1, padded - n, -1)], 1)
        sorted_charge = torch.cat([sorted_charge, sorted_charge.new_zeros(b, padded - n)], 1)
    table = summarize(rel, sorted_charge, levels, leaf)
    width = frontier_width(theta, d, levels)
    per_leaf = b * leaf * leaf * max(2 * width, 1) * d
    step = max(1, pairs_per_chunk // per_leaf)
    expo, eps2 = (k + 1) / 2, softening * softening
    force = torch.cat([traverse(rel, sorted_charge, table, slice(g, g + step), leaf, width, theta, expo, eps2)
                       for g in range(0, 2 ** levels, step)], 1).view(b, padded, d)
    force = (force * sorted_charge[..., None])[:, :n]
    return torch.empty_like(force).scatter_(1, order[..., None].expand(-1, -1, d), force)
