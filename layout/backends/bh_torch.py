"""Barnes-Hut repulsion in pure torch, batched over snapshots, for GPUs (and CPUs) with no host syncs."""
from __future__ import annotations

import torch

from . import DEFAULT_SOFTENING
from ._bvh_torch import frontier_width, hilbert_order, summarize, traverse, tree_shape
from ._checks import check_inputs

LEAF_MIN = 8
# elements of the largest (B, leaves, leaf, candidates, D) intermediate of one traversal chunk: small on
# CPUs (cache), large on GPUs, where fewer chunks mean fewer kernel launches
PAIRS_PER_CHUNK = {"cpu": 2 ** 24, "cuda": 2 ** 29}


def repulsion(pos: torch.Tensor, charge: torch.Tensor, k: float, theta: float, *,
              softening: float = DEFAULT_SOFTENING, leaf_min: int = LEAF_MIN,
              pairs_per_chunk: int | None = None) -> torch.Tensor:
    """Approximate repulsion on ``pos (B, N, D)`` (D in 2, 3) on the device and in the dtype of ``pos``:
    ``theta`` sets how many cells each target leaf opens per level (about all with size / distance above
    theta, neediest first); the others act as one charge at their charge centre. ``theta = 0`` is exact.
    ``pairs_per_chunk`` bounds the intermediates (elements) of one chunk of target leaves."""
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
    budget = pairs_per_chunk or PAIRS_PER_CHUNK.get(pos.device.type, PAIRS_PER_CHUNK["cuda"])
    step = max(1, budget // per_leaf)
    expo, eps2 = (k + 1) / 2, softening * softening
    force = torch.cat([traverse(rel, sorted_charge, table, slice(g, g + step), leaf, width, expo, eps2)
                       for g in range(0, 2 ** levels, step)], 1).view(b, padded, d)
    force = (force * sorted_charge[..., None])[:, :n]
    return torch.empty_like(force).scatter_(1, order[..., None].expand(-1, -1, d), force)
