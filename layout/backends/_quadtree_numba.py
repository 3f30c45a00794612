"""Numba kernels for Barnes-Hut repulsion on one point set: Morton-sorted 2^D-tree, stackless traversal.

The tree is stored flat in pre-order, so a node's first child is the next node and ``skip[node]`` (one
past the node's subtree) is where a traversal continues after accepting or finishing the node. Every
internal node has at least two non-empty children (single-child chains are collapsed), which bounds the
node count by ``2 N``. All kernels take float64 arrays so each compiles to exactly one signature.
"""
from __future__ import annotations

import numba as nb
import numpy as np

CODE_BITS = 62  # Morton bits in an int64 code: 31 levels in 2-D, 20 in 3-D
# no nnan/ninf: softening keeps every value finite, and we want that checked rather than assumed
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


@nb.njit(parallel=True, cache=True)
def morton_codes(pos: np.ndarray, lo: np.ndarray, side: float, bits: int) -> np.ndarray:
    """Interleave the bits of each point's quantised coordinates (``bits`` per axis) into one int64."""
    n, d = pos.shape
    codes = np.empty(n, np.int64)
    top = (1 << bits) - 1
    scale = (top + 1) / side
    for i in nb.prange(n):
        code = 0
        for a in range(d):
            q = min(max(int((pos[i, a] - lo[a]) * scale), 0), top)
            for b in range(bits):
                code |= ((q >> b) & 1) << (b * d + a)
        codes[i] = code
    return codes


@nb.njit(cache=True)
def build_tree(codes: np.ndarray, d: int, bits: int, leaf_size: int):
    """Pre-order tree over sorted ``codes``: (count, start, end, parent, leaf) with point ranges per node."""
    n = codes.shape[0]
    max_nodes = max(2 * n, 1)
    start = np.empty(max_nodes, np.int64)
    end = np.empty(max_nodes, np.int64)
    parent = np.empty(max_nodes, np.int64)
    leaf = np.zeros(max_nodes, np.bool_)
    n_child = 1 << d
    stack = np.empty((n_child * bits + 2, 3), np.int64)
    bounds = np.empty(n_child + 1, np.int64)
    stack[0, 0], stack[0, 1], stack[0, 2] = 0, n, -1
    top, count = 1, 0
    while top > 0:
        top -= 1
        lo, hi, par = stack[top, 0], stack[top, 1], stack[top, 2]
        node = count
        count += 1
        start[node], end[node], parent[node] = lo, hi, par
        diff = codes[lo] ^ codes[hi - 1]
        if hi - lo <= leaf_size or diff == 0:  # small, or all points share the finest cell
            leaf[node] = True
            continue
        high = 0
        while (diff >> (high + 1)) != 0:
            high += 1
        shift = (high // d) * d  # lowest bit of the first digit on which the node's points differ
        base = (codes[lo] >> (shift + d)) << (shift + d)
        bounds[0], bounds[n_child] = lo, hi
        for v in range(1, n_child):
            bounds[v] = lo + np.searchsorted(codes[lo:hi], base + (v << shift))
        for v in range(n_child - 1, -1, -1):  # reversed, so the first child is popped (and numbered) first
            if bounds[v + 1] > bounds[v]:
                stack[top, 0], stack[top, 1], stack[top, 2] = bounds[v], bounds[v + 1], node
                top += 1
    return count, start[:count], end[:count], parent[:count], leaf[:count]


@nb.njit(cache=True)
def summarize(start, end, parent, leaf, spos, sq):
    """Per node: total charge, |q|-weighted centre, tight box, squared box size and skip pointer."""
    count = start.shape[0]
    d = spos.shape[1]
    charge = np.zeros(count)
    weight = np.zeros(count)
    centre = np.zeros((count, d))
    box_lo = np.full((count, d), np.inf)
    box_hi = np.full((count, d), -np.inf)
    skip = np.ones(count, np.int64)
    for node in range(count - 1, -1, -1):  # children follow their parent, so they are complete first
        if leaf[node]:
            for j in range(start[node], end[node]):
                w = abs(sq[j])
                charge[node] += sq[j]
                weight[node] += w
                for a in range(d):
                    centre[node, a] += w * spos[j, a]
                    box_lo[node, a] = min(box_lo[node, a], spos[j, a])
                    box_hi[node, a] = max(box_hi[node, a], spos[j, a])
        p = parent[node]
        if p >= 0:
            skip[p] += skip[node]
            charge[p] += charge[node]
            weight[p] += weight[node]
            for a in range(d):
                centre[p, a] += centre[node, a]
                box_lo[p, a] = min(box_lo[p, a], box_lo[node, a])
                box_hi[p, a] = max(box_hi[p, a], box_hi[node, a])
    size2 = np.zeros(count)
    for node in range(count):
        skip[node] += node
        for a in range(d):
            if weight[node] > 0:
                centre[node, a] /= weight[node]
            else:
                centre[node, a] = 0.5 * (box_lo[node, a] + box_hi[node, a])
            size2[node] = max(size2[node], (box_hi[node, a] - box_lo[node, a]) ** 2)
    return charge, weight, centre, box_lo, box_hi, size2, skip


@nb.njit(inline="always", fastmath=FASTMATH)
def _inverse_power(r2: float, expo: float) -> float:
    """``r2 ** -expo`` with the common exponents (k = 1, 2, 3) done without ``pow``; 0 for coincident points."""
    if r2 == 0.0:
        return 0.0
    if expo == 1.0:
        return 1.0 / r2
    if expo == 1.5:
        return 1.0 / (r2 * np.sqrt(r2))
    if expo == 2.0:
        return 1.0 / (r2 * r2)
    return r2 ** -expo


@nb.njit(parallel=True, cache=True, fastmath=FASTMATH)
def traverse(spos, sq, perm, start, end, leaf, skip, charge, weight, centre, box_lo, box_hi, size2,
             theta2, expo, eps2, out):
    """Force on every (sorted) target, written to ``out[perm[t]]``; one prange iteration per target."""
    n, d = spos.shape
    count = start.shape[0]
    acc = np.zeros((n, d))
    for t in nb.prange(n):
        node = 0
        while node < count:
            if weight[node] == 0.0:  # no charge anywhere below: contributes nothing
                node = skip[node]
                continue
            if leaf[node]:
                for j in range(start[node], end[node]):
                    r2 = eps2
                    for a in range(d):
                        r2 += (spos[t, a] - spos[j, a]) ** 2
                    s = sq[j] * _inverse_power(r2, expo)
                    for a in range(d):
                        acc[t, a] += s * (spos[t, a] - spos[j, a])
                node = skip[node]
                continue
            d2 = 0.0
            inside = True
            for a in range(d):
                d2 += (spos[t, a] - centre[node, a]) ** 2
                inside = inside and box_lo[node, a] <= spos[t, a] <= box_hi[node, a]
            if size2[node] < theta2 * d2 and not inside:
                s = charge[node] * _inverse_power(d2 + eps2, expo)
                for a in range(d):
                    acc[t, a] += s * (spos[t, a] - centre[node, a])
                node = skip[node]
            else:
                node += 1
        for a in range(d):
            out[perm[t], a] = sq[t] * acc[t, a]


def repulsion_one(pos: np.ndarray, charge: np.ndarray, k: float, theta: float, softening: float,
                  leaf_size: int, out: np.ndarray) -> None:
    """Barnes-Hut repulsion of one point set ``pos (N, D)`` into ``out (N, D)`` (float64)."""
    n, d = pos.shape
    if n == 0:
        return
    lo = pos.min(axis=0).astype(np.float64)
    side = float((pos.max(axis=0) - lo).max())
    side = side if side > 0 else 1.0
    bits = CODE_BITS // d
    codes = morton_codes(pos.astype(np.float64, copy=False), lo, side, bits)
    perm = np.argsort(codes, kind="stable")
    codes = codes[perm]
    spos = pos[perm].astype(np.float64)
    sq = charge[perm].astype(np.float64)
    _, start, end, parent, leaf = build_tree(codes, d, bits, leaf_size)
    charge_sum, weight, centre, box_lo, box_hi, size2, skip = summarize(start, end, parent, leaf, spos, sq)
    traverse(spos, sq, perm, start, end, leaf, skip, charge_sum, weight, centre, box_lo, box_hi, size2,
             float(theta) ** 2, (float(k) + 1.0) / 2.0, float(softening) ** 2, out)
