"""Shape inference for a whole network, without running it.

For every module: the input shape(s), the output shape (one sample, no batch axis), the number
of parameters and the multiply-accumulates of one forward pass — or the reason the shape cannot
be inferred, naming the module. The editor calls this after every edit, so it never raises for a
bad module: the error is recorded on that module and everything downstream of it is marked as
"unknown input" instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.description import NetworkDescription
from engine.errors import DianneError, module_label
from engine.graph import build_module
from engine.modules import Module
from engine.modules.base import MAX_TENSOR_VALUES
from engine.topology import cut_recurrent, link, topological_order

Shape = tuple[int, ...]


@dataclass
class ModuleShape:
    """What shape inference knows about one module."""

    id: str
    type: str
    name: str
    in_shapes: list[Shape] = field(default_factory=list)
    out_shape: Shape | list[Shape] | None = None
    params: int = 0
    macs: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.out_shape is not None


@dataclass
class NetworkShapes:
    """Per-module results plus totals."""

    modules: dict[str, ModuleShape]

    @property
    def params(self) -> int:
        return sum(m.params for m in self.modules.values())

    @property
    def macs(self) -> int:
        return sum(m.macs for m in self.modules.values())

    @property
    def errors(self) -> dict[str, str]:
        return {k: m.error for k, m in self.modules.items() if m.error}

    def first_error(self) -> str | None:
        """The error to report first, naming its module: the earliest in execution order that
        is not merely the consequence of another (an input whose shape is unknown)."""
        failed = [m for m in self.modules.values() if m.error]
        if not failed:
            return None
        root = next((m for m in failed if not m.error.startswith("input from ")), failed[0])
        label = module_label(root.id, root.type, root.name)
        return root.error if root.id in root.error else f"{label}: {root.error}"

    def __getitem__(self, key: str) -> ModuleShape:
        return self.modules[key]


def _shape_str(shape: Any) -> str:
    return "x".join(str(d) for d in shape) if shape is not None else "?"


def infer_shapes(desc: NetworkDescription,
                 input_shapes: Shape | Mapping[str, Shape] | None = None) -> NetworkShapes:
    """Infer shapes module by module in topological order.

    ``input_shapes`` gives one sample's shape for the only Input (a tuple) or per Input id
    (a mapping); an Input's own ``dims`` property is used when nothing is given for it.
    """
    results: dict[str, ModuleShape] = {}
    modules: dict[str, Module] = {}
    for md in desc.modules.values():
        res = ModuleShape(md.id, md.type, md.properties.get("name") or md.type)
        results[md.id] = res
        try:
            modules[md.id] = build_module(md)
        except DianneError as exc:
            res.error = str(exc).split(": ", 1)[-1] if desc.source else str(exc)
    succ, pred, dangling = link(desc)
    delayed = cut_recurrent(modules, pred)  # Memory emits its state: a source here
    for mid, side, missing in dangling:
        results[mid].error = f"{side} '{missing}' is not a module of this network"
    for mid, mod in modules.items():
        mod.n_next = max(1, len(succ[mid]))
        mod.n_prev = max(1, len(pred[mid]))

    given: dict[str, Shape] = {}
    if isinstance(input_shapes, Mapping):
        given = {k: tuple(v) for k, v in input_shapes.items()}
    elif input_shapes is not None:
        firsts = [md.id for md in desc.modules.values() if md.type == "Input"]
        given = {f: tuple(input_shapes) for f in firsts[:1]}

    done = topological_order(list(results), succ, pred)
    for m in results:
        if m not in done and not results[m].error:
            results[m].error = "part of a cycle"

    for mid in done:
        res, mod = results[mid], modules.get(mid)
        if mod is None or res.error:
            continue
        res.params = mod.parameter_size()
        ins: list[Shape] = []
        missing = None
        for p in pred[mid]:
            pres, pmod = results[p], modules.get(p)
            if not pres.ok or pmod is None:
                missing = pres.name
                break
            out = pres.out_shape
            if pmod.fork:
                out = out[succ[p].index(mid)]  # type: ignore[index]
            ins.append(tuple(out))  # type: ignore[arg-type]
        if missing is not None:
            res.error = f"input from '{missing}' has no known shape"
            continue
        res.in_shapes = ins
        try:
            if mod.type_name == "Input":
                arg: Any = given.get(mid)
                if arg is None and not mod.cfg.get("dims"):
                    res.error = "Input shape unknown: set its dims property (e.g. 1,28,28)"
                    continue
            elif mid in delayed or getattr(mod, "recurrent", False):
                arg = None
            elif not ins:
                res.error = "not connected to any input"
                continue
            elif len(ins) > 1 and not mod.join:  # as the executor refuses it
                res.error = f"has {len(ins)} inputs but is not a Join module"
                continue
            else:
                arg = ins if mod.join else ins[0]
            out = _batch_rule_shape(mod, arg) if _is_batch(mod, arg) else mod.output_shape(arg)
            res.out_shape = [tuple(o) for o in out] if mod.fork else tuple(out)
            largest = max((math.prod(o) for o in out), default=0) if mod.fork else math.prod(out)
            if largest > MAX_TENSOR_VALUES:  # it could never be allocated
                res.error = f"output of {largest} values is too large"
                res.out_shape = None
            if _is_batch(mod, arg):  # each of the batch's rows costs one sample's MACs
                res.macs = arg[0] * int(mod.macs(arg[1:]))
            else:
                res.macs = int(mod.macs(arg)) if arg is not None else 0
        except DianneError as exc:
            res.error = str(exc)
        except (ValueError, TypeError, IndexError, ZeroDivisionError) as exc:
            res.error = f"{mod.label}: cannot infer the output shape: {exc}"
    for mid, producers in delayed.items():  # the state fed back must fit the Memory
        res = results[mid]
        for p in producers:
            pres, pmod = results[p], modules.get(p)
            if res.ok and pres.ok and pmod is not None:
                out = pres.out_shape[succ[p].index(mid)] if pmod.fork else pres.out_shape
                if tuple(out) != tuple(res.out_shape):  # type: ignore[arg-type]
                    res.error = (f"{res.type} '{res.name}': state from '{pres.name}' has shape "
                                 f"{_shape_str(out)}, expected {_shape_str(res.out_shape)}")
    # Report in execution order (then whatever sits in a cycle), not in file order.
    ordered = {m: results[m] for m in done}
    ordered.update({m: r for m, r in results.items() if m not in ordered})
    return NetworkShapes(ordered)


# Modules whose forward reads an odd-rank input as one sample and an even-rank one as a batch
# whose first axis counts samples (DIANNE's rule, engine/modules/linear.py). The sample shape an
# Input declares may have either rank, so inference must read it the same way; otherwise it
# accepts a 3x4 sample for Linear(input=12), which forward refuses as 3 rows of 4.
BATCH_RULE = frozenset({"Linear"})


def _is_batch(mod: Module, arg: Any) -> bool:
    return (mod.type_name in BATCH_RULE and isinstance(arg, tuple) and len(arg) >= 2
            and len(arg) % 2 == 0)


def _batch_rule_shape(mod: Module, shape: Shape) -> Shape:
    """The output shape of ``shape`` read as a batch: ``shape[0]`` rows of ``shape[1:]``."""
    rows, row = shape[0], shape[1:]
    try:
        return (rows, *mod.output_shape(row))
    except DianneError:
        n_in = mod.cfg.get("input")
        raise mod.shape_fail(f"expects {n_in} input features; a {len(shape)}-D input is a "
                             f"batch of {rows} samples of {math.prod(row)} (odd rank = one "
                             f"sample, even rank = a batch)", shape) from None


def describe(shape: ModuleShape) -> str:
    """One line for a module: ``Linear 'fc1': 784 -> 20, 15700 params``."""
    if shape.error:
        return f"{shape.type} '{shape.name}': error: {shape.error}"
    ins = ", ".join(_shape_str(s) for s in shape.in_shapes) or "-"
    out = shape.out_shape
    outs = ", ".join(_shape_str(o) for o in out) if isinstance(out, list) else _shape_str(out)
    return f"{shape.type} '{shape.name}': {ins} -> {outs}, {shape.params} params, {shape.macs} MACs"


def param_bytes(shapes: NetworkShapes) -> int:
    return int(shapes.params * np.dtype(np.float32).itemsize)
