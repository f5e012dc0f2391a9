"""Execution plans of the graph executor: the steps, and the program that runs them.

A plan is the list of :class:`Step` (one per module a set of Outputs needs, in topological
order) that backward walks. :class:`Program` is what forward runs for that plan:

* **Fused activations.** A module that owns its output buffer and does not read it in backward
  (``owns_output``: Linear, Convolution, single-output MaxPooling) and whose only successor is
  an activation with ``forward_inplace`` runs as one call: the activation overwrites the
  producer's buffer (its whole backing buffer when element-wise) instead of allocating its own.
  ``Conv -> ReLU -> MaxPooling`` runs the ReLU *after* the pooling, on 1/k^2 of the values
  (``commutes_with_max``); the ReLU keeps the pre-pooling input as its backward mask, and the
  pooling's argmax over the unrectified values routes exactly the same gradients.
* **Producer-bound fusion.** A producer that can bind the fused pair (``fuse``: Linear with
  an activation that has ``bind_inplace``) or the fused triple (``fuse_pool``: a Convolution
  with its ReLU and MaxPooling) returns a call that runs one zero-argument runner with every
  operand bound while the same input array comes back, and the general call otherwise.
* **Pass-through Outputs** are not called: their value is their input.
* **Chains** (every step takes the previous step's single output: MLPs, LeNet, OverFeat) run as
  a loop over callables with no dictionary work; other graphs run the general loop over
  :class:`Op` with values in a dict. Once a chain pass binds nothing new, its ops' runners are
  called directly (``hot_runners``) while no binding changes anywhere (``Slot.generation``).

Every module still runs its own ``forward`` and keeps its own backward state: the program only
decides which calls run back to back and which buffers they share.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import DianneError
from engine.modules import Module

# How a step gets its argument (precomputed so the hot loop does no graph work).
FEED, WHOLE, PICK, JOIN, STATE = 0, 1, 2, 3, 4


@dataclass
class Step:
    """One module call in a plan: where its inputs come from."""

    module: Module
    # For each input: (producer id, index into the producer's output list or -1 for "whole").
    sources: list[tuple[str, int]]
    is_input: bool

    def __post_init__(self) -> None:
        if self.is_input:
            self.kind = FEED
        elif getattr(self.module, "recurrent", False):
            self.kind = STATE
        elif self.module.join:
            self.kind = JOIN
        else:
            self.kind = WHOLE if self.sources[0][1] < 0 else PICK
        self.src, self.idx = self.sources[0] if self.sources else (self.module.id, -1)
        self.mid = self.module.id
        self.call = self.module.emit if self.kind == STATE else self.module.forward


@dataclass
class Op:
    """One call of a program: a step, possibly with fused successors (``mids`` get its value)."""

    step: Step
    call: Callable[[Any], Any]
    mids: tuple[str, ...]

    @property
    def label(self) -> str:
        return self.step.module.label


def _fused_call(producer: Module, act: Module, pick: bool) -> Callable[[Any], Any]:
    call = _generic_fused_call(producer, act, pick)
    fuse = getattr(producer, "fuse", None)  # a producer that binds the pair itself (Linear)
    return (fuse(act, call) if fuse is not None and not pick else None) or call


def _generic_fused_call(producer: Module, act: Module, pick: bool) -> Callable[[Any], Any]:
    forward, inplace = producer.forward, act.forward_inplace  # type: ignore[attr-defined]
    full = getattr(producer, "output_buffer", None) if getattr(act, "elementwise", False) else None
    if pick:  # a fork with one successor: its output list holds one array
        def call(x: Any) -> Any:
            return inplace(forward(x)[0], None)
    elif full is not None:
        def call(x: Any) -> Any:
            return inplace(forward(x), full())
    else:
        def call(x: Any) -> Any:
            return inplace(forward(x), None)
    return call


def _relu_after_pool(producer: Module, relu: Module, pool: Module) -> Callable[[Any], Any]:
    call = _generic_relu_after_pool(producer, relu, pool)
    fuse = getattr(producer, "fuse_pool", None)  # a producer that binds the three (Convolution)
    return (fuse(relu, pool, call) if fuse is not None else None) or call


def _generic_relu_after_pool(producer: Module, relu: Module, pool: Module
                             ) -> Callable[[Any], Any]:
    forward, record, pooled, apply = (producer.forward, relu.record,  # type: ignore[attr-defined]
                                      pool.forward, relu.apply)  # type: ignore[attr-defined]

    def call(x: Any) -> Any:
        y = forward(x)
        record(y)
        out = pooled(y)
        apply(out[0])
        return out

    return call


def _pick(call: Callable[[Any], Any], index: int) -> Callable[[Any], Any]:
    return lambda x: call(x)[index]


class Program:
    """The forward program of one plan (see the module docstring)."""

    def __init__(self, plan: list[Step], succ: Mapping[str, list[str]],
                 wanted: tuple[str, ...], has_updates: bool) -> None:
        by_id = {s.mid: s for s in plan}
        self.alias: dict[str, tuple[str, int]] = {}  # pass-through Output -> its source
        self.ops: list[Op] = []
        skip: set[str] = set()

        def only_successor(mid: str) -> Step | None:
            nxt = succ.get(mid, [])
            return by_id.get(nxt[0]) if len(nxt) == 1 else None

        for step in plan:
            if step.mid in skip:
                continue
            if step.module.type_name == "Output" and step.kind in (WHOLE, PICK):
                self.alias[step.mid] = (step.src, step.idx)
                continue
            self.ops.append(_fuse(step, only_successor, skip))
        self.args = [[self._resolve(p, i) for p, i in op.step.sources] for op in self.ops]
        self.chain = self._as_chain(wanted, has_updates)
        self.failed: Op | None = None

    def _resolve(self, mid: str, idx: int) -> tuple[str, int]:
        while mid in self.alias and idx < 0:
            mid, idx = self.alias[mid]
        return mid, idx

    def _as_chain(self, wanted: tuple[str, ...], has_updates: bool
                  ) -> list[Callable[[Any], Any]] | None:
        """The calls in order when every op takes the previous op's single output and the one
        wanted Output reads the last op (each call then returns what the next one takes)."""
        ops = self.ops
        if has_updates or len(wanted) != 1 or not ops or ops[0].step.kind != FEED:
            return None
        if any(op.step.kind == FEED for op in ops[1:]):
            return None
        reads = [*(args for args in self.args[1:]), [self._resolve(wanted[0], -1)]]
        calls, picks = [], []
        for op, nxt in zip(ops, reads, strict=True):
            if len(nxt) != 1 or nxt[0][0] != op.mids[-1]:
                return None
            index = nxt[0][1]
            calls.append(op.call if index < 0 else _pick(op.call, index))
            picks.append(index)
        self.picks = picks
        return calls

    def hot_runners(self, values: list[Any]) -> list[Callable[[], Any]] | None:
        """The chain's calls after the first as zero-argument runners, when a pass that bound
        nothing new (``Slot.generation`` unchanged) fed op ``i`` the array ``values[i]`` and
        every op after the first ran the runner its module keeps for that array (``bound_or``);
        else None. While no slot changes and the first op returns the same array, running
        these in order is that pass without the per-op identity checks."""
        runners = []
        for op, value, index in zip(self.ops[1:], values[1:], self.picks[1:], strict=True):
            slot = getattr(op.call, "slot", None)
            run = slot.data[-1] if slot is not None and slot.data is not None else None
            if run is None or slot.x is not value:
                return None
            runners.append(run if index < 0 else (lambda run=run, i=index: run()[i]))
        return runners

    def run_chain(self, x: Any) -> Any:
        i = 0
        try:
            for i, call in enumerate(self.chain):  # type: ignore[arg-type]  # noqa: B007
                x = call(x)
        except Exception:
            self.failed = self.ops[i]
            raise
        return x

    def run(self, feeds: Mapping[str, Any], values: dict[str, Any]) -> None:
        """The general loop: every op's value lands in ``values`` under its module ids."""
        op = None
        try:
            for op, args in zip(self.ops, self.args, strict=True):
                step = op.step
                kind = step.kind
                if kind == FEED:
                    arg = feeds.get(step.mid)
                    if arg is None:
                        raise DianneError(f"no value given for {step.module.label}")
                elif kind == STATE:
                    arg = None
                elif kind == JOIN:
                    arg = [values[p] if i < 0 else values[p][i] for p, i in args]
                else:
                    p, i = args[0]
                    arg = values[p] if i < 0 else values[p][i]
                res = op.call(arg)
                for m in op.mids:
                    values[m] = res
        except Exception:
            self.failed = op
            raise

    def value_of(self, mid: str, values: Mapping[str, Any]) -> Any:
        """The value of module ``mid`` after :meth:`run` (a pass-through Output: its source's)."""
        mid, idx = self._resolve(mid, -1)
        v = values[mid]
        return v if idx < 0 else v[idx]


def _fuse(step: Step, only_successor: Callable[[str], Step | None], skip: set[str]) -> Op:
    """The op of ``step``, with its activation (and a following MaxPooling) fused in."""
    mod = step.module
    act = only_successor(step.mid) if getattr(mod, "owns_output", False) else None
    if (act is None or act.kind not in (WHOLE, PICK)
            or not hasattr(act.module, "forward_inplace")):
        return Op(step, step.call, (step.mid,))
    pick = act.kind == PICK
    pool = only_successor(act.mid)
    if (getattr(act.module, "commutes_with_max", False) and pool is not None and not pick
            and pool.kind == WHOLE and pool.module.type_name == "MaxPooling"
            and pool.module.n_next <= 1):
        skip.update((act.mid, pool.mid))
        return Op(step, _relu_after_pool(mod, act.module, pool.module), (pool.mid,))
    skip.add(act.mid)
    return Op(step, _fused_call(mod, act.module, pick), (act.mid,))
