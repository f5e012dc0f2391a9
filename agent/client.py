"""The client API of the agents: discover them, talk to one, deploy a network across several.

::

    from agent.client import AgentClient, deploy, discover

    agents = discover(interface="127.0.0.1")            # [AgentInfo(id, name, address, ...)]
    dep = deploy(desc, weights, {uuid: agent_id_or_name, ...}, [a.address for a in agents])
    y = dep.forward(x)                                    # == Network(desc).forward(x)
    for y in dep.forward_many(frames, window=8): ...      # pipelined, in order
    dep.backward(grad_y); dep.get_weights(grads=True); dep.undeploy()

A module whose ``next`` lives on another agent sends its output there directly; the client only
feeds the Inputs and receives the Outputs. Errors (a module failing, an agent gone) raise
:class:`AgentError` naming the agent and the module.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from agent import protocol as P
from agent.discovery import AgentInfo, discover
from agent.keys import Keys
from agent.session import AgentError, Conn, Session
from engine.description import NetworkDescription, dumps_network
from engine.graph import link, topological_order

__all__ = ["AgentClient", "AgentError", "AgentInfo", "Deployment", "deploy", "discover",
           "resolve_placement"]


class AgentClient:
    """A connection to one agent (its own session unless one is shared)."""

    def __init__(self, address: str, *, keys: Keys | None = None,
                 session: Session | None = None, timeout: float = 2.0) -> None:
        self.session = session or Session(keys)
        self._own = session is None
        try:
            self.conn: Conn = self.session.connect(address, timeout)
        except BaseException:
            if self._own:
                self.session.close()
            raise
        self.info: AgentInfo = self.conn.info  # type: ignore[assignment]

    id = property(lambda self: self.info.id)
    name = property(lambda self: self.info.name)
    address = property(lambda self: self.conn.address)

    def request(self, type: str, content: dict[str, Any] | None = None,
                tensors: Sequence[np.ndarray] = (), timeout: float | None = None) -> P.Message:
        return self.session.request(self.conn, P.Message(type, content or {}, list(tensors)),
                                    timeout)

    def hello(self) -> dict[str, Any]:
        return self.request("hello").content

    def ping(self) -> None:
        self.request("ping", timeout=2.0)

    def undeploy(self, deployment: str | None = None, name: str | None = None) -> list[str]:
        content = {"deployment": deployment, "name": name}
        return list(self.request("undeploy", content).content.get("deployments", []))

    # ------------------------------------------------------------------ jobs (whole networks)
    def _with_network(self, type: str, desc: NetworkDescription,
                      weights: Mapping[str, Any] | None, content: dict[str, Any]) -> P.Message:
        msg = P.Message(type, {"network": dumps_network(desc), "weights": {}, **content})
        for mid, flat in (weights or {}).items():
            msg.content["weights"][mid] = msg.add(np.asarray(flat, np.float32))
        return msg

    def evaluate(self, desc: NetworkDescription, weights: Mapping[str, Any] | None,
                 dataset: str, **content: Any) -> dict[str, Any]:
        """Evaluate on the agent (dataset opened there); ``Evaluation.to_json()`` keys.
        ``content``: range [a, b], labels, other, batch_size, output."""
        msg = self._with_network("evaluate", desc, weights, {"dataset": dataset, **content})
        return self.session.request(self.conn, msg).content

    def start_job(self, desc: NetworkDescription, weights: Mapping[str, Any] | None,
                  dataset: str, options: Mapping[str, Any], **content: Any) -> str:
        """Start training on the agent; returns the job id. ``content``: range, labels,
        validation {dataset, range}, epochs | iterations, seed, output, job."""
        for topic in (b"progress.", b"job."):
            self.conn.sub.subscribe(topic)
        msg = self._with_network("start_job", desc, weights,
                                 {"dataset": dataset, "options": dict(options), **content})
        return self.session.request(self.conn, msg).content["job"]

    def job_status(self, job: str) -> dict[str, Any]:
        return self.request("job_status", {"job": job}).content

    def stop_job(self, job: str) -> dict[str, Any]:
        return self.request("stop_job", {"job": job}).content

    def job_weights(self, job: str, tag: str | None = None) -> dict[str, np.ndarray]:
        reply = self.request("get_job_weights", {"job": job, "tag": tag})
        return {m: reply.tensors[i] for m, i in reply.content["modules"].items()}

    def wait_job(self, job: str, timeout: float | None = None,
                 on_progress: Any = None) -> dict[str, Any]:
        """Block until the job ends (its ``job.<id>`` event, or a status poll every 0.5 s);
        ``on_progress(dict)`` gets each progress event. Returns the final status."""
        s, done, seen = self.session, [], 0
        end = None if timeout is None else time.monotonic() + timeout

        def check() -> bool:
            nonlocal seen
            for _, topic, msg in s.events[seen:]:
                if topic == f"progress.{job}" and on_progress is not None:
                    on_progress(msg.content)
                elif topic == f"job.{job}":
                    done.append(msg.content)
            seen = len(s.events)
            return bool(done)

        while True:
            try:
                s.wait(check, [self.conn], timeout=0.5)
                return done[0]
            except AgentError as exc:
                if exc.code != "timeout":
                    raise
            status = self.job_status(job)
            if status["state"] != "running":
                check()
                return done[0] if done else status
            if end is not None and time.monotonic() >= end:
                raise AgentError(f"job {job} on {self.conn.label} still running after "
                                 f"{timeout:.1f} s", "timeout")

    def close(self) -> None:
        if self._own:
            self.session.close()

    def __enter__(self) -> AgentClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _match_agent(key: str, infos: Sequence[AgentInfo]) -> AgentInfo:
    for attr in ("id", "name"):
        hits = [i for i in infos if getattr(i, attr) == key]
        if len(hits) == 1:
            return hits[0]
    hits = [i for i in infos if i.id.startswith(key)]
    if len(hits) == 1:
        return hits[0]
    known = ", ".join(f"{i.name} ({i.id})" for i in infos) or "none"
    what = "matches several agents" if hits else "is not a known agent"
    raise AgentError(f"placement: {key!r} {what} (agents: {known}). Received: {key}")


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
    first = next(iter(out.values()))
    for mid in topological_order(list(desc.modules), succ, pred):
        if mid not in out:
            out[mid] = next((out[p] for p in pred[mid] if p in out), first)
    return out


def deploy(desc: NetworkDescription, weights: Mapping[str, np.ndarray],
           placement: Mapping[str, str], agents: Iterable[str | AgentInfo | AgentClient],
           *, deployment: str | None = None, keys: Keys | None = None,
           session: Session | None = None) -> Deployment:
    """Deploy ``desc`` with ``weights`` (UUID -> flat vector) on the agents of ``placement``."""
    session = session or Session(keys)
    conns: list[Conn] = []
    for a in agents:
        address = a.address if isinstance(a, AgentInfo | AgentClient) else a
        conns.append(session.connect(address))
    dep = Deployment(session, desc, {}, {}, deployment or str(uuid.uuid4()))
    dep.all_conns = {c.info.id: c for c in conns}
    dep.place(resolve_placement(desc, placement, [c.info for c in conns]), weights)
    return dep


class Deployment:
    """A network deployed across agents (client side); mirrors :class:`engine.graph.Network`."""

    def __init__(self, session: Session, desc: NetworkDescription, placement: dict[str, str],
                 conns: dict[str, Conn], deployment: str) -> None:
        self.session, self.description, self.id = session, desc, deployment
        self.placement, self.conns = placement, conns
        self.all_conns: dict[str, Conn] = dict(conns)
        self.succ, self.pred, _ = link(desc)
        self.order = topological_order(list(desc.modules), self.succ, self.pred)
        self.inputs = [m for m in self.order if desc.modules[m].type == "Input"]
        self.outputs = [m for m in self.order if desc.modules[m].type == "Output"]
        self._last: tuple[str, ...] | None = None

    # ------------------------------------------------------------------ placement
    def place(self, placement: dict[str, str], weights: Mapping[str, Any] | None = None
              ) -> None:
        """(Re)deploy with ``placement``; a module that moves takes its parameters along."""
        moved = [m for m, a in placement.items() if self.placement.get(m) not in (None, a)]
        carry = dict(weights or {})
        if moved:
            carry.update({m: w for m, w in self.get_weights(moved).items() if m not in carry})
        agents = {a: self.all_conns[a].info.address for a in set(placement.values())}
        text = dumps_network(self.description)
        for aid in sorted(set(placement.values()) | set(self.conns)):
            conn = self.all_conns[aid]
            msg = P.Message("deploy", {"deployment": self.id, "network": text,
                                       "placement": placement, "agents": agents, "weights": {}})
            if aid not in placement.values():
                msg = P.Message("undeploy", {"deployment": self.id})
            else:
                for mid, flat in carry.items():
                    if placement.get(mid) == aid:
                        msg.content["weights"][mid] = msg.add(np.asarray(flat, np.float32))
            self.session.request(conn, msg)
        self.placement = dict(placement)
        self.conns = {a: self.all_conns[a] for a in set(placement.values())}

    def move(self, module: str, agent: str) -> None:
        """Move one module (UUID or name) to another agent (id or name) with its parameters."""
        new = dict(self.placement)
        new[self.description.module(module).id] = _match_agent(
            agent, [c.info for c in self.all_conns.values()]).id
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
        needed, stack = set(), list(outputs)
        while stack:
            m = stack.pop()
            if m not in needed:
                needed.add(m)
                stack.extend(self.pred[m])
        return needed

    def _send_forward(self, x: Any, outputs: tuple[str, ...], keep: bool = False) -> str:
        sample = uuid.uuid4().hex
        by_agent: dict[str, P.Message] = {}
        for mid, arr in self._feeds(x).items():
            if keep:  # queued while the caller goes on (and may reuse its arrays)
                arr = arr.copy()
            aid = self.placement[mid]
            msg = by_agent.setdefault(aid, P.Message("forward", {
                "deployment": self.id, "sample": sample, "outputs": list(outputs),
                "feeds": {}}, id=sample))
            msg.content["feeds"][mid] = msg.add(arr)
        self.session.samples.add(sample)
        for aid, msg in by_agent.items():
            self.session.send(self.conns[aid], msg)
        self._last = outputs
        return sample

    def _collect(self, sample: str, expect: Sequence[str]) -> dict[str, np.ndarray | None]:
        s = self.session

        def done() -> bool:
            return sample in s.errors or len(s.results.get(sample, ())) >= len(expect)

        s.wait(done, self.conns.values())
        s.raise_sample_error(sample)
        got = {}
        for msg in s.results.pop(sample):
            ref = msg.content.get("tensor")
            got[msg.content["module"]] = None if ref is None else msg.tensors[ref]
        return got

    def forward(self, x: Any, outputs: Sequence[str] | str | None = None) -> Any:
        """One forward pass through the agents; returns what ``Network.forward`` returns."""
        wanted, single = self._outputs(outputs)
        got = self._collect(self._send_forward(x, wanted), wanted)
        return got[wanted[0]] if single else {o: got[o] for o in wanted}

    def forward_many(self, xs: Iterable[Any], outputs: Sequence[str] | str | None = None,
                     window: int = 8) -> Iterator[Any]:
        """Pipelined forwards: up to ``window`` samples in flight, results in input order."""
        wanted, single = self._outputs(outputs)
        pending: deque[str] = deque()
        it = iter(xs)
        exhausted = False
        while pending or not exhausted:
            while not exhausted and len(pending) < max(1, window):
                try:
                    pending.append(self._send_forward(next(it), wanted, keep=True))
                except StopIteration:
                    exhausted = True
            if pending:
                got = self._collect(pending.popleft(), wanted)
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
                "deployment": self.id, "sample": sample, "grads": {}}, id=sample))
            g = given.get(oid)
            msg.content["grads"][oid] = None if g is None else msg.add(
                np.ascontiguousarray(g, dtype=np.float32))
        self.session.samples.add(sample)
        for aid, msg in by_agent.items():
            self.session.send(self.conns[aid], msg)
        needed = self._needed(self._last)
        got = self._collect(sample, [m for m in self.inputs if m in needed])
        return {k: v for k, v in got.items() if v is not None}

    # ------------------------------------------------------------------ parameters
    def _each(self, type: str, content: dict[str, Any], aids: Iterable[str] | None = None
              ) -> list[P.Message]:
        msgs = []
        for aid in sorted(set(aids) if aids is not None else self.conns):
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
        for aid in sorted(self.conns):
            msg = P.Message("set_parameters", {"deployment": self.id, "weights": {}})
            for mid, flat in weights.items():
                if self.placement.get(mid) == aid:
                    msg.content["weights"][mid] = msg.add(np.asarray(flat, np.float32))
            if msg.tensors:
                self.session.request(self.conns[aid], msg)

    def zero_grad(self) -> None:
        self._each("zero_grad", {})

    def step(self, options: Mapping[str, Any], iteration: int = 0) -> None:
        """Apply the accumulated gradients on every agent (``engine.optim`` with the flat
        DIANNE options: method, learningRate, momentum, l2, ...)."""
        self._each("step", {"options": dict(options), "iteration": iteration})

    def train(self, mode: bool = True) -> Deployment:
        self._each("mode", {"train": mode})
        return self

    def eval(self) -> Deployment:
        return self.train(False)

    def undeploy(self) -> None:
        self._each("undeploy", {})
        self.conns = {}
