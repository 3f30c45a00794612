"""Tracing, tap selection, vertex counts, edge storage and limits of ``extract``."""
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from immersions.layout.extract import extract, node_names
from immersions.layout.graph_io import load_graph, save_graph


class Small(nn.Module):
    """conv2d -> relu -> conv2d (stride 2) -> F.relu -> pool -> flatten -> linear -> .relu()"""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1)
        self.act = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.pool = nn.AdaptiveAvgPool2d((2, 2))
        self.fc = nn.Linear(24, 5)

    def forward(self, x):
        a = self.act(self.conv1(x))
        b = F.relu(self.conv2(a))
        return self.fc(torch.flatten(self.pool(b), 1)).relu()


def test_vertex_counts_are_channels_times_kept_size():
    x = torch.randn(1, 2, 8, 6)
    graph = extract(Small(), x)
    assert [(l.name, l.channels, l.size) for l in graph.layers] == [("act", 4, 8), ("relu", 6, 4), ("relu_1", 5, 1)]
    assert graph.n_vertices == 4 * 8 + 6 * 4 + 5
    graph_w = extract(Small(), x, keep_axis=3)
    assert [(l.channels, l.size) for l in graph_w.layers] == [(4, 6), (6, 3), (5, 1)]
    with_input = extract(Small(), x, include_input=True)
    assert [(l.name, l.channels, l.size) for l in with_input.layers][0] == ("x", 2, 8)


def test_three_d_maps_drop_length_unless_kept():
    model = nn.Sequential(nn.Conv1d(3, 5, 3), nn.ReLU(), nn.Conv1d(5, 2, 3, stride=2), nn.ELU())
    x = torch.randn(1, 3, 17)
    assert [(l.channels, l.size) for l in extract(model, x).layers] == [(5, 1), (2, 1)]
    assert [(l.channels, l.size) for l in extract(model, x, keep_length=True).layers] == [(5, 15), (2, 7)]


def test_default_taps_cover_module_function_and_method_nonlinearities_and_repeated_modules():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(2, 2, 1)
            self.relu = nn.ReLU()

        def forward(self, x):
            y = self.relu(self.conv(x))
            return torch.sigmoid(self.relu(self.conv(y) + x)).tanh()

    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = Twice()

        def forward(self, x):
            return self.block(x)

    graph = extract(Outer(), torch.randn(1, 2, 5))
    assert [l.name for l in graph.layers] == ["block.relu", "block.relu_1", "block.sigmoid", "block.tanh"]


def test_layers_pick_named_nodes_and_unknown_names_point_to_node_names():
    x = torch.randn(1, 2, 8, 6)
    names = node_names(Small(), x)
    assert names[:3] == ["x", "conv1", "act"] and "flatten" in names and "fc" in names
    graph = extract(Small(), x, layers=["conv1", "fc"])
    assert [l.name for l in graph.layers] == ["conv1", "fc"]
    with pytest.raises(ValueError, match="node_names"):
        extract(Small(), x, layers=["conv9"])


@pytest.mark.parametrize("training", [True, False])
def test_training_flag_is_restored(training):
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3),
                          nn.BatchNorm1d(3), nn.ReLU())
    model.train(training)
    extract(model, torch.randn(1, 1, 6, 6))  # a batch of one would fail BatchNorm1d in training mode
    assert all(m.training == training for m in model.modules())


def test_edges_are_csr_sorted_unique_int32_with_unit_weights_and_deterministic():
    x = torch.randn(1, 2, 8, 6)
    first, second = extract(Small(), x), extract(Small(), x)
    assert first.edges.dtype == np.int32 and first.weights.dtype == np.float32
    key = first.edges[:, 0].astype(np.int64) * first.n_vertices + first.edges[:, 1]
    assert np.all(np.diff(key) > 0)
    assert np.all(first.weights == 1)
    layer = first.layer_index()
    assert np.all(layer[first.edges[:, 0]] < layer[first.edges[:, 1]])
    np.testing.assert_array_equal(first.edges, second.edges)
    np.testing.assert_array_equal(first.weights, second.weights)
    assert first.layers == second.layers


def test_max_edges_refuses_before_building_with_an_actionable_message():
    x = torch.randn(1, 2, 8, 6)
    n_edges = extract(Small(), x).n_edges
    with pytest.raises(ValueError) as info:
        extract(Small(), x, max_edges=n_edges - 1)
    message = str(info.value)
    assert f"{n_edges:,}" in message and "GiB" in message and "max_edges" in message
    assert extract(Small(), x, max_edges=n_edges).n_edges == n_edges


def test_leaf_modules_use_the_rule_of_their_base_class_or_fail_by_name():
    class MyConv(nn.Conv2d):
        def forward(self, x):
            return super().forward(x) * 1.0

    class Opaque(nn.Module):
        def forward(self, x):
            return x.flip(1).cumsum(1)

    class Net(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.pre = nn.ReLU()
            self.inner = inner
            self.post = nn.ReLU()

        def forward(self, x):
            return self.post(self.inner(self.pre(x)))

    x = torch.randn(1, 2, 5, 4)
    traced = extract(Net(MyConv(2, 3, 3, padding=1)), x)
    as_leaf = extract(Net(MyConv(2, 3, 3, padding=1)), x, leaf_modules=[MyConv])
    np.testing.assert_array_equal(traced.edges, as_leaf.edges)
    with pytest.raises(ValueError, match=re.escape("module Opaque at 'inner'")):
        extract(Net(Opaque()), x, leaf_modules=["inner"])


class CPCLike(nn.Module):
    """Encoder on (B, C, F, T), folded to z (B, T, D) channels-last, AR model on (B, D, T)."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Conv2d(2, 4, (3, 1)), nn.ReLU(), nn.Conv2d(4, 8, (4, 1)), nn.ReLU())
        self.ar = nn.Sequential(nn.Conv1d(8, 6, 2), nn.ReLU(), nn.Conv1d(6, 6, 1), nn.ReLU())

    def forward(self, audio_features):
        z = self.enc(audio_features).squeeze(2).transpose(1, 2)  # (B, T, 8)
        c = self.ar(F.pad(z.transpose(1, 2), (1, 0)))
        return z, c.transpose(1, 2)


def test_cpc_layout_keeps_frequency_and_follows_channels_through_transposes():
    graph = extract(CPCLike(), torch.randn(2, 2, 6, 10))
    assert [(l.name, l.channels, l.size) for l in graph.layers] == [
        ("enc.1", 4, 4), ("enc.3", 8, 1), ("ar.1", 6, 1), ("ar.3", 6, 1)]
    e = graph.edges
    enc3, ar1 = graph.layer("enc.3"), graph.layer("ar.1")
    mask = (e[:, 0] >= enc3.start) & (e[:, 0] < enc3.stop)
    assert mask.sum() == 8 * 6  # full channel connectivity, not mixed up with time
    assert np.all((e[mask, 1] >= ar1.start) & (e[mask, 1] < ar1.stop))


def test_save_and_load_round_trip(tmp_path):
    graph = extract(Small(), torch.randn(1, 2, 8, 6))
    save_graph(graph, tmp_path / "g.npz")
    loaded = load_graph(tmp_path / "g.npz")
    assert loaded.layers == graph.layers
    np.testing.assert_array_equal(loaded.edges, graph.edges)
    np.testing.assert_array_equal(loaded.weights, graph.weights)
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="another program.*not a graph file"):
        load_graph(tmp_path / "other.npz")


def test_bad_arguments_raise_with_the_value():
    with pytest.raises(ValueError, match="keep_axis"):
        extract(Small(), torch.randn(1, 2, 8, 6), keep_axis=1)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        extract(lambda x: x, torch.randn(1, 2))
    with pytest.raises(ValueError, match="no taps"):
        extract(nn.Conv1d(1, 1, 1), torch.randn(1, 1, 3))

    class DataDependent(nn.Module):
        def forward(self, x):
            return torch.relu(x) if x.sum() > 0 else x

    with pytest.raises(ValueError, match="leaf_modules"):
        extract(DataDependent(), torch.randn(1, 2))
