"""The client API of the agents: discover them, talk to one, deploy a network across several.

::

    from agent.client import AgentClient, deploy, discover

    agents = discover(interface="127.0.0.1")            # [AgentInfo(id, name, address, ...)]
    dep = deploy(desc, weights, {uuid: agent_id_or_name, ...}, [a.address for a in agents])
    y = dep.forward(x)                                    # == Network(desc).forward(x)
    for y in dep.forward_many(frames, window=8): ...      # pipelined, in order
    dep.backward(grad_y); dep.get_weights(grads=True); dep.undeploy()
    dep = deploy(desc, weights, placement, agents, fallback=spare)  # failover within 2 s

A module whose ``next`` lives on another agent sends its output there directly; the client only
feeds the Inputs and receives the Outputs. Errors (a module failing, an agent gone) raise
:class:`AgentError` naming the agent and the module.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from agent import protocol as P
from agent.deployment import Deployment
from agent.discovery import AgentInfo, discover
from agent.keys import Keys
from agent.resolve import _match_agent, resolve_placement
from agent.session import AgentError, Conn, Session
from engine.description import NetworkDescription, dumps_network

__all__ = ["AgentClient", "AgentError", "AgentInfo", "Deployment", "connect_all", "deploy",
           "discover", "resolve_placement"]
_ = _match_agent  # re-exported (app.autoplace imports it from here)


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


def connect_all(session: Session, agents: Iterable[str | AgentInfo | AgentClient]
                ) -> list[Conn]:
    """One connection per agent, in the order given. An agent given twice (the same address,
    another address of it, or a stale discovery record of its address) is one agent: it is
    known by the id it reports when connected, and kept where it first appears."""
    conns: dict[str, Conn] = {}
    for a in agents:
        address = a.address if isinstance(a, AgentInfo | AgentClient) else a
        conn = session.connect(address)
        conns.setdefault(conn.info.id, conn)
    return list(conns.values())


def deploy(desc: NetworkDescription, weights: Mapping[str, np.ndarray],
           placement: Mapping[str, str], agents: Iterable[str | AgentInfo | AgentClient],
           *, deployment: str | None = None, keys: Keys | None = None,
           session: Session | None = None,
           fallback: str | AgentInfo | AgentClient | Sequence[Any] | None = None
           ) -> Deployment:
    """Deploy ``desc`` with ``weights`` (UUID -> flat vector) on the agents of ``placement``.
    ``fallback``: an agent (or a list, tried in order) that takes over the modules of an agent
    that dies (see :meth:`Deployment.set_fallback`); the weights are kept for it."""
    own = session is None
    session = session or Session(keys)
    try:
        conns = connect_all(session, agents)
        dep = Deployment(session, desc, {}, {}, deployment or str(uuid.uuid4()))
        dep.all_conns = {c.info.id: c for c in conns}
        dep.place(resolve_placement(desc, placement, [c.info for c in conns]), weights)
        if fallback is not None:
            many = isinstance(fallback, list | tuple)
            dep.set_fallback(*(fallback if many else [fallback]))
    except BaseException:
        if own:  # nobody else could close it: its sockets would outlive the error
            session.close()
        raise
    return dep
