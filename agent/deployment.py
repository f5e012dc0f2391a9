"""A network deployed across agents, seen from the client: :class:`Deployment`.

Made by :func:`agent.client.deploy` (re-exported there; placements are resolved by
:mod:`agent.resolve`). It mirrors :class:`engine.graph.Network` (forward, backward, weights) and
adds placement changes (:meth:`Deployment.place`, :meth:`Deployment.move`) and, from
:class:`agent.failover.Failover` (mixed in), failover to fallback agents, ``disconnect`` and
``rejoin``.

A forward waits only on the agents that hold a module its Outputs need (an agent that is gone
fails only the forwards that need it) and, given a ``timeout``, at most that long (an
``AgentError`` with code ``"timeout"``; a late result is dropped). With a fallback set, the
samples in flight when an agent is replaced are sent again, in order.

Recurrent networks: the edges into ``Memory`` modules are cut as in the local executor (a Memory
emits its state at the start of a sample and takes its predecessor's value after it, see
:mod:`agent.host`). A forward also starts the sample on every agent holding a Memory it needs,
and is done only when its Outputs arrived *and* every such Memory reported its new state; the
samples of such a forward run one at a time (``forward_many`` forces ``window`` to 1), so sample
n+1 never sees a Memory before sample n updated it. :meth:`Deployment.reset_state` starts a new
sequence. A Memory keeps its state through ``place``/``move`` (it travels with a moved Memory)
and through a failover that spares its agent; one that dies with its agent restarts from zeros on
the fallback, listed in the failover record's ``state_reset``.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from agent import protocol as P
from agent.discovery import AgentInfo
from agent.failover import Failover
from agent.graph import cut_memories, holds_state, is_recurrent
from agent.session import AgentError, Conn, Session
from agent.state_carry import fetch_states, restore_states
from engine.description import NetworkDescription, dumps_network
from engine.topology import link, topological_order, upstream

log = logging.getLogger(__name__)


class Deployment(Failover):
    """A network deployed across agents (client side); mirrors :class:`engine.graph.Network`."""

    def __init__(self, session: Session, desc: NetworkDescription, placement: dict[str, str],
                 conns: dict[str, Conn], deployment: str) -> None:
        self.session, self.description, self.id = session, desc, deployment
        self.placement, self.conns = placement, conns
        self.all_conns: dict[str, Conn] = dict(conns)
        self.succ, self.pred, _ = link(desc)
        self.delayed = cut_memories(desc, self.pred)  # Memory -> producer (fed after a pass)
        self.order = topological_order(list(desc.modules), self.succ, self.pred)
        self.inputs = [m for m in self.order if desc.modules[m].type == "Input"]
        self.outputs = [m for m in self.order if desc.modules[m].type == "Output"]
        self._last: tuple[str, ...] | None = None
        self.token = secrets.token_hex(16)  # proves to the agents that a message is ours
        self.weights: dict[str, np.ndarray] = {}  # kept for failover (module UUID -> flat)
        self.fallbacks: list[str] = []  # agent ids, tried in order
        self.failovers: list[dict[str, Any]] = []
        self.lost: set[str] = set()  # agents let go by disconnect() (their modules stay placed)
        self._watch: dict[tuple[str, ...], list[str]] = {}  # outputs -> agents they need
        self._memories: dict[tuple[str, ...], list[str]] = {}  # outputs -> Memories they need
        self._in_order: dict[tuple[str, ...], bool] = {}  # outputs -> they need recurrent state

    # ------------------------------------------------------------------ placement
    def place(self, placement: dict[str, str], weights: Mapping[str, Any] | None = None,
              *, gone: Iterable[str] = (), timeout: float | None = None,
              undo: Iterable[str] = ()) -> None:
        """(Re)deploy with ``placement``; a module that moves takes its parameters along, and
        its recurrent state (a Memory's) too: the next sample sees the state it left. Agents in
        ``gone`` are left alone (no undeploy, nothing fetched from them); ``timeout`` bounds
        each agent's answer; ``undo``: samples lost in a failover, to be sent again, whose state
        updates on live agents are undone (:mod:`agent.state_carry`)."""
        given, gone = set(gone), set(gone) | self.lost
        states = fetch_states(self, placement, gone, undo, timeout)
        lost_state = sorted(m for a in self.lost - given for m in self._stateful_on(a)
                            if placement.get(m) not in (None, a))  # left a let-go agent
        if lost_state:
            log.warning("deployment %s: the state of %s stays on an agent that was let go; "
                        "it restarts from zeros on its new agent", self.id, ", ".join(lost_state))
        moved = [m for m, a in placement.items()
                 if self.placement.get(m) not in (None, a) and self.placement[m] not in gone]
        carry = {m: np.asarray(w, np.float32) for m, w in (weights or {}).items()}
        if moved:
            carry.update({m: w for m, w in self.get_weights(moved).items() if m not in carry})
        for m, a in self.placement.items():  # a dead agent's modules start from the kept ones
            if a in gone and placement.get(m) != a and m in self.weights and m not in carry:
                carry[m] = self.weights[m]
        self.weights.update(carry)
        agents = {a: self.all_conns[a].info.address for a in set(placement.values())}
        text = dumps_network(self.description)
        for aid in sorted((set(placement.values()) | set(self.conns)) - gone):
            conn = self.all_conns[aid]
            msg = P.Message("deploy", {"deployment": self.id, "network": text,
                                       "placement": placement, "agents": agents, "weights": {},
                                       "token": self.token})
            if aid not in placement.values():
                msg = P.Message("undeploy", {"deployment": self.id})
            else:
                for mid, flat in carry.items():
                    if placement.get(mid) == aid:
                        msg.content["weights"][mid] = msg.add(flat)
            self.session.request(conn, msg, timeout)
        self.placement = dict(placement)
        self.conns = {a: self.all_conns[a] for a in set(placement.values())}
        self._watch.clear()
        restore_states(self, states, timeout)

    def move(self, module: str, agent: str) -> None:
        """Move one module (UUID or name) to another agent (id or name) with its parameters
        (and, a Memory, its state)."""
        new = dict(self.placement)
        new[self.description.module(module).id] = self._agent_id(agent)
        self.place(new)

    def agent_of(self, module: str) -> AgentInfo:
        return self.conns[self.placement[self.description.module(module).id]].info

    # ------------------------------------------------------------------ execution
    def _outputs(self, outputs: Sequence[str] | str | None) -> tuple[tuple[str, ...], bool]:
        if outputs is None:
            return tuple(self.outputs), len(self.outputs) == 1
        if isinstance(outputs, str):
            return (self.description.module(outputs).id,), True
        return tuple(self.description.module(o).id for o in outputs), False

    def _feeds(self, x: Any) -> dict[str, np.ndarray]:
        if isinstance(x, Mapping):
            items = {self.description.module(k).id: v for k, v in x.items()}
        elif isinstance(x, list | tuple):
            if len(x) != len(self.inputs):
                raise AgentError(f"{self.description.name} has {len(self.inputs)} inputs. "
                                 f"Received: {len(x)} arrays")
            items = dict(zip(self.inputs, x, strict=True))
        else:
            if len(self.inputs) != 1:
                raise AgentError(f"{self.description.name} has {len(self.inputs)} inputs; pass "
                                 f"a dict Input id -> array. Received: one array")
            items = {self.inputs[0]: x}
        return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in items.items()}

    def _needed(self, outputs: tuple[str, ...]) -> set[str]:
        """The modules a forward to ``outputs`` runs (Memory updates included)."""
        return upstream(outputs, self.pred, self.delayed)

    def memories(self, outputs: Sequence[str] | str | None = None) -> list[str]:
        """The Memory modules a forward to ``outputs`` runs (in topological order)."""
        wanted = self._outputs(outputs)[0]
        found = self._memories.get(wanted)
        if found is None:
            needed = self._needed(wanted)
            found = self._memories[wanted] = [
                m for m in self.order
                if m in needed and is_recurrent(self.description.modules[m].type)]
        return found

    def _stateful(self, wanted: tuple[str, ...]) -> bool:
        """Whether a forward to ``wanted`` runs a module holding recurrent state (a Memory or a
        recurrent composite such as LSTM): its samples then go one at a time, so they reach it
        in sequence order whatever the paths' timings, and a failover sends at most one again
        (whose state update it can undo)."""
        found = self._in_order.get(wanted)
        if found is None:
            found = self._in_order[wanted] = any(
                holds_state(self.description.modules[m].type) for m in self._needed(wanted))
        return found

    def _send_feeds(self, feeds: Mapping[str, np.ndarray], outputs: tuple[str, ...]) -> str:
        sample = uuid.uuid4().hex
        by_agent: dict[str, P.Message] = {}
        starts = [(self.placement[m], m, None) for m in self.memories(outputs)]
        for aid, mid, arr in [(self.placement[m], m, a) for m, a in feeds.items()] + starts:
            msg = by_agent.setdefault(aid, P.Message("forward", {
                "deployment": self.id, "sample": sample, "outputs": list(outputs),
                "feeds": {}, "token": self.token}, id=sample))
            if arr is not None:
                msg.content["feeds"][mid] = msg.add(arr)
        self._send_sample(sample, by_agent)
        self._last = outputs
        return sample

    def _send_sample(self, sample: str, by_agent: Mapping[str, P.Message]) -> None:
        """Send one sample's messages, one per agent, once the session expects its results."""
        self.session.samples.add(sample)
        for aid, msg in by_agent.items():
            self.session.send(self.conns[aid], msg)

    def _agents_for(self, outputs: tuple[str, ...]) -> list[str]:
        """The agents holding a module that ``outputs`` need (cached until ``place``)."""
        aids = self._watch.get(outputs)
        if aids is None:
            aids = self._watch[outputs] = sorted({self.placement[m]
                                                  for m in self._needed(outputs)})
        return aids

    def _watched(self, outputs: tuple[str, ...]) -> list[Conn]:
        """The connections to the live agents holding a module that ``outputs`` need."""
        return [self.conns[a] for a in self._agents_for(outputs)
                if a in self.conns and a not in self.lost]

    def _collect(self, sample: str, expect: Sequence[str], outputs: tuple[str, ...] | None = None,
                 timeout: float | None = None) -> dict[str, np.ndarray | None]:
        s = self.session

        def done() -> bool:
            return sample in s.errors or len(s.results.get(sample, ())) >= len(expect)

        watch = self.conns.values() if outputs is None else self._watched(outputs)
        try:
            s.wait(done, watch, timeout)
        except AgentError as exc:
            if exc.code == "timeout":  # what arrives for it later is dropped
                s.forget(sample)
            raise
        s.raise_sample_error(sample)
        got = {}
        for msg in s.results.pop(sample):
            ref = msg.content.get("tensor")
            got[msg.content["module"]] = None if ref is None else msg.tensors[ref]
        return got

    def forward(self, x: Any, outputs: Sequence[str] | str | None = None, *,
                timeout: float | None = None) -> Any:
        """One forward pass through the agents; returns what ``Network.forward`` returns.
        ``timeout``: at most this many seconds, else :class:`AgentError` code ``"timeout"``."""
        return next(self._stream([x], outputs, 1, keep=False, timeout=timeout))

    def forward_many(self, xs: Iterable[Any], outputs: Sequence[str] | str | None = None,
                     window: int = 8) -> Iterator[Any]:
        """Pipelined forwards: up to ``window`` samples in flight, results in input order.
        With a fallback set, an agent that dies mid-stream is replaced and the samples in
        flight are sent again (none lost, order kept). When the forward runs a module holding
        recurrent state (a Memory, or a composite such as LSTM), samples go one at a time
        (``window`` 1): each one needs the state the previous one left."""
        return self._stream(xs, outputs, window, keep=True)

    def _stream(self, xs: Iterable[Any], outputs: Sequence[str] | str | None, window: int,
                keep: bool, timeout: float | None = None) -> Iterator[Any]:
        wanted, single = self._outputs(outputs)
        if self.lost:
            self._around_let_go(wanted)
        updated = [m for m in self.memories(wanted) if m in self.delayed]
        expect = [*wanted, *updated]  # a Memory reports once it holds its new state
        if updated or self._stateful(wanted):
            window = 1
        pending: deque[tuple[str, dict[str, np.ndarray]]] = deque()  # (sample, feeds)
        it = iter(xs)
        exhausted = False
        while pending or not exhausted:
            while not exhausted and len(pending) < max(1, window):
                try:
                    x = next(it)
                except StopIteration:
                    exhausted = True
                    break
                feeds = self._feeds(x)
                if keep:  # queued while the caller goes on (and may reuse its arrays)
                    feeds = {k: v.copy() for k, v in feeds.items()}
                pending.append((self._send_feeds(feeds, wanted), feeds))
            if not pending:
                break
            try:
                got = self._collect(pending[0][0], expect, wanted, timeout)
            except AgentError as exc:
                record = self._recover(exc, [sample for sample, _ in pending])
                if record is None:
                    for sample, _ in pending:
                        self.session.forget(sample)
                    raise
                old = list(pending)
                pending.clear()
                for sample, feeds in old:  # again, in order, on the new placement
                    self.session.forget(sample)
                    pending.append((self._send_feeds(feeds, wanted), feeds))
                record["resent"] += len(old)
                continue
            pending.popleft()
            yield got[wanted[0]] if single else {o: got[o] for o in wanted}

    def _around_let_go(self, wanted: tuple[str, ...]) -> None:
        """Before a forward that needs modules of an agent let go by ``disconnect``: fail over
        to a configured fallback, else raise ``gone`` naming it (nobody listens to it, so
        waiting for its results would never end)."""
        lost = [a for a in self._agents_for(wanted) if a in self.lost]
        if not lost:
            return
        conn = self.all_conns.get(lost[0])
        exc = AgentError(f"{conn.label if conn else lost[0]} was let go (disconnected) and "
                         f"holds modules this forward needs: rejoin it or set a fallback",
                         "gone", agent=lost[0])
        if self._recover(exc, []) is None:
            raise exc
        self._around_let_go(wanted)  # another let-go agent may hold some too

    def backward(self, grad_outputs: Any) -> dict[str, np.ndarray]:
        """Back-propagate from the Outputs of the last forward; Input id -> gradient."""
        if self._last is None:
            raise AgentError("backward called before forward")
        if isinstance(grad_outputs, Mapping):
            given = {self.description.module(k).id: v for k, v in grad_outputs.items()}
        else:
            if len(self._last) != 1:
                raise AgentError("several Outputs ran; pass a dict Output id -> gradient")
            given = {self._last[0]: grad_outputs}
        sample = uuid.uuid4().hex
        by_agent: dict[str, P.Message] = {}
        for oid in self._last:
            aid = self.placement[oid]
            msg = by_agent.setdefault(aid, P.Message("backward", {
                "deployment": self.id, "sample": sample, "grads": {},
                "token": self.token}, id=sample))
            g = given.get(oid)
            msg.content["grads"][oid] = None if g is None else msg.add(
                np.ascontiguousarray(g, dtype=np.float32))
        self._send_sample(sample, by_agent)
        reached = upstream(self._last, self.pred)  # a gradient stops at a Memory, as locally
        got = self._collect(sample, [m for m in self.inputs if m in reached])
        return {k: v for k, v in got.items() if v is not None}

    # ------------------------------------------------------------------ parameters
    def _each(self, type: str, content: dict[str, Any], aids: Iterable[str] | None = None
              ) -> list[P.Message]:
        msgs = []
        for aid in sorted((set(aids) if aids is not None else set(self.conns)) - self.lost):
            msg = P.Message(type, {"deployment": self.id, **content})
            self.session.send(self.conns[aid], msg)
            msgs.append((aid, msg))
        return [self.session.wait_reply(self.conns[a], m) for a, m in msgs]

    def get_weights(self, modules: Sequence[str] | None = None, grads: bool = False
                    ) -> dict[str, np.ndarray]:
        """UUID -> flat float32 vector (or its gradient) of every module with parameters."""
        ids = [self.description.module(m).id for m in modules] if modules else None
        aids = {self.placement[m] for m in ids} if ids else None
        out = {}
        for aid in sorted(aids if aids is not None else self.conns):
            mine = [m for m in ids if self.placement[m] == aid] if ids else None
            reply = self.session.request(self.conns[aid], P.Message("get_parameters", {
                "deployment": self.id, "modules": mine, "grads": grads}))
            out.update({m: reply.tensors[i] for m, i in reply.content["modules"].items()})
        return out

    def set_weights(self, weights: Mapping[str, Any]) -> None:
        """Set parameters on the agents (and keep them for failover)."""
        self.weights.update({m: np.asarray(w, np.float32) for m, w in weights.items()
                             if m in self.description.modules})
        for aid in sorted(self.conns):
            msg = P.Message("set_parameters", {"deployment": self.id, "weights": {}})
            for mid, flat in weights.items():
                if self.placement.get(mid) == aid:
                    msg.content["weights"][mid] = msg.add(np.asarray(flat, np.float32))
            if msg.tensors:
                self.session.request(self.conns[aid], msg)

    def keep_weights(self) -> dict[str, np.ndarray]:
        """Fetch the current parameters (e.g. after training) as the ones kept for failover."""
        self.weights.update(self.get_weights())
        return self.weights

    def zero_grad(self) -> None:
        self._each("zero_grad", {})

    def step(self, options: Mapping[str, Any], iteration: int = 0) -> None:
        """Apply the accumulated gradients on every agent (``engine.optim`` with the flat
        DIANNE options: method, learningRate, momentum, l2, ...)."""
        self._each("step", {"options": dict(options), "iteration": iteration})

    def reset_state(self) -> None:
        """Start a new sequence: every Memory module (and recurrent composite) of the
        deployment back to its zero state, as ``Network.reset_state`` does locally."""
        self._each("reset_state", {"token": self.token})

    def train(self, mode: bool = True) -> Deployment:
        self._each("mode", {"train": mode})
        return self

    def eval(self) -> Deployment:
        return self.train(False)

    def undeploy(self) -> None:
        self._each("undeploy", {})
        self.conns = {}
