"""Barnes-Hut repulsion in Triton: the tree of ``_bvh_triton`` walked by one kernel, stacklessly.

The walk: one program serves one snapshot and one target leaf (or ``group`` consecutive leaves, a
subtree), one lane per target point. It goes depth first without a stack: at node ``h`` it either opens
it (goes to ``2h``) or finishes it (an accepted cell acts as one charge at its charge centre, an opened
leaf is summed exactly as a targets x leaf tile), then climbs while ``h`` is a last child and steps to the
next sibling, which is ``h + 1`` with its trailing zero bits dropped; the walk ends when that lands on the
root. The opening test is made once per program, so every lane follows the same path. ``theta = 0``
opens every cell: exact up to float32 rounding.

A call has no host synchronisation (every shape follows from (B, N, D)), so it can be captured in a CUDA
graph (``capture``). CUDA tensors, or CPU ones in Triton's interpreter (see ``_bvh_triton``).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from . import DEFAULT_SOFTENING
from ._bvh_torch import tree_shape
from ._bvh_triton import fused_hilbert_order, tl, tree_table, triton, triton_jit
from ._checks import check_inputs

LEAF_MIN = 16    # leaves of 16..31 points: a warp-wide block of target lanes
GROUP = 1        # target leaves per program
NUM_WARPS = 1


@triton_jit
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


@triton_jit
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
    nodes, boxes = tree_table(planes, sorted_charge, levels, leaf, theta, group_level)
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
