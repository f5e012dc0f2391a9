"""Failover, disconnect and rejoin of a deployment's agents: :class:`Failover`, mixed into
:class:`agent.deployment.Deployment`.

Failover: the deployment keeps the weights the client deployed (and later set). With a fallback
configured (``deploy(..., fallback=AGENT)`` or :meth:`Failover.set_fallback`), an agent that
stops its heartbeat (gone after 1.4 s) is replaced: its modules are deployed on the fallback with
the kept weights (nothing is fetched from the dead agent and nothing is sent to it), the other
agents are told the new placement (their modules keep their parameters), and ``forward`` /
``forward_many`` send the samples that were in flight again, so none is lost and the order is
kept. Each failover is recorded in ``Deployment.failovers`` and logged. Without a fallback the
:class:`AgentError` naming the dead agent reaches the caller, as before.

Recurrent state: a module holding state (a ``Memory``, a recurrent composite) on the dead agent
lost it with the agent; it restarts from zeros on the fallback, and the record's ``state_reset``
lists those modules (the log line names them). The Memories of live agents keep their state: an
update that a sample lost in the failover already made is undone before that sample is sent
again, so it updates them once.

An agent that stopped answering can be let go (:meth:`Failover.disconnect`: its sockets close,
nothing waits on it) and taken back when it answers again, restarted or not
(:meth:`Failover.rejoin`: connect anew, deploy its modules there again with the kept weights).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from agent import protocol as P
from agent.graph import holds_state
from agent.resolve import _match_agent
from agent.session import HELLO_TIMEOUT_S, AgentError, Conn, Session
from engine.description import NetworkDescription

log = logging.getLogger(__name__)

AgentRef = Any  # an address "tcp://...", an AgentInfo, an AgentClient, or a known id/name


class Failover:
    """The failover half of a deployment; the deployment provides the attributes named below."""

    id: str
    session: Session
    placement: dict[str, str]
    conns: dict[str, Conn]
    all_conns: dict[str, Conn]
    weights: dict[str, np.ndarray]
    fallbacks: list[str]
    failovers: list[dict[str, Any]]
    lost: set[str]
    description: NetworkDescription
    _watch: dict[tuple[str, ...], list[str]]
    place: Callable[..., None]

    def _agent_id(self, key: str) -> str:
        """The id of the agent of this deployment that ``key`` names (id, name, id prefix)."""
        return _match_agent(key, [c.info for c in self.all_conns.values()]).id

    def _stateful_on(self, agent: str) -> list[str]:
        """The modules placed on ``agent`` that hold recurrent state, sorted."""
        return sorted(m for m, a in self.placement.items()
                      if a == agent and holds_state(self.description.modules[m].type))

    def _let_go(self, conn: Conn) -> None:
        """Close ``conn`` unless the session already holds another one to its address."""
        if self.session.conns.get(conn.address) is conn:
            self.session.drop(conn)

    def _connect(self, agent: AgentRef, timeout: float | None = None) -> Conn:
        """The live connection to ``agent``: the one held, or a new one to its address (an
        address given, or an agent of this deployment that was let go: its sockets are
        closed). A new connection makes the agent live again (no longer in ``lost``)."""
        address = getattr(agent, "address", agent)
        if not (isinstance(address, str) and address.startswith("tcp://")):
            known = self.all_conns[self._agent_id(str(agent))]
            if known.info.id not in self.lost and self.session.conns.get(known.address) is known:
                return known
            address = known.address
        conn = self.session.connect(address, HELLO_TIMEOUT_S if timeout is None else timeout)
        self.all_conns[conn.info.id] = conn
        if conn.info.id in self.conns:  # an agent of the placement: forwards go through it
            self.conns[conn.info.id] = conn
        self.lost.discard(conn.info.id)
        return conn

    def connect(self, agent: AgentRef, timeout: float | None = None) -> Any:
        """Connect ``agent`` (an address, ``AgentInfo``, ``AgentClient``, or the id or name of
        one this deployment knows) so that a placement may use it, e.g. an agent that answers
        again at the address of one that failed over; an agent let go before is connected anew
        and live again. ``timeout`` bounds its answer. Returns its ``AgentInfo``."""
        return self._connect(agent, timeout).info

    def set_fallback(self, *agents: AgentRef) -> None:
        """Agents that take over the modules of an agent that is gone, tried in order (no
        argument: none). Each is an address, an ``AgentInfo``, an ``AgentClient`` or the id or
        name of an agent this deployment knows; it is connected to now."""
        self.fallbacks = [self._connect(a).info.id for a in agents]

    def fail_over(self, agent: str, resent: Sequence[str] = ()) -> dict[str, Any]:
        """Move every module of ``agent`` (gone) to the first live fallback, with the kept
        weights (its modules' recurrent state restarts from zeros); ``resent``: the samples in
        flight, to be sent again (their state updates on live agents are undone). Returns the
        record added to :attr:`failovers`."""
        t0 = time.monotonic()
        dead = self._agent_id(agent)
        label = self.all_conns[dead].label
        now, limit = time.monotonic(), self.session.gone_after
        live = [f for f in self.fallbacks if f != dead and f in self.all_conns
                and f not in self.lost and now - self.all_conns[f].last_seen <= limit]
        if not live:
            raise AgentError(f"{label} is gone and no live fallback agent is configured "
                             f"(fallbacks: {', '.join(self.fallbacks) or 'none'})", "gone",
                             agent=dead)
        to = live[0]
        modules = sorted(m for m, a in self.placement.items() if a == dead)
        reset = self._stateful_on(dead)
        self.place({m: (to if a == dead else a) for m, a in self.placement.items()}, gone={dead},
                   undo=resent)
        self.session.drop(self.all_conns.pop(dead))
        self.lost.discard(dead)  # forgotten: placements no longer name it
        record = {"agent": dead, "fallback": to, "modules": modules,
                  "redeploy_s": time.monotonic() - t0, "resent": 0, "time": time.time(),
                  "monotonic": t0, "state_reset": reset}
        self.failovers.append(record)
        log.warning("deployment %s: %s is gone; its %d module(s) now run on %s (redeployed in "
                    "%.0f ms)%s", self.id, label, len(modules), self.all_conns[to].label,
                    record["redeploy_s"] * 1e3,
                    f"; the state of {', '.join(reset)} was lost with it and restarts from "
                    f"zeros" if reset else "; no recurrent state lost")
        return record

    def disconnect(self, agent: str) -> None:
        """Let go of an agent that no longer answers; its modules stay placed on it. Its sockets
        close (a process that later takes its address is not reached through them, and no
        stale message of this session waits for it there), no request or forward waits on it
        and :meth:`undeploy` skips it. :meth:`rejoin` takes it back."""
        aid = self._agent_id(agent)
        self._let_go(self.all_conns[aid])
        self.lost.add(aid)

    def rejoin(self, agent: str, address: str | None = None, timeout: float | None = None
               ) -> dict[str, Any]:
        """Take back an agent that was gone (or let go) once one answers at its address again
        (``address``: where it answers now): connect anew and, unless it still holds its share
        of this deployment (it was frozen, not restarted), deploy its modules there again with
        the kept weights and tell the other agents where they are. An agent that restarted
        with another id takes the modules of the old one. ``timeout`` bounds each answer; on
        failure the agent stays let go. Returns ``{"agent", "was", "redeployed", "seconds",
        "state_reset"}``: the modules holding recurrent state that restart from zeros (those a
        restarted agent no longer holds; none when it was only frozen and kept its share)."""
        t0 = time.monotonic()
        old = self._agent_id(agent)
        before = self.all_conns[old]
        self._let_go(before)
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
        kept = set() if new != old else set(held.get(self.id) or ())  # modules it still held
        reset = [] if same else [m for m in self._stateful_on(new) if m not in kept]
        if reset:
            log.warning("deployment %s: %s restarted; the state of %s restarts from zeros",
                        self.id, conn.label, ", ".join(reset))
        return {"agent": new, "was": old, "redeployed": not same,
                "seconds": time.monotonic() - t0, "state_reset": reset}

    def _recover(self, exc: AgentError, resent: Sequence[str] = ()) -> dict[str, Any] | None:
        """Fail over when ``exc`` says an agent of this deployment is gone and a fallback is
        configured (``resent``: the samples to send again); None when the error is not one
        failover can mend."""
        if exc.code != "gone" or exc.agent not in self.conns or not self.fallbacks:
            return None
        return self.fail_over(exc.agent, resent)
