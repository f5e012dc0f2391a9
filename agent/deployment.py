"""A network deployed across agents, seen from the client: :class:`Deployment`.

Made by :func:`agent.client.deploy` (re-exported there, with :func:`resolve_placement`). It
mirrors :class:`engine.graph.Network` (forward, backward, weights) and adds placement changes
(:meth:`Deployment.place`, :meth:`Deployment.move`) and failover.

Failover: the deployment keeps the weights the client deployed (and later set). With a fallback
configured (``deploy(..., fallback=AGENT)`` or :meth:`Deployment.set_fallback`), an agent that
stops its heartbeat (gone after 1.4 s) is replaced: its modules are deployed on the fallback with
the kept weights (nothing is fetched from the dead agent and nothing is sent to it), the other
agents are told the new placement (their modules keep their parameters), and ``forward`` /
``forward_many`` send the samples that were in flight again, so none is lost and the order is
kept. Each failover is recorded in :attr:`Deployment.failovers`. Without a fallback the
:class:`AgentError` naming the dead agent reaches the caller, as before.

A forward waits only on the agents that hold a module its Outputs need (an agent that is gone
fails only the forwards that need it) and, given a ``timeout``, at most that long (an
``AgentError`` with code ``"timeout"``; a late result is dropped). An agent that stopped
answering can be let go (:meth:`Deployment.disconnect`: its sockets close, nothing waits on it)
and taken back when it answers again, restarted or not (:meth:`Deployment.rejoin`: connect anew,
deploy its modules there again with the kept weights).

Recurrent networks: the edges into ``Memory`` modules are cut as in the local executor (a Memory
emits its state at the start of a sample and takes its predecessor's value after it, see
:mod:`agent.host`). A forward also starts the sample on every agent holding a Memory it needs,
and is done only when its Outputs arrived *and* every such Memory reported its new state; the
samples of such a forward run one at a time (``forward_many`` forces ``window`` to 1), so sample
n+1 never sees a Memory before sample n updated it. :meth:`Deployment.reset_state` starts a new
sequence.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from agent import protocol as P
from agent.discovery import AgentInfo
from agent.graph import cut_memories, is_recurrent
from agent.session import HELLO_TIMEOUT_S, AgentError, Conn, Session
from engine.description import NetworkDescription, dumps_network
from engine.topology import link, topological_order, upstream

AgentRef = Any  # an address "tcp://...", an AgentInfo, an AgentClient, or a known id/name


def _match_agent(key: str, infos: Sequence[AgentInfo]) -> AgentInfo:
    """The agent ``key`` names: its id, else its name, else a unique id prefix. The same agent
    listed twice (same id) is one agent; two agents sharing a name need their ids."""
    unique: dict[str, AgentInfo] = {}
    for info in infos:
        unique.setdefault(info.id, info)
    infos = list(unique.values())
    several: list[AgentInfo] = []
    for attr in ("id", "name"):
        hits = [i for i in infos if getattr(i, attr) == key]
        if len(hits) == 1:
            return hits[0]
        several = several or hits
    hits = [i for i in infos if i.id.startswith(key)]
    if len(hits) == 1:
        return hits[0]
    several = several or hits
    if several:
        named = ", ".join(f"{i.name} ({i.id} at {i.address})" for i in several)
        raise AgentError(f"placement: {key!r} matches several agents: {named}; name one by its "
                         f"id or a unique id prefix. Received: {key}")
    known = ", ".join(f"{i.name} ({i.id})" for i in infos) or "none"
    raise AgentError(f"placement: {key!r} is not a known agent (agents: {known}). "
                     f"Received: {key}")


def resolve_placement(desc: NetworkDescription, placement: Mapping[str, str],
                      infos: Sequence[AgentInfo]) -> dict[str, str]:
    """Module UUID -> agent id for every module. Keys may be UUIDs or unique module names,
    values agent ids, names or id prefixes. An unplaced module goes where its first
    predecessor went (an unplaced Input: where the first placed module went)."""
    out: dict[str, str] = {}
    for key, agent_key in placement.items():
        if not isinstance(agent_key, str):
            raise AgentError(f"placement: {key} maps to {agent_key!r}; an agent id or name is "
                             f"a string")
        out[desc.module(key).id] = _match_agent(agent_key, infos).id
    if not out:
        raise AgentError("placement: the placement is empty. Received: {}")
    succ, pred, _ = link(desc)
    cut_memories(desc, pred)  # a Memory's cycle is no dependency: each one is placed
    first = next(iter(out.values()))
    for mid in topological_order(list(desc.modules), succ, pred):
        if mid not in out:
            out[mid] = next((out[p] for p in pred[mid] if p in out), first)
    return out


class Deployment:
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

    # ------------------------------------------------------------------ placement
    def place(self, placement: dict[str, str], weights: Mapping[str, Any] | None = None,
              *, gone: Iterable[str] = (), timeout: float | None = None) -> None:
        """(Re)deploy with ``placement``; a module that moves takes its parameters along.
        Agents in ``gone`` are left alone (no undeploy, no parameters fetched from them);
        ``timeout`` bounds each agent's answer."""
        gone = set(gone) | self.lost
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

    def move(self, module: str, agent: str) -> None:
        """Move one module (UUID or name) to another agent (id or name) with its parameters."""
        new = dict(self.placement)
        new[self.description.module(module).id] = _match_agent(
            agent, [c.info for c in self.all_conns.values()]).id
        self.place(new)

    def agent_of(self, module: str) -> AgentInfo:
        return self.conns[self.placement[self.description.module(module).id]].info

    # ------------------------------------------------------------------ failover
    def _connect(self, agent: AgentRef) -> Conn:
        address = getattr(agent, "address", agent)
        if isinstance(address, str) and address.startswith("tcp://"):
            conn = self.session.connect(address)
        else:
            info = _match_agent(str(agent), [c.info for c in self.all_conns.values()])
            conn = self.all_conns[info.id]
        self.all_conns[conn.info.id] = conn
        return conn

    def set_fallback(self, *agents: AgentRef) -> None:
        """Agents that take over the modules of an agent that is gone, tried in order (no
        argument: none). Each is an address, an ``AgentInfo``, an ``AgentClient`` or the id or
        name of an agent this deployment knows; it is connected to now."""
        self.fallbacks = [self._connect(a).info.id for a in agents]

    def fail_over(self, agent: str) -> dict[str, Any]:
        """Move every module of ``agent`` (gone) to the first live fallback, with the kept
        weights; returns the record added to :attr:`failovers`."""
        t0 = time.monotonic()
        dead = _match_agent(agent, [c.info for c in self.all_conns.values()]).id
        label = self.all_conns[dead].label
        now, limit = time.monotonic(), self.session.gone_after
        live = [f for f in self.fallbacks if f != dead and f in self.all_conns
                and now - self.all_conns[f].last_seen <= limit]
        if not live:
            raise AgentError(f"{label} is gone and no live fallback agent is configured "
                             f"(fallbacks: {', '.join(self.fallbacks) or 'none'})", "gone",
                             agent=dead)
        to = live[0]
        modules = sorted(m for m, a in self.placement.items() if a == dead)
        self.place({m: (to if a == dead else a) for m, a in self.placement.items()}, gone={dead})
        self.session.drop(self.all_conns.pop(dead))
        record = {"agent": dead, "fallback": to, "modules": modules,
                  "redeploy_s": time.monotonic() - t0, "resent": 0, "time": time.time(),
                  "monotonic": t0}
        self.failovers.append(record)
        return record

    def disconnect(self, agent: str) -> None:
        """Let go of an agent that no longer answers; its modules stay placed on it. Its sockets
        close (a process that later takes its address is not reached through them, and no
        stale message of this session waits for it there), no request or forward waits on it
        and :meth:`undeploy` skips it. :meth:`rejoin` takes it back."""
        aid = _match_agent(agent, [c.info for c in self.all_conns.values()]).id
        conn = self.all_conns[aid]
        if self.session.conns.get(conn.address) is conn:
            self.session.drop(conn)
        self.lost.add(aid)

    def rejoin(self, agent: str, address: str | None = None, timeout: float | None = None
               ) -> dict[str, Any]:
        """Take back an agent that was gone (or let go) once one answers at its address again
        (``address``: where it answers now): connect anew and, unless it still holds its share
        of this deployment (it was frozen, not restarted), deploy its modules there again with
        the kept weights and tell the other agents where they are. An agent that restarted
        with another id takes the modules of the old one. ``timeout`` bounds each answer; on
        failure the agent stays let go. Returns ``{"agent", "was", "redeployed", "seconds"}``."""
        t0 = time.monotonic()
        old = _match_agent(agent, [c.info for c in self.all_conns.values()]).id
        before = self.all_conns[old]
        if self.session.conns.get(before.address) is before:
            self.session.drop(before)
        self.lost.add(old)
        wait = HELLO_TIMEOUT_S if timeout is None else timeout
        conn = self.session.connect(address or before.address, wait)
        new = conn.info.id
        try:
            info = self.session.request(conn, P.Message("hello"), wait).content
            held = {d.get("id"): d.get("modules") for d in info.get("deployments", [])}
            same = (new == old and conn.address == before.address and held.get(self.id) ==
                    sorted(m for m, a in self.placement.items() if a == old))
            self.all_conns[new] = conn
            self.lost.discard(new)
            placement = {m: (new if a == old else a) for m, a in self.placement.items()}
            if same:
                self.conns = {a: self.all_conns[a] for a in set(placement.values())}
            else:
                mine = {m: self.weights[m] for m, a in placement.items()
                        if a == new and m in self.weights}
                self.place(placement, mine, gone={old} - {new}, timeout=timeout)
        except AgentError:
            self.all_conns[new] = conn
            self.disconnect(new)
            raise
        finally:
            self._watch.clear()
        if new != old:
            del self.all_conns[old]
            self.lost.discard(old)
        return {"agent": new, "was": old, "redeployed": not same,
                "seconds": time.monotonic() - t0}

    def _recover(self, exc: AgentError) -> dict[str, Any] | None:
        """Fail over when ``exc`` says an agent of this deployment is gone and a fallback is
        configured; None when the error is not one failover can mend."""
        if exc.code != "gone" or exc.agent not in self.conns or not self.fallbacks:
            return None
        return self.fail_over(exc.agent)

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
        self.session.samples.add(sample)
        for aid, msg in by_agent.items():
            self.session.send(self.conns[aid], msg)
        self._last = outputs
        return sample

    def _watched(self, outputs: tuple[str, ...]) -> list[Conn]:
        """The connections to the agents holding a module that ``outputs`` need."""
        aids = self._watch.get(outputs)
        if aids is None:
            aids = sorted({self.placement[m] for m in self._needed(outputs)} - self.lost)
            self._watch[outputs] = aids
        return [self.conns[a] for a in aids if a in self.conns]

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
        flight are sent again (none lost, order kept). When the forward runs a Memory module,
        samples go one at a time (``window`` 1): each one needs the state the previous one
        left."""
        return self._stream(xs, outputs, window, keep=True)

    def _stream(self, xs: Iterable[Any], outputs: Sequence[str] | str | None, window: int,
                keep: bool, timeout: float | None = None) -> Iterator[Any]:
        wanted, single = self._outputs(outputs)
        updated = [m for m in self.memories(wanted) if m in self.delayed]
        expect = [*wanted, *updated]  # a Memory reports once it holds its new state
        if updated:
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
                record = self._recover(exc)
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
        self.session.samples.add(sample)
        for aid, msg in by_agent.items():
            self.session.send(self.conns[aid], msg)
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
