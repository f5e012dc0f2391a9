"""The graph executor: runs a DIANNE module graph one sample (or a small batch) at a time.

A :class:`Network` instantiates every module of a :class:`NetworkDescription` from the
registry, orders them topologically and runs them synchronously: forks and joins follow the
order of the ``next``/``prev`` arrays, several Inputs and Outputs are allowed, and backward can
start from any subset of Outputs. An execution plan is computed once per set of requested
outputs (only the modules those outputs need are run) and cached, so the hot path is a flat
loop with no graph work. Duplicated entries in ``next``/``prev`` (builder artefacts seen in
real files) collapse to one edge, as they did in the original where a join keeps one input per
predecessor UUID. Edges into a recurrent module (``Memory``) are delayed by one pass: the Memory
emits its stored state as a source of the pass, and receives its predecessor's value once the
pass is done, which breaks the cycles of GRU/LSTM graphs (:func:`cut_recurrent`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from engine.backends import Backend, get_backend
from engine.description import ModuleDescription, NetworkDescription
from engine.errors import DianneError, FormatError, ModuleError
from engine.modules import Module, module_class
from engine.modules.buffers import Slot
from engine.plan import STATE, Program, Step
from engine.topology import cut_recurrent, link, topological_order, upstream

# Extra memory eval() lets modules keep for derived weights, as a fraction of the parameters.
FREEZE_BUDGET = 0.15
FREEZE_MIN_BYTES = 1 << 20  # small networks may always keep this much

# Properties that are informational (or handled here) and never passed to a module's constructor.
_NOT_CONSTRUCTOR = ("name", "category", "trainable")


def build_module(md: ModuleDescription, backend: Backend | None = None,
                 dtype: Any = np.float32, source: str | None = None) -> Module:
    """Instantiate one module from its description; errors name the file and the module."""
    try:
        cls = module_class(md.type)
        props = {k: v for k, v in md.properties.items() if k not in _NOT_CONSTRUCTOR}
        xp = backend.xp if backend is not None else np
        return cls(id=md.id, name=md.properties.get("name") or md.type, xp=xp, dtype=dtype,
                   **props)
    except (ModuleError, MemoryError) as exc:
        where = f"{source}: " if source else ""
        text = str(exc) if isinstance(exc, ModuleError) else f"not enough memory to build: {exc}"
        if md.id not in text:
            text = f"module {md.type} ({md.id}): {text}"
        raise FormatError(f"{where}{text}") from None


class Network:
    """A runnable network: modules + topology + cached execution plans."""

    def __init__(self, description: NetworkDescription, backend: Backend | str | None = None,
                 dtype: Any = np.float32, seed: int | None = 0) -> None:
        self.description = description
        self.backend = backend if isinstance(backend, Backend) else get_backend(backend)
        self.xp = self.backend.xp
        self.dtype = np.dtype(dtype)
        src = description.source
        self.modules: dict[str, Module] = {}
        for md in description.modules.values():
            self.modules[md.id] = build_module(md, self.backend, self.dtype, src)
        self._link(description)
        self.order = self._toposort()
        self.inputs = [m for m in self.order if self.modules[m].type_name == "Input"]
        self.outputs = [m for m in self.order if self.modules[m].type_name == "Output"]
        if not self.inputs:
            raise FormatError(f"{src or description.name}: the network has no Input module")
        self._plans: dict[tuple[str, ...], list[Step]] = {}
        self._programs: dict[tuple[str, ...], Program] = {}
        self._default: tuple[list[Step], Program, list[Any]] | None = None
        self._hot: tuple[int, Any, list[Any]] | None = None  # see Program.hot_runners
        # Per plan: (Memory, producer id, producer output index) fed once the pass is done.
        self._updates: dict[tuple[str, ...], list[tuple[Module, str, int]]] = {}
        self._last_plan: list[Step] | None = None
        self._values: dict[str, Any] = {}
        self._array_type = type(self.xp.zeros(0))
        self.input_grads: dict[str, Any] = {}
        self.reset(seed)

    # ------------------------------------------------------------------ topology
    def _link(self, desc: NetworkDescription) -> None:
        """Successor/predecessor lists (see :func:`link`); dangling ids are errors here."""
        src = desc.source or desc.name
        self.succ, self.pred, dangling = link(desc)
        self.delayed = cut_recurrent(self.modules, self.pred)
        if dangling:
            mid, side, missing = dangling[0]
            md = desc.modules[mid]
            raise FormatError(f"{src}: module {md.type} ({md.id}): {side} '{missing}' is not a "
                              f"module of this network")
        for mid, mod in self.modules.items():
            mod.n_next = max(1, len(self.succ[mid]))
            mod.n_prev = max(1, len(self.pred[mid]))
            if len(self.pred[mid]) > 1 and not mod.join:
                raise FormatError(
                    f"{src}: {mod.label} has {len(self.pred[mid])} inputs but is not a Join "
                    f"module (Concat, Accumulate, Average, Multiply, ...). Received prev: "
                    f"{self.pred[mid]}")
            if len(self.delayed.get(mid, ())) > 1:
                raise FormatError(f"{src}: {mod.label} is a Memory with several inputs "
                                  f"{self.delayed[mid]}")
            if mod.type_name == "Input" and self.pred[mid]:
                raise FormatError(f"{src}: {mod.label} is an Input but has prev "
                                  f"{self.pred[mid]}")

    def _toposort(self) -> list[str]:
        order = topological_order(list(self.modules), self.succ, self.pred)
        if len(order) != len(self.modules):
            stuck = [self.modules[m].label for m in self.modules if m not in order]
            raise FormatError(f"{self.description.source or self.description.name}: the "
                              f"network has a cycle through {', '.join(stuck)}")
        return order

    def _plan(self, outputs: tuple[str, ...]) -> list[Step]:
        plan = self._plans.get(outputs)
        if plan is not None:
            return plan
        needed = upstream(outputs, self.pred, self.delayed)
        plan = []
        for m in self.order:
            if m not in needed:
                continue
            mod = self.modules[m]
            sources = []
            for p in self.pred[m]:
                producer = self.modules[p]
                idx = self.succ[p].index(m) if producer.fork else -1
                sources.append((p, idx))
            plan.append(Step(mod, sources, mod.type_name == "Input"))
        self._updates[outputs] = [
            (self.modules[m], p, self.succ[p].index(m) if self.modules[p].fork else -1)
            for m in self.order if m in needed for p in self.delayed.get(m, ())]
        self._plans[outputs] = plan
        self._programs[outputs] = Program(plan, self.succ, outputs,
                                          bool(self._updates[outputs]))
        return plan

    # ------------------------------------------------------------------ lookup helpers
    def module(self, key: str) -> Module:
        """A module by UUID or by its (unique) name."""
        if key in self.modules:
            return self.modules[key]
        hits = [m for m in self.modules.values() if m.name == key]
        if len(hits) == 1:
            return hits[0]
        names = ", ".join(f"{m.name} ({m.id})" for m in self.modules.values()
                          if m.type_name in ("Input", "Output")) or "none"
        what = "is ambiguous" if hits else "is not a module of this network"
        raise DianneError(f"'{key}' {what} (inputs/outputs: {names}). Received: {key!r}")

    def _resolve(self, key: str, kind: str) -> str:
        mod = self.module(key)
        if mod.type_name != kind:
            raise DianneError(f"{mod.label} is not an {kind}. Received: {key!r}")
        return mod.id

    # ------------------------------------------------------------------ execution
    def forward(self, x: Any, outputs: Sequence[str] | str | None = None) -> Any:
        """Run one forward pass.

        ``x`` is one array for a single-Input network, else a mapping Input id/name -> array
        or a sequence in Input order. Returns one array when one Output is asked for (or the
        network has one), else a dict Output id -> array. Returned arrays are fresh copies:
        modules reuse their buffers from pass to pass (see :mod:`engine.plan`).
        """
        default = self._default
        if outputs is None and default is not None and type(x) is self._array_type:
            # The hot path: one Input, one Output, a chain (MLP, LeNet, OverFeat...).
            plan, prog, chain = default
            dt = x.dtype
            v = x if dt is self.dtype or dt == self.dtype else self.xp.asarray(x, self.dtype)
            self._last_plan = plan
            hot, fed, i = self._hot, [v], 0  # fed[i]: what op i is given
            try:
                if hot is not None and hot[0] == Slot.generation:
                    v = chain[0](v)  # the Input (it binds nothing)
                    if v is hot[1]:  # its same buffer: every binding holds
                        for i, run in enumerate(hot[2], 1):  # noqa: B007
                            v = run()
                        return v.copy()
                    fed.append(v)
                generation = Slot.generation
                for i in range(len(fed) - 1, len(chain)):
                    v = chain[i](v)
                    fed.append(v)
                if Slot.generation == generation and len(chain) > 1:  # steady: nothing bound
                    runners = prog.hot_runners(fed[:-1])
                    self._hot = None if runners is None else (generation, fed[1], runners)
            except Exception as exc:
                prog.failed = prog.ops[i]
                self._raise_forward_error(exc, prog)
            return v.copy()
        single = isinstance(outputs, str) or (outputs is None and len(self.outputs) == 1)
        if outputs is None:
            wanted = tuple(self.outputs)
        elif isinstance(outputs, str):
            wanted = (self._resolve(outputs, "Output"),)
        else:
            wanted = tuple(self._resolve(o, "Output") for o in outputs)
        if not wanted:
            raise DianneError(f"{self.description.name}: the network has no Output module")
        feeds = self._feeds(x)
        plan = self._plan(wanted)
        prog = self._programs[wanted]
        values = self._values
        values.clear()
        try:
            prog.run(feeds, values)
            for memory, p, i in self._updates[wanted]:
                prog.failed = None
                v = prog.value_of(p, values)
                memory.forward(v if i < 0 else v[i])
        except Exception as exc:
            self._raise_forward_error(exc, prog)
        self._last_plan = plan
        if (outputs is None and prog.chain is not None and len(self.inputs) == 1
                and self._default is None):
            self._default = (plan, prog, prog.chain)  # later one-array calls: the hot path
        if single:
            return prog.value_of(wanted[0], values).copy()
        return {o: prog.value_of(o, values).copy() for o in wanted}

    def _raise_forward_error(self, exc: Exception, prog: Program) -> None:
        """Rethrow naming the file and the module (torch7 Container)."""
        where = f"{self.description.source}: " if self.description.source else ""
        if isinstance(exc, DianneError):
            raise type(exc)(where + str(exc)) from None
        op = prog.failed
        label = op.label if op is not None else self.description.name
        raise ModuleError(f"{where}{label}: forward failed: {exc}") from exc

    def _feeds(self, x: Any) -> dict[str, Any]:
        xp, dtype = self.xp, self.dtype
        if isinstance(x, Mapping):
            return {self._resolve(k, "Input"): xp.asarray(v, dtype=dtype) for k, v in x.items()}
        if isinstance(x, list | tuple):
            if len(x) != len(self.inputs):
                raise DianneError(f"{self.description.name} has {len(self.inputs)} inputs. "
                                  f"Received: {len(x)} arrays")
            return {i: xp.asarray(v, dtype=dtype) for i, v in zip(self.inputs, x, strict=True)}
        if len(self.inputs) != 1:
            raise DianneError(f"{self.description.name} has {len(self.inputs)} inputs; pass a "
                              f"dict Input id -> array. Received: one array")
        arr = x if (isinstance(x, self.xp.ndarray) and x.dtype == dtype) else xp.asarray(x, dtype)
        return {self.inputs[0]: arr}

    def backward(self, grad_outputs: Any, *, input_grads: bool = True) -> dict[str, Any]:
        """Back-propagate from the Outputs of the last forward; returns Input id -> gradient.

        ``grad_outputs`` is one array (single Output) or a mapping Output id/name -> array;
        Outputs not mentioned contribute no gradient. Parameter gradients are *added* to
        every module's ``grads`` (call :meth:`zero_grad` between steps). ``input_grads=False``
        (training) lets modules that read an Input skip their input gradient; the result is
        then empty for those Inputs.
        """
        if not input_grads:
            skipped = self._input_readers()
            for mod in skipped:
                mod.grad_input_needed = False
            try:
                return self.backward(grad_outputs)
            finally:
                for mod in skipped:
                    mod.grad_input_needed = True
        plan = self._last_plan
        if plan is None:
            raise DianneError("backward called before forward")
        xp = self.xp
        if isinstance(grad_outputs, Mapping):
            given = {self._resolve(k, "Output"): v for k, v in grad_outputs.items()}
        else:
            outs = [s.module.id for s in plan if s.module.type_name == "Output"]
            if len(outs) != 1:
                raise DianneError("several Outputs ran; pass a dict Output id -> gradient")
            given = {outs[0]: grad_outputs}
        # grads_to[m] collects gradients w.r.t. m's output(s): a list per successor slot.
        grads_to: dict[str, list[tuple[int, Any]]] = {}
        for oid, g in given.items():
            grads_to.setdefault(oid, []).append((-1, xp.asarray(g, dtype=self.dtype)))
        self.input_grads = {}
        for step in reversed(plan):
            mod = step.module
            incoming = grads_to.get(mod.id)
            if not incoming:
                continue
            if mod.fork:
                slots: list[Any] = [None] * mod.n_next
                for idx, g in incoming:
                    slot = max(idx, 0)
                    slots[slot] = g if slots[slot] is None else slots[slot] + g
                grad_out: Any = slots
            else:
                grad_out = incoming[0][1]
                for _, g in incoming[1:]:
                    grad_out = grad_out + g
            try:
                grad_in = mod.backward(grad_out)
            except DianneError:
                raise
            except Exception as exc:
                raise ModuleError(f"{mod.label}: backward failed: {exc}") from exc
            if step.is_input:
                self.input_grads[mod.id] = grad_in
                continue
            if step.kind == STATE:  # the Memory keeps it (grad_state) for BPTT
                continue
            grad_list = grad_in if mod.join else [grad_in]
            for (p, idx), g in zip(step.sources, grad_list, strict=True):
                if g is not None:
                    grads_to.setdefault(p, []).append((idx, g))
        return self.input_grads

    def _input_readers(self) -> list[Any]:
        """Modules all of whose predecessors are Input modules."""
        readers = []
        for mid, preds in self.pred.items():
            mod = self.modules[mid]
            if preds and mod.type_name != "Input" and all(
                    self.modules[p].type_name == "Input" for p in preds):
                readers.append(mod)
        return readers

    # ------------------------------------------------------------------ parameters
    def reset(self, seed: int | np.random.Generator | None = 0) -> None:
        """Re-initialise every module's parameters from one seeded generator (file order)."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        for mod in self.modules.values():
            mod.reset(rng)

    def zero_grad(self) -> None:
        for mod in self.modules.values():
            mod.zero_grad()

    def reset_state(self) -> None:
        """Start a new sequence: every Memory (and recurrent composite) back to zero state."""
        for mod in self.modules.values():
            if hasattr(mod, "reset_state"):
                mod.reset_state()

    def train(self, mode: bool = True) -> Network:
        for mod in self.modules.values():
            mod.train(mode)
        return self

    def eval(self) -> Network:
        """Inference mode: ``train(False)``, and modules that can keep forms derived from their
        weights do so (``freeze``: see ``engine.modules.freezing``), their weight
        arrays read-only until ``train()``, ``set_weights`` or ``reset``. What they keep is
        bounded by ``FREEZE_BUDGET`` times the parameters' size (at least ``FREEZE_MIN_BYTES``),
        largest modules first."""
        self.train(False)
        budget = max(FREEZE_BUDGET * sum(p.nbytes for m in self.modules.values()
                                         for p in m.params.values()), FREEZE_MIN_BYTES)
        costs = [(m.freeze_bytes(), m) for m in self.modules.values() if hasattr(m, "freeze")]
        for cost, mod in sorted(costs, key=lambda c: -c[0]):
            if 0 < cost <= budget:
                budget -= cost
                mod.freeze()
        return self

    def parameter_sizes(self) -> dict[str, int]:
        """Module id -> length of its weight-file vector, for modules that have parameters."""
        return {m: mod.parameter_size() for m, mod in self.modules.items()
                if mod.parameter_size() > 0}

    def parameter_count(self) -> int:
        return sum(self.parameter_sizes().values())

    def get_weights(self) -> dict[str, np.ndarray]:
        """Module id -> flat float32 host vector, in the DIANNE weight-file layout."""
        return {m: self.modules[m].get_flat() for m in self.parameter_sizes()}

    def set_weights(self, weights: Mapping[str, Any], source: str | None = None) -> list[str]:
        """Load flat vectors by module id; returns the ids loaded. Unknown ids are an error."""
        loaded = []
        for mid, flat in weights.items():
            if mid not in self.modules:
                raise FormatError(f"{source or 'weights'}: {mid} is not a module of "
                                  f"{self.description.name}")
            mod = self.modules[mid]
            try:
                mod.set_flat(flat)
            except ModuleError as exc:
                where = f"{source}: " if source else ""
                raise FormatError(f"{where}{exc}") from None
            loaded.append(mid)
        return loaded

    def labels(self, output: str | None = None) -> list[str]:
        """The class labels of an Output (the only one when ``output`` is None)."""
        oid = self._resolve(output, "Output") if output else self.single_output()
        return list(self.modules[oid].labels)  # type: ignore[attr-defined]

    def single_output(self) -> str:
        if len(self.outputs) != 1:
            listing = ", ".join(self.modules[o].label for o in self.outputs) or "none"
            raise DianneError(f"{self.description.source or self.description.name} has "
                              f"{len(self.outputs)} Output "
                              f"modules; choose one with --output (outputs: {listing})")
        return self.outputs[0]
