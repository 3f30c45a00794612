"""Recording per-frame activations in graph order, alignment of time resolutions, variance, storage."""
import numpy as np
import pytest
import torch
from torch import nn

from immersions.layout.activations import Activations, activation_variance, record_activations
from immersions.layout.extract import extract


class Audio(nn.Module):
    """(B, 2, F, T) -> 2-D conv tap (F kept), then time pooled by 2 into a 1-D tap, then a time-less tap."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.act = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d((1, 2))
        self.ar = nn.Conv1d(3 * 4, 5, 1)
        self.act2 = nn.Tanh()
        self.head = nn.Linear(5, 2)
        self.act3 = nn.Sigmoid()

    def forward(self, x):
        a = self.act(self.conv(x))
        h = self.act2(self.ar(self.pool(a).flatten(1, 2)))
        a.add_(100.0)  # an in-place change after the tap must not reach the recording
        return self.act3(self.head(h.mean(dim=-1))), a


def reference(model, x):
    with torch.no_grad():
        a = torch.relu(model.conv(x))
        h = torch.tanh(model.ar(model.pool(a).flatten(1, 2)))
        s = torch.sigmoid(model.head(h.mean(dim=-1)))
    return a, h, s


def test_values_follow_vertex_order_and_hold_coarse_frames():
    torch.manual_seed(0)
    model, x = Audio(), torch.randn(2, 2, 4, 6)
    graph = extract(model, x)
    assert [(l.name, l.channels, l.size) for l in graph.layers] == [("act", 3, 4), ("act2", 5, 1), ("act3", 2, 1)]
    acts = record_activations(model, x, graph)
    a, h, s = reference(model, x)
    assert acts.values.shape == (2 * 6, graph.n_vertices) and acts.values.dtype == np.float32
    for b in range(2):
        frames = acts.values[b * 6:(b + 1) * 6]
        np.testing.assert_allclose(frames[:, :12], a[b].reshape(12, 6).T.numpy(), rtol=1e-6)
        np.testing.assert_allclose(frames[:, 12:17], h[b].T.numpy()[np.arange(6) // 2], rtol=1e-6)
        np.testing.assert_allclose(frames[:, 17:], np.broadcast_to(s[b].numpy(), (6, 2)), rtol=1e-6)


def test_coarsest_alignment_averages_fine_frames_and_no_time_axis_averages_everything():
    torch.manual_seed(1)
    model, x = Audio(), torch.randn(1, 2, 4, 6)
    graph = extract(model, x)
    a, h, _ = reference(model, x)
    coarse = record_activations(model, x, graph, align="coarsest").values
    assert coarse.shape == (3, graph.n_vertices)
    fine = a[0].reshape(12, 6).T.numpy()
    np.testing.assert_allclose(coarse[:, :12], (fine[0::2] + fine[1::2]) / 2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(coarse[:, 12:17], h[0].T.numpy(), rtol=1e-6)
    single = record_activations(model, x, graph, time_axis=None).values
    assert single.shape == (1, graph.n_vertices)
    np.testing.assert_allclose(single[0, :12], a[0].mean(dim=-1).reshape(-1).numpy(), rtol=1e-5)


def test_training_flag_restored_and_mismatched_layout_rejected():
    model, x = Audio().train(), torch.randn(1, 2, 4, 6)
    graph = extract(model, x)
    record_activations(model, x, graph)
    assert model.training
    with pytest.raises(ValueError, match="keep_axis"):
        record_activations(model, x, graph, keep_axis=3)
    with pytest.raises(ValueError, match="align"):
        record_activations(model, x, graph, align="middle")


def test_variance_over_batches_matches_numpy():
    torch.manual_seed(2)
    model = Audio()
    batches = [torch.randn(n, 2, 4, 6) for n in (3, 1, 2)]
    graph = extract(model, batches[0])
    frames = np.concatenate([record_activations(model, b, graph).values for b in batches])
    np.testing.assert_allclose(activation_variance(model, batches, graph), frames.var(axis=0), rtol=1e-4, atol=1e-7)
    per_frame = activation_variance(model, batches, graph, per_frame=True)
    by_example = frames.reshape(6, 6, -1)
    assert per_frame.shape == (6, graph.n_vertices) and per_frame.dtype == np.float32
    np.testing.assert_allclose(per_frame, by_example.var(axis=0), rtol=1e-4, atol=1e-7)
    with pytest.raises(ValueError, match="empty"):
        activation_variance(model, [], graph)


def test_save_load_round_trip(tmp_path):
    model, x = Audio(), torch.randn(1, 2, 4, 6)
    graph = extract(model, x)
    acts = record_activations(model, x, graph, frame_rate=10.75)
    acts.save(tmp_path / "a.npz")
    loaded = Activations.load(tmp_path / "a.npz")
    np.testing.assert_array_equal(loaded.values, acts.values)
    assert loaded.layers == acts.layers and loaded.frame_rate == 10.75
    with pytest.raises(ValueError, match=r"shape \(T, "):
        Activations(np.zeros((2, 3), np.float32), graph.layers)
