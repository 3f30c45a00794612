"""The seed's force model: spring attraction along edges, power-law repulsion between charges, centering.

For vertex ``i`` at ``p_i`` with charge ``q_i``:

- attraction from each edge ``(i, j)`` of weight ``w_ij``: ``a_ij = w_ij (p_j - p_i)`` (edges are undirected);
- repulsion from every other vertex: ``r_ij = q_i q_j (p_i - p_j) / |p_i - p_j|^(k+1)`` (softened);
- centering: ``c_i = -l p_i``;

and ``f_i = c_i + sum_j (r_ij + a_ij)``, each term scaled by its ``ForceParams`` factor. ``energy`` is the
potential whose negative gradient is exactly this force, so tests can check one against the other.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from .backends import Repulsion
from .csr import symmetric_csr
from .graph import NeuronGraph
from .params import ForceParams


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
