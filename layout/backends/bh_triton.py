"""Barnes-Hut repulsion in Triton: the tree built by a few fused kernels, then walked by one, stacklessly.

The tree is the one of ``_bvh_torch`` (balanced binary, equal-count splits of Hilbert-sorted points):
Hilbert keys come from one kernel (the same keys as ``hilbert_order``), then one ``torch.sort``; the
per-node summaries from L + 1 launches (leaves, then one level up each), stored as one heap-ordered table:
row ``h - 1`` holds node ``h``, whose children are ``2h`` and ``2h + 1``; the ``2**L`` leaves are nodes
``2**L .. 2**(L+1) - 1``. A row holds the charge centre, the charge and the squared reach: a cell is
accepted when the distance from the target box to its charge centre exceeds both size / theta and the
cell's diagonal (which rules out overlapping boxes). ``theta = 0`` opens every cell: exact up to float32
rounding.

The walk: one program serves one snapshot and one target leaf (or ``group`` consecutive leaves, a
subtree), one lane per target point. It goes depth first without a stack: at node ``h`` it either opens
it (goes to ``2h``) or finishes it (an accepted cell acts as one charge at its charge centre, an opened
leaf is summed exactly as a targets x leaf tile), then climbs while ``h`` is a last child and steps to the
next sibling, which is ``h + 1`` with its trailing zero bits dropped; the walk ends when that lands on the
root. The opening test is made once per program, so every lane follows the same path.

A call has no host synchronisation (every shape follows from (B, N, D)), so it can be captured in a CUDA
graph (``capture``). Triton has no CPU back end: CPU tensors run only in Triton's interpreter (slow, for
testing), which ``TRITON_INTERPRET=1`` selects when set before ``triton`` is imported, because Triton
decides at decoration time, and its own library (``tl.sum``...) is decorated when ``triton.language`` is.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from . import DEFAULT_SOFTENING
from ._bvh_torch import HILBERT_BITS, tree_shape
from ._checks import check_inputs

try:  # this module loads on first use of the backend; without triton it still imports, calls say how to fix
    import triton
    import triton.language as tl
except ImportError:
    triton = tl = None

LEAF_MIN = 16    # leaves of 16..31 points: a warp-wide block of target lanes
GROUP = 1        # target leaves per program
NUM_WARPS = 1
HILBERT_BLOCK = 1024  # points per program of the key kernel
SUMMARY_NODES = 32   # tree nodes per program of the summary kernels


def _jit(fn):
    """``triton.jit`` where Triton is installed; elsewhere the plain function, never launched."""
    return fn if triton is None else triton.jit(fn)


@_jit
def _exchange(x0, xi, bit: tl.constexpr):
    """One step of Skilling's axes-to-transpose between axis 0 and axis i > 0 at ``bit``."""
    low = bit - 1
    high = (xi & bit) != 0
    swap = (x0 ^ xi) & low
    return tl.where(high, x0 ^ low, x0 ^ swap), tl.where(high, xi, xi ^ swap)


@_jit
def _spread(x, D: tl.constexpr, BITS: tl.constexpr):
    """Bit ``j`` of ``x`` moved to bit ``j * D``."""
    spread = x & 1
    for j in tl.static_range(1, BITS):
        spread |= ((x >> j) & 1) << (j * D)
    return spread


@_jit
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


@_jit
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


@_jit
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


@_jit
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


@_jit
def _inverse_power(r2, expo, POWER: tl.constexpr):
    """``r2 ** -expo`` (POWER 1: expo = 1, POWER 3: expo = 1.5, else general); 0 where r2 = 0."""
    safe = tl.where(r2 > 0, r2, 1.0)
    if POWER == 1:
        inverse = 1.0 / safe
    elif POWER == 3:
        inverse = tl.rsqrt(safe) / safe
    else:
        inverse = tl.exp2(-expo * tl.log2(safe))
    return tl.where(r2 > 0, inverse, 0.0)


@_jit
def _walk(points, charges, nodes, boxes, order, out, n, padded, first_leaf, leaf, group, eps2, expo,
          D: tl.constexpr, AXES: tl.constexpr, TARGETS: tl.constexpr, SOURCES: tl.constexpr,
          POWER: tl.constexpr):
    """Force on the points of one group of ``group`` target leaves (program 0) of one snapshot (program
    1), times their charge, stored at their unsorted rows of ``out (B, n, D)``. Hilbert-sorted
    ``points (B, AXES, padded)`` (one plane per axis) and ``charges (B, padded)``; heap-ordered
    ``nodes (B, 2 first_leaf - 1, AXES + 2)`` rows: charge centre, charge, squared reach (accepted beyond
    it; -1 when empty); boxes of the target groups ``(B, first_leaf / group, 2, AXES)``. TARGETS,
    SOURCES: lanes for the group's points and for one leaf's. Tensors are (axis, source, target): targets
    spread over the threads, so the sums over axes and sources stay inside each thread."""
    target = tl.program_id(0)
    snapshot = tl.program_id(1).to(tl.int64)
    points += snapshot * AXES * padded
    charges += snapshot * padded
    nodes += snapshot * (2 * first_leaf - 1) * (AXES + 2)
    axes = tl.arange(0, AXES)
    lanes = tl.arange(0, TARGETS)
    lane_ok = lanes < group * leaf
    own = target * group * leaf
    mine = tl.load(points + axes[:, None] * padded + own + lanes[None, :], mask=lane_ok[None, :], other=0.0)
    box = boxes + (snapshot * (first_leaf // group) + target) * 2 * AXES
    box_lo = tl.load(box + axes)
    box_hi = tl.load(box + AXES + axes)
    force = tl.zeros([AXES, TARGETS], dtype=tl.float32)
    sources = tl.arange(0, SOURCES)
    source_ok = sources < leaf

    node = target * 0 + 1
    while node > 0:
        row = nodes + (node - 1) * (AXES + 2)
        centre = tl.load(row + axes)
        outside = tl.maximum(box_lo - centre, 0.0) + tl.maximum(centre - box_hi, 0.0)
        accept = tl.sum(outside * outside, axis=0) > tl.load(row + AXES + 1)
        if accept:  # the whole cell as one charge at its charge centre
            diff = mine - centre[:, None]                                             # (AXES, TARGETS)
            r2 = tl.sum(diff * diff, axis=0) + eps2
            force += diff * (tl.load(row + AXES) * _inverse_power(r2, expo, POWER))[None, :]
        elif node >= first_leaf:  # an opened leaf: every source point on every target point
            first = (node - first_leaf) * leaf
            near = tl.load(points + axes[:, None] * padded + first + sources[None, :], mask=source_ok[None, :],
                           other=0.0)
            near_charge = tl.load(charges + first + sources, mask=source_ok, other=0.0)
            diff = mine[:, None, :] - near[:, :, None]                           # (AXES, SOURCES, TARGETS)
            r2 = tl.sum(diff * diff, axis=0) + eps2
            scale = near_charge[:, None] * _inverse_power(r2, expo, POWER)
            force += tl.sum(diff * scale[None, :, :], axis=1)
        after = node + 1
        after = after // (after & -after)  # climb past last children, step to the next sibling
        after = tl.where(after == 1, 0, after)  # back at the root: done
        node = tl.where(accept | (node >= first_leaf), after, 2 * node)

    sorted_index = own + lanes
    stored = lane_ok & (sorted_index < n)
    own_charge = tl.load(charges + sorted_index, mask=stored, other=0.0)
    rows = tl.load(order + snapshot * n + sorted_index, mask=stored, other=0)
    tl.store(out + snapshot * n * D + rows[None, :] * D + axes[:, None], force * own_charge[None, :],
             mask=stored[None, :] & (axes < D)[:, None])


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


def _tree(planes: torch.Tensor, charges: torch.Tensor, levels: int, leaf: int, theta: float,
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


def repulsion(pos: torch.Tensor, charge: torch.Tensor, k: float, theta: float, *,
              softening: float = DEFAULT_SOFTENING, leaf_min: int = LEAF_MIN, group: int = GROUP,
              num_warps: int = NUM_WARPS) -> torch.Tensor:
    """Barnes-Hut repulsion on ``pos (B, N, D)`` (D in 2, 3), accumulated in float32 and returned in the
    dtype of ``pos``. Tuning knobs: ``leaf_min`` sets the leaf size (leaf_min .. 2 leaf_min - 1 points),
    ``group`` the leaves per program (a power of two; they share one walk, opened for their joint box)
    and ``num_warps`` the warps per program. Needs CUDA tensors, or Triton's interpreter on the CPU."""
    check_inputs(pos, charge, k, theta, softening)
    if triton is None:
        raise RuntimeError("the bh_triton repulsion backend needs Triton: pip install triton "
                           "(or choose backend 'bh_torch')")
    for name, value in (("leaf_min", leaf_min), ("group", group), ("num_warps", num_warps)):
        if not isinstance(value, int) or value < 1 or (name != "leaf_min" and value & (value - 1)):
            raise ValueError(f"{name} must be an int >= 1{'' if name == 'leaf_min' else ' and a power of two'}, "
                             f"got {value!r}")
    if pos.device.type != "cuda" and isinstance(_walk, triton.runtime.JITFunction):
        raise RuntimeError(f"the bh_triton backend needs CUDA tensors, got pos on {pos.device}; on the CPU it "
                           "runs only in Triton's interpreter: set TRITON_INTERPRET=1 before triton is imported")
    b, n, d = pos.shape
    if n == 0:
        return torch.zeros_like(pos)
    dtype = pos.dtype
    pos = pos.detach().float()
    charge = charge.detach().float()
    levels, leaf = tree_shape(n, leaf_min)
    padded = leaf * 2 ** levels
    order = fused_hilbert_order(pos)
    # sorted, not shifted: p_i - p_j from the inputs themselves is exact for close pairs (Sterbenz)
    ordered = torch.gather(pos, 1, order[..., None].expand(-1, -1, d))
    sorted_charge = torch.gather(charge, 1, order)
    if padded > n:  # zero-charge copies of the last point: they change no box and exert no force
        ordered = torch.cat([ordered, ordered[:, -1:].expand(-1, padded - n, -1)], 1)
        sorted_charge = torch.cat([sorted_charge, sorted_charge.new_zeros(b, padded - n)], 1)
    axes = 2 if d == 2 else 4
    group_level = max(0, levels - group.bit_length() + 1)
    group = 2 ** (levels - group_level)
    planes = F.pad(ordered, (0, axes - d)).transpose(1, 2).contiguous()
    sorted_charge = sorted_charge.contiguous()
    nodes, boxes = _tree(planes, sorted_charge, levels, leaf, theta, group_level)
    out = torch.empty_like(pos)
    expo = (k + 1) / 2
    _walk[(2 ** group_level, b)](
        planes, sorted_charge, nodes, boxes, order.contiguous(), out, n, padded, 2 ** levels, leaf,
        group, float(softening) ** 2, float(expo),
        D=d, AXES=axes, TARGETS=triton.next_power_of_2(group * leaf), SOURCES=triton.next_power_of_2(leaf),
        POWER={1.0: 1, 1.5: 3}.get(expo, 0), num_warps=num_warps)
    return out.to(dtype)


def capture(pos: torch.Tensor, charge: torch.Tensor, k: float, theta: float, **options
            ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Record one call on CUDA tensors of this shape into a CUDA graph (no kernel launches from Python
    afterwards). The returned ``replay(pos, charge)`` copies new values into the recorded inputs, replays
    and returns the recorded output buffer, overwritten by the next replay. ``options`` as for repulsion."""
    if pos.device.type != "cuda":
        raise ValueError(f"capture records a CUDA graph and needs CUDA tensors, got pos on {pos.device}")
    static_pos, static_charge = pos.detach().clone(), charge.detach().clone()
    side = torch.cuda.Stream(device=pos.device)
    side.wait_stream(torch.cuda.current_stream(pos.device))
    with torch.cuda.stream(side):  # compiles the kernel and warms the allocator outside the capture
        repulsion(static_pos, static_charge, k, theta, **options)
    torch.cuda.current_stream(pos.device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = repulsion(static_pos, static_charge, k, theta, **options)

    def replay(new_pos: torch.Tensor, new_charge: torch.Tensor) -> torch.Tensor:
        if new_pos.shape != static_pos.shape or new_charge.shape != static_charge.shape:
            raise ValueError(f"replay needs pos {tuple(static_pos.shape)} and charge {tuple(static_charge.shape)} "
                             f"as captured, got {tuple(new_pos.shape)} and {tuple(new_charge.shape)}")
        static_pos.copy_(new_pos)
        static_charge.copy_(new_charge)
        graph.replay()
        return out

    return replay
