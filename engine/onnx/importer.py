"""Import an ONNX model as a DIANNE network description plus weights (spec 8.2).

The graph's real inputs (those without an initialiser) become ``Input`` modules whose ``dims``
are the input's shape without its first (batch) axis; every node becomes a module through the
op table in ``engine.onnx.handlers`` (a handler may absorb the nodes that follow it: a Conv's
bias ``Add``, ``Sub``+``Div`` = Normalization, ...); every graph output gets an ``Output``.
Nodes whose inputs are all constants are folded (``onnx.reference``), and ``Shape`` of a tensor
is folded for a batch of one, so PyTorch's flatten idiom becomes a plain Reshape. Implicit
fan-out becomes an explicit ``Duplicate``, as the original's importer did. Anything without a
DIANNE form is a :class:`~engine.errors.FormatError` naming the node.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from engine.description import ModuleDescription, NetworkDescription, new_module_id
from engine.errors import DianneError, FormatError
from engine.modules import module_class

Shape = tuple[int, ...]


def node_label(node: Any) -> str:
    name = f" '{node.name}'" if node.name else ""
    return f"ONNX node {node.op_type}{name} (outputs {', '.join(node.output)})"


class Importer:
    """State of one import: constants, tensor -> module output, edges, weights."""

    def __init__(self, model: Any, source: str) -> None:
        import onnx
        from onnx import numpy_helper

        self.onnx, self.source = onnx, source
        graph = model.graph
        self.graph = graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                          1)
        self.consts: dict[str, np.ndarray] = {
            t.name: numpy_helper.to_array(t) for t in graph.initializer}
        self.nodes = list(graph.node)
        self.outputs = [o.name for o in graph.output]
        self.consumers: dict[str, list[int]] = defaultdict(list)
        for i, node in enumerate(self.nodes):
            for name in node.input:
                if name:
                    self.consumers[name].append(i)
        self.done: set[int] = set()
        self.refs: dict[str, tuple[str, int]] = {}
        self.shapes: dict[str, Shape] = {}
        self.modules: dict[str, ModuleDescription] = {}
        self.edges: list[tuple[str, int, str]] = []
        self.weights: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ helpers for handlers
    def fail(self, node: Any, why: str) -> FormatError:
        return FormatError(f"{self.source}: {node_label(node)}: {why}")

    def attr(self, node: Any, key: str, default: Any = None) -> Any:
        for a in node.attribute:
            if a.name == key:
                return self.onnx.helper.get_attribute_value(a)
        return default

    def const(self, name: str) -> np.ndarray | None:
        return self.consts.get(name) if name else None

    def arg(self, node: Any, k: int) -> str:
        """The k-th input, which must be a tensor computed by the network (not a constant)."""
        if k >= len(node.input) or not node.input[k] or node.input[k] not in self.refs:
            raise self.fail(node, f"input {k} must be a network tensor, not a constant")
        return node.input[k]

    def sample(self, name: str) -> Shape:
        return self.shapes[name]

    def sole_consumer(self, tensor: str) -> tuple[int, Any] | None:
        """The one node reading ``tensor`` (when it is read once and is no graph output)."""
        users = self.consumers.get(tensor, [])
        if len(users) != 1 or tensor in self.outputs or users[0] in self.done:
            return None
        return users[0], self.nodes[users[0]]

    def add(self, node: Any, type_name: str, props: dict[str, Any], inputs: list[str],
            outputs: list[str], weights: Any = None) -> str:
        """A module fed by ``inputs`` (tensor names) producing ``outputs``."""
        cls = module_class(type_name)
        mid = new_module_id()
        strings = {k: _string(v) for k, v in props.items() if v is not None}
        strings["name"] = node.name or f"{type_name}_{outputs[0]}"
        strings["category"] = cls.category
        if cls.trainable:
            strings["trainable"] = "true"
        try:
            mod = cls(id=mid, name=strings["name"], **{k: v for k, v in strings.items()
                                                      if k not in ("name", "category",
                                                                   "trainable")})
            mod.n_next, mod.n_prev = max(len(outputs), 1), max(len(inputs), 1)
            ins = [self.shapes[t] for t in inputs]
            arg = (ins if cls.join else ins[0]) if ins else self.shapes.get(outputs[0])
            out = mod.output_shape(arg)
            if weights is not None:
                mod.set_flat(weights)
        except DianneError as exc:
            raise self.fail(node, f"as DIANNE {type_name}: {exc}") from None
        except (ValueError, TypeError, IndexError) as exc:
            raise self.fail(node, f"as DIANNE {type_name}: {exc}") from None
        self.modules[mid] = ModuleDescription(mid, type_name, [], [], strings)
        for t in inputs:
            src, slot = self.refs[t]
            self.edges.append((src, slot, mid))
        for slot, t in enumerate(outputs):
            if t:
                self.refs[t] = (mid, slot if cls.fork else -1)
                self.shapes[t] = tuple(out[slot] if cls.fork else out)
        if weights is not None:
            self.weights[mid] = np.asarray(weights, dtype=np.float32).ravel()
        return mid

    def alias(self, out: str, src: str) -> None:
        self.refs[out], self.shapes[out] = self.refs[src], self.shapes[src]

    # ------------------------------------------------------------------ the walk
    def _inputs(self) -> None:
        for vi in self.graph.input:
            if vi.name in self.consts:
                continue
            dims = vi.type.tensor_type.shape.dim
            if len(dims) < 2 or any(d.dim_value <= 0 for d in dims[1:]):
                raise FormatError(f"{self.source}: graph input {vi.name!r} needs a batch axis "
                                  f"then fixed sizes. Received: "
                                  f"{[d.dim_param or d.dim_value for d in dims]}")
            shape = tuple(int(d.dim_value) for d in dims[1:])
            fake = self.onnx.helper.make_node("Input", [], [vi.name], name=vi.name)
            self.shapes[vi.name] = shape
            mid = self.add(fake, "Input", {"dims": ",".join(map(str, shape))}, [], [vi.name])
            self.modules[mid].properties["name"] = vi.name

    def _fold(self, node: Any) -> bool:
        """Evaluate a node whose inputs are all constants (or a Shape of a known tensor)."""
        if node.op_type == "Shape" and node.input[0] in self.shapes:
            full = np.array([1, *self.shapes[node.input[0]]], dtype=np.int64)
            start, end = self.attr(node, "start", 0), self.attr(node, "end", None)
            self.consts[node.output[0]] = full[start:end]
            return True
        if node.op_type != "Constant" and not all(
                (not n) or n in self.consts for n in node.input):
            return False
        if not node.input and node.op_type != "Constant":
            return False
        from onnx.reference import ReferenceEvaluator
        try:
            feeds = {n: self.consts[n] for n in node.input if n}
            values = ReferenceEvaluator(node).run(None, feeds)
        except Exception as exc:  # the reference implementation's own errors
            raise self.fail(node, f"cannot fold this constant expression: {exc}") from None
        for name, value in zip(node.output, values, strict=False):
            self.consts[name] = np.asarray(value)
        return True

    def run(self, name: str) -> tuple[NetworkDescription, dict[str, np.ndarray]]:
        from engine.onnx.handlers import HANDLERS

        self._inputs()
        for i, node in enumerate(self.nodes):
            if i in self.done:
                continue
            self.done.add(i)
            if node.domain not in ("", "ai.onnx"):
                raise self.fail(node, f"operators of domain {node.domain!r} are not supported")
            if self._fold(node):
                continue
            handler = HANDLERS.get(node.op_type)
            if handler is None:
                raise self.fail(node, "this operator has no DIANNE module (see the mapping "
                                      "in docs/composites-onnx.md)")
            handler(self, node)
        return self._build(name), self.weights

    def _build(self, name: str) -> NetworkDescription:
        out_node = self.onnx.helper.make_node("Output", [], ["-"])
        for t in self.outputs:
            if t not in self.refs:
                raise FormatError(f"{self.source}: graph output {t!r} is a constant or was never "
                                  f"computed")
            out_node.name = t
            self.add(out_node, "Output", {}, [t], [])
        # Fan-out: several readers of one output (slot) get an explicit Duplicate.
        readers: dict[tuple[str, int], list[int]] = defaultdict(list)
        for k, (src, slot, _dst) in enumerate(self.edges):
            readers[(src, slot)].append(k)
        for (src, slot), ks in readers.items():
            if len(ks) < 2:
                continue
            dup = new_module_id()
            self.modules[dup] = ModuleDescription(dup, "Duplicate", [], [], {
                "name": "Duplicate", "category": "Fork"})
            for k in ks:
                self.edges[k] = (dup, -1, self.edges[k][2])
            self.edges.append((src, slot, dup))
        ordered = sorted(self.edges, key=lambda e: max(e[1], 0))  # a fork's next in slot order
        for src, _slot, dst in ordered:
            self.modules[src].next.append(dst)
        for src, _slot, dst in self.edges:
            self.modules[dst].prev.append(src)
        desc = NetworkDescription(name, dict(self.modules), None, self.source)
        desc.validate()
        return desc


def _string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float | np.floating):
        value = float(value)
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def _load(model_or_path: Any) -> tuple[Any, str]:
    import onnx

    if isinstance(model_or_path, str | os.PathLike):
        path = Path(model_or_path)
        try:
            return onnx.load(str(path)), str(path)
        except FileNotFoundError:
            raise FormatError(f"{path}: no such ONNX file") from None
        except Exception as exc:  # protobuf DecodeError and friends
            raise FormatError(f"{path}: not a readable ONNX model ({exc})") from None
    if isinstance(model_or_path, bytes | bytearray):
        try:
            return onnx.load_from_string(bytes(model_or_path)), "<bytes>"
        except Exception as exc:
            raise FormatError(f"<bytes>: not a readable ONNX model ({exc})") from None
    return model_or_path, model_or_path.graph.name or "<model>"


def from_onnx(model_or_path: Any, *, name: str | None = None
              ) -> tuple[NetworkDescription, dict[str, np.ndarray]]:
    """ONNX model (``ModelProto``, bytes or a path) -> (description, {uuid: flat weights}).

    The network is named ``name``, else after the ONNX graph (as the original did).
    """
    model, source = _load(model_or_path)
    net_name = name or model.graph.name or "onnx"
    return Importer(model, source).run(net_name)
