"""Zoo architectures: published parameter counts, graphs derived by hand, torchvision parity when installed."""
import numpy as np
import pytest
import torch

from immersions.layout import zoo
from immersions.layout.extract import default_taps, extract, trace
from immersions.layout.graph_io import load_graph
from immersions.render.cli import main


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def pair_edges(graph, src, dst):
    s, d = graph.layer(src), graph.layer(dst)
    e = graph.edges
    return int(np.sum((e[:, 0] >= s.start) & (e[:, 0] < s.stop) & (e[:, 1] >= d.start) & (e[:, 1] < d.stop)))


@pytest.mark.parametrize("name,expected", [("vgg16", 138_357_544), ("resnet18", 11_689_512)])
def test_parameter_counts_match_the_published_models(name, expected):
    assert n_params(getattr(zoo, name)()) == expected


def test_vgg16_graph_matches_a_hand_derivation():
    model, x = zoo.build("vgg16", input_shape=(1, 3, 32, 32))
    conv_indices = [i for i, m in enumerate(model.features) if isinstance(m, torch.nn.Conv2d)]
    taps = [f"features.{i + 1}" for i in conv_indices] + ["classifier.1"]  # fc2's 16.7 M edges left out
    graph = extract(model, x, layers=taps)
    channels = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    sizes = [32, 32, 16, 16, 8, 8, 8, 4, 4, 4, 2, 2, 2]
    assert [(l.channels, l.size) for l in graph.layers] == list(zip(channels, sizes)) + [(4096, 1)]
    assert default_taps(trace(model, x)) == taps + ["classifier.4"]
    expected = 0
    for (c_in, n_in), (c_out, n_out) in zip(zip(channels, sizes), zip(channels[1:], sizes[1:])):
        # 3x3 conv, padding 1, along the kept axis: |i - o| <= 1, after a 2x2 max pool: |i // 2 - o| <= 1
        pairs = 3 * n_out - 2 if n_in == n_out else 2 * (3 * n_out - 2)
        expected += c_in * c_out * pairs
    expected += 512 * 2 * 4096  # flatten -> fc1 reaches every neuron of the last map
    assert graph.n_edges == expected


def test_resnet18_graph_has_blocks_and_skip_edges():
    model, x = zoo.build("resnet18", input_shape=(1, 3, 64, 64))
    graph = extract(model, x)
    names = ["relu"] + [f"layer{i}.{b}.relu{s}" for i in range(1, 5) for b in range(2) for s in ("", "_1")]
    sizes = [32] + [16] * 4 + [8] * 4 + [4] * 4 + [2] * 4
    channels = [64] + [64] * 4 + [128] * 4 + [256] * 4 + [512] * 4
    assert [(l.name, l.channels, l.size) for l in graph.layers] == list(zip(names, channels, sizes))
    # stem: 3x3/2 max pool with padding 1 (output o reads 2o-1 .. 2o+1), then a 3x3 conv (|o - o'| <= 1)
    pool = {(i, o) for o in range(16) for i in range(2 * o - 1, 2 * o + 2) if 0 <= i < 32}
    pool_conv = {(i, q) for i, o in pool for q in range(16) if abs(o - q) <= 1}
    assert pair_edges(graph, "relu", "layer1.0.relu") == 64 * 64 * len(pool_conv)
    assert pair_edges(graph, "relu", "layer1.0.relu_1") == 64 * len(pool)  # identity shortcut after the pool
    assert pair_edges(graph, "layer1.0.relu_1", "layer1.1.relu") == 64 * 64 * (3 * 16 - 2)
    assert pair_edges(graph, "layer1.0.relu_1", "layer1.1.relu_1") == 64 * 16  # identity shortcut
    # downsampling block: 1x1 stride-2 projection from the block input, all channels
    assert pair_edges(graph, "layer1.1.relu_1", "layer2.0.relu_1") == 64 * 128 * 8


def test_audio_model_graph_and_cli(tmp_path, capsys):
    model, x = zoo.build("audio")
    graph = extract(model, x)
    assert [(l.channels, l.size) for l in graph.layers] == [(8, 32), (8, 32), (16, 8), (16, 1), (16, 1)]
    out = tmp_path / "audio.npz"
    assert main(["graph", "audio", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"{graph.n_vertices} neurons, {graph.n_edges} edges" in printed
    loaded = load_graph(out)
    np.testing.assert_array_equal(loaded.edges, graph.edges)
    assert main(["graph", "audio", "--layers", "nope"]) == 1
    assert "node_names" in capsys.readouterr().err


def test_build_rejects_unknown_names_and_shapes():
    with pytest.raises(ValueError, match="zoo has"):
        zoo.build("alexnet")
    with pytest.raises(ValueError, match="input_shape"):
        zoo.build("audio", input_shape=(1, 32, 64))


@pytest.mark.parametrize("name", ["vgg16", "resnet18"])
def test_graphs_match_torchvision(name):
    models = pytest.importorskip("torchvision.models")
    x = torch.randn(1, 3, 64, 64)
    ours = extract(getattr(zoo, name)().eval(), x)
    theirs = extract(getattr(models, name)(weights=None).eval(), x)
    assert ours.layers == theirs.layers
    assert ours.n_edges == theirs.n_edges
    np.testing.assert_array_equal(ours.edges, theirs.edges)
