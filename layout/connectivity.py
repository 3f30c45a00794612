"""One connectivity rule per op kind: which neurons of an op's inputs each output neuron depends on.

Neurons are indexed by (channel, position along the kept axis); every other axis (time for audio, width
for an image slice) is dropped, so a kernel along a dropped axis collapses. A rule sees an ``OpCall``
(the op, its concrete arguments, the neuron ``Space`` of every tensor argument) and returns an ``OpMap``:
the output's ``Space`` and, for every argument that carries connectivity, a ``Relation`` from that
argument's neurons to the output's (``None`` meaning identity, the common pass-through case).

Rule families:
- pass-through (nonlinearities, normalisation, dropout, casts, elementwise math): identity, with
  broadcasting resolved by the probe below. Normalisation statistics are not connections.
- convolution (kernel, stride, padding, padding mode, dilation, groups) and pooling (max/avg/LP and
  adaptive): full within channel groups (channel-wise for pooling), index arithmetic along the kept axis.
- Linear: full over the axis it acts on (the last one); identity when that axis is dropped.
- data movement (reshape, flatten, view, squeeze, permute, transpose, cat, pad, slicing, roll, flip, ...):
  *probed* by running the op itself on a tensor holding element ids, so every output element is traced
  back to the input element it copies; no index rule can disagree with the op. A reshape that mixes
  channel and kept axis (VGG's ``flatten`` before the classifier) maps each input neuron ``(c, h)`` to
  every flattened feature ``c*H*W + h*W + w`` (all dropped-axis positions ``w``).
- reductions (mean, sum, amax, amin over given dims): all-to-one along a reduced channel or kept axis.

Axis roles follow the tensor through permutes and size-1 squeezes; after any other reshape, and at the
network input, they come from the rank convention (``conventional_space``).
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from .relation import Ones, Relation, Term, eye, sparse_factor


@dataclass(frozen=True)
class Space:
    """How a tensor's elements map to neurons: which dim holds channels and which (if any) is kept."""

    shape: tuple[int, ...]
    channel_dim: int
    kept_dim: int | None

    @property
    def channels(self) -> int:
        return int(self.shape[self.channel_dim])

    @property
    def size(self) -> int:
        return int(self.shape[self.kept_dim]) if self.kept_dim is not None else 1

    @property
    def count(self) -> int:
        return self.channels * self.size

    def neuron_ids(self) -> torch.Tensor:
        """Neuron index (``channel * size + position``) of every element of one sample, int64."""
        view = [1] * (len(self.shape) - 1)
        view[self.channel_dim - 1] = self.channels
        ids = torch.arange(self.channels).reshape(view) * self.size
        if self.kept_dim is not None:
            view = [1] * (len(self.shape) - 1)
            view[self.kept_dim - 1] = self.size
            ids = ids + torch.arange(self.size).reshape(view)
        return ids.expand(self.shape[1:])


def conventional_space(shape: Sequence[int], *, keep_axis: int = 2, keep_length: bool = False) -> Space | None:
    """Roles by rank: (B, C) -> C neurons; (B, C, L) -> C (L dropped unless ``keep_length``);
    (B, C, H, W) -> C x H (``keep_axis=2``) or C x W (``keep_axis=3``). Other ranks have no neurons."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 2:
        return Space(shape, 1, None)
    if len(shape) == 3:
        return Space(shape, 1, 2 if keep_length else None)
    if len(shape) == 4:
        return Space(shape, 1, keep_axis)
    return None


@dataclass(frozen=True)
class TensorArg:
    """Placeholder for the ``index``-th tensor argument of an op (in ``OpCall.args``/``kwargs``)."""

    index: int


@dataclass
class OpCall:
    """One op of the traced network with concrete arguments, as a rule sees it."""

    kind: str                       # "call_module", "call_function" or "call_method"
    target: Any                     # the module, the function, or the method name
    args: tuple
    kwargs: dict
    arg_shapes: list[tuple[int, ...]]
    spaces: list[Space | None]      # neuron space of every tensor argument
    carries: list[bool]             # whether that argument carries connectivity from a tap
    out_shape: tuple[int, ...]
    path: str                       # qualified name of the op, for messages
    convention: Callable[[Sequence[int]], Space | None] = field(default=conventional_space)

    def describe(self) -> str:
        if self.kind == "call_module":
            return f"module {type(self.target).__name__}"
        name = self.target if isinstance(self.target, str) else getattr(self.target, "__name__", repr(self.target))
        return f"{'method' if self.kind == 'call_method' else 'function'} {name}"

    def error(self, why: str) -> ValueError:
        return ValueError(f"{self.describe()} at {self.path!r}: {why}")


@dataclass(frozen=True)
class OpMap:
    """Result of a rule: the output's space and a relation per carrying tensor argument (None = identity)."""

    space: Space
    relations: dict[int, Relation | None]


Rule = Callable[[OpCall], OpMap]

# ----------------------------------------------------------------------------------------------- sets

NONLINEAR_MODULES: tuple[type, ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Tanh, nn.Sigmoid, nn.Hardtanh, nn.Hardsigmoid, nn.Hardswish, nn.Softplus, nn.Softsign, nn.Tanhshrink,
    nn.LogSigmoid, nn.Threshold, nn.Softshrink, nn.Hardshrink,
)
NONLINEAR_FUNCTIONS: frozenset = frozenset({
    F.relu, torch.relu, F.relu_, torch.relu_, F.relu6, F.leaky_relu, F.elu, F.selu, torch.selu, F.celu, F.gelu,
    F.silu, F.mish, torch.tanh, F.tanh, torch.sigmoid, F.sigmoid, F.hardtanh, F.hardsigmoid, F.hardswish,
    F.softplus, F.softsign, F.logsigmoid, F.tanhshrink, F.threshold, F.softshrink, F.hardshrink,
})
NONLINEAR_METHODS: frozenset = frozenset({"relu", "relu_", "sigmoid", "sigmoid_", "tanh", "tanh_"})

_PASS_MODULES: tuple[type, ...] = NONLINEAR_MODULES + (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.SyncBatchNorm, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.GroupNorm,
    nn.LayerNorm, nn.LocalResponseNorm, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout,
    nn.FeatureAlphaDropout, nn.Identity,
)
_ELEMENTWISE_FUNCTIONS: frozenset = NONLINEAR_FUNCTIONS | frozenset({
    F.dropout, F.dropout1d, F.dropout2d, F.alpha_dropout, F.batch_norm, F.instance_norm, F.layer_norm,
    F.group_norm, torch.clone, torch.abs, torch.neg, torch.exp, torch.log, torch.log1p, torch.sqrt,
    torch.rsqrt, torch.square, torch.clamp, torch.clip, torch.sign, torch.sin, torch.cos, torch.pow,
    torch.add, torch.sub, torch.mul, torch.div, torch.true_divide, torch.maximum, torch.minimum, torch.where,
    operator.add, operator.sub, operator.mul, operator.truediv, operator.floordiv, operator.pow, operator.neg,
    operator.iadd, operator.isub, operator.imul, operator.itruediv, operator.abs,
})
_ELEMENTWISE_METHODS: frozenset = NONLINEAR_METHODS | frozenset({
    "contiguous", "clone", "detach", "float", "double", "half", "to", "type_as", "abs", "neg", "exp", "log",
    "sqrt", "square", "clamp", "clamp_min", "clamp_max", "clip", "pow", "add", "add_", "sub", "sub_", "mul",
    "mul_", "div", "div_", "sign",
})
_MOVE_FUNCTIONS: frozenset = frozenset({
    torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze, torch.permute, torch.transpose,
    torch.movedim, torch.cat, torch.concat, torch.narrow, torch.roll, torch.flip, F.pad, operator.getitem,
    torch.chunk, torch.split, torch.unbind, torch.tensor_split,
})
_MOVE_METHODS: frozenset = frozenset({
    "view", "reshape", "flatten", "unflatten", "squeeze", "unsqueeze", "permute", "transpose", "movedim",
    "narrow", "roll", "flip", "expand", "expand_as", "repeat", "view_as", "reshape_as", "chunk", "split",
    "unbind", "tensor_split",
})
_MOVE_MODULES: tuple[type, ...] = (
    nn.Flatten, nn.Unflatten, nn.ZeroPad1d, nn.ZeroPad2d, nn.ConstantPad1d, nn.ConstantPad2d,
    nn.ReflectionPad1d, nn.ReflectionPad2d, nn.ReplicationPad1d, nn.ReplicationPad2d, nn.CircularPad1d,
    nn.CircularPad2d,
)
_REDUCE_FUNCTIONS: frozenset = frozenset({torch.mean, torch.sum, torch.amax, torch.amin})
_REDUCE_METHODS: frozenset = frozenset({"mean", "sum", "amax", "amin"})


def is_nonlinearity(kind: str, target: Any) -> bool:
    """Whether an fx node is a nonlinearity (the default taps)."""
    if kind == "call_module":
        return isinstance(target, NONLINEAR_MODULES)
    if kind == "call_function":
        return target in NONLINEAR_FUNCTIONS
    return kind == "call_method" and target in NONLINEAR_METHODS

# ------------------------------------------------------------------------------------- index arithmetic


def _window_positions(n_in: int, n_out: int, kernel: int, stride: int, padding: int, dilation: int,
                      padding_mode: str = "zeros") -> sp.csr_array:
    """Position factor of a sliding window: output ``o`` reads ``o*stride - padding + t*dilation``."""
    o = np.repeat(np.arange(n_out), kernel)
    i = o * stride - padding + np.tile(np.arange(kernel), n_out) * dilation
    if padding_mode == "circular":
        i = i % n_in
    elif padding_mode == "reflect":
        i = np.abs(i)
        i = np.where(i >= n_in, 2 * (n_in - 1) - i, i)
    elif padding_mode == "replicate":
        i = np.clip(i, 0, n_in - 1)
    valid = (i >= 0) & (i < n_in)
    return sparse_factor(i[valid], o[valid], (n_in, n_out))


def _adaptive_positions(n_in: int, n_out: int) -> sp.csr_array:
    """Position factor of adaptive pooling: window ``[floor(o*n/m), ceil((o+1)*n/m))``."""
    o = np.arange(n_out)
    start = (o * n_in) // n_out
    stop = -((-(o + 1) * n_in) // n_out)
    counts = stop - start
    rows = np.repeat(start, counts) + np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return sparse_factor(rows, np.repeat(o, counts), (n_in, n_out))


def _groups_channels(c_in: int, c_out: int, groups: int):
    """Channel factor of a grouped convolution: full connectivity inside each group."""
    if groups == 1:
        return Ones((c_in, c_out))
    gi, go = c_in // groups, c_out // groups
    rows = np.repeat(np.arange(c_in), go)
    cols = (rows // gi) * go + np.tile(np.arange(go), c_in)
    return sparse_factor(rows, cols, (c_in, c_out))


def _tuple(value: Any, n: int) -> tuple[int, ...]:
    if isinstance(value, (tuple, list)):
        return tuple(int(v) for v in value) if len(value) == n else tuple(int(value[0]) for _ in range(n))
    return (int(value),) * n


def _bind(call: OpCall, names: Sequence[str], defaults: dict[str, Any]) -> dict[str, Any]:
    """Arguments of a functional op by name (``names`` in positional order)."""
    bound = dict(defaults)
    bound.update(zip(names, call.args))
    bound.update(call.kwargs)
    return bound


def _spatial_input(call: OpCall, n_spatial: int) -> Space:
    space = call.spaces[0]
    if space is None or space.channel_dim != 1 or len(space.shape) != n_spatial + 2:
        raise call.error(f"needs input laid out as (batch, channels, {n_spatial} spatial axes) with channels "
                         f"in dim 1, got {space}")
    return space


def _windowed(call: OpCall, space: Space, channel: Any, position_of: Callable[[int], Any]) -> OpMap:
    """Output space keeping the input's roles; position factor along the kept axis from ``position_of``."""
    out = Space(call.out_shape, 1, space.kept_dim)
    if space.kept_dim is None:
        position = eye(1)
    else:
        position = position_of(space.kept_dim - 2)
    return OpMap(out, {0: (Term(channel, position),)})

# -------------------------------------------------------------------------------------------- rules


def conv_rule(call: OpCall) -> OpMap:
    """Conv1d/Conv2d (module or functional): channel groups x window along the kept axis."""
    if call.kind == "call_module":
        m = call.target
        n = len(m.kernel_size)
        kernel, stride, dilation, groups, mode = m.kernel_size, m.stride, m.dilation, m.groups, m.padding_mode
        padding = m.padding
    else:
        b = _bind(call, ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
                  {"stride": 1, "padding": 0, "dilation": 1, "groups": 1})
        n = len(call.arg_shapes[1]) - 2
        kernel = call.arg_shapes[1][2:]
        stride, dilation, groups, padding, mode = b["stride"], b["dilation"], b["groups"], b["padding"], "zeros"
    space = _spatial_input(call, n)
    stride, dilation = _tuple(stride, n), _tuple(dilation, n)
    if padding == "valid":
        padding = (0,) * n
    elif padding == "same":
        padding = tuple(d * (k - 1) // 2 for d, k in zip(dilation, kernel))
    padding = _tuple(padding, n)
    channel = _groups_channels(space.channels, call.out_shape[1], int(groups))
    return _windowed(call, space, channel, lambda a: _window_positions(
        space.shape[a + 2], call.out_shape[a + 2], int(kernel[a]), stride[a], padding[a], dilation[a], mode))


_POOL_NAMES = {
    "max": ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
    "avg": ("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"),
    "lp": ("input", "norm_type", "kernel_size", "stride", "ceil_mode"),
}


def _pool_rule(kind: str, n: int) -> Rule:
    def rule(call: OpCall) -> OpMap:
        if call.kind == "call_module":
            m = call.target
            params = {k: getattr(m, k, None) for k in ("kernel_size", "stride", "padding", "dilation")}
        else:
            params = _bind(call, _POOL_NAMES[kind], {})
        space = _spatial_input(call, n)
        kernel = _tuple(params["kernel_size"], n)
        stride = _tuple(params.get("stride") or kernel, n)
        padding = _tuple(params.get("padding") or 0, n)
        dilation = _tuple(params.get("dilation") or 1, n)
        return _windowed(call, space, eye(space.channels), lambda a: _window_positions(
            space.shape[a + 2], call.out_shape[a + 2], kernel[a], stride[a], padding[a], dilation[a]))
    rule.__doc__ = f"{kind} pooling over {n} spatial axes: channel-wise, window along the kept axis."
    return rule


def _adaptive_rule(n: int) -> Rule:
    def rule(call: OpCall) -> OpMap:
        space = _spatial_input(call, n)
        return _windowed(call, space, eye(space.channels),
                         lambda a: _adaptive_positions(space.shape[a + 2], call.out_shape[a + 2]))
    rule.__doc__ = f"adaptive pooling over {n} spatial axes: channel-wise, adaptive windows along the kept axis."
    return rule


def linear_rule(call: OpCall) -> OpMap:
    """Linear: full over the last axis (channels or kept axis); identity when the last axis is dropped."""
    space = call.spaces[0]
    last = len(space.shape) - 1
    out = Space(call.out_shape, space.channel_dim, space.kept_dim)
    if last == space.channel_dim:
        return OpMap(out, {0: (Term(Ones((space.channels, out.channels)), eye(space.size)),)})
    if last == space.kept_dim:
        return OpMap(out, {0: (Term(eye(space.channels), Ones((space.size, out.size))),)})
    return OpMap(out, {0: None})


def reduce_rule(call: OpCall) -> OpMap:
    """mean/sum/amax/amin over explicit dims: all-to-one along a reduced channel or kept axis."""
    space = call.spaces[0]
    b = _bind(call, ("input", "dim", "keepdim"), {"dim": None, "keepdim": False})
    if b["dim"] is None:
        raise call.error("a reduction over all axes leaves no neurons; reduce over named dims")
    rank = len(space.shape)
    dims = {int(d) % rank for d in (b["dim"] if isinstance(b["dim"], (tuple, list)) else (b["dim"],))}
    if 0 in dims:
        raise call.error("reduces over the batch axis, which mixes examples")
    if space.channel_dim in dims and not b["keepdim"]:
        raise call.error("reduces the channel axis away; use keepdim=True")
    channel = Ones((space.channels, 1)) if space.channel_dim in dims else eye(space.channels)
    kept_reduced = space.kept_dim is not None and space.kept_dim in dims
    position = Ones((space.size, 1)) if kept_reduced else eye(space.size)

    def new_dim(d: int | None) -> int | None:
        if d is None or (d in dims and not b["keepdim"]):
            return None
        return d if b["keepdim"] else d - sum(1 for r in dims if r < d)

    out = Space(call.out_shape, new_dim(space.channel_dim), new_dim(space.kept_dim))
    if out.size != position.shape[1]:
        raise call.error(f"unexpected output shape {call.out_shape} for a reduction over {sorted(dims)}")
    return OpMap(out, {0: (Term(channel, position),)})

# ------------------------------------------------------------------------------------------- probing

# Element ids start far above any constant an op could insert (padding values, zeros of other operands),
# so an output value in the id range can only be a copy; float64 holds such ids exactly.
_ID_BASE = float(2 ** 33)


def _substitute(obj: Any, values: list[torch.Tensor]) -> Any:
    if isinstance(obj, TensorArg):
        return values[obj.index]
    if isinstance(obj, (list, tuple)):
        return type(obj)(_substitute(o, values) for o in obj)
    if isinstance(obj, dict):
        return {k: _substitute(v, values) for k, v in obj.items()}
    return obj


def run_op(call: OpCall, values: list[torch.Tensor]) -> Any:
    """Run the op with its tensor arguments replaced by ``values``."""
    args, kwargs = _substitute(call.args, values), _substitute(call.kwargs, values)
    if call.kind == "call_method":
        return getattr(args[0], call.target)(*args[1:], **kwargs)
    return call.target(*args, **kwargs)


def _element_ids(shape: tuple[int, ...]) -> torch.Tensor:
    """Every element of a sample holds ``_ID_BASE + its flat index``; all samples alike."""
    ids = torch.arange(int(np.prod(shape[1:])), dtype=torch.float64) + _ID_BASE
    return ids.reshape(shape[1:]).expand(shape).contiguous()


def _copied_ids(values: torch.Tensor, n_ids: int) -> np.ndarray:
    """Flat index of the element each value copies, or -1 where it holds something else."""
    ids = values.reshape(-1) - _ID_BASE
    copied = (ids >= 0) & (ids < n_ids)
    return torch.where(copied, ids, torch.full_like(ids, -1)).to(torch.int64).numpy()


def _probe_sources(call: OpCall, index: int, evaluate: Callable[[list[torch.Tensor]], torch.Tensor]) -> np.ndarray:
    """For every element of the first output sample, the id of the input element it copies, or -1."""
    values = [torch.zeros(s, dtype=torch.float64) for s in call.arg_shapes]
    values[index] = _element_ids(call.arg_shapes[index])
    try:
        out = evaluate(values)
    except (RuntimeError, TypeError, ValueError, IndexError) as exc:
        raise call.error(f"could not trace element positions through it ({exc})") from exc
    if tuple(out.shape) != tuple(call.out_shape):
        raise call.error(f"probe gave shape {tuple(out.shape)}, expected {call.out_shape}")
    return _copied_ids(out[0], int(np.prod(call.arg_shapes[index][1:])))


def _flat_relation(src_ids: np.ndarray, in_space: Space, out_space: Space) -> Relation:
    """Relation from element copies, factored into channel (x) position when it is a Kronecker product."""
    hit = np.flatnonzero(src_ids >= 0)
    n_in = in_space.neuron_ids().reshape(-1).numpy()[src_ids[hit]]
    n_out = out_space.neuron_ids().reshape(-1).numpy()[hit]
    pairs = np.unique(n_in * out_space.count + n_out)
    n_in, n_out = pairs // out_space.count, pairs % out_space.count
    k_in, k_out = in_space.size, out_space.size
    channel = sparse_factor(n_in // k_in, n_out // k_out, (in_space.channels, out_space.channels))
    position = sparse_factor(n_in % k_in, n_out % k_out, (k_in, k_out))
    if channel.nnz * position.nnz == pairs.size:
        return (Term(channel, position),)
    return (Term(sparse_factor(n_in, n_out, (in_space.count, out_space.count)), eye(1)),)


def _follow_size1(space: Space, out_shape: tuple[int, ...]) -> Space | None:
    """Roles after inserting/removing size-1 dims only; None when the reshape does more than that."""
    src = [(d, s) for d, s in enumerate(space.shape) if s != 1]
    dst = [(d, s) for d, s in enumerate(out_shape) if s != 1]
    if [s for _, s in src] != [s for _, s in dst] or space.shape[0] != out_shape[0]:
        return None
    moved = {d: e for (d, _), (e, _) in zip(src, dst)}
    moved.setdefault(0, 0)

    def where(d: int | None) -> int | None:
        return None if d is None else moved.get(d)  # size-1 dims have no counterpart

    channel = where(space.channel_dim)
    if channel is None:
        size1 = [d for d in range(1, len(out_shape)) if out_shape[d] == 1 and d not in moved.values()]
        if not size1:
            return None
        channel = size1[0]
    return Space(tuple(out_shape), channel, where(space.kept_dim))


def _permuted(call: OpCall, space: Space) -> Space:
    rank = len(space.shape)
    if call.target in ("transpose", torch.transpose):
        d0, d1 = (int(a) % rank for a in call.args[1:3])
        order = list(range(rank))
        order[d0], order[d1] = order[d1], order[d0]
    elif call.target in ("movedim", torch.movedim):
        src, dst = int(call.args[1]) % rank, int(call.args[2]) % rank
        order = [d for d in range(rank) if d != src]
        order.insert(dst, src)
    else:
        dims = call.args[1:] if call.kind == "call_method" else call.args[1:2]
        if call.kwargs.get("dims") is not None:
            dims = (call.kwargs["dims"],)
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = dims[0]
        order = [int(d) % rank for d in dims]
    if order[0] != 0:
        raise call.error("moves the batch axis")
    kept = order.index(space.kept_dim) if space.kept_dim is not None else None
    return Space(call.out_shape, order.index(space.channel_dim), kept)


def _moved_space(call: OpCall) -> Space:
    """Roles of a data-movement op's output (see the module docstring)."""
    spaced = [s for s in call.spaces if s is not None]
    if not spaced:
        space = call.convention(call.out_shape)
        if space is None:
            raise call.error(f"output shape {call.out_shape} has no neuron layout")
        return space
    first = spaced[0]
    if call.target in ("permute", "transpose", "movedim", torch.permute, torch.transpose, torch.movedim):
        return _permuted(call, first)
    reshaping = isinstance(call.target, (nn.Flatten, nn.Unflatten)) or call.target in (
        "view", "reshape", "flatten", "unflatten", "squeeze", "unsqueeze", "view_as", "reshape_as",
        torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze)
    if len(call.out_shape) == len(first.shape) and not reshaping:
        return Space(call.out_shape, first.channel_dim, first.kept_dim)
    space = _follow_size1(first, call.out_shape) or call.convention(call.out_shape)
    if space is None:
        raise call.error(f"output shape {call.out_shape} has no neuron layout")
    return space


def movement_rule(call: OpCall, evaluate: Callable[[list[torch.Tensor]], torch.Tensor] | None = None) -> OpMap:
    """Data movement: probe the op with element ids and read off which input element each output copies."""
    out = _moved_space(call)
    if call.out_shape[0] != call.arg_shapes[0][0]:
        raise call.error(f"changes the batch axis ({call.arg_shapes[0][0]} -> {call.out_shape[0]}), so "
                         "neurons of different examples would mix")
    run = evaluate or (lambda values: run_op(call, values))
    relations = {i: _flat_relation(_probe_sources(call, i, run), call.spaces[i], out)
                 for i, carries in enumerate(call.carries) if carries}
    return OpMap(out, relations)


def elementwise_rule(call: OpCall) -> OpMap:
    """Elementwise ops: identity for operands shaped like the output, broadcast probe for the others."""
    same = [s for s in call.spaces if s is not None and s.shape == tuple(call.out_shape)]
    out = Space(call.out_shape, same[0].channel_dim, same[0].kept_dim) if same else call.convention(call.out_shape)
    if out is None:
        raise call.error(f"output shape {call.out_shape} has no neuron layout")
    relations: dict[int, Relation | None] = {}
    for i, carries in enumerate(call.carries):
        if not carries:
            continue
        space = call.spaces[i]
        if space == out:
            relations[i] = None
            continue
        if len(call.arg_shapes[i]) != len(call.out_shape):
            raise call.error(f"broadcasts an operand of shape {call.arg_shapes[i]} against {call.out_shape}; "
                             "only operands of the output's rank have a clear neuron correspondence")
        ids = _element_ids((1,) + tuple(call.arg_shapes[i][1:]))
        src = _copied_ids(torch.broadcast_to(ids, (1,) + tuple(call.out_shape[1:]))[0], ids.numel())
        relations[i] = _flat_relation(src, space, out)
    return OpMap(out, relations)

# ------------------------------------------------------------------------------------------ registry

MODULE_RULES: dict[type, Rule] = {
    nn.Conv1d: conv_rule, nn.Conv2d: conv_rule, nn.Linear: linear_rule,
    nn.MaxPool1d: _pool_rule("max", 1), nn.MaxPool2d: _pool_rule("max", 2),
    nn.AvgPool1d: _pool_rule("avg", 1), nn.AvgPool2d: _pool_rule("avg", 2),
    nn.LPPool1d: _pool_rule("lp", 1), nn.LPPool2d: _pool_rule("lp", 2),
    nn.AdaptiveMaxPool1d: _adaptive_rule(1), nn.AdaptiveMaxPool2d: _adaptive_rule(2),
    nn.AdaptiveAvgPool1d: _adaptive_rule(1), nn.AdaptiveAvgPool2d: _adaptive_rule(2),
    **{m: elementwise_rule for m in _PASS_MODULES},
    **{m: movement_rule for m in _MOVE_MODULES},
}
FUNCTION_RULES: dict[Any, Rule] = {
    F.conv1d: conv_rule, F.conv2d: conv_rule, F.linear: linear_rule,
    F.max_pool1d: _pool_rule("max", 1), F.max_pool2d: _pool_rule("max", 2),
    F.avg_pool1d: _pool_rule("avg", 1), F.avg_pool2d: _pool_rule("avg", 2),
    F.lp_pool1d: _pool_rule("lp", 1), F.lp_pool2d: _pool_rule("lp", 2),
    F.adaptive_max_pool1d: _adaptive_rule(1), F.adaptive_max_pool2d: _adaptive_rule(2),
    F.adaptive_avg_pool1d: _adaptive_rule(1), F.adaptive_avg_pool2d: _adaptive_rule(2),
    **{f: elementwise_rule for f in _ELEMENTWISE_FUNCTIONS},
    **{f: movement_rule for f in _MOVE_FUNCTIONS},
    **{f: reduce_rule for f in _REDUCE_FUNCTIONS},
}
METHOD_RULES: dict[str, Rule] = {
    **{m: elementwise_rule for m in _ELEMENTWISE_METHODS},
    **{m: movement_rule for m in _MOVE_METHODS},
    **{m: reduce_rule for m in _REDUCE_METHODS},
}


def find_rule(kind: str, target: Any) -> Rule | None:
    """The rule for an fx node (module type looked up along its MRO), or None when there is none."""
    if kind == "call_module":
        for cls in type(target).__mro__:
            if cls in MODULE_RULES:
                return MODULE_RULES[cls]
        return None
    if kind == "call_function":
        try:
            return FUNCTION_RULES.get(target)
        except TypeError:
            return None
    if kind == "call_method":
        return METHOD_RULES.get(target)
    return None
