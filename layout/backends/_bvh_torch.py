"""Batched Barnes-Hut in pure tensor ops: a balanced binary tree over Hilbert-sorted points, traversed
level by level with a fixed-width frontier per target leaf.

Every shape depends on (B, N, D, theta) only, never on values, so a call has no host synchronisation.
The tree is implicit: level ``l`` has ``2**l`` nodes, node ``i`` holds the contiguous sorted points of
leaves ``[i * 2**(L-l), (i+1) * 2**(L-l))``; equal-count splits keep it balanced however clustered the
points are. Targets are processed a leaf at a time. At each level the children of the leaf's frontier are
ranked by need = cell size / distance from the leaf's box to the cell's charge centre (infinite when the
boxes overlap): the ``width`` neediest form the next frontier, the others act now as one charge each.
``width`` grows with 1 / theta so that every cell with need >= theta usually fits, which makes the result
at least as accurate as Barnes-Hut at theta; where it does not fit (crowded regions) only the least needy
cells are approximated, so accuracy degrades gently and nothing is ever dropped. The frontier left at the
leaf level is summed exactly, point by point.
"""
from __future__ import annotations

import math

import torch

HILBERT_BITS = 20  # per axis (at most 21 for the 3-D spread): fine enough at any clustering


# shift-and-mask steps that move bit j of a (<= 32-bit, resp. <= 21-bit) integer to bit j * D
_SPREAD_STEPS = {
    2: ((16, 0x0000FFFF0000FFFF), (8, 0x00FF00FF00FF00FF), (4, 0x0F0F0F0F0F0F0F0F),
        (2, 0x3333333333333333), (1, 0x5555555555555555)),
    3: ((32, 0x001F00000000FFFF), (16, 0x001F0000FF0000FF), (8, 0x100F00F00F00F00F),
        (4, 0x10C30C30C30C30C3), (2, 0x1249249249249249)),
}


def _spread(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Move bit ``j`` of ``x`` to bit ``j * dim`` (the interleave step of a space-filling-curve index)."""
    for shift, mask in _SPREAD_STEPS[dim]:
        x = (x | (x << shift)) & mask
    return x


def hilbert_order(pos: torch.Tensor, bits: int = HILBERT_BITS) -> torch.Tensor:
    """Per-snapshot permutation sorting ``pos (B, N, D)`` along the Hilbert curve, ties stable.

    Contiguous runs of the Hilbert order are spatially compact (unlike Morton order, whose jumps give
    equal-count nodes huge boxes). Skilling's axes-to-transpose algorithm, vectorised over points.
    """
    dim = pos.shape[2]
    lo = pos.amin(1, keepdim=True)
    side = (pos.amax(1, keepdim=True) - lo).amax(-1, keepdim=True)
    side = torch.where(side > 0, side, torch.ones_like(side))
    top = 2 ** bits - 1
    x = list(((pos - lo) / side * top).clamp(0, top).long().unbind(-1))
    q = 1 << (bits - 1)
    while q > 1:
        low = q - 1
        for i in range(dim):
            high = (x[i] & q) != 0
            swap = (x[0] ^ x[i]) & low
            if i == 0:
                x[0] = torch.where(high, x[0] ^ low, x[0])
                continue
            x[0], x[i] = torch.where(high, x[0] ^ low, x[0] ^ swap), torch.where(high, x[i], x[i] ^ swap)
        q >>= 1
    for i in range(1, dim):
        x[i] = x[i] ^ x[i - 1]
    flip = torch.zeros_like(x[0])
    q = 1 << (bits - 1)
    while q > 1:
        flip = torch.where((x[dim - 1] & q) != 0, flip ^ (q - 1), flip)
        q >>= 1
    code = torch.zeros_like(x[0])
    for i in range(dim):
        code |= _spread(x[i] ^ flip, dim) << (dim - 1 - i)
    return torch.sort(code, dim=1, stable=True).indices


def tree_shape(n: int, leaf_min: int) -> tuple[int, int]:
    """``(levels, leaf)``: 2**levels leaves of ``leaf`` points (leaf_min <= leaf <= 2 leaf_min) cover n."""
    levels = max(0, int(math.floor(math.log2(max(n, 1) / leaf_min)))) if n >= leaf_min else 0
    return levels, -(-max(n, 1) // 2 ** levels)


def frontier_width(theta: float, dim: int, levels: int) -> int:
    """Frontier slots per target leaf: about the number of cells within ``size / theta`` of a leaf (the
    constant was measured on uniform and clustered sets); all leaves, i.e. exact, when ``theta`` is 0."""
    if theta == 0:
        return 2 ** levels
    return min(2 ** levels, int(math.ceil(1.25 * (1.0 + 2.0 / theta) ** dim)))


def summarize(rel: torch.Tensor, charge: torch.Tensor, levels: int, leaf: int) -> list[torch.Tensor]:
    """Per level, ``(B, 2**l, 3 D + 2)`` rows: |q|-weighted centre, box low, box high, charge, weight."""
    b, _, d = rel.shape
    weight = charge.abs()
    pts = rel.view(b, 2 ** levels, leaf, d)
    sums = [(weight.view(b, -1, leaf, 1) * pts).sum(2), pts.amin(2), pts.amax(2),
            charge.view(b, -1, leaf).sum(2, keepdim=True), weight.view(b, -1, leaf).sum(2, keepdim=True)]
    table = [None] * (levels + 1)
    for level in range(levels, -1, -1):
        first, low, high, total, mass = sums
        centre = torch.where(mass > 0, first / mass.clamp_min(torch.finfo(rel.dtype).tiny), 0.5 * (low + high))
        table[level] = torch.cat([centre, low, high, total, mass], -1)
        if level:
            pair = [s.view(b, -1, 2, s.shape[-1]) for s in sums]
            sums = [pair[0].sum(2), pair[1].amin(2), pair[2].amax(2), pair[3].sum(2), pair[4].sum(2)]
    return table


def _inverse_power(r2: torch.Tensor, expo: float) -> torch.Tensor:
    """``r2 ** -expo``, with k = 1 and k = 2 done without ``pow``; 0 for coincident points (r2 = 0)."""
    if expo == 1.0:
        inverse = r2.reciprocal()
    elif expo == 1.5:
        inverse = r2.rsqrt() / r2
    else:
        inverse = r2.pow(-expo)
    return torch.where(r2 > 0, inverse, 0.0)


def _monopoles(targets: torch.Tensor, sources: torch.Tensor, charge: torch.Tensor, expo: float,
               eps2: float) -> torch.Tensor:
    """Sum over sources of ``charge_j (t - s_j) / (|t - s_j|^2 + eps2)^expo``: targets (..., T, D),
    sources (..., S, D), charge (..., S) -> (..., T, D)."""
    # one (T, S) plane per axis: reductions then run over the long, contiguous source axis
    diff = [targets[..., :, None, a] - sources[..., None, :, a] for a in range(targets.shape[-1])]
    r2 = diff[0].square()
    for plane in diff[1:]:
        r2 += plane.square()
    scale = charge[..., None, :] * _inverse_power(r2 + eps2, expo)
    return torch.stack([(scale * plane).sum(-1) for plane in diff], -1)


def _gather_rows(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``table (B, M, C)`` rows at ``index (B, G, S)`` -> (B, G, S, C)."""
    b, g, s = index.shape
    rows = torch.gather(table, 1, index.reshape(b, g * s, 1).expand(-1, -1, table.shape[-1]))
    return rows.view(b, g, s, table.shape[-1])


def traverse(rel: torch.Tensor, charge: torch.Tensor, table: list[torch.Tensor], groups: slice, leaf: int,
             width: int, expo: float, eps2: float) -> torch.Tensor:
    """Force (before the target's own charge) on the points of target leaves ``groups``: (B, G, leaf, D)."""
    levels = len(table) - 1
    b, _, d = rel.shape
    leaf_rows = table[levels][:, groups]
    count = leaf_rows.shape[1]
    box_lo, box_hi = leaf_rows[..., None, d:2 * d], leaf_rows[..., None, 2 * d:3 * d]
    targets = rel.view(b, -1, leaf, d)[:, groups]
    force = torch.zeros_like(targets)
    frontier = torch.zeros(b, count, 1, dtype=torch.long, device=rel.device)
    alive = torch.ones(b, count, 1, dtype=torch.bool, device=rel.device)
    for level in range(1, levels + 1):
        cand = (2 * frontier[..., None] + torch.arange(2, device=rel.device)).flatten(-2)
        rows = _gather_rows(table[level], cand)
        centre, low, high = rows[..., :d], rows[..., d:2 * d], rows[..., 2 * d:3 * d]
        present = alive.repeat_interleave(2, -1) & (rows[..., -1] > 0)
        gap = ((box_lo - centre).clamp_min(0) + (centre - box_hi).clamp_min(0)).norm(dim=-1)
        disjoint = ~((low <= box_hi) & (box_lo <= high)).all(-1)
        size = (high - low).amax(-1)
        # need = size / distance (infinite for overlapping boxes), neediest first; absent cells last
        need = torch.where(disjoint & (gap > 0), size / gap.clamp_min(torch.finfo(gap.dtype).tiny), torch.inf)
        need = torch.where(present, need, -1.0)
        need, rank = torch.sort(need, dim=-1, descending=True, stable=True)
        placed = torch.gather(cand, -1, rank)
        used = need >= 0
        keep = min(width, 2 ** level)
        frontier, alive = placed[..., :keep], used[..., :keep]
        if placed.shape[-1] > keep:  # the least needy candidates are evaluated as monopoles now
            now = _gather_rows(table[level], placed[..., keep:])
            force += _monopoles(targets, now[..., :d], now[..., 3 * d] * used[..., keep:], expo, eps2)
    points = (frontier[..., None] * leaf + torch.arange(leaf, device=rel.device)).flatten(-2)
    flat = points.reshape(b, -1)
    near = torch.gather(rel, 1, flat[..., None].expand(-1, -1, d)).view(*points.shape, d)
    near_charge = torch.gather(charge, 1, flat).view(points.shape) * alive.repeat_interleave(leaf, -1)
    return force + _monopoles(targets, near, near_charge, expo, eps2)
