"""Graphs made with other tools: an edge list (text or CSV), a scipy.sparse ``.npz`` matrix, GraphML.

Each reader returns a ``NeuronGraph`` of one layer ``1 x N`` (no axis structure) and the vertex labels
``(N,)`` in vertex order. The graph is undirected: a pair stored in both directions counts once, with the
larger weight. Errors name the file and what is wrong in it.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .graph import NeuronGraph, layer_table

EDGE_LIST_SUFFIXES = (".txt", ".csv", ".tsv", ".edges", ".edgelist", ".el")
GRAPHML_SUFFIXES = (".graphml", ".xml")
HEADER_WORDS = {"source", "target", "weight", "src", "dst", "from", "to", "u", "v", "node1", "node2", "i", "j"}


def from_sparse(matrix: sp.spmatrix | sp.sparray, *, name: str = "graph", where: str = "the matrix") -> NeuronGraph:
    """A graph from an ``N x N`` sparse adjacency matrix: entry ``(i, j)`` is an edge of that weight.

    The diagonal is ignored; weights must be finite and positive (they are spring constants).
    """
    if not sp.issparse(matrix):
        raise TypeError(f"{where} must be a scipy.sparse matrix, got {type(matrix).__name__}")
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"{where} must be a square adjacency matrix, got shape {matrix.shape}")
    if matrix.shape[0] == 0:
        raise ValueError(f"{where} has no vertices")
    coo = sp.coo_matrix(matrix)
    off = coo.row != coo.col
    rows, cols, values = coo.row[off], coo.col[off], np.asarray(coo.data[off], np.float64)
    if values.size and (not np.isfinite(values).all() or (values <= 0).any()):
        raise ValueError(f"{where} has {int(np.count_nonzero(~(np.isfinite(values) & (values > 0))))} edge weights "
                         f"that are not finite and > 0; weights are spring constants")
    return _undirected(int(matrix.shape[0]), rows, cols, values, name)


def _undirected(n: int, rows: np.ndarray, cols: np.ndarray, values: np.ndarray, name: str) -> NeuronGraph:
    """One edge per unordered pair (the larger weight when both directions are given), as a ``1 x n`` layer."""
    upper = sp.coo_matrix((values, (rows, cols)), shape=(n, n)).tocsr()
    upper.sum_duplicates()
    both = sp.triu(upper.maximum(upper.T), k=1).tocoo()
    return NeuronGraph.from_edges(layer_table([(name, 1, n)]), both.row, both.col, both.data.astype(np.float32))


def read_sparse_npz(path: str | os.PathLike) -> tuple[NeuronGraph, np.ndarray]:
    """A matrix written by ``scipy.sparse.save_npz``; labels are the vertex indices."""
    path = _existing(path)
    try:
        matrix = sp.load_npz(path)
    except (ValueError, KeyError, OSError) as error:
        raise ValueError(f"{str(path)!r} is not a scipy.sparse .npz matrix ({error})") from None
    graph = from_sparse(matrix, name=path.stem, where=f"the matrix in {str(path)!r}")
    return graph, np.arange(graph.n_vertices)


def read_edge_list(path: str | os.PathLike) -> tuple[NeuronGraph, np.ndarray]:
    """Lines ``u v`` or ``u v weight`` separated by whitespace, commas or tabs; ``#`` and ``%`` start comments
    and a first row of column names (``source,target,weight``) is skipped.

    If every vertex is a non-negative integer, vertex ``k`` is ``k`` (so ``N`` is the largest id + 1);
    otherwise vertices are numbered in order of first appearance and the labels give their names.
    """
    path = _existing(path)
    rows: list[list[str]] = []
    with open(path, encoding="utf-8", errors="strict") as file:
        try:
            for number, line in enumerate(file, 1):
                text = line.split("#", 1)[0].split("%", 1)[0].strip()
                if not text:
                    continue
                fields = [f for f in text.replace(",", " ").replace("\t", " ").split(" ") if f]
                if not rows and {f.lower() for f in fields} <= HEADER_WORDS:
                    continue
                if len(fields) not in (2, 3):
                    raise ValueError(f"{str(path)!r} line {number}: expected 'u v' or 'u v weight', got {text!r}")
                rows.append(fields + [str(number)])
        except UnicodeDecodeError:
            raise ValueError(f"{str(path)!r} is not a text edge list (not UTF-8)") from None
    if not rows:
        raise ValueError(f"{str(path)!r} holds no edges")
    ends = np.array([[r[0], r[1]] for r in rows])
    weights = np.ones(len(rows))
    for k, r in enumerate(rows):
        if len(r) == 4:
            try:
                weights[k] = float(r[2])
            except ValueError:
                raise ValueError(f"{str(path)!r} line {r[3]}: weight {r[2]!r} is not a number") from None
            if not np.isfinite(weights[k]) or weights[k] <= 0:
                raise ValueError(f"{str(path)!r} line {r[3]}: weight {r[2]!r} must be finite and > 0")
    flat = ends.ravel()
    if all(token.isdigit() for token in flat):
        ids = flat.astype(np.int64)
        labels = np.arange(int(ids.max()) + 1)
    else:
        labels, first, ids = np.unique(flat, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")     # number by first appearance, not alphabetically
        rename = np.empty(order.size, np.int64)
        rename[order] = np.arange(order.size)
        ids, labels = rename[ids], labels[order]
    ids = ids.reshape(-1, 2)
    keep = ids[:, 0] != ids[:, 1]
    graph = _undirected(labels.size, ids[keep, 0], ids[keep, 1], weights[keep], path.stem)
    return graph, labels


def read_graphml(path: str | os.PathLike) -> tuple[NeuronGraph, np.ndarray]:
    """A GraphML file (through networkx); a numeric ``weight`` edge attribute is used when present."""
    path = _existing(path)
    try:
        import networkx as nx
    except ImportError:
        raise ImportError("reading GraphML needs networkx: pip install 'immersions[graphs]'") from None
    try:
        g = nx.read_graphml(path)
    except Exception as error:  # networkx raises bare XML and key errors for broken files
        raise ValueError(f"{str(path)!r} is not a readable GraphML file ({type(error).__name__}: {error})") from None
    if g.number_of_nodes() == 0:
        raise ValueError(f"{str(path)!r} has no nodes")
    labels = np.array([str(node) for node in g.nodes])
    index = {node: k for k, node in enumerate(g.nodes)}
    edges = [(index[u], index[v], data.get("weight", 1.0)) for u, v, data in g.edges(data=True)]
    try:
        weights = np.array([float(w) for _, _, w in edges])
    except (TypeError, ValueError):
        raise ValueError(f"{str(path)!r} has an edge 'weight' that is not a number") from None
    if weights.size and (not np.isfinite(weights).all() or (weights <= 0).any()):
        raise ValueError(f"{str(path)!r} has edge weights that are not finite and > 0")
    src = np.array([u for u, _, _ in edges], np.int64)
    dst = np.array([v for _, v, _ in edges], np.int64)
    keep = src != dst
    return _undirected(labels.size, src[keep], dst[keep], weights[keep], path.stem), labels


def read_any(path: str | os.PathLike) -> tuple[NeuronGraph, np.ndarray]:
    """Dispatch on the suffix: ``.npz`` (scipy.sparse), GraphML, or an edge list."""
    suffix = Path(path).suffix.lower()
    if suffix == ".npz":
        return read_sparse_npz(path)
    if suffix in GRAPHML_SUFFIXES:
        return read_graphml(path)
    if suffix in EDGE_LIST_SUFFIXES:
        return read_edge_list(path)
    raise ValueError(f"cannot tell the format of {os.fspath(path)!r} from its suffix; use .npz (scipy.sparse), "
                     f"{', '.join(GRAPHML_SUFFIXES)} (GraphML) or {', '.join(EDGE_LIST_SUFFIXES)} (edge list)")


def _existing(path: str | os.PathLike) -> Path:
    """``path`` as a ``Path``, or ``FileNotFoundError`` naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no graph file at {str(path)!r}")
    return path
