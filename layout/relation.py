"""Sparse connectivity between two neuron spaces, kept factored so huge graphs stay cheap until built.

A neuron space is ``channels x size`` neurons in channel-major order (see ``layout.graph``). Most layers
connect channels and positions independently (a convolution: channel groups times a window along the kept
axis), so a connectivity is stored as a union of Kronecker ``Term``s ``channel (Cin x Cout) (x) position
(Kin x Kout)``: composing two terms multiplies the small factors, never the big product. Ops that mix the
two (a flatten) give a *flat* term over ``(channels * size, 1)``: because the order is channel-major, a
matrix over flat neuron indices is the same as a term whose position factor is ``1 x 1``.

Connectivity is binary: an edge exists when any path of ops connects the two neurons. Factors are
``scipy.sparse`` CSR arrays holding ones, or ``Ones`` for all-to-all blocks (a Linear over a large
flattened map would otherwise hold rows x cols entries before its input is known).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Union

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class Ones:
    """All-to-all factor: every input index connects to every output index."""

    shape: tuple[int, int]

    @property
    def nnz(self) -> int:
        return self.shape[0] * self.shape[1]


Factor = Union[sp.csr_array, Ones]


def sparse_factor(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_array:
    """A binary CSR factor from index pairs (duplicates collapse), with sorted indices."""
    rows = np.asarray(rows, np.int64).ravel()
    cols = np.asarray(cols, np.int64).ravel()
    m = sp.csr_array((np.ones(rows.size, np.float32), (rows, cols)), shape=shape)
    m.sum_duplicates()
    m.data[:] = 1
    return m


def eye(n: int) -> sp.csr_array:
    """Identity factor of size ``n``."""
    return sp.csr_array(sp.eye(n, dtype=np.float32, format="csr"))


def materialize(f: Factor) -> sp.csr_array:
    """The factor as an explicit CSR array (rows x cols entries for ``Ones``)."""
    if isinstance(f, Ones):
        n, m = f.shape
        indptr = np.arange(n + 1, dtype=np.int64) * m
        return sp.csr_array((np.ones(n * m, np.float32), np.tile(np.arange(m), n), indptr), shape=f.shape)
    return f


def _binary(m: sp.csr_array) -> sp.csr_array:
    m = sp.csr_array(m)
    m.eliminate_zeros()
    m.data[:] = 1
    m.sort_indices()
    return m


def _nonempty_rows(m: sp.csr_array) -> np.ndarray:
    return np.flatnonzero(np.diff(m.indptr))


def _nonempty_cols(m: sp.csr_array) -> np.ndarray:
    return np.unique(m.indices)


def matmul(a: Factor, b: Factor) -> Factor:
    """Boolean product: ``i -> k`` when some ``j`` has ``i -> j`` in ``a`` and ``j -> k`` in ``b``."""
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"factor shapes do not chain: {a.shape} then {b.shape}")
    n, m = a.shape[0], b.shape[1]
    if isinstance(a, Ones) and isinstance(b, Ones):
        return Ones((n, m)) if a.shape[1] else sparse_factor([], [], (n, m))
    if isinstance(a, Ones):
        cols = _nonempty_cols(b)
        if cols.size == m:
            return Ones((n, m))
        return sparse_factor(np.repeat(np.arange(n), cols.size), np.tile(cols, n), (n, m))
    if isinstance(b, Ones):
        rows = _nonempty_rows(a)
        if rows.size == n:
            return Ones((n, m))
        return sparse_factor(np.repeat(rows, m), np.tile(np.arange(m), rows.size), (n, m))
    return _binary(a @ b)


def union(a: Factor, b: Factor) -> Factor:
    """Entries present in either factor."""
    if a.shape != b.shape:
        raise ValueError(f"cannot unite factors of shapes {a.shape} and {b.shape}")
    if isinstance(a, Ones) or isinstance(b, Ones):
        return Ones(a.shape)
    return _binary(a + b)


def contains(a: Factor, b: Factor) -> bool:
    """Whether every entry of ``b`` is also in ``a``."""
    if a.shape != b.shape:
        return False
    if isinstance(a, Ones):
        return True
    if isinstance(b, Ones):
        return a.nnz == b.nnz
    return a.multiply(b).nnz == b.nnz


def kron(a: Factor, b: Factor) -> sp.csr_array:
    """The flat matrix of ``a (x) b`` over channel-major neuron indices."""
    return _binary(sp.kron(materialize(a), materialize(b), format="csr"))


@dataclass(frozen=True)
class Term:
    """``channel (x) position``: neuron ``(ci, ki)`` connects to ``(co, ko)`` when both factors do."""

    channel: Factor
    position: Factor

    @property
    def n_in(self) -> int:
        return self.channel.shape[0] * self.position.shape[0]

    @property
    def n_out(self) -> int:
        return self.channel.shape[1] * self.position.shape[1]

    @property
    def nnz(self) -> int:
        """Number of neuron pairs this term connects."""
        return self.channel.nnz * self.position.nnz

    def flat(self) -> "Term":
        """The same connectivity over flat neuron indices (position factor ``1 x 1``)."""
        if self.position.shape == (1, 1):
            return self
        return Term(kron(self.channel, self.position), eye(1))


Relation = tuple[Term, ...]


def identity(channels: int, size: int) -> Relation:
    """Every neuron of a ``channels x size`` space connected to itself."""
    return (Term(eye(channels), eye(size)),)


def compose_terms(t: Term, u: Term) -> Term:
    """``t`` followed by ``u``; factor-wise when the middle space is factored alike, else flat."""
    if t.n_out != u.n_in:
        raise ValueError(f"terms do not chain: {t.n_out} output neurons feed {u.n_in} input neurons")
    if t.channel.shape[1] == u.channel.shape[0] and t.position.shape[1] == u.position.shape[0]:
        return Term(matmul(t.channel, u.channel), matmul(t.position, u.position))
    tf, uf = t.flat(), u.flat()
    return Term(matmul(tf.channel, uf.channel), eye(1))


def _equal(a: Factor, b: Factor) -> bool:
    return contains(a, b) and contains(b, a)


def simplify(terms: tuple[Term, ...] | list[Term]) -> Relation:
    """Drop empty and contained terms and merge terms sharing a factor (``A(x)B + C(x)B = (A+C)(x)B``)."""
    kept: list[Term] = []
    for term in terms:
        if term.nnz == 0:
            continue
        for i, other in enumerate(kept):
            same_shapes = other.channel.shape == term.channel.shape and other.position.shape == term.position.shape
            if not same_shapes:
                continue
            if contains(other.channel, term.channel) and contains(other.position, term.position):
                break
            if contains(term.channel, other.channel) and contains(term.position, other.position):
                kept[i] = term
                break
            if _equal(other.position, term.position):
                kept[i] = Term(union(other.channel, term.channel), term.position)
                break
            if _equal(other.channel, term.channel):
                kept[i] = Term(term.channel, union(other.position, term.position))
                break
        else:
            kept.append(term)
    return tuple(kept)


def compose(first: Relation, then: Relation) -> Relation:
    """Connectivity of ``first`` followed by ``then`` (every path through the middle space)."""
    return simplify([compose_terms(t, u) for t in first for u in then])


def unite(a: Relation, b: Relation) -> Relation:
    """Connectivity through either relation (parallel paths, e.g. a residual add)."""
    return simplify(list(a) + list(b))


def edge_bound(relation: Relation) -> int:
    """Number of edges the relation builds: exact for one term, an upper bound when terms overlap."""
    return sum(term.nnz for term in relation)


def single_term(relation: Relation) -> Term:
    """One term equal to the relation: itself, or the flat union of all terms."""
    if len(relation) == 1:
        return relation[0]
    flat = relation[0].flat().channel
    for term in relation[1:]:
        flat = union(flat, term.flat().channel)
    return Term(flat, eye(1))


def out_degrees(term: Term) -> np.ndarray:
    """Number of targets of every input neuron, channel-major, int64."""
    deg_c = _row_degrees(term.channel)
    deg_p = _row_degrees(term.position)
    return np.outer(deg_c, deg_p).ravel()


def _row_degrees(f: Factor) -> np.ndarray:
    if isinstance(f, Ones):
        return np.full(f.shape[0], f.shape[1], np.int64)
    return np.diff(f.indptr).astype(np.int64)


def write_edges(targets: list[tuple[Term, int]], out: np.ndarray, *, src_offset: int,
                max_block: int = 1 << 22) -> None:
    """Write the edges of one source space to several target spaces, CSR-ordered, into ``out``.

    ``targets``: ``(term, first vertex of the target space)`` in target order; all terms share the input
    space, whose neuron ``v`` is vertex ``src_offset + v``. ``out`` is the ``(E, 2)`` int32 run of rows these
    edges fill: each source's targets ascending, target spaces one after the other. Only block-sized
    temporaries are made (at most ~``max_block`` edges), never an array as long as all edges.
    """
    degrees = sum(out_degrees(term) for term, _ in targets)
    if int(degrees.sum()) != out.shape[0]:
        raise ValueError(f"out has {out.shape[0]} rows for {int(degrees.sum())} edges")
    if all(_uniform_degree(term.channel) is not None for term, _ in targets):
        _write_uniform(targets, out, src_offset, max_block)
    else:
        _write_scattered(targets, out, src_offset, degrees, max_block)


def _uniform_degree(f: Factor) -> int | None:
    """The common row degree of a factor, or None when rows differ."""
    deg = _row_degrees(f)
    return int(deg[0]) if deg.size and np.all(deg == deg[0]) else None


def _channel_blocks(n_rows: int, edges_per_row: int, max_block: int) -> Iterator[tuple[int, int]]:
    step = max(1, max_block // max(edges_per_row, 1))
    for c0 in range(0, n_rows, step):
        yield c0, min(c0 + step, n_rows)


def _channel_targets(f: Factor, c0: int, c1: int) -> np.ndarray:
    """Targets of channel rows ``c0 .. c1-1`` as a (rows, degree) array (the factor has uniform degree)."""
    if isinstance(f, Ones):
        return np.broadcast_to(np.arange(f.shape[1], dtype=np.int64), (c1 - c0, f.shape[1]))
    block = f[c0:c1]
    return block.indices.astype(np.int64).reshape(c1 - c0, -1)


def _write_uniform(targets: list[tuple[Term, int]], out: np.ndarray, src_offset: int, max_block: int) -> None:
    """Every channel row has the same degree, so a source's edge count depends on its position only and
    the rows form a (channels, D) grid: one broadcast per (block of channels, input position)."""
    first = targets[0][0]
    n_channels, k_in = first.channel.shape[0], first.position.shape[0]
    positions = [materialize(term.position) for term, _ in targets]
    widths = np.stack([_uniform_degree(term.channel) * np.diff(pos.indptr)
                       for (term, _), pos in zip(targets, positions)])  # (pairs, k_in)
    starts = np.cumsum(widths.sum(axis=0)) - widths.sum(axis=0)  # column of each input position
    per_channel = int(widths.sum())
    src = out[:, 0]
    dst = out[:, 1]
    src.shape = dst.shape = (n_channels, per_channel)
    rows = np.arange(n_channels, dtype=np.int64) * k_in + src_offset
    for ki in range(k_in):
        src[:, starts[ki]:starts[ki] + widths[:, ki].sum()] = (rows + ki)[:, None]
    for p, ((term, dst_offset), pos) in enumerate(zip(targets, positions)):
        k_out = pos.shape[1]
        for c0, c1 in _channel_blocks(n_channels, per_channel, max_block):
            chan = _channel_targets(term.channel, c0, c1) * k_out + dst_offset
            for ki in range(k_in):  # one vectorised step per input position
                t = pos.indices[pos.indptr[ki]:pos.indptr[ki + 1]]
                col = starts[ki] + widths[:p, ki].sum()
                view = dst[c0:c1, col:col + widths[p, ki]]
                view.shape = (c1 - c0, chan.shape[1], t.size)
                np.add(chan[:, :, None], t[None, None, :], out=view, casting="unsafe")


def _write_scattered(targets: list[tuple[Term, int]], out: np.ndarray, src_offset: int, degrees: np.ndarray,
                     max_block: int) -> None:
    """General case: compute each block's targets, then scatter them to their CSR positions."""
    row_base = np.cumsum(degrees) - degrees
    for term, dst_offset in targets:
        deg = out_degrees(term)
        pos = materialize(term.position)
        k_in = pos.shape[0]
        for c0, c1 in _channel_blocks(term.channel.shape[0], int(deg.max(initial=1)) * k_in, max_block):
            first, stop = c0 * k_in, c1 * k_in
            rows = materialize(term.channel[c0:c1] if not isinstance(term.channel, Ones)
                               else Ones((c1 - c0, term.channel.shape[1])))
            block = _block_targets(rows, pos, pos.shape[1])
            counts = deg[first:stop]
            rank = np.arange(block.size, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
            at = np.repeat(row_base[first:stop], counts) + rank
            out[at, 1] = block + dst_offset
            out[at, 0] = np.repeat(np.arange(first, stop, dtype=np.int64) + src_offset, counts)
        row_base += deg


def _block_targets(rows: sp.csr_array, pos: sp.csr_array, k_out: int) -> np.ndarray:
    """Targets for all (channel row, position row) pairs of a block, ordered (ci, ki, channel, position)."""
    n_rows, k_in = rows.shape[0], pos.shape[0]
    deg_p = np.diff(pos.indptr).astype(np.int64)
    deg_c = np.diff(rows.indptr).astype(np.int64)
    counts = np.outer(deg_c, deg_p).ravel()  # per input neuron (ci, ki), channel-major
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, np.int64)
    starts = np.cumsum(counts) - counts
    r = np.arange(total, dtype=np.int64) - np.repeat(starts, counts)
    deg_b = np.repeat(np.tile(deg_p, n_rows), counts)
    a_entry = np.repeat(np.repeat(rows.indptr[:-1].astype(np.int64), k_in), counts) + r // deg_b
    b_entry = np.repeat(np.tile(pos.indptr[:-1].astype(np.int64), n_rows), counts) + r % deg_b
    return rows.indices[a_entry].astype(np.int64) * k_out + pos.indices[b_entry]
