"""Structural coarsening: merge vertices by the graph's edges alone, whatever their numbering.

One level is a handshake (mutual-choice) matching run for ``rounds`` rounds, as in parallel heavy-edge
matching: every vertex still unmatched picks the unmatched neighbour of highest score ``w_ij / (s_i s_j)``
(``s`` counts the input vertices a vertex stands for, so clusters stay balanced; ties go to the neighbour of
highest seeded random rank) and two vertices that picked each other become a pair. A vertex left unmatched
then joins the pair of its best matched neighbour (so stars and trees shrink too, where a matching alone
stalls), and a vertex with no matched neighbour stays alone. The result depends on the edges, the weights
and the seed, never on how the vertices are numbered except through the seeded ranks.

Two implementations give the same clusters: Numba kernels on the CPU, and vectorised torch (one
``scatter_reduce`` per choice, no host synchronisation inside a level) for a GPU.
"""
from __future__ import annotations

import numba as nb
import numpy as np
import torch

from .csr import group_edges, symmetric_csr

ROUNDS = 4
BACKENDS = ("numba", "torch")


def seeded_ranks(n: int, seed: int) -> np.ndarray:
    """A seeded random permutation: rank of every vertex, the tie-break of equal scores."""
    return np.random.default_rng(seed).permutation(n).astype(np.int64)


@nb.njit(cache=True)
def _best_neighbours(indptr, cols, vals, size, rank, free_src, free_dst):
    """For every vertex with ``free_src``, its neighbour with ``free_dst`` of highest (score, rank); -1 if none."""
    n = indptr.size - 1
    best = np.full(n, -1, np.int64)
    for i in range(n):
        if not free_src[i]:
            continue
        top_score, top_rank = -1.0, -1
        for k in range(indptr[i], indptr[i + 1]):
            j = cols[k]
            if j == i or not free_dst[j]:
                continue
            score = np.float64(vals[k]) / (size[i] * size[j])
            if score > top_score or (score == top_score and rank[j] > top_rank):
                top_score, top_rank = score, rank[j]
                best[i] = j
    return best


@nb.njit(cache=True)
def _match_numba(indptr, cols, vals, size, rank, rounds):
    """Root of every vertex's cluster (the member of lowest rank), after ``rounds`` handshakes and joins."""
    n = indptr.size - 1
    root = np.arange(n)
    matched = np.zeros(n, np.bool_)
    for _ in range(rounds):
        free = ~matched
        best = _best_neighbours(indptr, cols, vals, size, rank, free, free)
        for i in range(n):
            j = best[i]
            if j >= 0 and best[j] == i:
                matched[i] = True
                root[i] = i if rank[i] < rank[j] else j
    target = _best_neighbours(indptr, cols, vals, size, rank, ~matched, matched)
    for i in range(n):
        if target[i] >= 0:
            root[i] = root[target[i]]
    return root


def _match_torch(rows: torch.Tensor, cols: torch.Tensor, vals: torch.Tensor, size: torch.Tensor,
                 rank: torch.Tensor, rounds: int) -> torch.Tensor:
    """The same clusters as ``_match_numba`` from both directions of every edge, on the tensors' device."""
    n = size.numel()
    by_rank = torch.empty_like(rank)
    by_rank[rank] = torch.arange(n, device=rank.device)
    score = vals.to(torch.float64) / (size[rows] * size[cols])
    matched = torch.zeros(n, dtype=torch.bool, device=rows.device)
    root = torch.arange(n, device=rows.device)

    def best(free_src: torch.Tensor, free_dst: torch.Tensor) -> torch.Tensor:
        allowed = free_src[rows] & free_dst[cols] & (rows != cols)
        s = torch.where(allowed, score, torch.full_like(score, -1.0))
        top = torch.full((n,), -1.0, dtype=score.dtype, device=score.device)
        top = top.scatter_reduce(0, rows, s, "amax")
        tied = allowed & (s == top[rows])
        r = torch.where(tied, rank[cols], torch.full_like(rank[cols], -1))
        top_rank = torch.full((n,), -1, dtype=rank.dtype, device=rank.device).scatter_reduce(0, rows, r, "amax")
        return torch.where(top_rank >= 0, by_rank[top_rank.clamp(min=0)], torch.full_like(top_rank, -1))

    for _ in range(rounds):
        choice = best(~matched, ~matched)
        mutual = (choice >= 0) & (choice[choice.clamp(min=0)] == torch.arange(n, device=rows.device))
        partner = choice.clamp(min=0)
        root = torch.where(mutual, torch.where(rank < rank[partner], torch.arange(n, device=rows.device), partner),
                           root)
        matched = matched | mutual
    target = best(~matched, matched)
    return torch.where(target >= 0, root[target.clamp(min=0)], root)


def coarsen_numba(edges: np.ndarray, weights: np.ndarray, size: np.ndarray, seed: int, *,
                  rounds: int = ROUNDS) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One level on the CPU: ``(parent, coarse edges, coarse weights, coarse size)``.

    ``edges`` ``(E, 2)`` in any orientation, ``size`` ``(N,)`` float64. Coarse vertices are numbered in the
    order of their root vertex; coarse edges are lower endpoint first, duplicates merged with summed weights.
    """
    n = int(size.shape[0])
    indptr, cols, vals, _ = symmetric_csr(edges, weights, n)
    root = _match_numba(indptr.astype(np.int64), cols, vals, size, seeded_ranks(n, seed), int(rounds))
    del indptr, cols, vals
    parent = parents_from_roots(root)
    n_coarse = int(parent.max()) + 1 if n else 0
    coarse_edges, coarse_weights = group_edges(edges[:, 0], edges[:, 1], weights, n_coarse, parent=parent,
                                               undirected=True)
    return parent, coarse_edges, coarse_weights, np.bincount(parent, weights=size, minlength=n_coarse)


def coarsen_torch(src: torch.Tensor, dst: torch.Tensor, weights: torch.Tensor, size: torch.Tensor, seed: int, *,
                  rounds: int = ROUNDS) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One level on the tensors' device: ``(parent, src, dst, weights, size)`` of the coarse graph.

    The same clusters and numbering as ``coarsen_numba``; the host waits only at the end of the level, for
    the coarse edge and vertex counts.
    """
    n = size.numel()
    rank = torch.as_tensor(seeded_ranks(n, seed), device=size.device)
    root = _match_torch(torch.cat([src, dst]), torch.cat([dst, src]), torch.cat([weights, weights]), size, rank,
                        int(rounds))
    parent = parents_from_roots_torch(root)
    n_coarse = parent.max() + 1
    a, b = parent[src], parent[dst]
    low, high = torch.minimum(a, b), torch.maximum(a, b)
    keep = low != high
    keys, inverse = torch.unique(low[keep] * n_coarse + high[keep], return_inverse=True)
    merged = torch.zeros(keys.numel(), dtype=torch.float64, device=size.device)
    merged.index_add_(0, inverse, weights[keep].to(torch.float64))
    coarse_size = torch.zeros(int(n_coarse), dtype=size.dtype, device=size.device).index_add_(0, parent, size)
    return parent, keys // n_coarse, keys % n_coarse, merged.to(weights.dtype), coarse_size


def parents_from_roots(root: np.ndarray) -> np.ndarray:
    """Renumber cluster roots to consecutive coarse ids in root order."""
    is_root = root == np.arange(root.size)
    ids = np.cumsum(is_root) - 1
    return ids[root].astype(np.int64)


def parents_from_roots_torch(root: torch.Tensor) -> torch.Tensor:
    """``parents_from_roots`` on the device."""
    is_root = root == torch.arange(root.numel(), device=root.device)
    ids = torch.cumsum(is_root.to(torch.int64), 0) - 1
    return ids[root]
