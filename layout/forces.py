"""The seed's force model: spring attraction along edges, power-law repulsion between charges, centering.

For vertex ``i`` at ``p_i`` with charge ``q_i``:

- attraction from each edge ``(i, j)`` of weight ``w_ij``: ``a_ij = w_ij (p_j - p_i)`` (edges are undirected);
- repulsion from every other vertex: ``r_ij = q_i q_j (p_i - p_j) / |p_i - p_j|^(k+1)`` (softened);
- centering: ``c_i = -l p_i``;

and ``f_i = c_i + sum_j (r_ij + a_ij)``, each term scaled by its ``ForceParams`` factor. ``energy`` is the
potential whose negative gradient is exactly this force, so tests can check one against the other.
"""
from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, dataclass, fields, replace

import torch

from .backends import DEFAULT_SOFTENING, Repulsion
from .csr import symmetric_csr
from .graph import NeuronGraph


@dataclass(frozen=True)
class ForceParams:
    """Force constants and the integration schedule; immutable so a ``Layout`` can carry its own copy.

    ``k`` and ``centering`` hold on the finest level. On coarser levels (``at_level``) the centering is
    divided by ``centering_growth`` per level (the seed grows it as the layout refines) and the exponent
    moves toward ``coarse_k`` on the coarsest level (quadratically in the level's depth): a longer-ranged
    repulsion while the global shape forms unfolds it reliably, the final ``k`` then sets the spacing. A level ``L`` steps above the
    finest runs at most ``min(max_iter, fine_iter * iter_growth ** L)`` iterations: coarse levels are
    cheap and settle the global shape, fine levels only untangle locally. A level stops early, after at
    least ``min_iter`` iterations, once the mean displacement per iteration falls below ``tolerance`` mean
    edge lengths, checked every ``check_every`` iterations (the only host synchronisation). With
    ``untangle_iter`` above 0 a level whose cap is reached goes on, up to ``untangle_iter`` more iterations,
    while its squared force still falls by ``untangle_fall`` per check: a folded layout is not cut off while it
    unfolds. ``None`` (the default) lets ``ForceLayout`` choose by coarsening: the seed's fixed schedule (0) for
    the axis merge, where it was measured, and ``UNTANGLE_ITER`` more for the structural one.

    The Verlet step starts at ``time_step`` and adapts between ``time_step / 100`` and ``max_time_step``:
    it grows by ``step_growth`` while the squared force falls and shrinks by ``step_shrink`` when it rises.
    No vertex moves more than ``max_displacement`` mean edge lengths per iteration, and ``damping`` is the
    fraction of velocity kept per iteration. The cap is well below one edge length because the repulsion
    ``d^-k`` is near-singular at short range: for ``k`` above 2 a vertex that may jump a whole edge length
    lands beside another one and folds the grid (``k = 3`` with a cap of 1 collapses), while at ``k = 2``
    the long-range repulsion dominates and the smaller cap costs neither quality nor time.
    """

    k: float = 2.0
    coarse_k: float = 1.5
    centering: float = 0.01
    centering_growth: float = 1.0
    attraction: float = 1.0
    repulsion: float = 1.0
    theta: float = 1.2
    time_step: float = 0.5
    max_time_step: float = 3.5
    damping: float = 0.6
    max_displacement: float = 0.3
    step_growth: float = 1.2
    step_shrink: float = 0.7
    max_iter: int = 100
    fine_iter: int = 5
    iter_growth: float = 1.8
    min_iter: int = 10
    tolerance: float = 2e-3
    check_every: int = 10
    untangle_iter: int | None = None
    untangle_fall: float = 0.01
    softening: float = DEFAULT_SOFTENING

    def __post_init__(self) -> None:
        positive = ("k", "coarse_k", "attraction", "time_step", "max_time_step", "max_displacement", "step_growth",
                    "tolerance")
        for name in positive:
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"ForceParams.{name} must be a finite number > 0, got {value!r}")
        for name in ("centering", "repulsion", "theta", "softening"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"ForceParams.{name} must be a finite number >= 0, got {value!r}")
        if not 0 <= self.damping < 1:
            raise ValueError(f"ForceParams.damping must lie in [0, 1), got {self.damping!r}")
        if not 0 < self.step_shrink < 1:
            raise ValueError(f"ForceParams.step_shrink must lie in (0, 1), got {self.step_shrink!r}")
        if self.centering_growth <= 0:
            raise ValueError(f"ForceParams.centering_growth must be > 0, got {self.centering_growth!r}")
        if self.iter_growth < 1:
            raise ValueError(f"ForceParams.iter_growth must be >= 1, got {self.iter_growth!r}")
        if not 0 <= self.untangle_fall < 1:
            raise ValueError(f"ForceParams.untangle_fall must lie in [0, 1), got {self.untangle_fall!r}")
        if self.untangle_iter is not None and (not isinstance(self.untangle_iter, int) or self.untangle_iter < 0):
            raise ValueError(f"ForceParams.untangle_iter must be None or a non-negative integer, "
                             f"got {self.untangle_iter!r}")
        for name in ("max_iter", "fine_iter", "min_iter", "check_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (1 if name == "check_every" else 0):
                raise ValueError(f"ForceParams.{name} must be a non-negative integer (check_every >= 1), "
                                 f"got {value!r}")

    def at_level(self, level: int, n_levels: int) -> "ForceParams":
        """The parameters of the level ``level`` steps coarser than the finest of ``n_levels`` levels."""
        if not 0 <= level < n_levels:
            raise ValueError(f"level must lie in [0, {n_levels - 1}], got {level}")
        share = (level / (n_levels - 1)) ** 2 if n_levels > 1 else 0.0
        return replace(self, k=self.k + (self.coarse_k - self.k) * share,
                       centering=self.centering / self.centering_growth ** level)

    def iterations_at(self, level: int) -> int:
        """Iteration cap of the level ``level`` steps coarser than the finest one."""
        return int(min(self.max_iter, round(self.fine_iter * self.iter_growth ** level)))

    def to_json(self) -> str:
        """The parameters as a JSON object (what ``Layout`` files store)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ForceParams":
        """Parameters from ``to_json`` output; unknown keys are an error naming them."""
        values = json.loads(text)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown ForceParams fields {unknown}; known fields are {sorted(known)}")
        return cls(**values)


@dataclass(frozen=True)
class EdgeTensors:
    """A graph's edges on a device: endpoint lists, and the symmetric weighted adjacency as a sparse CSR
    matrix with its row sums (the weighted degree), so the attraction is one sparse product.

    Endpoints and CSR indices are int32 (int64 only above 2^31 entries), and on the CPU the endpoints and
    weights are views on the graph's arrays: only the sparse product's two directions are stored, 16 bytes
    per edge.
    """

    src: torch.Tensor
    dst: torch.Tensor
    weight: torch.Tensor
    adjacency: torch.Tensor
    degree: torch.Tensor

    @classmethod
    def from_graph(cls, graph: NeuronGraph, device: torch.device | str = "cpu",
                   dtype: torch.dtype = torch.float32) -> "EdgeTensors":
        """Copy ``graph.edges`` and ``graph.weights`` to ``device``."""
        n = graph.n_vertices
        indptr, cols, values, degree = symmetric_csr(graph.edges, graph.weights, n)
        with warnings.catch_warnings():  # torch flags sparse CSR as beta on every construction
            warnings.simplefilter("ignore", UserWarning)
            adjacency = torch.sparse_csr_tensor(torch.as_tensor(indptr), torch.as_tensor(cols),
                                                torch.as_tensor(values, dtype=dtype), (n, n),
                                                check_invariants=False).to(device)
        del indptr, cols, values
        endpoints = [torch.as_tensor(graph.edges[:, i], device=device) for i in (0, 1)]  # views on the CPU
        return cls(*endpoints, torch.as_tensor(graph.weights, dtype=dtype, device=device), adjacency,
                   torch.as_tensor(degree, dtype=dtype, device=device))


def neighbour_sum(pos: torch.Tensor, edges: EdgeTensors) -> torch.Tensor:
    """``(A p)_i = sum_j w_ij p_j`` for positions ``(B, N, D)``: one sparse product for the whole batch."""
    b, n, d = pos.shape
    stacked = pos.permute(1, 0, 2).reshape(n, b * d)
    return (edges.adjacency.to(pos.dtype) @ stacked).reshape(n, b, d).permute(1, 0, 2)


def attraction(pos: torch.Tensor, edges: EdgeTensors) -> torch.Tensor:
    """Spring force ``sum_j w_ij (p_j - p_i) = (A p)_i - deg_i p_i`` on every vertex, shape of ``pos``."""
    return neighbour_sum(pos, edges) - edges.degree.to(pos.dtype)[None, :, None] * pos


def total_force(pos: torch.Tensor, charge: torch.Tensor, edges: EdgeTensors, params: ForceParams,
                repulsion: Repulsion) -> torch.Tensor:
    """``f = -l p + repulsion_scale * r + attraction_scale * a`` for positions ``(B, N, D)``."""
    force = attraction(pos, edges)
    if params.attraction != 1.0:
        force = force * params.attraction
    if params.repulsion > 0 and pos.shape[1] > 1:
        rep = repulsion(pos, charge, params.k, params.theta, softening=params.softening)
        force = force + params.repulsion * rep
    if params.centering > 0:
        force = force - params.centering * pos
    return force


def pair_potential(dist2: torch.Tensor, k: float, softening: float) -> torch.Tensor:
    """Potential ``phi`` with ``-grad phi`` equal to the softened repulsion of two unit charges."""
    s2 = dist2 + softening * softening
    if abs(k - 1.0) < 1e-12:
        return -0.5 * torch.log(s2)
    return s2.pow(-(k - 1) / 2) / (k - 1)


def energy(pos: torch.Tensor, charge: torch.Tensor, edges: EdgeTensors, params: ForceParams) -> torch.Tensor:
    """Exact potential energy per batch entry, shape ``(B,)``; O(N^2), for tests and small graphs.

    ``E = a/2 sum_edges w |p_i - p_j|^2 + r sum_{i<j} q_i q_j phi(|p_i - p_j|) + l/2 sum_i |p_i|^2``.
    """
    if pos.ndim != 3 or charge.shape != pos.shape[:2]:
        raise ValueError(f"pos must be (B, N, D) and charge (B, N); got {tuple(pos.shape)} and "
                         f"{tuple(charge.shape)}")
    spring = pos[:, edges.dst] - pos[:, edges.src]
    e_attr = 0.5 * params.attraction * (spring.square().sum(-1) * edges.weight.to(pos.dtype)).sum(-1)
    diff = pos[:, :, None, :] - pos[:, None, :, :]
    phi = pair_potential(diff.square().sum(-1), params.k, params.softening)
    qq = charge[:, :, None] * charge[:, None, :]
    off_diagonal = ~torch.eye(pos.shape[1], dtype=torch.bool, device=pos.device)
    e_rep = 0.5 * params.repulsion * (qq * phi * off_diagonal).sum((-1, -2))
    e_center = 0.5 * params.centering * pos.square().sum((-1, -2))
    return e_attr + e_rep + e_center
