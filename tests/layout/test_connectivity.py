"""Connectivity rules against references written from the op definitions (loops) or from autograd."""
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from immersions.layout.extract import extract


def edge_set(graph, src_layer, dst_layer):
    """Edges between two layers as a set of (source, target) indices local to each layer."""
    s, d = graph.layer(src_layer), graph.layer(dst_layer)
    e = graph.edges
    mask = (e[:, 0] >= s.start) & (e[:, 0] < s.stop) & (e[:, 1] >= d.start) & (e[:, 1] < d.stop)
    return {(int(a) - s.start, int(b) - d.start) for a, b in e[mask]}


def conv_reference(c_in, c_out, n_in, n_out, kernel, stride, padding, dilation, groups, mode="zeros"):
    """Edges of a convolution along one kept axis, by looping over outputs and kernel taps."""
    edges = set()
    gi, go = c_in // groups, c_out // groups
    for co, o, t in itertools.product(range(c_out), range(n_out), range(kernel)):
        i = o * stride - padding + t * dilation
        if mode == "circular":
            i %= n_in
        elif mode == "reflect":
            i = -i if i < 0 else (2 * (n_in - 1) - i if i >= n_in else i)
        elif mode == "replicate":
            i = min(max(i, 0), n_in - 1)
        if not 0 <= i < n_in:
            continue
        g = co // go
        for ci in range(g * gi, (g + 1) * gi):
            edges.add((ci * n_in + i, co * n_out + o))
    return edges


class Single(nn.Module):
    """One op between the input and one tanh tap."""

    def __init__(self, op):
        super().__init__()
        self.op = op
        self.act = nn.Tanh()

    def forward(self, x):
        return self.act(self.op(x))


CONV_CASES = [  # kernel, stride, padding, dilation, groups, padding_mode
    (3, 1, 1, 1, 1, "zeros"),
    (3, 2, 1, 1, 1, "zeros"),
    (5, 2, 0, 1, 1, "zeros"),
    (3, 1, 2, 2, 1, "zeros"),
    (3, 3, 2, 2, 2, "zeros"),
    (4, 1, 3, 1, 4, "zeros"),
    (3, 1, 1, 1, 2, "circular"),
    (3, 1, 2, 1, 1, "reflect"),
    (5, 2, 2, 1, 1, "replicate"),
]


@pytest.mark.parametrize("kernel,stride,padding,dilation,groups,mode", CONV_CASES)
def test_conv1d_kept_length_matches_loop_reference(kernel, stride, padding, dilation, groups, mode):
    conv = nn.Conv1d(4, 8, kernel, stride=stride, padding=padding, dilation=dilation, groups=groups,
                     padding_mode=mode)
    x = torch.randn(1, 4, 11)
    graph = extract(Single(conv), x, include_input=True, keep_length=True)
    n_out = conv(x).shape[-1]
    assert [(l.channels, l.size) for l in graph.layers] == [(4, 11), (8, n_out)]
    expected = conv_reference(4, 8, 11, n_out, kernel, stride, padding, dilation, groups, mode)
    assert edge_set(graph, "x", "act") == expected
    assert graph.n_edges == len(expected)


@pytest.mark.parametrize("kernel,stride,padding,dilation,groups,mode", CONV_CASES)
@pytest.mark.parametrize("keep_axis", [2, 3])
def test_conv2d_matches_loop_reference_along_kept_axis(kernel, stride, padding, dilation, groups, mode, keep_axis):
    # the kept axis gets the case's geometry, the dropped one another kernel that must collapse
    k2, s2, p2 = (kernel, 2), (stride, 1), (padding, 1)
    order = slice(None) if keep_axis == 2 else slice(None, None, -1)
    conv = nn.Conv2d(4, 6 if groups != 4 else 8, k2[order], stride=s2[order], padding=p2[order],
                     dilation=(dilation, 1)[order], groups=groups, padding_mode=mode)
    x = torch.randn(1, 4, 9, 7) if keep_axis == 2 else torch.randn(1, 4, 7, 9)
    graph = extract(Single(conv), x, include_input=True, keep_axis=keep_axis)
    n_out = conv(x).shape[keep_axis]
    c_out = conv.out_channels
    assert [(l.channels, l.size) for l in graph.layers] == [(4, 9), (c_out, n_out)]
    expected = conv_reference(4, c_out, 9, n_out, kernel, stride, padding, dilation, groups, mode)
    assert edge_set(graph, "x", "act") == expected


def test_conv1d_dropped_length_is_channel_connectivity():
    conv = nn.Conv1d(6, 4, 3, groups=2)
    graph = extract(Single(conv), torch.randn(1, 6, 20), include_input=True)
    assert [(l.channels, l.size) for l in graph.layers] == [(6, 1), (4, 1)]
    assert edge_set(graph, "x", "act") == {(ci, co) for ci in range(6) for co in range(4) if ci // 3 == co // 2}


@pytest.mark.parametrize("pool,n_in", [
    (nn.MaxPool2d(2), 8), (nn.MaxPool2d(3, stride=2, padding=1), 9), (nn.AvgPool2d((3, 2), stride=(2, 1)), 9),
    (nn.MaxPool2d(2, ceil_mode=True), 9), (nn.MaxPool2d(2, stride=1, dilation=2), 8),
])
def test_pool2d_window_along_kept_axis(pool, n_in):
    x = torch.randn(1, 3, n_in, 6)
    graph = extract(Single(pool), x, include_input=True)
    n_out = pool(x).shape[2]
    kernel, stride, padding = (getattr(pool, a) for a in ("kernel_size", "stride", "padding"))
    kernel, stride = (kernel[0], stride[0]) if isinstance(kernel, tuple) else (kernel, stride)
    dilation = getattr(pool, "dilation", 1)
    expected = {(c * n_in + i, c * n_out + o) for c, o, t in itertools.product(range(3), range(n_out), range(kernel))
                for i in [o * stride - padding + t * dilation] if 0 <= i < n_in}
    assert edge_set(graph, "x", "act") == expected


@pytest.mark.parametrize("n_in,n_out", [(7, 3), (10, 4), (5, 5), (4, 1), (3, 7)])
def test_adaptive_pool_windows(n_in, n_out):
    pool = nn.AdaptiveAvgPool2d((n_out, 2))
    graph = extract(Single(pool), torch.randn(1, 2, n_in, 5), include_input=True)
    expected = set()
    for c, o in itertools.product(range(2), range(n_out)):
        start, stop = (o * n_in) // n_out, -(-(o + 1) * n_in // n_out)
        expected |= {(c * n_in + i, c * n_out + o) for i in range(start, stop)}
    assert edge_set(graph, "x", "act") == expected


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 3, 3, padding=1)
        self.act1 = nn.Tanh()
        self.conv2 = nn.Conv2d(3, 3, (3, 1), stride=(2, 1), padding=(1, 0))
        self.down = nn.AvgPool2d((2, 1))
        self.act2 = nn.Tanh()

    def forward(self, x):
        a = self.act1(self.conv1(x))
        return self.act2(self.conv2(a) + self.down(x))


def test_residual_add_gives_skip_edges():
    graph = extract(Residual(), torch.randn(1, 3, 8, 5), include_input=True)
    assert [l.name for l in graph.layers] == ["x", "act1", "act2"]
    assert edge_set(graph, "x", "act1") == conv_reference(3, 3, 8, 8, 3, 1, 1, 1, 1)
    assert edge_set(graph, "act1", "act2") == conv_reference(3, 3, 8, 4, 3, 2, 1, 1, 1)
    assert edge_set(graph, "x", "act2") == {(c * 8 + i, c * 4 + i // 2) for c in range(3) for i in range(8)}


def test_parallel_paths_between_two_taps_are_united():
    class Parallel(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv1d(2, 2, 3, padding=1)
            self.b = nn.Conv1d(2, 2, 1, groups=2)
            self.act = nn.Tanh()

        def forward(self, x):
            return self.act(self.a(x) + self.b(x) + x)

    graph = extract(Parallel(), torch.randn(1, 2, 6), include_input=True, keep_length=True)
    assert edge_set(graph, "x", "act") == conv_reference(2, 2, 6, 6, 3, 1, 1, 1, 1)
    assert np.all(graph.weights == 1)


def test_concatenation_places_channels():
    class Cat(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(2, 3, 1)
            self.act = nn.Tanh()

        def forward(self, x):
            return self.act(torch.cat([self.a(x), x], dim=1))

    graph = extract(Cat(), torch.randn(1, 2, 4, 3), include_input=True)
    assert graph.layer("act").channels == 5
    expected = {(ci * 4 + h, co * 4 + h) for ci in range(2) for co in range(3) for h in range(4)}
    expected |= {(c * 4 + h, (3 + c) * 4 + h) for c in range(2) for h in range(4)}
    assert edge_set(graph, "x", "act") == expected


def test_flatten_linear_maps_every_kept_position_to_its_features():
    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.act1 = nn.Tanh()
            self.pool = nn.MaxPool2d(2)
            self.fc = nn.Linear(3 * 2 * 2, 5)
            self.act2 = nn.Tanh()
            self.fc2 = nn.Linear(3 * 4 * 4, 2)

        def forward(self, x):
            a = self.act1(x)
            return self.act2(self.fc(torch.flatten(self.pool(a), 1))), self.fc2(a.flatten(1))

    graph = extract(Head(), torch.randn(1, 3, 4, 4), layers=["act1", "act2", "flatten_1"])
    # flatten of (3, 4, 4): feature c*16 + h*4 + w comes from neuron (c, h)
    assert edge_set(graph, "act1", "flatten_1") == {(c * 4 + h, c * 16 + h * 4 + w)
                                                  for c in range(3) for h in range(4) for w in range(4)}
    assert edge_set(graph, "act1", "act2") == {(n, o) for n in range(12) for o in range(5)}


class Probe(nn.Module):
    """A model of smooth, linear-then-tanh stages, so autograd gives exact dependency patterns."""

    def __init__(self, body):
        super().__init__()
        self.body = body
        self.act = nn.Tanh()

    def forward(self, x):
        return self.act(self.body(x))


class ChannelsLast(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 4)

    def forward(self, x):  # (B, C, F, T) -> linear over channels with channels last -> back
        return self.lin(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class Fold(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(3 * 5, 4, 3, padding=1)

    def forward(self, x):  # (B, C, F, T) -> (B, C*F, T)
        return self.conv(x.reshape(x.shape[0], -1, x.shape[-1]))


class PadCrop(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, (3, 2))

    def forward(self, x):
        y = F.pad(x, (1, 0, 2, 0))
        return self.conv(y)[:, :, 1:, :]


class Halves(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x):  # chunk returns a tuple; its items are traced through getitem
        a, b = self.conv(x).chunk(2, dim=1)
        return a + b.roll(1, dims=2)


class Gate(nn.Module):
    def forward(self, x):  # broadcast a per-channel summary over frequency
        return x * x.mean(dim=(2, 3), keepdim=True) + x.mean(dim=-1, keepdim=True)


@pytest.mark.parametrize("body", [ChannelsLast(), Fold(), PadCrop(), Halves(), Gate(), nn.AdaptiveAvgPool2d((2, 3)),
                                  nn.Conv2d(3, 6, (2, 3), stride=(2, 1), dilation=(2, 1), groups=3)],
                         ids=lambda m: type(m).__name__)
def test_rules_agree_with_autograd_dependencies(body):
    torch.manual_seed(0)
    model = Probe(body).double()
    x = torch.randn(1, 3, 5, 4, dtype=torch.float64)
    graph = extract(model, x, include_input=True)
    src, dst = graph.layers
    y = model(x.requires_grad_())
    expected = set()
    for n in range(dst.count):
        c, k = divmod(n, dst.size)
        out = y[0, c, k] if y.dim() == 4 else y[0, c]
        (grad,) = torch.autograd.grad(out.sum(), x, retain_graph=True)
        dep = grad[0].abs().sum(dim=-1).reshape(-1) > 0  # (C, F) neurons, time summed away
        expected |= {(int(i), n) for i in np.flatnonzero(dep.numpy())}
    assert edge_set(graph, src.name, dst.name) == expected


def test_unsupported_op_names_op_and_module_path():
    class Block(nn.Module):
        def forward(self, x):
            return torch.cumsum(x, dim=1)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.act = nn.ReLU()
            self.block = Block()
            self.out = nn.ReLU()

        def forward(self, x):
            return self.out(self.block(self.act(x)))

    with pytest.raises(ValueError, match=r"cumsum.*'block\.cumsum'"):
        extract(Net(), torch.randn(1, 2, 3, 4))


def test_unsupported_op_before_the_first_tap_is_harmless():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(torch.cumsum(x, dim=1))

    assert extract(Net(), torch.randn(1, 2, 3, 4)).n_vertices == 6


def reference_edges(targets, src_offset):
    """CSR-ordered edges of Kronecker terms, from scipy's explicit Kronecker products."""
    import scipy.sparse as sp

    from immersions.layout.relation import materialize

    rows = []
    for term, dst_offset in targets:
        m = sp.csr_array(sp.kron(materialize(term.channel), materialize(term.position)))
        m.eliminate_zeros()  # scipy's kron may store dense blocks with explicit zeros
        m = m.tocoo()
        rows += [(int(i) + src_offset, int(j) + dst_offset) for i, j in zip(m.row, m.col)]
    return sorted(rows)


@pytest.mark.parametrize("uniform", [True, False])
def test_write_edges_matches_explicit_kronecker_products(uniform):
    from immersions.layout.relation import Ones, Term, out_degrees, sparse_factor, write_edges

    rng = np.random.default_rng(0)

    def factor(n, m, density, uniform_rows):
        if uniform_rows:
            cols = np.stack([rng.choice(m, 2, replace=False) for _ in range(n)])
            return sparse_factor(np.repeat(np.arange(n), 2), cols.ravel(), (n, m))
        mask = rng.random((n, m)) < density
        return sparse_factor(*np.nonzero(mask), (n, m))

    targets = [(Term(factor(5, 4, 0.5, uniform), factor(3, 6, 0.4, False)), 100),
               (Term(Ones((5, 2)), factor(3, 2, 0.6, False)), 200),
               (Term(factor(5, 3, 0.3, uniform), factor(3, 1, 0.9, False)), 300)]
    n_edges = int(sum(out_degrees(t).sum() for t, _ in targets))
    out = np.full((n_edges, 2), -1, np.int32)
    write_edges(targets, out, src_offset=7, max_block=5)  # tiny blocks: several per term
    assert [tuple(r) for r in out.tolist()] == reference_edges(targets, 7)
