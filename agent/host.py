"""One agent's share of a deployed network (a *fragment*), run one event at a time.

Every agent of a deployment receives the whole description and the placement (module UUID ->
agent id) but instantiates only its own modules. A sample is driven by arrivals: a feed from the
client for an Input, or a tensor sent by the agent that holds a predecessor. After each arrival
the fragment runs, in topological order, every local module whose inputs are all there (a join
waits for all its predecessors, DIANNE's WAIT_FOR_ALL) and sends each output straight to the
agent of every successor that lives elsewhere; Outputs report to the client. Samples are keyed by
their id, so several can be in flight at once and none is mixed with another. Values that must
outlive the current step are copied, because modules reuse their output buffers.

Recurrent ``Memory`` modules break their cycles as in the local executor (the edges into a Memory
are cut, :func:`engine.topology.cut_recurrent`): a Memory needs no input, it *emits* its stored
state as soon as a sample starts here (the client's ``forward`` starts it on every agent holding
a Memory the sample needs), and once its predecessor has run, that value is its new state: handed
over here, or sent as a ``state`` tensor from the predecessor's agent. The Memory's agent then
reports ``state`` to the client, which starts the next sample only after every update of this
one landed (samples of a deployment with Memory modules run one at a time), so the sequence is
the local one. The state of the local Memories (and recurrent composites) can be read and set
(:meth:`Fragment.states`, :meth:`Fragment.set_states`: what a move carries, see
:mod:`agent.state_carry`); each also keeps the state it held before its last update, so the
update of a sample lost in a failover can be undone.

Backward (in reverse over the plan of the last forward, stopping at a Memory) is
:class:`agent.backward.Backward`, mixed in; the plans and per-sample records are :mod:`agent.plan`;
the type-name graph helpers this shares with the client are :mod:`agent.graph`.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from agent.backward import Backward
from agent.graph import cut_memories
from agent.plan import MAX_IN_FLIGHT, Plan, Run, Step, build_plan
from agent.state_carry import memories_of, module_states, set_module_states
from engine.backends import Backend
from engine.description import NetworkDescription
from engine.errors import DianneError, FormatError, ModuleError
from engine.graph import build_module
from engine.modules import Module
from engine.topology import link, topological_order

log = logging.getLogger(__name__)

FINISHED_KEPT = 64   # finished recurrent samples remembered (a late start must not restart them)

# send(agent_id, kind, sample, src, dst, outputs, tensor or None); report(kind, sample, mid, t)
Send = Callable[[str, str, str, str, str, list[str] | None, Any], None]
Report = Callable[[str, str, str, Any], None]


class Fragment(Backward):
    """The modules of one deployment that live on this agent, and their sample state."""

    def __init__(self, deployment: str, desc: NetworkDescription, placement: dict[str, str],
                 me: str, backend: Backend, previous: Fragment | None = None) -> None:
        self.id, self.desc, self.placement, self.me = deployment, desc, placement, me
        self.backend = backend
        where = f"deployment {deployment} ({desc.name})"
        missing = [m for m in desc.modules if m not in placement]
        if missing:
            raise FormatError(f"{where}: the placement does not place module(s) "
                              f"{', '.join(missing[:5])}. Received: {len(placement)} entries")
        self.succ, self.pred, dangling = link(desc)
        if dangling:
            mid, side, ref = dangling[0]
            raise FormatError(f"{where}: module {mid}: {side} '{ref}' is not a module of this "
                              f"network")
        self.delayed = cut_memories(desc, self.pred)  # Memory -> its producer, fed after a pass
        for mid, producers in self.delayed.items():
            if len(producers) > 1:
                raise FormatError(f"{where}: Memory {mid} has several inputs. Received prev: "
                                  f"{producers}")
        self.order = topological_order(list(desc.modules), self.succ, self.pred)
        if len(self.order) != len(desc.modules):
            raise FormatError(f"{where}: the network has a cycle that no Memory module breaks")
        self.modules: dict[str, Module] = {}
        for mid in self.order:
            if placement[mid] != me:
                continue
            old = previous.modules.get(mid) if previous is not None else None
            mod = old if old is not None else build_module(desc.modules[mid], backend,
                                                           source=desc.name)
            mod.n_next = max(1, len(self.succ[mid]))
            mod.n_prev = max(1, len(self.pred[mid]))
            if len(self.pred[mid]) > 1 and not mod.join:
                raise FormatError(f"{where}: {mod.label} has {len(self.pred[mid])} inputs but "
                                  f"is not a Join module. Received prev: {self.pred[mid]}")
            self.modules[mid] = mod
        self._plans: dict[tuple[str, ...], Plan] = {}
        self._runs: OrderedDict[str, Run] = OrderedDict()
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._grads: OrderedDict[str, tuple[list[Step], dict[str, list]]] = OrderedDict()
        # module -> (sample, its state before that sample updated it): undoes a lost sample
        self._before: dict[str, tuple[str, list[Any]]] = {}
        self.last_outputs: tuple[str, ...] | None = None
        self.send: Send | None = None
        self.report: Report | None = None
        self.owner = b""          # routing id of the session that deployed it
        self.client = b""         # where results go (the sender of the current sample)
        self.token: str | None = None  # the deployment's secret (peers and client hold it)

    # ------------------------------------------------------------------ plans
    def outputs_of(self, requested: list[str] | None) -> tuple[str, ...]:
        all_outputs = tuple(m for m in self.order if self.desc.modules[m].type == "Output")
        if not requested:
            return all_outputs
        if not isinstance(requested, list) or not all(isinstance(o, str) for o in requested):
            raise DianneError(f"deployment {self.id}: 'outputs' is a list of Output ids or "
                              f"null. Received: {str(requested)[:60]}")
        bad = [o for o in requested if o not in all_outputs]
        if bad:
            raise DianneError(f"deployment {self.id}: {bad[0]} is not an Output of "
                              f"{self.desc.name}. Received: {bad[0]}")
        return tuple(requested)

    def plan(self, outputs: tuple[str, ...]) -> Plan:
        plan = self._plans.get(outputs)
        if plan is None:
            plan = self._plans[outputs] = build_plan(self, outputs)
        return plan

    # ------------------------------------------------------------------ forward
    def _run(self, sample: str, outputs: tuple[str, ...]) -> Run:
        run = self._runs.get(sample)
        if run is None:
            plan = self.plan(outputs)
            run = Run(plan, list(plan.steps), awaiting=set(plan.memories))
            self._runs[sample] = run
            if len(self._runs) > MAX_IN_FLIGHT:
                dropped, _ = self._runs.popitem(last=False)
                log.warning("deployment %s: dropped sample %s (over %d in flight)", self.id,
                            dropped, MAX_IN_FLIGHT)
        return run

    def start(self, sample: str, outputs: tuple[str, ...]) -> None:
        """The client starts ``sample`` here: the local Memories it needs emit their state
        (nothing to do on an agent without one)."""
        if sample in self._finished or not self.plan(outputs).emits:
            return  # a start that arrived after the sample was done here is late, not new
        self._advance(sample, self._run(sample, outputs))

    def feed(self, sample: str, outputs: tuple[str, ...], src: str | None, dst: str,
             tensor: Any, state: bool = False) -> None:
        """A tensor for local module ``dst`` from ``src`` (None: the client feeds an Input);
        ``state``: the new state of Memory ``dst``, computed by ``src`` in this sample."""
        self.local_module(dst)
        if sample in self._finished:
            raise DianneError(f"deployment {self.id}: sample {sample} is done on this agent. "
                              f"Received: a tensor {src}->{dst}")
        run = self._run(sample, outputs)
        if state:
            if dst not in run.awaiting or dst in run.updates:
                raise DianneError(f"deployment {self.id}: {self.modules[dst].label} expects no "
                                  f"new state in sample {sample}. Received: a state from {src}")
            run.updates[dst] = tensor
        else:
            run.inbox[(src or "", dst)] = tensor
        self._advance(sample, run)

    def _advance(self, sample: str, run: Run) -> None:
        try:
            self._drain(sample, run)
        except BaseException:
            self._runs.pop(sample, None)
            raise
        if not run.remaining and not run.awaiting:
            self._runs.pop(sample, None)
            if run.plan.emits:
                self._finished[sample] = None
                if len(self._finished) > FINISHED_KEPT:
                    self._finished.popitem(last=False)
        else:  # modules reuse output buffers: keep private copies of what must wait
            for mid in run.fresh:
                val = run.values[mid]
                run.values[mid] = [v.copy() for v in val] if isinstance(val, list) else val.copy()
        run.fresh.clear()

    def _arg(self, run: Run, step: Step) -> Any:
        if step.module.type_name == "Input":
            return run.inbox.get(("", step.mid))
        args = []
        for p, idx, local in step.sources:
            if local:
                if p not in run.values:
                    return None
                val = run.values[p]
                args.append(val if idx < 0 else val[idx])
            else:
                val = run.inbox.get((p, step.mid))
                if val is None:
                    return None
                args.append(val)
        return args if step.module.join else args[0]

    def _drain(self, sample: str, run: Run) -> None:
        left = []
        host = self.backend.to_host
        for step in run.remaining:
            if step.emits:  # a Memory: the state of the previous sample, no input
                out = self._call(step.module, "emit", None)
            else:
                arg = self._arg(run, step)
                if arg is None:
                    left.append(step)
                    continue
                if step.module.type_name == "Input":
                    arg = self.backend.asarray(arg, step.module.dtype)
                elif step.keeps:
                    self._before[step.mid] = (sample, module_states(step.module))
                out = self._call(step.module, "forward", arg)
            run.values[step.mid] = out
            run.fresh.append(step.mid)
            for succ, agent, idx in step.remote:
                self.send(agent, "forward", sample, step.mid, succ, list(run.plan.outputs),
                          host(out[idx] if idx >= 0 else out))
            for memory, agent, idx in step.states:
                value = out[idx] if idx >= 0 else out
                if agent is None:
                    run.updates[memory] = value
                else:
                    self.send(agent, "state", sample, step.mid, memory,
                              list(run.plan.outputs), host(value))
            if step.report:
                self.report("forward", sample, step.mid, host(out))
        run.remaining = left
        self.last_outputs = run.plan.outputs
        # A Memory takes its new state only once it has emitted the old one for this sample
        # (it emits in the sample's first step here, so in practice at once).
        for memory in [m for m in run.updates if m in run.values]:
            mod = self.modules[memory]
            self._before[memory] = (sample, [mod.state])  # forward stores a new array
            self._call(mod, "forward", self.backend.asarray(run.updates.pop(memory), mod.dtype))
            run.awaiting.discard(memory)
            self.report("state", sample, memory, None)

    def _call(self, mod: Module, what: str, arg: Any) -> Any:
        try:
            return getattr(mod, what)(arg)
        except DianneError as exc:
            text = str(exc)
            raise ModuleError(text if mod.id in text else f"{mod.label}: {text}") from None
        except Exception as exc:  # name the module, keep serving
            raise ModuleError(f"{mod.label}: {what} failed: {exc}") from exc

    # ------------------------------------------------------------------ parameters
    def local_module(self, mid: str) -> Module:
        mod = self.modules.get(mid)
        if mod is None:
            raise DianneError(f"deployment {self.id}: module {mid} is not on this agent. "
                              f"Received: {mid}")
        return mod

    def parameters(self, which: list[str] | None = None, grads: bool = False
                   ) -> dict[str, np.ndarray]:
        mods = [self.local_module(m) for m in which] if which else list(self.modules.values())
        out = {}
        for mod in mods:
            if mod.parameter_size() == 0:
                continue
            if grads:
                parts = [np.asarray(self.backend.to_host(mod.grads.get(k, p * 0)),
                                    dtype=np.float32).ravel() for k, p in mod.params.items()]
                out[mod.id] = np.concatenate(parts)
            else:
                out[mod.id] = mod.get_flat()
        return out

    def zero_grad(self) -> None:
        for mod in self.modules.values():
            mod.zero_grad()

    def reset_state(self) -> list[str]:
        """Start a new sequence: every local Memory (or recurrent composite) back to zeros."""
        reset = [m for m, mod in self.modules.items() if hasattr(mod, "reset_state")]
        for mid in reset:
            self.modules[mid].reset_state()
        self._before.clear()
        return reset

    def states(self, which: list[str] | None = None, before: list[str] | tuple = ()
               ) -> dict[str, list[np.ndarray | None]]:
        """The state tensors (on the host) of each local module of ``which`` (all when None)
        that holds state (:mod:`agent.state_carry`); for a module last updated by a sample of
        ``before``, the state it held before that update."""
        mids = list(self.modules) if which is None else which
        out: dict[str, list[np.ndarray | None]] = {}
        for mid in mids:
            mod = self.local_module(mid)
            if not memories_of(mod):
                continue
            kept = self._before.get(mid)
            values = kept[1] if kept is not None and kept[0] in before else module_states(mod)
            out[mid] = [None if v is None else np.asarray(self.backend.to_host(v), np.float32)
                        for v in values]
        return out

    def set_states(self, states: dict[str, list[Any]]) -> None:
        """Give local modules these state tensors (None: zeros), as ``states`` returned them."""
        for mid, values in states.items():
            set_module_states(self.local_module(mid), values)
            self._before.pop(mid, None)

    def train(self, mode: bool) -> None:
        for mod in self.modules.values():
            mod.train(mode)

