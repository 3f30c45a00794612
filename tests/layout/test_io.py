"""Layout files: round trip, continuation after loading, clear errors for wrong or missing files."""
import json

import numpy as np
import pytest

from immersions.layout.forces import ForceParams
from immersions.layout.graph import NeuronGraph, layer_table
from immersions.layout.io import LAYOUT_FORMAT, load_layout, save_layout
from immersions.layout.simulate import ForceLayout


@pytest.fixture
def layout():
    layers = layer_table([("conv1", 2, 3), ("conv2", 3, 2)])
    graph = NeuronGraph.from_edges(layers, [0, 1, 2, 3, 4, 5, 0], [6, 7, 8, 9, 10, 11, 3],
                                   [1.0, 2.0, 1.0, 0.5, 1.0, 1.0, 3.0])
    charges = np.random.default_rng(0).uniform(0.5, 2, (2, graph.n_vertices)).astype(np.float32)
    return ForceLayout(ForceParams(k=2.5, max_iter=20), backend="exact", seed=7).fit(graph, charges=charges)


def test_round_trip_keeps_every_field(layout, tmp_path):
    path = save_layout(layout, tmp_path / "layout")
    assert path.name == "layout.npz"
    loaded = load_layout(path, backend="exact")
    for name in ("positions", "charges", "velocity", "step", "pinned"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(layout, name))
        assert getattr(loaded, name).dtype == getattr(layout, name).dtype
    assert loaded.layers == layout.layers
    np.testing.assert_array_equal(loaded.graph.edges, layout.graph.edges)
    np.testing.assert_array_equal(loaded.graph.weights, layout.graph.weights)
    assert loaded.params == layout.params and loaded.seed == 7 and loaded.iteration == layout.iteration


def test_loaded_layout_continues_like_the_original(layout, tmp_path):
    loaded = load_layout(save_layout(layout, tmp_path / "l.npz"), backend="exact")
    np.testing.assert_allclose(loaded.optimize(5).positions, layout.optimize(5).positions, rtol=0, atol=1e-6)


def test_file_stores_tables_as_json_strings_without_pickle(layout, tmp_path):
    path = save_layout(layout, tmp_path / "l.npz")
    with np.load(path, allow_pickle=False) as data:
        assert int(data["format_version"]) == LAYOUT_FORMAT
        assert [json.loads(s)["name"] for s in data["layers"]] == ["conv1", "conv2"]
        assert json.loads(str(data["params"][0]))["k"] == 2.5


def test_missing_file_and_wrong_contents_are_clear_errors(layout, tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.npz"):
        load_layout(tmp_path / "nowhere.npz")
    other = tmp_path / "other.npz"
    np.savez(other, positions=np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match=r"another program \(arrays \['positions'\]\), not a layout file"):
        load_layout(other)
    text = tmp_path / "text.npz"
    text.write_text("not a zip")
    with pytest.raises(ValueError, match="not a layout file: not a readable .npz archive"):
        load_layout(text)


def test_unknown_version_and_missing_arrays_are_refused(layout, tmp_path):
    path = save_layout(layout, tmp_path / "l.npz")
    with np.load(path, allow_pickle=False) as data:
        arrays = dict(data)
    np.savez(tmp_path / "future.npz", **{**arrays, "format_version": np.int64(LAYOUT_FORMAT + 1)})
    with pytest.raises(ValueError, match=f"version {LAYOUT_FORMAT + 1}"):
        load_layout(tmp_path / "future.npz")
    del arrays["velocity"]
    np.savez(tmp_path / "partial.npz", **arrays)
    with pytest.raises(ValueError, match="velocity"):
        load_layout(tmp_path / "partial.npz")


def test_a_failed_write_leaves_the_old_file_and_no_partial_one(tmp_path):
    from immersions.layout.npz_io import whole_file, write_arrays

    path = write_arrays(tmp_path / "a.npz", format_version=np.int64(1), x=np.arange(3))
    with pytest.raises(RuntimeError, match="disk full"):
        with whole_file(path) as partial:
            partial.write_bytes(b"half an archive")
            raise RuntimeError("disk full")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz"]
    with np.load(path) as data:
        assert data["x"].tolist() == [0, 1, 2]
    assert write_arrays(tmp_path / "b", x=np.zeros(1)).name == "b.npz"  # the suffix numpy would add
