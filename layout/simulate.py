"""Multilevel force layout: solve the coarsest graph from seeded random positions, then prolong and refine.

``ForceLayout(params).fit(graph)`` returns a ``Layout``; ``Layout.optimize`` continues it. Callbacks are
plain callables ``cb(iteration, energy, layout) -> bool`` where ``energy`` is the mean squared force (the
residual the optimiser drives to zero; exact energies are O(N^2), see ``forces.energy``) and ``layout`` is a
``Layout`` of the full graph (on a coarse level every vertex sits at its ancestor's position). A truthy
return raises ``OptimizationInterrupt`` carrying that layout.
"""
from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import scipy.sparse as sp
import torch

from .backends import Repulsion, get_backend
from .forces import EdgeTensors, ForceParams, energy, neighbour_sum
from .graph import NeuronGraph
from .defaults import COARSENINGS
from .hierarchy import Hierarchy, build_hierarchy, build_structural_hierarchy
from .layout import Callback, Layout
from .quality import neighborhood_preservation
from .readers import from_sparse
from .verlet import (LevelSystem, VerletState, as_callbacks, integrate, length_scale, run_callbacks,
                     show_progress)

logger = logging.getLogger(__name__)

# ``auto`` lays graphs with axes up to this size out both ways and keeps the better (``choose_coarsening``).
TRY_BOTH_VERTICES = 5_000
# Extra iterations per level while the energy still falls, on the structural path (``ForceParams.untangle_iter``).
UNTANGLE_ITER = 100


class ForceLayout:
    """Configured force-layout solver (openTSNE-style): parameters here, the graph in ``fit``.

    ``backend`` is a repulsion name (``"auto"``, ``"exact"``, ``"bh_numba"``, ``"bh_torch"``) or callable;
    ``device`` defaults to CPU; ``seed`` fixes the initial positions and the prolongation jitter, so a fit
    is reproducible on one device. The hierarchy is coarsened down to ``min_vertices``; children start at
    their parent plus Gaussian jitter of ``jitter`` mean edge lengths, then ``smoothing`` Jacobi steps
    spread siblings toward their neighbours. Levels of at most ``restart_vertices`` vertices run
    ``restarts`` random starts in one batch and keep the one of lowest energy, which avoids folds.

    ``coarsening`` builds the hierarchy: ``"graph"`` merges vertices by the edges alone
    (``build_structural_hierarchy``: Numba on the CPU, torch on another device), whatever the numbering;
    ``"axes"`` merges index neighbours along a layer's channel and size axes (the seed article's way, only as
    good as the numbering); ``"auto"`` (``choose_coarsening``) takes the structural one, except that a small
    graph with axes is laid out both ways and keeps the one of higher neighbourhood preservation; it logs the
    choice.
    """

    def __init__(self, params: ForceParams | None = None, *, backend: str | Repulsion = "auto",
                 device: str | torch.device | None = None, seed: int = 0, dims: int = 2,
                 min_vertices: int = 4, jitter: float = 0.1, smoothing: int = 2, restarts: int = 4,
                 restart_vertices: int = 512, coarsening: str = "auto", progress: bool | None = None) -> None:
        if params is not None and not isinstance(params, ForceParams):
            raise TypeError(f"params must be a ForceParams, got {type(params).__name__}")
        if dims not in (2, 3):
            raise ValueError(f"dims must be 2 or 3, got {dims!r}")
        if not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed must be an integer, got {seed!r}")
        if not np.isfinite(jitter) or jitter < 0:
            raise ValueError(f"jitter must be finite and >= 0, got {jitter!r}")
        self.params = params or ForceParams()
        self.device = str(torch.device(device or "cpu"))
        self.backend = backend
        self.repulsion = get_backend(backend, self.device)
        self.seed = int(seed)
        self.dims = dims
        self.min_vertices = min_vertices
        self.jitter = float(jitter)
        self.smoothing = int(smoothing)
        if restarts < 1 or restart_vertices < 1 or smoothing < 0:
            raise ValueError(f"restarts and restart_vertices must be >= 1 and smoothing >= 0, got {restarts}, "
                             f"{restart_vertices} and {smoothing}")
        self.restarts = int(restarts)
        self.restart_vertices = int(restart_vertices)
        if coarsening not in ("auto", *COARSENINGS):
            raise ValueError(f"coarsening must be 'auto' or one of {COARSENINGS}, got {coarsening!r}")
        self.coarsening = coarsening
        self.progress = progress

    def fit(self, graph: NeuronGraph | sp.spmatrix | sp.sparray, *, charges: np.ndarray | None = None, init: np.ndarray | None = None,
            pinned: np.ndarray | None = None, callbacks: Callback | Sequence[Callback] | None = None,
            callbacks_every: int = 10) -> Layout:
        """Lay out ``graph``; ``charges`` ``(N,)`` or ``(S, N)`` (default 1) gives ``S`` layouts in one batch.

        Without ``init`` the multilevel schedule runs from random positions; with ``init`` ``(N, D)`` or
        ``(S, N, D)`` the finest level is optimised from it directly. ``pinned`` (boolean mask or vertex
        indices, needs ``init``) keeps vertices at their initial positions. A scipy.sparse ``N x N`` matrix is
        read as a weighted undirected adjacency (``readers.from_sparse``).
        """
        if sp.issparse(graph):
            graph = from_sparse(graph)
        if not isinstance(graph, NeuronGraph):
            raise TypeError(f"graph must be a NeuronGraph or a scipy.sparse matrix, got {type(graph).__name__}")
        n = graph.n_vertices
        if n == 0:
            raise ValueError("graph has no vertices; nothing to lay out")
        if callbacks_every < 1:
            raise ValueError(f"callbacks_every must be >= 1, got {callbacks_every}")
        charge = _charges(charges, n)
        mask = _pinned_mask(pinned, n)
        if mask.any() and init is None:
            raise ValueError("pinned vertices need init positions to be pinned at; pass init=(N, D) positions")
        cbs = as_callbacks(callbacks)
        if init is not None:
            return self._refine(graph, charge, _init(init, charge.shape[0], n, self.dims), mask, cbs,
                                callbacks_every)
        coarsening = self.coarsening
        if coarsening == "auto":
            coarsening = choose_coarsening(graph)
            logger.info("coarsening 'auto' chose %r for %d vertices in %d layers", coarsening, graph.n_vertices,
                        len(graph.layers))
            if coarsening == "both" and not cbs:
                return self._better_of_both(graph, charge)
            coarsening = "graph" if coarsening == "both" else coarsening
        return self._multilevel(graph, charge, coarsening, cbs, callbacks_every)

    def _better_of_both(self, graph: NeuronGraph, charge: np.ndarray) -> Layout:
        """Lay ``graph`` out with each coarsening; keep the layout of higher neighbourhood preservation (on the
        first snapshot), the structural one on a tie."""
        layouts = {name: self._multilevel(graph, charge, name, [], 1) for name in COARSENINGS}
        scores = {name: neighborhood_preservation(graph, layout.positions[0]) for name, layout in layouts.items()}
        best = max(COARSENINGS, key=lambda name: scores[name])
        logger.info("coarsening 'auto' kept %r; neighbourhood preservation by coarsening: %s", best, scores)
        return layouts[best]

    def _hierarchy(self, graph: NeuronGraph, coarsening: str) -> Hierarchy:
        """The multilevel hierarchy of ``coarsening`` (``"graph"`` or ``"axes"``)."""
        if coarsening == "axes":
            return build_hierarchy(graph, min_vertices=self.min_vertices)
        backend = "numba" if torch.device(self.device).type == "cpu" else "torch"
        return build_structural_hierarchy(graph, min_vertices=self.min_vertices, seed=self.seed, backend=backend,
                                          device=self.device)

    def _layout(self, graph: NeuronGraph, charge: np.ndarray, state: VerletState, pinned: np.ndarray,
                iteration: int) -> Layout:
        """Wrap a finest-level state as a ``Layout`` (host copies)."""
        return Layout(state.pos.cpu().numpy(), graph, self.params, self.seed, charge.copy(),
                      state.vel.cpu().numpy(), state.step.cpu().numpy(), pinned.copy(), iteration,
                      self.backend, self.device)

    def _refine(self, graph: NeuronGraph, charge: np.ndarray, init: np.ndarray, pinned: np.ndarray,
                cbs: list[Callback], callbacks_every: int) -> Layout:
        """Optimise the finest level from given positions."""
        system = LevelSystem.build(graph, charge, pinned, self.params, self.repulsion, self.device)
        state = VerletState.start(system, torch.as_tensor(init, device=self.device))

        def on_callback(it: int, st: VerletState) -> None:
            run_callbacks(cbs, it, float(st.residual.mean()), self._layout(graph, charge, st, pinned, it))

        state, done = integrate(system, state, self.params.max_iter, min_iter=self.params.min_iter,
                                on_callback=on_callback if cbs else None, callback_every=callbacks_every,
                                progress=show_progress(self.progress, graph.n_vertices))
        return self._layout(graph, charge, state, pinned, done)

    def _multilevel(self, graph: NeuronGraph, charge: np.ndarray, coarsening: str, cbs: list[Callback],
                    callbacks_every: int) -> Layout:
        """Coarsest level from seeded random positions, then prolong and refine level by level.

        Levels of at most ``restart_vertices`` vertices run ``restarts`` random starts side by side in the
        batch; before the first larger level each snapshot keeps the start of lowest (exact) energy.
        """
        p = self.params
        hierarchy = self._hierarchy(graph, coarsening)
        untangle = p.untangle_iter if p.untangle_iter is not None else UNTANGLE_ITER if coarsening == "graph" else 0
        charges = [charge]
        for level in range(hierarchy.n_levels - 1):
            charges.append(hierarchy.coarsen(charges[-1], level).astype(np.float32))
        ancestors = _ancestors(hierarchy)
        coarsest = hierarchy.n_levels - 1
        snapshots = charge.shape[0]
        restarts = self.restarts if hierarchy.levels[coarsest].n_vertices <= self.restart_vertices else 1
        pos = _random_positions(hierarchy.levels[coarsest].n_vertices, restarts, self.dims, self.seed)
        pos = np.repeat(pos, snapshots, axis=0)
        no_pins = np.zeros(graph.n_vertices, bool)
        total, state, system = 0, None, None
        progress = show_progress(self.progress, graph.n_vertices)
        for level in range(coarsest, -1, -1):
            level_graph = hierarchy.levels[level]
            if restarts > 1 and level_graph.n_vertices > self.restart_vertices:
                pos = _lowest_energy(system, state, snapshots).cpu().numpy()
                restarts = 1
            if level < coarsest:
                spacing = length_scale(torch.as_tensor(pos, device=self.device), system.edges).cpu().numpy()
                pos = hierarchy.prolong(pos, level, jitter=float(self.jitter * spacing.mean()),
                                        seed=self.seed + level)
            system = state = None  # the finer level's arrays are several times larger: free these first
            system = LevelSystem.build(level_graph, np.tile(charges[level], (restarts, 1)),
                                       np.zeros(level_graph.n_vertices, bool),
                                       p.at_level(level, hierarchy.n_levels), self.repulsion, self.device)
            start = torch.as_tensor(pos, dtype=torch.float32, device=self.device)
            if level < coarsest:
                start = smooth(start, system.edges, self.smoothing)
            state = VerletState.start(system, start)

            def on_callback(it: int, st: VerletState, level: int = level, offset: int = total) -> None:
                full = st.pos[:snapshots, torch.as_tensor(ancestors[level], device=st.pos.device)]
                view = VerletState(full, torch.zeros_like(full), full, st.step[:snapshots],
                                   st.residual[:snapshots], st.active[:snapshots])
                run_callbacks(cbs, offset + it, float(st.residual[:snapshots].mean()),
                              self._layout(graph, charge, view, no_pins, offset + it))

            state, done = integrate(system, state, p.iterations_at(level), min_iter=p.min_iter,
                                    extra_iter=untangle,
                                    on_callback=on_callback if cbs else None, callback_every=callbacks_every,
                                    offset=total, progress=progress, description=f"layout level {level}")
            total += done
            pos = state.pos.cpu().numpy()
            logger.debug("level %d: %d vertices, %d iterations", level, level_graph.n_vertices, done)
        if restarts > 1:
            best = _lowest_energy(system, state, snapshots)
            state = VerletState.start(_first_snapshots(system, snapshots), best)
        return self._layout(graph, charge, state, no_pins, total)


def choose_coarsening(graph: NeuronGraph) -> str:
    """The coarsening ``auto`` takes without laying out: ``"graph"``, or ``"both"`` (try both, keep the better)
    for a graph of at most ``TRY_BOTH_VERTICES`` vertices with edges whose layers have both axes.

    Measured (benchmarks/README.md), the structural coarsening lays neuron graphs out as well or better: NP
    0.44 against 0.35 on the ResNet18 slice, 0.32 against 0.30 on the CPC lean model (mean of 3 seeds), and
    the same 0.98 on a king grid numbered as a grid; the axis merge won only on the 672-neuron audio model
    (0.31 against 0.28), so small graphs, where a second fit is cheap, are measured each time.
    """
    has_axes = any(layer.channels > 1 and layer.size > 1 for layer in graph.layers)
    return "both" if has_axes and graph.n_edges and graph.n_vertices <= TRY_BOTH_VERTICES else "graph"


def _lowest_energy(system: LevelSystem, state: VerletState, snapshots: int) -> torch.Tensor:
    """Positions ``(S, N, D)`` of the restart whose snapshots have the lowest total exact energy (one
    restart for all snapshots, so they stay alike); the batch is restart-major."""
    totals = torch.stack([energy(state.pos[b:b + 1], system.charge[b:b + 1], system.edges, system.params)[0]
                          for b in range(state.pos.shape[0])])
    best = int(totals.reshape(-1, snapshots).sum(1).argmin())
    logger.debug("restart %d of %d has the lowest energy", best, totals.numel() // snapshots)
    return state.pos[best * snapshots:(best + 1) * snapshots]


def _first_snapshots(system: LevelSystem, snapshots: int) -> LevelSystem:
    """The same level system restricted to the first ``snapshots`` batch entries."""
    return LevelSystem(system.edges, system.charge[:snapshots], system.mass[:snapshots], system.free,
                       system.params, system.repulsion)


def smooth(pos: torch.Tensor, edges: EdgeTensors, steps: int) -> torch.Tensor:
    """Jacobi smoothing ``p <- (p + A p) / (1 + deg)``: moves prolonged children toward the side of their
    parent where their neighbours are, so siblings start in the right order instead of a random one."""
    if not edges.src.numel():
        return pos
    for _ in range(steps):
        pos = (pos + neighbour_sum(pos, edges)) / (1 + edges.degree)[None, :, None]
    return pos


def _ancestors(hierarchy: Hierarchy) -> list[np.ndarray]:
    """For every level, the index of each finest vertex's ancestor on that level."""
    index = [np.arange(hierarchy.levels[0].n_vertices)]
    for parent in hierarchy.parents:
        index.append(parent[index[-1]])
    return index


def _random_positions(n: int, starts: int, dims: int, seed: int) -> np.ndarray:
    """``starts`` seeded uniform layouts ``(starts, n, dims)`` in a cube of side ``sqrt(n)`` (unit spacing)."""
    rng = np.random.default_rng(seed)
    return ((rng.random((starts, n, dims)) - 0.5) * max(np.sqrt(n), 1.0)).astype(np.float32)


def _charges(charges: np.ndarray | None, n: int) -> np.ndarray:
    """Charges as ``(S, N)`` float32; default one snapshot of unit charges."""
    if charges is None:
        return np.ones((1, n), np.float32)
    q = np.asarray(charges, np.float32)
    q = q[None] if q.ndim == 1 else q
    if q.ndim != 2 or q.shape[1] != n:
        raise ValueError(f"charges must have shape ({n},) or (S, {n}), got {np.shape(charges)}")
    if not np.isfinite(q).all() or (q < 0).any():
        raise ValueError("charges must be finite and >= 0")
    empty = np.flatnonzero(~q.any(axis=1))
    if len(empty):
        raise ValueError(f"charges of snapshot(s) {empty.tolist()} are all zero: with no repulsion every vertex would "
                         "collapse onto one point; give some vertex a positive charge (charges_from_variance gives a "
                         "silent snapshot uniform charges)")
    return q


def _init(init: np.ndarray, batch: int, n: int, dims: int) -> np.ndarray:
    """Initial positions as ``(S, N, D)`` float32."""
    pos = np.asarray(init, np.float32)
    pos = np.broadcast_to(pos, (batch, *pos.shape)) if pos.ndim == 2 else pos
    if pos.shape != (batch, n, dims):
        raise ValueError(f"init must have shape ({n}, {dims}) or ({batch}, {n}, {dims}), got {np.shape(init)}")
    if not np.isfinite(pos).all():
        raise ValueError("init positions must be finite")
    return pos.copy()


def _pinned_mask(pinned: np.ndarray | None, n: int) -> np.ndarray:
    """A boolean ``(N,)`` mask from a mask or from vertex indices."""
    if pinned is None:
        return np.zeros(n, bool)
    pinned = np.asarray(pinned)
    if pinned.dtype == np.bool_:
        if pinned.shape != (n,):
            raise ValueError(f"pinned mask must have shape ({n},), got {pinned.shape}")
        return pinned.copy()
    if not np.issubdtype(pinned.dtype, np.integer):
        raise TypeError(f"pinned must be a boolean mask or integer vertex indices, got dtype {pinned.dtype}")
    if pinned.size and (pinned.min() < 0 or pinned.max() >= n):
        raise ValueError(f"pinned indices must lie in [0, {n}), got [{pinned.min()}, {pinned.max()}]")
    mask = np.zeros(n, bool)
    mask[pinned.ravel()] = True
    return mask
