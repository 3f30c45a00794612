"""Snapshot layouts: one layout per time step's charges, all run in one batch from the static layout, and
smooth interpolation between them for animation."""
from __future__ import annotations

import numpy as np

from .backends import Repulsion
from .layout import Callback, Layout


def snapshot_layouts(layout: Layout, charges: np.ndarray, *, n_iter: int | None = None,
                     backend: str | Repulsion | None = None, device: str | None = None,
                     callbacks: Callback | list[Callback] | None = None, callbacks_every: int = 10,
                     progress: bool | None = None) -> Layout:
    """Relax the first snapshot of ``layout`` under each row of ``charges`` ``(S, N)``, batched (B = S).

    Every snapshot starts at rest from the same positions and converges on its own (a converged snapshot
    stops moving), so the result equals running the snapshots one by one. ``n_iter`` defaults to the
    parameters' ``max_iter``.
    """
    if not isinstance(layout, Layout):
        raise TypeError(f"layout must be a Layout, got {type(layout).__name__}")
    q = np.asarray(charges, np.float32)
    n = layout.graph.n_vertices
    if q.ndim != 2 or q.shape[1] != n or q.shape[0] < 1:
        raise ValueError(f"charges must have shape (S, {n}) with S >= 1, got {np.shape(charges)}")
    if not np.isfinite(q).all() or (q < 0).any():
        raise ValueError("charges must be finite and >= 0")
    s = q.shape[0]
    start = layout.with_state(positions=np.repeat(layout.positions[:1], s, axis=0), charges=q,
                              velocity=np.zeros((s, n, layout.dims), np.float32),
                              step=np.full(s, layout.params.time_step, np.float32), iteration=0)
    return start.optimize(layout.params.max_iter if n_iter is None else n_iter, callbacks=callbacks,
                          callbacks_every=callbacks_every, backend=backend, device=device, progress=progress)


def interpolate_snapshots(layout: Layout | np.ndarray, n_frames: int, *, periodic: bool = True) -> np.ndarray:
    """Positions ``(n_frames, N, D)`` float32 on a Catmull-Rom spline through the snapshots.

    The curve passes through every snapshot and has continuous velocity; with ``periodic`` it loops
    (frame ``n_frames`` would equal frame 0), otherwise it runs from the first snapshot to the last.
    """
    positions = layout.positions if isinstance(layout, Layout) else np.asarray(layout, np.float32)
    if positions.ndim != 3 or positions.shape[0] < 1:
        raise ValueError(f"snapshots must have shape (S, N, D) with S >= 1, got {positions.shape}")
    if not isinstance(n_frames, (int, np.integer)) or n_frames < 1:
        raise ValueError(f"n_frames must be a positive integer, got {n_frames!r}")
    s = positions.shape[0]
    if s == 1:
        return np.repeat(positions, n_frames, axis=0).astype(np.float32)
    if periodic:
        t = np.arange(n_frames) * s / n_frames
        base = np.floor(t).astype(np.int64)
        p0, p1, p2, p3 = (positions[(base + offset) % s] for offset in (-1, 0, 1, 2))
    else:
        t = np.linspace(0.0, s - 1, n_frames)
        base = np.minimum(np.floor(t).astype(np.int64), s - 2)
        p0, p1, p2, p3 = (positions[np.clip(base + offset, 0, s - 1)] for offset in (-1, 0, 1, 2))
    u = (t - base).astype(np.float32)[:, None, None]
    u2, u3 = u * u, u * u * u
    out = 0.5 * ((2 * p1) + (p2 - p0) * u + (2 * p0 - 5 * p1 + 4 * p2 - p3) * u2 + (3 * p1 - p0 - 3 * p2 + p3) * u3)
    return out.astype(np.float32)
