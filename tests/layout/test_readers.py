"""Graphs from other tools: edge lists, scipy.sparse .npz and GraphML round trips, and errors naming the file."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from immersions.layout.graph_io import save_graph
from immersions.layout.readers import from_sparse, read_any, read_edge_list, read_graphml, read_sparse_npz
from immersions.layout.simulate import ForceLayout
from immersions.layout.sources import resolve_graph
from immersions.layout.synthetic import king_grid


def pairs(graph) -> dict[tuple[int, int], float]:
    """Weight per unordered pair."""
    return {(min(s, d), max(s, d)): w for (s, d), w in zip(graph.edges.tolist(), graph.weights.tolist())}


def weighted_matrix(n: int = 30, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    rows, cols = rng.integers(0, n, 80), rng.integers(0, n, 80)
    upper = sp.coo_matrix((rng.integers(1, 5, 80).astype(float), (rows, cols)), shape=(n, n)).tocsr()
    upper.sum_duplicates()
    upper = sp.triu(upper, k=1)
    return (upper + upper.T).tocsr()   # symmetric, as tools write undirected graphs


def test_sparse_matrix_is_read_as_an_undirected_graph():
    matrix = weighted_matrix()
    graph = from_sparse(matrix)
    upper = sp.triu(matrix, k=1).tocoo()
    assert graph.n_vertices == 30
    assert pairs(graph) == {(int(r), int(c)): float(w) for r, c, w in zip(upper.row, upper.col, upper.data)}


def test_one_directional_entries_count_once_with_the_larger_weight():
    matrix = sp.csr_matrix(np.array([[0, 2, 0], [5, 0, 1], [0, 0, 7.0]]))
    assert pairs(from_sparse(matrix)) == {(0, 1): 5.0, (1, 2): 1.0}


def test_sparse_npz_round_trip(tmp_path):
    matrix = weighted_matrix(seed=1)
    sp.save_npz(tmp_path / "g.npz", matrix)
    graph, labels = read_sparse_npz(tmp_path / "g.npz")
    assert pairs(graph) == pairs(from_sparse(matrix))
    np.testing.assert_array_equal(labels, np.arange(30))
    assert pairs(resolve_graph(str(tmp_path / "g.npz"))) == pairs(graph)


def test_saved_neuron_graph_npz_still_loads_with_its_layers(tmp_path):
    grid = king_grid(5)
    save_graph(grid, tmp_path / "grid.npz")
    assert resolve_graph(str(tmp_path / "grid.npz")).layers == grid.layers


@pytest.mark.parametrize("delimiter, header", [(" ", ""), (",", "source,target,weight\n"), ("\t", "")])
def test_integer_edge_list_round_trip(tmp_path, delimiter, header):
    graph = from_sparse(weighted_matrix(seed=2))
    path = tmp_path / ("g.csv" if delimiter == "," else "g.txt")
    lines = [delimiter.join([str(s), str(d), f"{w:g}"]) for (s, d), w in zip(graph.edges.tolist(),
                                                                             graph.weights.tolist())]
    path.write_text("# an edge list\n" + header + "\n".join(lines) + "\n")
    loaded, labels = read_edge_list(path)
    assert pairs(loaded) == pairs(graph)
    assert labels.size == graph.edges.max() + 1


def test_named_edge_list_numbers_vertices_by_first_appearance(tmp_path):
    path = tmp_path / "names.txt"
    path.write_text("zeta alpha\nalpha beta 2.5\n% comment\nbeta zeta\nzeta zeta\n")
    graph, labels = read_any(path)
    assert labels.tolist() == ["zeta", "alpha", "beta"]
    assert pairs(graph) == {(0, 1): 1.0, (1, 2): 2.5, (0, 2): 1.0}


def test_graphml_round_trip(tmp_path):
    nx = pytest.importorskip("networkx", reason="GraphML is read through networkx")
    g = nx.Graph()
    g.add_edge("a", "b", weight=2.0)
    g.add_edge("b", "c", weight=0.5)
    g.add_node("lonely")
    nx.write_graphml(g, tmp_path / "g.graphml")
    graph, labels = read_graphml(tmp_path / "g.graphml")
    assert labels.tolist() == ["a", "b", "c", "lonely"]
    assert pairs(graph) == {(0, 1): 2.0, (1, 2): 0.5}
    assert resolve_graph(str(tmp_path / "g.graphml")).n_vertices == 4


def test_fit_accepts_a_sparse_matrix():
    layout = ForceLayout(seed=0).fit(weighted_matrix(seed=3))
    assert layout.positions.shape == (1, 30, 2) and np.isfinite(layout.positions).all()


@pytest.mark.parametrize("name, text, message", [
    ("three.txt", "0 1\n1 2 3 4\n", "line 2: expected 'u v' or 'u v weight'"),
    ("weight.csv", "0,1,heavy\n", "line 1: weight 'heavy' is not a number"),
    ("negative.txt", "0 1 -2\n", "line 1: weight '-2' must be finite and > 0"),
    ("empty.txt", "# nothing\n", "holds no edges"),
    ("broken.graphml", "<graphml><graph", "not a readable GraphML file"),
    ("plain.npz", "not a zip", "is not a scipy.sparse .npz matrix"),
    ("g.dot", "graph {}", "cannot tell the format"),
])
def test_bad_files_are_refused_naming_the_file(tmp_path, name, text, message):
    if name.endswith(".graphml"):
        pytest.importorskip("networkx", reason="GraphML is read through networkx")
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as error:
        read_any(path)
    assert name in str(error.value)


def test_missing_file_and_bad_matrices():
    with pytest.raises(FileNotFoundError, match="nowhere.csv"):
        read_any("nowhere.csv")
    with pytest.raises(ValueError, match="square"):
        from_sparse(sp.csr_matrix(np.ones((2, 3))))
    with pytest.raises(ValueError, match="finite and > 0"):
        from_sparse(sp.csr_matrix(np.array([[0, -1.0], [0, 0]])))
    with pytest.raises(TypeError, match="scipy.sparse"):
        from_sparse(np.ones((2, 2)))
