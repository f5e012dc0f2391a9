"""Export a runnable :class:`engine.graph.Network` to an ONNX model (opset 17).

The ONNX graph works on batches: every tensor has the batch axis first (a symbolic ``N``), then
one sample's shape as DIANNE's shape inference gives it. Modules are visited in the executor's
order; each one appends ONNX nodes through an *emitter* (``engine.onnx.emitters``) that gets the
input tensor names and the one-sample input shapes. Composite modules are inlined (their
sub-network is exported in place). Fan-out needs no node (an ONNX tensor may feed several
nodes), ``Duplicate`` is a plain alias. A module type with no ONNX form raises a
:class:`~engine.errors.ModuleError` naming the module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from engine.errors import DianneError, ModuleError

OPSET = 17
IR_VERSION = 8  # old enough for every onnxruntime in use, new enough for opset 17

Shape = tuple[int, ...]


class GraphBuilder:
    """Accumulates ONNX nodes and initialisers with unique tensor names."""

    def __init__(self, onnx: Any) -> None:
        self.onnx = onnx
        self.helper = onnx.helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._used: set[str] = set()
        self.prefix = ""

    def name(self, base: str) -> str:
        base = (self.prefix + base).replace(" ", "_") or "t"
        name, i = base, 1
        while name in self._used:
            i += 1
            name = f"{base}_{i}"
        self._used.add(name)
        return name

    def const(self, base: str, value: Any, dtype: Any = np.float32) -> str:
        arr = np.asarray(value, dtype=dtype)
        name = self.name(base)
        self.initializers.append(self.onnx.numpy_helper.from_array(arr, name))
        return name

    def ints(self, base: str, values: Any) -> str:
        return self.const(base, list(values), np.int64)

    def node(self, op: str, inputs: list[str], base: str, n_out: int = 1,
             **attrs: Any) -> Any:
        """Append one node; returns its output name (or the list of names if n_out > 1)."""
        outs = [self.name(base if n_out == 1 else f"{base}_{i}") for i in range(n_out)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(self.helper.make_node(op, inputs, outs, name=outs[0], **attrs))
        return outs[0] if n_out == 1 else outs


class ModuleContext:
    """What an emitter gets besides the module: the builder and one-sample shapes."""

    def __init__(self, g: GraphBuilder, module: Any, in_shapes: list[Shape],
                 out_shape: Any) -> None:
        self.g = g
        self.module = module
        self.in_shapes = in_shapes
        self.out_shape = out_shape
        self.base = (module.name or module.type_name).replace(" ", "_")

    @property
    def in_shape(self) -> Shape:
        return self.in_shapes[0]

    def node(self, op: str, inputs: list[str], n_out: int = 1, **attrs: Any) -> Any:
        return self.g.node(op, inputs, self.base, n_out, **attrs)

    def const(self, what: str, value: Any, dtype: Any = np.float32) -> str:
        return self.g.const(f"{self.base}.{what}", value, dtype)

    def ints(self, what: str, values: Any) -> str:
        return self.g.ints(f"{self.base}.{what}", values)

    def fail(self, why: str) -> ModuleError:
        return self.module.fail(f"cannot be exported to ONNX: {why}", self.in_shapes or None)


def export_network(g: GraphBuilder, net: Any, feeds: Mapping[str, str],
                   in_shapes: Mapping[str, Shape]) -> dict[str, tuple[str, Shape]]:
    """Append ``net``'s nodes; ``feeds`` maps each Input id to a tensor, ``in_shapes`` to its
    one-sample shape. Returns Output id -> (tensor name, one-sample shape)."""
    from engine.onnx.emitters import EMITTERS

    tensors: dict[str, Any] = {}
    shapes: dict[str, Any] = {}
    results: dict[str, tuple[str, Shape]] = {}
    needed: set[str] = set()  # what the Outputs depend on (orphans, as in Residual_b, are not)
    stack = list(net.outputs)
    while stack:
        m = stack.pop()
        if m not in needed:
            needed.add(m)
            stack.extend(net.pred[m])
            stack.extend(getattr(net, "delayed", {}).get(m, ()))
    for mid in net.order:
        if mid not in needed:
            continue
        mod = net.modules[mid]
        if getattr(mod, "recurrent", False):
            raise mod.fail("cannot be exported to ONNX: a Memory keeps state between runs, "
                           "which an ONNX graph cannot", None)
        if mod.type_name == "Input":
            shape = tuple(mod.output_shape(in_shapes.get(mid)))
            tensors[mid], shapes[mid] = feeds[mid], shape
            continue
        names, ins = [], []
        for p in net.pred[mid]:
            src = net.modules[p]
            idx = net.succ[p].index(mid) if src.fork else -1
            names.append(tensors[p] if idx < 0 else tensors[p][idx])
            ins.append(tuple(shapes[p] if idx < 0 else shapes[p][idx]))
        if not names:
            raise mod.fail("cannot be exported to ONNX: it has no input", None)
        try:
            out_shape = mod.output_shape(ins if mod.join else ins[0])
        except DianneError:
            raise
        except (ValueError, TypeError, IndexError) as exc:
            raise mod.fail(f"cannot infer its output shape: {exc}", ins) from None
        ctx = ModuleContext(g, mod, ins, out_shape)
        # Composite modules inline themselves (a bound ``to_onnx(ctx, names)``).
        emitter = EMITTERS.get(mod.type_name) or getattr(mod, "to_onnx", None)
        if emitter is None:
            raise ctx.fail("no ONNX operator expresses this module type")
        out = emitter(ctx, names)
        tensors[mid] = out
        shapes[mid] = [tuple(s) for s in out_shape] if mod.fork else tuple(out_shape)
        if mod.type_name == "Output":
            results[mid] = (out, shapes[mid])
    return results


def _sample_shapes(net: Any, input_shape: Any) -> dict[str, Shape]:
    if isinstance(input_shape, Mapping):
        return {net.module(k).id: tuple(v) for k, v in input_shape.items()}
    given: dict[str, Shape] = {}
    for i, mid in enumerate(net.inputs):
        dims = net.modules[mid].cfg.get("dims")
        if i == 0 and input_shape is not None:
            given[mid] = tuple(int(d) for d in input_shape)
        elif dims:
            given[mid] = tuple(dims)
        else:
            raise net.modules[mid].fail("Input shape unknown: give input_shape or set its dims "
                                        "property", None)
    return given


def _unique_names(net: Any, ids: list[str]) -> dict[str, str]:
    """Graph input/output names: the module's name where unique, else its UUID."""
    names = [net.modules[m].name for m in ids]
    return {m: (n if names.count(n) == 1 else m) for m, n in zip(ids, names, strict=True)}


def to_onnx(net: Any, input_shape: Any = None, *, name: str | None = None) -> Any:
    """Export ``net`` (a :class:`engine.graph.Network`) to an ``onnx.ModelProto``.

    ``input_shape`` is one sample's shape (no batch axis) of the only Input, or a mapping
    Input id/name -> shape; an Input's ``dims`` property is used where nothing is given. The
    graph's inputs and outputs are named after the Input/Output modules and have a symbolic
    batch axis ``N`` first. Parameters are exported with the module's current values, in
    inference mode (Dropout is the identity, BatchNormalization uses running statistics).
    """
    import onnx

    g = GraphBuilder(onnx)
    in_shapes = _sample_shapes(net, input_shape)
    in_names = _unique_names(net, net.inputs)
    out_names = _unique_names(net, net.outputs)
    for n in list(in_names.values()) + list(out_names.values()):
        g.name(n)  # reserve, so no node output takes these names
    feeds = {mid: in_names[mid] for mid in net.inputs}
    results = export_network(g, net, feeds, in_shapes)
    helper = onnx.helper
    elem = onnx.TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info(in_names[m], elem, ["N", *in_shapes[m]])
              for m in net.inputs]
    outputs = []
    for mid in net.outputs:
        if mid not in results:
            continue
        tensor, shape = results[mid]
        g.nodes.append(helper.make_node("Identity", [tensor], [out_names[mid]],
                                        name=f"{out_names[mid]}.out"))
        outputs.append(helper.make_tensor_value_info(out_names[mid], elem, ["N", *shape]))
    graph = helper.make_graph(g.nodes, name or net.description.name or "dianne", inputs,
                              outputs, g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="dianne-py")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model
