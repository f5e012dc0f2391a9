"""Automatic placement against real agents: profile, measure the links, plan.

:func:`plan_for_agents` asks every agent to profile the network on its own backend (``profile``
message, one agent at a time so they do not compete for the CPU), measures round-trip time and
bandwidth between this client and each agent and between every pair of agents on the data path
itself (:mod:`app.linkprobe`), then hands everything to the pure planner (:mod:`app.planner`).
The Deploy tab's "Auto place" button and ``dianne deploy MODEL --placement auto`` both call it;
the result is a placement ``{module uuid: agent id}`` ready for :func:`agent.client.deploy`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agent import protocol as P
from agent.client import AgentClient, AgentInfo, connect_all, deploy
from agent.session import AgentError, Session
from app.linkprobe import CLIENT, measure_links
from app.planner import Constraints, Links, PlacementModel, Plan
from engine.description import NetworkDescription, dumps_network
from engine.shapes import infer_shapes


@dataclass
class AutoPlan:
    """A plan for real agents, with what it was computed from."""

    plan: Plan
    model: PlacementModel
    profiles: dict[str, dict[str, Any]]
    links: Links
    names: dict[str, str]  # agent id -> name

    @property
    def placement(self) -> dict[str, str]:
        return self.plan.placement

    def to_json(self) -> dict[str, Any]:
        return {**self.plan.to_json(), "agents": self.names, "links": self.links.to_json()}


def _connect(session: Session, agents: Sequence[str | AgentInfo | AgentClient]) -> list:
    conns = connect_all(session, agents)  # an agent listed twice is profiled once
    if not conns:
        raise AgentError("automatic placement needs at least one agent. Received: none")
    return conns


def profile_agents(session: Session, conns: Sequence[Any], desc: NetworkDescription, *,
                   input_shape: Sequence[int] | None = None, repeat: int = 20,
                   warmup: int = 3, live: bool = True, budget_s: float = 20.0,
                   timeout: float = 600.0) -> dict[str, dict[str, Any]]:
    """Agent id -> that agent's module profiles, one agent at a time (so they do not compete
    for this machine's CPU when the agents share it).

    Each agent profiles the network (``profile``: bytes, and times from a tight loop); with
    ``live`` the network is then deployed on that agent alone and fed ``repeat`` samples one at
    a time (fewer when slow, about ``budget_s`` in all), and the module times observed in those
    real forwards replace the tight-loop ones: a module serving one sample at a time runs with
    colder caches, which is what a deployment will see."""
    text = dumps_network(desc)
    out = {}
    for conn in conns:
        # with live timing the tight-loop pass only has to give the byte counts
        msg = P.Message("profile", {"network": text, "repeat": 1 if live else repeat,
                                    "warmup": 0 if live else warmup,
                                    "input_shape": list(input_shape) if input_shape else None})
        out[conn.info.id] = session.request(conn, msg, timeout).content["modules"]
        if live:
            for mid, t in _live_times(session, conn, desc, input_shape, repeat, warmup,
                                      budget_s).items():
                out[conn.info.id][mid]["forward_s"] = t
    return out


def _live_times(session: Session, conn: Any, desc: NetworkDescription,
                input_shape: Sequence[int] | None, repeat: int, warmup: int,
                budget_s: float) -> dict[str, float]:
    shapes = infer_shapes(desc, tuple(input_shape) if input_shape else None)
    feeds = {m.id: np.zeros(shapes[m.id].out_shape, dtype=np.float32) for m in desc.inputs()}
    dep = deploy(desc, {}, dict.fromkeys(desc.modules, conn.info.id), [conn.info.address],
                 session=session)
    try:
        session.request(conn, P.Message("randomize", {"deployment": dep.id}))
        t0 = time.perf_counter()
        for _ in range(max(1, warmup)):
            dep.forward(feeds)
        each = (time.perf_counter() - t0) / max(1, warmup)
        times = P.Message("module_times", {"deployment": dep.id, "reset": True})
        session.request(conn, times)
        for _ in range(max(1, min(repeat, int(budget_s / max(each, 1e-6))))):
            dep.forward(feeds)
        got = session.request(conn, P.Message("module_times", {"deployment": dep.id}))
    finally:
        dep.undeploy()
    return {m: float(v["median_s"]) for m, v in got.content["modules"].items()}


def plan_for_agents(desc: NetworkDescription, agents: Sequence[str | AgentInfo | AgentClient],
                    *, objective: str = "latency", pins: Mapping[str, str] | None = None,
                    memory: Mapping[str, float] | None = None,
                    allowed: Mapping[str, Sequence[str]] | None = None,
                    input_shape: Sequence[int] | None = None, repeat: int = 20,
                    links: Links | None = None,
                    profiles: Mapping[str, dict[str, Any]] | None = None,
                    link_repeat: int = 10, session: Session | None = None,
                    budget: int = 50_000) -> AutoPlan:
    """Profile ``desc`` on ``agents`` (addresses, infos or clients) and measure the links,
    unless ``profiles`` (agent id -> module profiles) or ``links`` (keyed by agent id and
    ``"client"``) are given, then plan. ``pins``, ``memory`` and ``allowed`` name agents by id
    or name; memory defaults to what each agent reports."""
    own = session is None
    session = session or Session()
    try:
        conns = _connect(session, agents)
        infos = [c.info for c in conns]
        names = {i.id: i.name for i in infos}
        profiles = dict(profiles) if profiles is not None else profile_agents(
            session, conns, desc, input_shape=input_shape, repeat=repeat)
        links = links or measure_links(session, conns, repeat=link_repeat)
    finally:
        if own:
            session.close()
    ids = _agent_ids(infos)
    caps = {i.id: float(i.memory) for i in infos if i.memory > 0}
    caps.update({ids(a): float(v) for a, v in (memory or {}).items()})
    cons = Constraints(memory=caps, pins={m: ids(a) for m, a in (pins or {}).items()},
                       allowed={ids(a): list(v) for a, v in (allowed or {}).items()})
    model = PlacementModel(desc, profiles, links, constraints=cons, client=CLIENT)
    return AutoPlan(model.plan(objective, budget), model, profiles, links, names)


def _agent_ids(infos: Sequence[AgentInfo]) -> Any:
    from agent.client import _match_agent  # noqa: PLC0415  (one matching rule for all)

    return lambda key: _match_agent(key, infos).id


def format_plan(auto: AutoPlan) -> str:
    """A few lines for a terminal: the chosen placement, its prediction, the alternatives."""
    plan, model, names = auto.plan, auto.model, auto.names
    pred = plan.prediction
    lines = [f"objective {plan.objective}: {plan.method}"
             f"{' (exact)' if plan.exact else ' (heuristic)'}",
             f"chosen: {_named(model.describe(pred.placement), names)}: predicted "
             f"{pred.latency_s * 1e3:.2f} ms, {pred.bytes_sent} bytes sent, "
             f"{pred.throughput:.1f} samples/s"]
    for label, alt in plan.alternatives.items():
        note = "" if alt.feasible else f" (infeasible: {alt.problems[0]})"
        lines.append(f"  {_named(label, names):<16} {alt.latency_s * 1e3:10.2f} ms{note}")
    return "\n".join(lines)


def _named(text: str, names: Mapping[str, str]) -> str:
    for aid, name in names.items():
        text = text.replace(aid, name)
    return text

