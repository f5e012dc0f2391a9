"""What a fragment runs for a set of Outputs (its *plan*), and the record of one sample.

:func:`build_plan` reads a :class:`agent.host.Fragment`'s graph once per set of requested
Outputs: which local modules run and in what order, where each takes its inputs from (a local
value or a tensor from another agent, with the fork slot), where it sends its output (successors
on other agents, Memories fed after the pass), how many gradients it waits for in backward, and
the backward order. A :class:`Run` is one sample's progress through a plan. Both are plain data:
running them is :mod:`agent.host` (forward) and :mod:`agent.backward`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent.graph import is_fork
from engine.modules import Module
from engine.topology import upstream

if TYPE_CHECKING:
    from agent.host import Fragment

MAX_IN_FLIGHT = 256  # samples kept per deployment before the oldest is dropped


@dataclass
class Step:
    mid: str
    module: Module
    sources: list[tuple[str, int, bool]]   # (producer, fork slot or -1, producer is local)
    remote: list[tuple[str, str, int]]     # (successor, its agent, my fork slot or -1)
    report: bool                           # an Output that was asked for
    n_grads: int = 0                       # gradients to wait for in backward
    to_pred: list[tuple[str, int, str | None]] = field(default_factory=list)  # (pred, slot, agent)
    emits: bool = False                    # a Memory: emits its state, needs no input
    # Memories fed my output after the pass: (memory, its agent or None when local, my slot)
    states: list[tuple[str, str | None, int]] = field(default_factory=list)
    keeps: bool = False                    # a recurrent composite: its forward updates a state


@dataclass
class Plan:
    outputs: tuple[str, ...]
    steps: list[Step]
    inputs: list[str]   # local Inputs of the plan (they report gradients)
    back: list[Step] = field(default_factory=list)   # backward order: the steps that get one
    memories: tuple[str, ...] = ()                   # local Memories that get a new state
    emits: bool = False                              # some local Memory emits its state


@dataclass
class Run:
    plan: Plan
    remaining: list[Step]
    values: dict[str, Any] = field(default_factory=dict)
    inbox: dict[tuple[str, str], Any] = field(default_factory=dict)
    fresh: list[str] = field(default_factory=list)
    awaiting: set[str] = field(default_factory=set)       # local Memories not updated yet
    updates: dict[str, Any] = field(default_factory=dict)  # Memory -> its new state


def build_plan(frag: Fragment, outputs: tuple[str, ...]) -> Plan:
    """The plan of ``frag`` (its local modules only) for a forward to ``outputs``."""
    needed = upstream(outputs, frag.pred, frag.delayed)
    live = upstream(outputs, frag.pred)  # what a gradient reaches (not the Memory updates)
    steps = []
    for m in frag.order:
        if m not in needed or m not in frag.modules:
            continue
        mod = frag.modules[m]
        sources, to_pred = [], []
        for p in frag.pred[m]:
            idx = frag.succ[p].index(m) if is_fork(frag.desc.modules[p].type) else -1
            local = frag.placement[p] == frag.me
            sources.append((p, idx, local))
            to_pred.append((p, idx, None if local else frag.placement[p]))
        remote, states = [], []
        for i, s in enumerate(frag.succ[m]):
            if s not in needed:
                continue
            agent, slot = frag.placement[s], i if mod.fork else -1
            if m in frag.delayed.get(s, ()):
                states.append((s, None if agent == frag.me else agent, slot))
            elif agent != frag.me:
                remote.append((s, agent, slot))
        n_grads = 1 if m in outputs else sum(1 for s in frag.succ[m]
                                             if s in live and m in frag.pred[s])
        steps.append(Step(m, mod, sources, remote, m in outputs, n_grads, to_pred,
                          bool(getattr(mod, "recurrent", False)), states,
                          bool(getattr(mod, "memories", None))))
    inputs = [s.mid for s in steps if s.module.type_name == "Input"]
    back = [s for s in reversed(steps) if s.mid in live]
    memories = tuple(s.mid for s in steps if s.emits and s.mid in frag.delayed)
    return Plan(outputs, steps, inputs, back, memories, any(s.emits for s in steps))
