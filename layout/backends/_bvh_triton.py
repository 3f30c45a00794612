"""The Barnes-Hut tree of ``_bvh_torch`` built by a few fused Triton kernels, for the ``bh_triton`` walk.

The tree is the one of ``_bvh_torch`` (balanced binary, equal-count splits of Hilbert-sorted points):
Hilbert keys come from one kernel (the same keys as ``hilbert_order``), then one ``torch.sort``; the
per-node summaries from L + 1 launches (leaves, then one level up each), stored as one heap-ordered table:
row ``h - 1`` holds node ``h``, whose children are ``2h`` and ``2h + 1``; the ``2**L`` leaves are nodes
``2**L .. 2**(L+1) - 1``. A row holds the charge centre, the charge and the squared reach: a cell is
accepted when the distance from the target box to its charge centre exceeds both size / theta and the
cell's diagonal (which rules out overlapping boxes). ``theta = 0`` opens every cell.

Triton has no CPU back end: CPU tensors run only in Triton's interpreter (slow, for testing), which
``TRITON_INTERPRET=1`` selects when set before ``triton`` is imported, because Triton decides at decoration
time, and its own library (``tl.sum``...) is decorated when ``triton.language`` is.
"""
from __future__ import annotations

import torch

from ._bvh_torch import HILBERT_BITS

try:  # loads on first use of the backend; without triton it still imports, and bh_triton says how to fix
    import triton
    import triton.language as tl
except ImportError:
    triton = tl = None

HILBERT_BLOCK = 1024  # points per program of the key kernel
SUMMARY_NODES = 32   # tree nodes per program of the summary kernels


def triton_jit(fn):
    """``triton.jit`` where Triton is installed; elsewhere the plain function, never launched."""
    return fn if triton is None else triton.jit(fn)


@triton_jit
def _exchange(x0, xi, bit: tl.constexpr):
    """One step of Skilling's axes-to-transpose between axis 0 and axis i > 0 at ``bit``."""
    low = bit - 1
    high = (xi & bit) != 0
    swap = (x0 ^ xi) & low
    return tl.where(high, x0 ^ low, x0 ^ swap), tl.where(high, xi, xi ^ swap)


@triton_jit
def _spread(x, D: tl.constexpr, BITS: tl.constexpr):
    """Bit ``j`` of ``x`` moved to bit ``j * D``."""
    spread = x & 1
    for j in tl.static_range(1, BITS):
        spread |= ((x >> j) & 1) << (j * D)
    return spread


@triton_jit
def _hilbert_keys(pos, low, side, keys, n, D: tl.constexpr, BITS: tl.constexpr, BLOCK: tl.constexpr):
    """Hilbert index of every point of ``pos (B, n, D)`` (program 0: a block of points, program 1: the
    snapshot), with the arithmetic of ``_bvh_torch.hilbert_order`` so both give the same keys; ``low (B, D)``
    and ``side (B,)`` span each snapshot."""
    snapshot = tl.program_id(1).to(tl.int64)
    index = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    ok = index < n
    pos += snapshot * n * D + index * D
    scale = tl.load(side + snapshot)
    top = (1 << BITS) - 1
    x0 = tl.load(pos, mask=ok, other=0.0) - tl.load(low + snapshot * D)
    x0 = tl.minimum(tl.maximum(tl.div_rn(x0, scale) * top, 0.0), top).to(tl.int64)
    x1 = tl.load(pos + 1, mask=ok, other=0.0) - tl.load(low + snapshot * D + 1)
    x1 = tl.minimum(tl.maximum(tl.div_rn(x1, scale) * top, 0.0), top).to(tl.int64)
    x2 = x1 * 0
    if D == 3:
        x2 = tl.load(pos + 2, mask=ok, other=0.0) - tl.load(low + snapshot * D + 2)
        x2 = tl.minimum(tl.maximum(tl.div_rn(x2, scale) * top, 0.0), top).to(tl.int64)
    for step in tl.static_range(BITS - 1):
        bit = 1 << (BITS - 1 - step)
        x0 = tl.where((x0 & bit) != 0, x0 ^ (bit - 1), x0)
        x0, x1 = _exchange(x0, x1, bit)
        if D == 3:
            x0, x2 = _exchange(x0, x2, bit)
    x1 ^= x0
    last = x1
    if D == 3:
        x2 ^= x1
        last = x2
    flip = x0 * 0
    for step in tl.static_range(BITS - 1):
        bit = 1 << (BITS - 1 - step)
        flip = tl.where((last & bit) != 0, flip ^ (bit - 1), flip)
    key = (_spread(x0 ^ flip, D, BITS) << (D - 1)) | (_spread(x1 ^ flip, D, BITS) << (D - 2))
    if D == 3:
        key |= _spread(x2 ^ flip, D, BITS)
    tl.store(keys + snapshot * n + index, key, mask=ok)


@triton_jit
def _store_node(stats, nodes, rows, ok, moment, low, high, charge, mass, theta2,
                AXES: tl.constexpr):
    """Write the summary rows ``rows`` (heap row = node - 1) of ``stats`` (moment, low, high, charge,
    weight) and of ``nodes`` (charge centre, charge, squared reach: max(size / theta, diagonal)^2, -1 when
    empty). Vectors are (AXES, NODES), scalars per node (NODES,)."""
    axes = tl.arange(0, AXES)
    width = 3 * AXES + 2
    keep = ok[None, :]
    row = stats + rows[None, :] * width + axes[:, None]
    tl.store(row, moment, mask=keep)
    tl.store(row + AXES, low, mask=keep)
    tl.store(row + 2 * AXES, high, mask=keep)
    tl.store(stats + rows * width + 3 * AXES, charge, mask=ok)
    tl.store(stats + rows * width + 3 * AXES + 1, mass, mask=ok)
    centre = tl.where(mass[None, :] > 0, moment / tl.where(mass > 0, mass, 1.0)[None, :], 0.5 * (low + high))
    extent = high - low
    size = tl.max(extent, axis=0)
    reach2 = tl.where(theta2 > 0, size * size / tl.where(theta2 > 0, theta2, 1.0), float("inf"))
    reach2 = tl.maximum(reach2, tl.sum(extent * extent, axis=0))
    reach2 = tl.where(mass > 0, reach2, -1.0)
    tl.store(nodes + rows[None, :] * (AXES + 2) + axes[:, None], centre, mask=keep)
    tl.store(nodes + rows * (AXES + 2) + AXES, charge, mask=ok)
    tl.store(nodes + rows * (AXES + 2) + AXES + 1, reach2, mask=ok)


@triton_jit
def _summarize_leaves(points, charges, stats, nodes, padded, first_leaf, leaf, theta2,
                      AXES: tl.constexpr, NODES: tl.constexpr, SOURCES: tl.constexpr):
    """Summary rows of the leaves ``NODES * program 0 ...`` of snapshot ``program 1``, from the sorted
    ``points (B, AXES, padded)`` and ``charges (B, padded)``."""
    snapshot = tl.program_id(1).to(tl.int64)
    points += snapshot * AXES * padded
    charges += snapshot * padded
    stats += snapshot * (2 * first_leaf - 1) * (3 * AXES + 2)
    nodes += snapshot * (2 * first_leaf - 1) * (AXES + 2)
    leaves = tl.program_id(0) * NODES + tl.arange(0, NODES)
    sources = tl.arange(0, SOURCES)
    axes = tl.arange(0, AXES)
    ok = leaves < first_leaf
    inside = ok[:, None] & (sources < leaf)[None, :]                                       # (NODES, SOURCES)
    index = leaves[:, None] * leaf + sources[None, :]
    charge = tl.load(charges + index, mask=inside, other=0.0)
    weight = tl.abs(charge)
    point = tl.load(points + axes[:, None, None] * padded + index[None, :, :], mask=inside[None, :, :],
                    other=0.0)                                                      # (AXES, NODES, SOURCES)
    low = tl.min(tl.where(inside[None, :, :], point, float("inf")), axis=2)
    high = tl.max(tl.where(inside[None, :, :], point, -float("inf")), axis=2)
    _store_node(stats, nodes, first_leaf - 1 + leaves, ok, tl.sum(point * weight[None, :, :], axis=2), low,
                high, tl.sum(charge, axis=1), tl.sum(weight, axis=1), theta2, AXES)


@triton_jit
def _summarize_parents(stats, nodes, first_leaf, first, theta2, AXES: tl.constexpr, NODES: tl.constexpr):
    """Summary rows of the nodes ``first + NODES * program 0 ...`` (all on one level, starting at node
    ``first``) of snapshot ``program 1`` from those of their two children."""
    snapshot = tl.program_id(1).to(tl.int64)
    width = 3 * AXES + 2
    stats += snapshot * (2 * first_leaf - 1) * width
    nodes += snapshot * (2 * first_leaf - 1) * (AXES + 2)
    node = first + tl.program_id(0) * NODES + tl.arange(0, NODES)
    ok = node < 2 * first
    axes = tl.arange(0, AXES)
    left = stats + (2 * node - 1) * width                                     # children 2 node, 2 node + 1
    right = left + width
    vector = axes[:, None]
    keep = ok[None, :]
    moment = (tl.load(left[None, :] + vector, mask=keep, other=0.0)
              + tl.load(right[None, :] + vector, mask=keep, other=0.0))
    low = tl.minimum(tl.load(left[None, :] + AXES + vector, mask=keep, other=0.0),
                     tl.load(right[None, :] + AXES + vector, mask=keep, other=0.0))
    high = tl.maximum(tl.load(left[None, :] + 2 * AXES + vector, mask=keep, other=0.0),
                      tl.load(right[None, :] + 2 * AXES + vector, mask=keep, other=0.0))
    charge = tl.load(left + 3 * AXES, mask=ok, other=0.0) + tl.load(right + 3 * AXES, mask=ok, other=0.0)
    mass = tl.load(left + 3 * AXES + 1, mask=ok, other=0.0) + tl.load(right + 3 * AXES + 1, mask=ok, other=0.0)
    _store_node(stats, nodes, node - 1, ok, moment, low, high, charge, mass, theta2, AXES)


def fused_hilbert_order(pos: torch.Tensor) -> torch.Tensor:
    """``_bvh_torch.hilbert_order`` (same permutation) with the key arithmetic in one kernel instead of
    ~400 small ones; CUDA tensors, or CPU ones in Triton's interpreter."""
    b, n, d = pos.shape
    low = pos.amin(1)
    side = (pos.amax(1) - low).amax(-1)
    side = torch.where(side > 0, side, torch.ones_like(side))
    keys = torch.empty(b, n, dtype=torch.int64, device=pos.device)
    _hilbert_keys[(triton.cdiv(n, HILBERT_BLOCK), b)](pos.contiguous(), low.contiguous(), side, keys, n, D=d,
                                                      BITS=HILBERT_BITS, BLOCK=HILBERT_BLOCK)
    return torch.sort(keys, dim=1, stable=True).indices



def tree_table(planes: torch.Tensor, charges: torch.Tensor, levels: int, leaf: int, theta: float,
          group_level: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The heap-ordered node rows (B, 2**(L+1) - 1, AXES + 2) the walk reads (what ``summarize`` gives,
    as charge centre, charge and squared reach), built leaves first in L + 1 launches, and the boxes
    (B, 2**group_level, 2, AXES) of the target groups, the nodes of level ``group_level``."""
    b, axes, padded = planes.shape
    count = 2 ** (levels + 1) - 1
    stats = planes.new_empty(b, count, 3 * axes + 2)
    nodes = planes.new_empty(b, count, axes + 2)
    theta2 = float(theta) ** 2
    _summarize_leaves[(triton.cdiv(2 ** levels, SUMMARY_NODES), b)](
        planes, charges, stats, nodes, padded, 2 ** levels, leaf, theta2,
        AXES=axes, NODES=SUMMARY_NODES, SOURCES=triton.next_power_of_2(leaf))
    for level in range(levels - 1, -1, -1):
        _summarize_parents[(triton.cdiv(2 ** level, SUMMARY_NODES), b)](
            stats, nodes, 2 ** levels, 2 ** level, theta2, AXES=axes, NODES=SUMMARY_NODES)
    rows = slice(2 ** group_level - 1, 2 ** (group_level + 1) - 1)
    boxes = stats[:, rows, axes:3 * axes].reshape(b, -1, 2, axes).contiguous()
    return nodes, boxes
