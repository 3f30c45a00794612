"""Neuron graph of any ``torch.nn.Module``: trace it with ``torch.fx``, propagate shapes, follow connectivity.

The model is traced with a tracer that names every node by its qualified module path (like torchvision's
feature extraction: ``layer1.0.relu``, a second call of the same module ``layer1.0.relu_1``, a function
called inside ``features`` ``features.add``), shapes come from ``ShapeProp`` on the example input, and the
connectivity between consecutive taps is composed from one rule per op (``layout.connectivity``). The graph
is therefore always the model's own: nothing is described twice.

Taps are the outputs of the nonlinearities unless ``layers`` names others (see ``node_names``). Paths from
one tap to the next (conv -> bn -> add(identity) -> relu) are composed, and parallel paths united; a tap
blocks paths through it, so edges join a tap to the taps it feeds without another tap in between (a
residual connection gives an edge that skips a layer). Connectivity is binary: weights are uniform 1.

The network input, when it is a layer (``include_input``), follows the rank convention of
``conventional_space``. Connectivity stays factored (``layout.relation``) until the edges are written, so
their number is known before any is built (exact unless parallel paths between two taps overlap, then an
upper bound) and checked against ``max_edges``; edges cost 12 bytes each (int32 pair, float32 weight) and
are written straight into the final CSR arrays, layer by layer (VGG16 at 224 x 224: 199 M edges, 2.4 GB).
"""
from __future__ import annotations

import functools
import logging
import operator
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from torch import fx, nn
from torch.fx.node import map_aggregate
from torch.fx.passes.shape_prop import ShapeProp
from tqdm import tqdm

from .connectivity import (OpCall, OpMap, Space, TensorArg, conventional_space, find_rule, is_nonlinearity,
                           movement_rule, run_op)
from .defaults import DEFAULT_MAX_EDGES
from .graph import EDGE_DTYPE, WEIGHT_DTYPE, Layer, NeuronGraph, layer_table
from .relation import Relation, compose, edge_bound, identity, out_degrees, single_term, unite, write_edges

logger = logging.getLogger(__name__)

BYTES_PER_EDGE = 2 * np.dtype(EDGE_DTYPE).itemsize + np.dtype(WEIGHT_DTYPE).itemsize


class _QualnameTracer(fx.Tracer):
    """Tracer that records the qualified module path of every node and treats chosen modules as leaves."""

    def __init__(self, leaf_modules: Sequence[type | str] = ()):
        super().__init__()
        self.leaf_types = tuple(m for m in leaf_modules if isinstance(m, type))
        self.leaf_names = frozenset(m for m in leaf_modules if isinstance(m, str))
        self._module_path = ""
        self.paths: dict[str, str] = {}

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if isinstance(m, self.leaf_types) or module_qualified_name in self.leaf_names:
            return True
        return super().is_leaf_module(m, module_qualified_name)

    def call_module(self, m, forward, args, kwargs):
        outer, self._module_path = self._module_path, self.path_of_module(m)
        try:
            return super().call_module(m, forward, args, kwargs)
        finally:
            self._module_path = outer

    def create_proxy(self, kind, target, args, kwargs, name=None, type_expr=None, *rest, **more):
        proxy = super().create_proxy(kind, target, args, kwargs, name, type_expr, *rest, **more)
        if kind == "call_module":
            path = str(target)
        else:
            short = target if isinstance(target, str) else getattr(target, "__name__", "op")
            path = f"{self._module_path}.{short}" if self._module_path and kind != "placeholder" else str(short)
        self.paths[proxy.node.name] = path
        return proxy


class _ValueProp(ShapeProp):
    """ShapeProp that also keeps small non-tensor results (sizes), which data-movement ops take as args."""

    def run_node(self, n: fx.Node) -> Any:
        result = super().run_node(n)
        n.meta["is_tensor"] = isinstance(result, torch.Tensor)
        if n.meta["is_tensor"]:
            n.meta["shape"] = tuple(result.shape)
        elif not _holds_tensor(result):
            n.meta["value"] = result
        return result


def _holds_tensor(value: Any) -> bool:
    found = []
    map_aggregate(value, lambda v: found.append(v) if isinstance(v, torch.Tensor) else None)
    return bool(found)


@dataclass
class Traced:
    """A traced model with shapes and qualified, unique node names."""

    module: fx.GraphModule
    names: dict[fx.Node, str]

    def node(self, name: str) -> fx.Node:
        for node, n in self.names.items():
            if n == name:
                return node
        raise ValueError(f"no node {name!r}; node_names(model, example_input) lists the valid names")


def _as_tuple(example_input: torch.Tensor | Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    if isinstance(example_input, torch.Tensor):
        return (example_input,)
    if isinstance(example_input, (tuple, list)) and all(isinstance(t, torch.Tensor) for t in example_input):
        return tuple(example_input)
    raise TypeError(f"example_input must be a tensor or a sequence of tensors, got {type(example_input).__name__}")


def trace(model: nn.Module, example_input: torch.Tensor | Sequence[torch.Tensor], *,
          leaf_modules: Sequence[type | str] = ()) -> Traced:
    """Trace ``model`` (in eval mode, restoring ``model.training``) and propagate shapes of the example."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    inputs = _as_tuple(example_input)
    was_training = model.training
    model.eval()
    try:
        tracer = _QualnameTracer(leaf_modules)
        try:
            graph = tracer.trace(model)
        except Exception as exc:  # fx raises many kinds; all mean "not symbolically traceable"
            raise ValueError(f"torch.fx cannot trace {type(model).__name__} ({type(exc).__name__}: {exc}); pass "
                             "the untraceable submodules as leaf_modules=[...]") from exc
        module = fx.GraphModule(tracer.root, graph)
        with torch.no_grad():
            _ValueProp(module).propagate(*inputs)
    finally:
        model.train(was_training)
    names, seen = {}, {}
    for node in module.graph.nodes:
        if node.op == "output":
            continue
        base = tracer.paths.get(node.name, node.name)
        count = seen.get(base, 0)
        seen[base] = count + 1
        names[node] = base if count == 0 else f"{base}_{count}"
    return Traced(module, names)


def node_names(model: nn.Module, example_input: torch.Tensor | Sequence[torch.Tensor], *,
               leaf_modules: Sequence[type | str] = ()) -> list[str]:
    """Qualified names of all nodes with a tensor output, in execution order: the valid ``layers``."""
    traced = trace(model, example_input, leaf_modules=leaf_modules)
    return [name for node, name in traced.names.items() if node.meta.get("is_tensor")]


def default_taps(traced: Traced) -> list[str]:
    """Names of the nonlinearity outputs (module calls, functions and methods)."""
    return [name for node, name in traced.names.items()
            if node.op.startswith("call_") and is_nonlinearity(node.op, _target(traced, node))]


def _target(traced: Traced, node: fx.Node) -> Any:
    return traced.module.get_submodule(node.target) if node.op == "call_module" else node.target


def _tuple_parent(node: fx.Node) -> fx.Node | None:
    """For ``getitem(tuple_node, i)`` the node producing the tuple, else None."""
    if node.op == "call_function" and node.target is operator.getitem and isinstance(node.args[0], fx.Node):
        parent = node.args[0]
        if not parent.meta.get("is_tensor") and parent.op.startswith("call_"):
            return parent
    return None


class _Propagation:
    """Walks the traced graph once, giving every node its neuron space and its connectivity from taps."""

    def __init__(self, traced: Traced, taps: Sequence[str], *, keep_axis: int, keep_length: bool,
                 connect: bool = True):
        self.traced = traced
        self.taps = set(taps)
        self.connect = connect
        self.convention = lambda shape: conventional_space(shape, keep_axis=keep_axis, keep_length=keep_length)
        self.spaces: dict[fx.Node, Space | None] = {}
        self.relations: dict[fx.Node, dict[str, Relation]] = {}
        self.layers: list[tuple[str, Space]] = []
        self.pairs: list[tuple[str, str, Relation]] = []

    def run(self) -> None:
        for node in self.traced.module.graph.nodes:
            if node.op == "output":
                continue
            self.relations[node] = {}
            self.spaces[node] = None
            if node.op == "placeholder":
                self._placeholder(node)
            elif node.op.startswith("call_") and node.meta.get("is_tensor"):
                self._op(node)

    def _placeholder(self, node: fx.Node) -> None:
        name = self.traced.names[node]
        space = self.convention(node.meta["shape"]) if node.meta.get("is_tensor") else None
        self.spaces[node] = space
        if name in self.taps:
            if space is None:
                raise ValueError(f"input {name!r} of shape {node.meta.get('shape')} has no neuron layout")
            self.layers.append((name, space))
            if self.connect:
                self.relations[node] = {name: identity(space.channels, space.size)}

    def _call(self, node: fx.Node, source: fx.Node) -> OpCall:
        shapes, spaces, carries = [], [], []

        def convert(arg: Any) -> Any:
            if not isinstance(arg, fx.Node):
                return arg
            if arg.meta.get("is_tensor"):
                shapes.append(arg.meta["shape"])
                spaces.append(self.spaces.get(arg))
                carries.append(bool(self.relations.get(arg)))
                return TensorArg(len(shapes) - 1)
            if "value" in arg.meta:
                return arg.meta["value"]
            raise ValueError(f"{self.traced.names[node]!r}: argument {self.traced.names[arg]!r} is neither a "
                             "tensor nor a constant; mark the module that produces it as a leaf module")

        args = map_aggregate(source.args, convert)
        kwargs = map_aggregate(source.kwargs, convert)
        return OpCall(source.op, _target(self.traced, source), args, kwargs, shapes, spaces, carries,
                      node.meta["shape"], self.traced.names[node], self.convention)

    def _op(self, node: fx.Node) -> None:
        parent = _tuple_parent(node)
        call = self._call(node, parent if parent is not None else node)
        rule = find_rule(call.kind, call.target)
        if parent is not None and rule is not None:
            rule = functools.partial(_tuple_item_rule, index=node.args[1])
        mapped = self._apply(node, call, rule)
        self.spaces[node] = mapped.space if mapped else None
        incoming: dict[str, Relation] = {}
        if mapped:
            args = _tensor_args(parent if parent is not None else node)
            for i, op_relation in mapped.relations.items():
                for src, relation in self.relations[args[i]].items():
                    composed = relation if op_relation is None else compose(relation, op_relation)
                    incoming[src] = unite(incoming[src], composed) if src in incoming else composed
        name = self.traced.names[node]
        if name in self.taps:
            space = self.spaces[node]
            if space is None:
                raise ValueError(f"tap {name!r} of shape {node.meta['shape']} has no neuron layout "
                                 "(ranks 2, 3 and 4 have one)")
            self.layers.append((name, space))
            self.pairs.extend((src, name, rel) for src, rel in incoming.items() if rel)
            incoming = {name: identity(space.channels, space.size)} if self.connect else {}
        self.relations[node] = {src: rel for src, rel in incoming.items() if rel}

    def _apply(self, node: fx.Node, call: OpCall, rule) -> OpMap | None:
        carrying = any(call.carries)
        if rule is None:
            if carrying:
                raise ValueError(f"no connectivity rule for {call.describe()} at {call.path!r} (node "
                                 f"{node.format_node()}); mark its module as a leaf of a supported kind, pick "
                                 "taps around it with layers=..., or add a rule in layout.connectivity")
            space = self.convention(call.out_shape)
            return OpMap(space, {}) if space is not None else None
        try:
            return rule(call)
        except ValueError:
            if carrying:
                raise
            space = self.convention(call.out_shape)
            return OpMap(space, {}) if space is not None else None


def _tuple_item_rule(call: OpCall, *, index: int) -> OpMap:
    """``op(...)[index]`` for ops returning tuples (chunk, split, unbind): probe the op, take the item."""
    return movement_rule(call, lambda values: run_op(call, values)[index])


def _tensor_args(node: fx.Node) -> list[fx.Node]:
    found: list[fx.Node] = []
    map_aggregate((node.args, node.kwargs),
                  lambda a: found.append(a) if isinstance(a, fx.Node) and a.meta.get("is_tensor") else None)
    return found


def extract(model: nn.Module, example_input: torch.Tensor | Sequence[torch.Tensor], *,
            layers: Sequence[str] | None = None, keep_axis: int = 2, keep_length: bool = False,
            include_input: bool = False, max_edges: int = DEFAULT_MAX_EDGES,
            leaf_modules: Sequence[type | str] = ()) -> NeuronGraph:
    """The neuron graph of ``model`` on inputs shaped like ``example_input``.

    ``layers``: tap names (``node_names``), laid out in execution order; default: every nonlinearity
    output. ``keep_axis``: for 4-D maps (B, C, H, W) the kept axis, 2 (H, default) or 3 (W); the other
    one is dropped. ``keep_length``: keep the length of 3-D maps (B, C, L) instead of dropping it as time.
    ``include_input``: make the network input the first layer. ``max_edges``: refuse graphs with more
    edges (counted before building).
    ``leaf_modules``: module types or qualified names not to trace into (they need a rule in
    ``layout.connectivity`` when connectivity flows through them).
    """
    if keep_axis not in (2, 3):
        raise ValueError(f"keep_axis must be 2 (height) or 3 (width) of (B, C, H, W) maps, got {keep_axis!r}")
    traced = trace(model, example_input, leaf_modules=leaf_modules)
    taps = _resolve_taps(traced, layers)
    if include_input:
        taps = [name for node, name in traced.names.items() if node.op == "placeholder"] + taps
    walk = _Propagation(traced, taps, keep_axis=keep_axis, keep_length=keep_length)
    walk.run()
    if not walk.layers:
        raise ValueError("the model has no taps: it has no nonlinearity modules or functions; pick layers=... "
                         "from node_names(model, example_input)")
    table = layer_table([(name, space.channels, space.size) for name, space in walk.layers])
    graph = build_graph(table, walk.pairs, max_edges=max_edges)
    logger.info("extracted %d layers, %d neurons, %d edges", len(table), graph.n_vertices, graph.n_edges)
    return graph


def tap_spaces(traced: Traced, taps: Sequence[str], *, keep_axis: int = 2,
               keep_length: bool = False) -> list[tuple[str, Space]]:
    """Neuron space of each tap (in execution order), without computing connectivity."""
    walk = _Propagation(traced, taps, keep_axis=keep_axis, keep_length=keep_length, connect=False)
    walk.run()
    return walk.layers


def _resolve_taps(traced: Traced, layers: Sequence[str] | None) -> list[str]:
    if layers is None:
        return default_taps(traced)
    if isinstance(layers, str):
        raise TypeError(f"layers must be a sequence of names, got the string {layers!r}")
    valid = {name for node, name in traced.names.items() if node.meta.get("is_tensor")}
    unknown = [name for name in layers if name not in valid]
    if unknown:
        raise ValueError(f"unknown layers {unknown}; node_names(model, example_input) lists the valid names")
    return list(layers)


def edge_count_bound(pairs: Iterable[tuple[str, str, Relation]]) -> int:
    """Edges the pairs will build (exact unless parallel paths between two taps overlap; then an upper bound)."""
    return sum(edge_bound(relation) for _, _, relation in pairs)


def build_graph(layers: Sequence[Layer], pairs: Sequence[tuple[str, str, Relation]], *,
                max_edges: int = DEFAULT_MAX_EDGES) -> NeuronGraph:
    """Materialise CSR-sorted int32 edges from per-layer-pair relations straight into the final arrays."""
    bound = edge_count_bound(pairs)
    if bound > max_edges:
        raise ValueError(f"the graph would have up to {bound:,} edges (~{bound * BYTES_PER_EDGE / 2**30:.2f} GiB "
                         f"as int32 pairs and float32 weights), more than max_edges={max_edges:,}; raise "
                         "max_edges, pick fewer layers with layers=..., or use a smaller input")
    layers = tuple(layers)
    n = layers[-1].stop if layers else 0
    if n >= np.iinfo(EDGE_DTYPE).max:
        raise ValueError(f"{n:,} neurons do not fit int32 vertex indices")
    by_name = {layer.name: layer for layer in layers}
    order = {layer.name: i for i, layer in enumerate(layers)}
    outgoing: dict[str, list[tuple[Layer, Any]]] = {layer.name: [] for layer in layers}
    for src, dst, relation in sorted(pairs, key=lambda p: (order[p[0]], order[p[1]])):
        outgoing[src].append((by_name[dst], single_term(relation)))
    degrees = np.zeros(n, np.int64)
    for layer in layers:
        for _, term in outgoing[layer.name]:
            degrees[layer.start:layer.stop] += out_degrees(term)
    indptr = np.concatenate([[0], np.cumsum(degrees)])
    edges = np.empty((int(indptr[-1]), 2), EDGE_DTYPE)
    for layer in tqdm(layers, desc="edges", unit="layer", disable=edges.shape[0] < 10_000_000):
        if outgoing[layer.name]:
            rows = edges[indptr[layer.start]:indptr[layer.stop]]
            write_edges([(term, target.start) for target, term in outgoing[layer.name]], rows,
                        src_offset=layer.start)
    return NeuronGraph(layers, edges, np.ones(edges.shape[0], WEIGHT_DTYPE))
