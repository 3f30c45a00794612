"""Damped velocity-Verlet integration of one level of the layout, batched over ``B`` independent systems.

Every iteration stays on the device; the host is consulted only every ``check_every`` iterations (to test
convergence, per batch entry) and when callbacks are due. A batch entry that has converged stops moving,
so a batched run gives every entry the trajectory it would have had alone.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .backends import Repulsion, get_backend
from .forces import EdgeTensors, ForceParams, total_force
from .graph import NeuronGraph
from .layout import Callback, Layout, OptimizationInterrupt

logger = logging.getLogger(__name__)

MIN_STEP_FRACTION = 1e-2
PROGRESS_MIN_VERTICES = 100_000
EDGE_CHUNK = 1 << 26  # edges per block of the mean edge length (1.9 GB of temporaries at B = 1)


@dataclass(frozen=True)
class LevelSystem:
    """One level's physics on a device: edges, charges, masses, pinned mask and force constants."""

    edges: EdgeTensors
    charge: torch.Tensor      # (B, N)
    mass: torch.Tensor        # (B, N, 1)
    free: torch.Tensor        # (1, N, 1), 1 for vertices that move, 0 for pinned ones
    params: ForceParams
    repulsion: Repulsion

    @classmethod
    def build(cls, graph: NeuronGraph, charge: np.ndarray, pinned: np.ndarray, params: ForceParams,
              repulsion: Repulsion, device: torch.device | str) -> "LevelSystem":
        """Move a level to ``device``; the mass of a vertex is its stiffness scale (see ``vertex_mass``)."""
        edges = EdgeTensors.from_graph(graph, device)
        charge_t = torch.as_tensor(np.asarray(charge, np.float32), device=device)
        free = torch.as_tensor(~np.asarray(pinned, bool), device=device).to(torch.float32)[None, :, None]
        return cls(edges, charge_t, vertex_mass(edges, charge_t, params), free, params,
                   repulsion)

    @property
    def n_free(self) -> torch.Tensor:
        """Number of movable vertices (at least 1, to divide by)."""
        return self.free.sum().clamp(min=1.0)

    def force(self, pos: torch.Tensor) -> torch.Tensor:
        """Total force on every vertex; zero on pinned ones."""
        return total_force(pos, self.charge, self.edges, self.params, self.repulsion) * self.free


def vertex_mass(edges: EdgeTensors, charge: torch.Tensor, params: ForceParams) -> torch.Tensor:
    """Per-vertex inertia ``a * weighted degree + r * q_i * mean(q) + l``: a diagonal preconditioner.

    Coarse vertices carry summed weights and charges, so their forces are larger; dividing by this mass
    keeps one time step stable on every level and for every charge scale.
    """
    degree = edges.degree.to(charge.dtype)
    mean_q = charge.abs().mean(-1, keepdim=True)
    mass = params.attraction * degree[None] + params.repulsion * charge.abs() * mean_q + params.centering
    floor = mass.mean(-1, keepdim=True).clamp(min=1e-12) * 1e-3
    return torch.maximum(mass, floor)[..., None]


def length_scale(pos: torch.Tensor, edges: EdgeTensors) -> torch.Tensor:
    """Typical distance per batch entry, ``(B,)``: the mean edge length, else the mean spacing of the
    points, else 1 (a single point, or all points at one place)."""
    n, d = pos.shape[1], pos.shape[2]
    scale = (pos - pos.mean(1, keepdim=True)).square().sum(-1).mean(-1).sqrt() * n ** (-1.0 / d)
    if edges.src.numel():
        edge_mean = mean_edge_length(pos, edges)
        scale = torch.where(edge_mean > 0, edge_mean, scale)
    return torch.where(scale > 0, scale, torch.ones_like(scale))


def mean_edge_length(pos: torch.Tensor, edges: EdgeTensors, chunk: int = EDGE_CHUNK) -> torch.Tensor:
    """Mean edge length per batch entry, ``(B,)``; above ``chunk`` edges it sums chunk by chunk, so the
    temporaries (28 bytes per edge and batch entry) stay bounded on graphs of hundreds of millions of edges.
    Blocks round differently from one sum, so only graphs above ``chunk`` edges take another trajectory."""
    if edges.src.numel() <= chunk:
        return (pos[:, edges.dst] - pos[:, edges.src]).norm(dim=-1).mean(-1)
    total = torch.zeros(pos.shape[0], dtype=pos.dtype, device=pos.device)
    for start in range(0, edges.src.numel(), chunk):
        src, dst = edges.src[start:start + chunk], edges.dst[start:start + chunk]
        total += (pos[:, dst] - pos[:, src]).norm(dim=-1).sum(-1)
    return total / edges.src.numel()


@dataclass(frozen=True)
class VerletState:
    """Positions, velocities and forces ``(B, N, D)``, adaptive step, squared-force residual and activity."""

    pos: torch.Tensor
    vel: torch.Tensor
    force: torch.Tensor
    step: torch.Tensor        # (B,)
    residual: torch.Tensor    # (B,) mean squared force, what the step adaptation watches
    active: torch.Tensor      # (B,) bool, False once converged

    @classmethod
    def start(cls, system: LevelSystem, pos: torch.Tensor, vel: torch.Tensor | None = None,
              step: torch.Tensor | None = None) -> "VerletState":
        """Initial state: forces at ``pos``; velocity zero and step ``time_step`` unless given."""
        force = system.force(pos)
        b = pos.shape[0]
        if step is None:
            step = torch.full((b,), system.params.time_step, dtype=pos.dtype, device=pos.device)
        return cls(pos, torch.zeros_like(pos) if vel is None else vel, force, step,
                   residual(force, system), torch.ones(b, dtype=torch.bool, device=pos.device))


def residual(force: torch.Tensor, system: LevelSystem) -> torch.Tensor:
    """Mean squared force over the movable vertices, ``(B,)``."""
    return force.square().sum((1, 2)) / system.n_free


def verlet_step(system: LevelSystem, state: VerletState, max_move: torch.Tensor) -> VerletState:
    """One damped velocity-Verlet step with a per-vertex displacement cap and Hu-style step adaptation.

    The speed is capped with the move (at ``max_move / dt``): otherwise a vertex under a huge short-range
    repulsion gathers a velocity far beyond what it may move, and after it has separated keeps flying out at
    the cap for many iterations while the damping wears that velocity down.
    """
    p = system.params
    active = state.active[:, None, None]
    dt = torch.where(state.active, state.step, torch.zeros_like(state.step))[:, None, None]
    acc = state.force / system.mass
    move = state.vel * dt + 0.5 * acc * dt * dt
    length = move.norm(dim=-1, keepdim=True)
    move = move * (max_move[:, None, None] / length.clamp(min=1e-30)).clamp(max=1.0)
    pos = state.pos + move
    force = system.force(pos)
    vel = p.damping * (state.vel + 0.5 * (acc + force / system.mass) * dt)
    speed_cap = max_move[:, None, None] / dt.clamp(min=1e-30)
    vel = vel * (speed_cap / vel.norm(dim=-1, keepdim=True).clamp(min=1e-30)).clamp(max=1.0)
    res = residual(force, system)
    step = torch.where(res < state.residual, state.step * p.step_growth, state.step * p.step_shrink)
    step = step.clamp(p.time_step * MIN_STEP_FRACTION, p.max_time_step)
    return VerletState(pos, torch.where(active, vel, state.vel), force,
                       torch.where(state.active, step, state.step), torch.where(state.active, res, state.residual),
                       state.active)


def integrate(system: LevelSystem, state: VerletState, n_iter: int, *, min_iter: int = 0, extra_iter: int = 0,
              on_callback: Callable[[int, VerletState], None] | None = None, callback_every: int = 10,
              offset: int = 0, progress: bool = False, description: str = "layout") -> tuple[VerletState, int]:
    """Run up to ``n_iter`` iterations; an entry stops once its mean displacement per iteration is below
    ``tolerance`` mean edge lengths (after ``min_iter``). Returns the state and the iterations run.

    Up to ``extra_iter`` more iterations follow for the entries whose energy still falls: the squared-force
    residual must drop by at least ``untangle_fall`` (a fraction) over each ``check_every`` window, else
    the entry stops. A folded layout keeps falling while it unfolds, so it is not cut off at ``n_iter``.

    Convergence is tested every ``check_every`` iterations of the parameters; ``on_callback(iteration,
    state)`` runs whenever ``offset + iteration`` (the count over all levels) is a multiple of
    ``callback_every``, and does not change the trajectory.
    """
    p = system.params
    max_move = p.max_displacement * length_scale(state.pos, system.edges)
    last_pos, last_residual, last_it, done = state.pos, state.residual, 0, 0
    total = n_iter + max(0, int(extra_iter))
    with tqdm(total=total, desc=description, disable=not progress, leave=False) as bar:
        for it in range(1, total + 1):
            state = verlet_step(system, state, max_move)
            done = it
            if it % p.check_every == 0 or it == n_iter or it == total:
                scale = length_scale(state.pos, system.edges)
                moved = ((state.pos - last_pos).norm(dim=-1, keepdim=True) * system.free).sum((1, 2))
                moved = moved / system.n_free / (it - last_it)
                stop = (moved < p.tolerance * scale) & (it >= min_iter)
                if it >= n_iter:
                    stop = stop | (state.residual > (1 - p.untangle_fall) * last_residual) | (it == total)
                state = VerletState(state.pos, state.vel, state.force, state.step, state.residual,
                                    state.active & ~stop)
                max_move, last_pos, last_residual = p.max_displacement * scale, state.pos, state.residual
                bar.update(it - last_it)
                last_it = it
            if on_callback is not None and (offset + it) % callback_every == 0:
                on_callback(it, state)
            if it == last_it and not bool(state.active.any()):
                break
    return state, done


def run_callbacks(callbacks: Sequence[Callback], iteration: int, energy: float, layout: Layout) -> None:
    """Call every callback; a truthy answer stops the run with an ``OptimizationInterrupt``."""
    for callback in callbacks:
        if callback(iteration, energy, layout):
            raise OptimizationInterrupt(layout, iteration)


def as_callbacks(callbacks: Callback | Sequence[Callback] | None) -> list[Callback]:
    """Normalise ``None``, one callable or a sequence of callables to a list."""
    if callbacks is None:
        return []
    if callable(callbacks):
        return [callbacks]
    callbacks = list(callbacks)
    for callback in callbacks:
        if not callable(callback):
            raise TypeError(f"callbacks must be callables cb(iteration, energy, layout), got {callback!r}")
    return callbacks


def show_progress(progress: bool | None, n_vertices: int) -> bool:
    """``progress=None`` shows a bar only for large graphs."""
    return n_vertices >= PROGRESS_MIN_VERTICES if progress is None else bool(progress)


def continue_layout(layout: Layout, n_iter: int, *, callbacks: Callback | Sequence[Callback] | None = None,
                    callbacks_every: int = 10, backend: str | Repulsion = "auto", device: str = "cpu",
                    progress: bool | None = None) -> Layout:
    """Run the finest level of ``layout`` from its optimiser state; returns a new ``Layout``."""
    if not isinstance(n_iter, (int, np.integer)) or n_iter < 0:
        raise ValueError(f"n_iter must be a non-negative integer, got {n_iter!r}")
    if callbacks_every < 1:
        raise ValueError(f"callbacks_every must be >= 1, got {callbacks_every}")
    cbs = as_callbacks(callbacks)
    params = layout.params
    repulsion = get_backend(backend, device)
    system = LevelSystem.build(layout.graph, layout.charges, layout.pinned, params, repulsion, device)
    pos = torch.as_tensor(layout.positions, device=device).clone()
    state = VerletState.start(system, pos, torch.as_tensor(layout.velocity, device=device).clone(),
                              torch.as_tensor(layout.step, device=device).clone())

    def snapshot(st: VerletState, iterations: int) -> Layout:
        return layout.with_state(positions=st.pos.cpu().numpy(), velocity=st.vel.cpu().numpy(),
                                 step=st.step.cpu().numpy(), iteration=layout.iteration + iterations,
                                 backend=backend, device=device)

    def on_callback(it: int, st: VerletState) -> None:
        run_callbacks(cbs, layout.iteration + it, float(st.residual.mean()), snapshot(st, it))

    state, done = integrate(system, state, int(n_iter), on_callback=on_callback if cbs else None,
                            callback_every=callbacks_every, offset=layout.iteration,
                            progress=show_progress(progress, layout.graph.n_vertices))
    logger.debug("continued layout for %d iterations", done)
    return snapshot(state, done)
