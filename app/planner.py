"""Automatic placement: which agent runs which module, from profiles and link models.

Pure: a :class:`~engine.description.NetworkDescription`, per-agent module profiles (what
:func:`engine.profiling.profile_modules` returns, measured on each agent), link models
(round-trip time and bandwidth between agents and the client) and constraints (memory per agent
for weights and activations, modules allowed per agent, pins ``module -> agent``) go in; a
placement ``{module uuid: agent}`` and its predicted latency come out. Nothing is measured,
deployed or printed here.

Objectives: ``latency`` (one sample, end to end, client to client), ``bytes`` (sent between
nodes) and ``throughput`` (a pipelined stream: the busiest agent or link decides). Chains are
solved exactly by dynamic programming; other graphs (forks and joins) exactly by
branch-and-bound while the search stays within a node budget, else by list scheduling plus
local search. :func:`predict` scores any placement with the same model (the cost model is
described in :mod:`app.planner_search`), :func:`alternatives` the obvious ones (all local, all
on the fastest agent, all on each agent).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.planner_search import (
    Problem,
    branch_and_bound,
    chain_placement,
    evaluate,
    greedy,
    local_search,
)
from engine.description import NetworkDescription
from engine.errors import DianneError
from engine.modules import REGISTRY
from engine.topology import cut_recurrent, link, topological_order

OBJECTIVES = ("latency", "bytes", "throughput")
Profiles = Mapping[str, Mapping[str, Mapping[str, Any]]]


class PlacementError(DianneError):
    """No placement satisfies the constraints, or the planner's inputs are inconsistent."""


@dataclass(frozen=True)
class Link:
    """A network link: round-trip time (seconds) and bandwidth (bytes per second)."""

    rtt: float = 0.0
    bandwidth: float = math.inf

    @classmethod
    def mbit(cls, mbit_per_s: float, rtt_ms: float = 0.0) -> Link:
        return cls(rtt_ms / 1000.0, mbit_per_s * 1e6 / 8.0)

    def transfer_s(self, nbytes: int) -> float:
        """Seconds from the first byte sent to the last byte received."""
        return self.rtt / 2.0 + nbytes / self.bandwidth

    def to_json(self) -> dict[str, float | None]:
        return {"rtt": self.rtt, "bandwidth": None if math.isinf(self.bandwidth)
                else self.bandwidth}


class Links:
    """Link models between nodes: given pairs (a pair given one way holds both ways), else
    ``default``. A node to itself costs nothing."""

    def __init__(self, pairs: Mapping[tuple[str, str], Link] | None = None,
                 default: Link | None = None) -> None:
        self.pairs = dict(pairs or {})
        self.default = default

    def get(self, x: str, y: str) -> Link:
        if x == y:
            return Link()
        found = self.pairs.get((x, y)) or self.pairs.get((y, x)) or self.default
        if found is None:
            raise PlacementError(f"no link model between {x!r} and {y!r} (and no default). "
                                 f"Received: {sorted(self.pairs)}")
        return found

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Links:
        """``{"default": {"rtt": s, "bandwidth": B/s}, "a,b": {...}}``."""
        def one(key: str, v: Any) -> Link:
            if not isinstance(v, Mapping) or not set(v) <= {"rtt", "bandwidth"}:
                raise PlacementError(f"link {key!r} must be an object with 'rtt' (s) and "
                                     f"'bandwidth' (bytes/s). Received: {v!r}")
            bw = v.get("bandwidth")
            return Link(float(v.get("rtt") or 0.0), math.inf if bw is None else float(bw))
        pairs = {}
        for key, v in obj.items():
            if key != "default":
                a, sep, b = key.partition(",")
                if not sep:
                    raise PlacementError(f"a link key is 'A,B' or 'default'. Received: {key!r}")
                pairs[(a.strip(), b.strip())] = one(key, v)
        default = one("default", obj["default"]) if "default" in obj else None
        return cls(pairs, default)

    def to_json(self) -> dict[str, Any]:
        out = {f"{a},{b}": ln.to_json() for (a, b), ln in self.pairs.items()}
        if self.default is not None:
            out["default"] = self.default.to_json()
        return out


@dataclass
class Constraints:
    """``memory``: agent -> bytes for weights + activations; ``allowed``: agent -> module
    uuids, names or types it may host (absent: any); ``pins``: module uuid or name -> agent."""

    memory: dict[str, float] = field(default_factory=dict)
    allowed: dict[str, Sequence[str]] = field(default_factory=dict)
    pins: dict[str, str] = field(default_factory=dict)


@dataclass
class Prediction:
    """What the model predicts for one placement."""

    placement: dict[str, str]
    latency_s: float
    bytes_sent: int
    period_s: float
    compute_s: dict[str, float]
    memory: dict[str, int]
    problems: list[str] = field(default_factory=list)

    @property
    def feasible(self) -> bool:
        return not self.problems

    @property
    def throughput(self) -> float:
        return 1.0 / self.period_s if self.period_s > 0 else math.inf

    def value(self, objective: str) -> float:
        return {"latency": self.latency_s, "bytes": float(self.bytes_sent),
                "throughput": self.period_s}[objective]

    def to_json(self) -> dict[str, Any]:
        return {"placement": self.placement, "latency_ms": self.latency_s * 1e3,
                "bytes_sent": self.bytes_sent, "throughput": self.throughput,
                "compute_ms": {a: t * 1e3 for a, t in self.compute_s.items()},
                "memory": self.memory, "feasible": self.feasible, "problems": self.problems}


@dataclass
class Plan:
    """The chosen placement, how it was found, and the alternatives for comparison."""

    objective: str
    method: str  # "dp", "search" (both exact) or "heuristic"
    exact: bool
    prediction: Prediction
    alternatives: dict[str, Prediction]
    nodes: int = 0

    @property
    def placement(self) -> dict[str, str]:
        return self.prediction.placement

    @property
    def predicted_s(self) -> float:
        return self.prediction.latency_s

    def to_json(self) -> dict[str, Any]:
        return {"objective": self.objective, "method": self.method, "exact": self.exact,
                "nodes": self.nodes, **self.prediction.to_json(),
                "alternatives": {k: v.to_json() for k, v in self.alternatives.items()}}


# ------------------------------------------------------------------------ the model -------

def _order(desc: NetworkDescription) -> tuple[list[str], dict[str, list[str]]]:
    """Topological order and predecessors, the edges into recurrent modules (Memory) cut as the
    executor and the agents cut them: a Memory emits at the start of a sample, and the state it
    takes after the pass is off that sample's path (not in the cost model: with the one sample
    at a time that agents run such networks, a producer and Memory apart add one hop to the
    time between samples, not to a sample's latency)."""
    succ, pred, dangling = link(desc)
    if dangling:
        mid, side, missing = dangling[0]
        raise PlacementError(f"{desc.name}: module {mid}: {side} {missing} is not a module of "
                             f"this network. Received: {missing}")
    kinds = {m: REGISTRY.get(md.type) for m, md in desc.modules.items()}
    cut_recurrent({m: k for m, k in kinds.items() if k is not None}, pred)
    order = topological_order(list(desc.modules), succ, pred)
    if len(order) != len(desc.modules):
        raise PlacementError(f"{desc.name}: the network has a cycle that no Memory module "
                             f"breaks; it cannot be placed. Received: "
                             f"{len(desc.modules) - len(order)} modules on a cycle")
    return order, pred


class PlacementModel:
    """One network, its profiles, links, constraints and client, compiled once: scores any
    placement (:meth:`predict`), the obvious ones (:meth:`alternatives`), finds the best
    (:meth:`plan`). ``client`` is the node that sends the input and receives the outputs: an
    agent's name (the client runs there), another node with link models, or None (not
    modelled)."""

    def __init__(self, desc: NetworkDescription, profiles: Profiles, links: Links | None = None,
                 *, constraints: Constraints | None = None, client: str | None = None) -> None:
        self.desc, self.client = desc, client
        cons = self.constraints = constraints or Constraints()
        self.agents = agents = list(profiles)
        self._check_agents()
        self.order, pred = _order(desc)
        pos = {m: i for i, m in enumerate(self.order)}
        for a in agents:
            missing = [m for m in self.order if m not in profiles[a]]
            if missing:
                raise PlacementError(f"the profile of agent {a!r} lacks {self.label(missing[0])}"
                                     f" ({len(missing)} modules missing). Received: "
                                     f"{len(profiles[a])} profiled modules")
        ref = profiles[agents[0]]
        comp = [[float(profiles[a][m]["forward_s"]) for a in agents] for m in self.order]
        mem = [int(ref[m]["param_bytes"]) + int(ref[m]["out_bytes"]) for m in self.order]
        preds = [[(pos[p], int(ref[p].get("next_bytes", {}).get(m, ref[p]["out_bytes"])))
                  for p in pred[m]] for m in self.order]
        cap = [float(cons.memory.get(a, math.inf)) for a in agents]
        self.pins = {desc.module(k).id: a for k, a in cons.pins.items()}
        self.allowed = {a: self._allowed_ids(a, e) for a, e in cons.allowed.items()}
        domain, self.blocked = [], []
        for i, m in enumerate(self.order):
            dom = [k for k, a in enumerate(agents) if not self._why_not(m, a, mem[i], cap[k])]
            if not dom:
                self.blocked.append(f"no agent can host {self.label(m)}: " + "; ".join(
                    self._why_not(m, a, mem[i], cap[k]) for k, a in enumerate(agents)))
            domain.append(dom)
        nodes = agents + ([client] if client is not None and client not in agents else [])
        grid = [[(links or Links(default=Link())).get(x, y) for y in nodes] for x in nodes]
        kinds = {i: (desc.modules[m].type, int(ref[m]["out_bytes"]))
                 for i, m in enumerate(self.order)}
        self.problem = Problem(
            agents, comp, mem, cap, domain, preds,
            [[ln.rtt / 2.0 for ln in row] for row in grid],
            [[1.0 / ln.bandwidth for ln in row] for row in grid],
            {i: b for i, (t, b) in kinds.items() if t == "Input"},
            {i: b for i, (t, b) in kinds.items() if t == "Output"},
            None if client is None else nodes.index(client))

    # ----------------------------------------------------------------- helpers
    def label(self, mid: str) -> str:
        md = self.desc.modules[mid]
        return f"{md.type} '{md.name}' ({mid})" if md.name != md.type else f"{md.type} ({mid})"

    def _check_agents(self) -> None:
        if not self.agents:
            raise PlacementError("no agent profiles given; profile the network on at least "
                                 "one agent. Received: {}")
        cons = self.constraints
        for what, keys in (("memory", cons.memory), ("allowed", cons.allowed),
                           ("pin", cons.pins.values())):
            for a in keys:
                if a not in self.agents:
                    raise PlacementError(f"{what}: unknown agent {a!r} (agents: "
                                         f"{', '.join(self.agents)}). Received: {a!r}")

    def _allowed_ids(self, agent: str, entries: Sequence[str]) -> set[str]:
        ids: set[str] = set()
        for entry in entries:
            hit = {m.id for m in self.desc.modules.values() if entry in (m.id, m.name, m.type)}
            if not hit and entry not in REGISTRY:
                raise PlacementError(f"allowed modules of {agent!r}: {entry!r} is no module "
                                     f"uuid, name or type of {self.desc.name}. Received: "
                                     f"{entry!r}")
            ids |= hit
        return ids

    def _why_not(self, m: str, agent: str, need: int, cap: float) -> str:
        """Why module ``m`` may not run on ``agent`` ('' when it may)."""
        if self.pins.get(m, agent) != agent:
            return f"{agent!r}: it is pinned to {self.pins[m]!r}"
        if agent in self.allowed and m not in self.allowed[agent]:
            return f"{agent!r}: not in its allowed modules"
        if need > cap:
            return f"{agent!r}: it needs {need} bytes, over the limit {int(cap)}"
        return ""

    def _indices(self, placement: Mapping[str, str]) -> list[int]:
        given = {self.desc.module(k).id: a for k, a in placement.items()}
        out = []
        for m in self.order:
            if m not in given:
                raise PlacementError(f"the placement does not place {self.label(m)}. "
                                     f"Received: {len(given)} modules placed")
            if given[m] not in self.agents:
                raise PlacementError(f"{self.label(m)} is placed on {given[m]!r}, which has no "
                                     f"profile (agents: {', '.join(self.agents)}). Received: "
                                     f"{given[m]!r}")
            out.append(self.agents.index(given[m]))
        return out

    def _prediction(self, placement: list[int]) -> Prediction:
        p, agents = self.problem, self.agents
        st = evaluate(p, placement, strict=False)
        assert st is not None  # not strict: every placement has a schedule
        problems = [f"{self.label(self.order[i])} on "
                    + self._why_not(self.order[i], agents[a], p.mem[i], p.cap[a])
                    for i, a in enumerate(placement) if a not in p.domain[i]]
        problems += [f"{agents[a]!r} needs {used} bytes, over its limit {int(p.cap[a])}"
                     for a, used in enumerate(st.mem) if used > p.cap[a]]
        return Prediction({m: agents[a] for m, a in zip(self.order, placement, strict=True)},
                          st.latency, st.nbytes, st.period(),
                          {a: st.load[k] for k, a in enumerate(agents)},
                          {a: st.mem[k] for k, a in enumerate(agents)}, problems)

    def _uniform(self, k: int) -> list[int]:
        """Everything on agent ``k`` except the pinned modules."""
        return [self.agents.index(self.pins[m]) if m in self.pins else k for m in self.order]

    # ----------------------------------------------------------------- API
    def predict(self, placement: Mapping[str, str]) -> Prediction:
        """Latency, bytes and throughput of any placement ``{module uuid or name: agent}``;
        constraint violations are listed in ``problems``, not raised."""
        return self._prediction(self._indices(placement))

    def alternatives(self) -> dict[str, Prediction]:
        """``all local`` (on the client's agent, else where an Input is pinned), ``all on
        fastest`` (least total forward time) and ``all on AGENT`` for each agent; pinned
        modules stay where they are pinned in each."""
        each = {a: self._prediction(self._uniform(k)) for k, a in enumerate(self.agents)}
        out: dict[str, Prediction] = {}
        inputs = [m for m in self.order if self.desc.modules[m].type == "Input"]
        local = self.client if self.client in each else next(
            (self.pins[m] for m in inputs if m in self.pins), None)
        if local is not None:
            out["all local"] = each[local]
        comp = self.problem.comp
        fastest = min(range(len(self.agents)), key=lambda k: sum(row[k] for row in comp))
        out["all on fastest"] = each[self.agents[fastest]]
        out.update({f"all on {a}": pred for a, pred in each.items()})
        return out

    def plan(self, objective: str = "latency", budget: int = 50_000) -> Plan:
        """The best placement for ``objective``; ``budget`` bounds the exact search (nodes
        expanded) before the heuristic answer is kept."""
        if objective not in OBJECTIVES:
            raise PlacementError(f"objective must be one of {', '.join(OBJECTIVES)}. "
                                 f"Received: {objective!r}")
        if self.blocked:
            raise PlacementError(self.blocked[0])
        p = self.problem
        alts = self.alternatives()
        dp = chain_placement(p, objective)
        if dp is not None and evaluate(p, dp) is not None:
            return Plan(objective, "dp", True, self._prediction(dp), alts)
        scored = [(st.value(objective), s) for s in
                  [dp, greedy(p, objective), *(self._uniform(k) for k in range(p.k))]
                  if s is not None and (st := evaluate(p, s)) is not None]
        incumbent = None
        if scored:
            # runs of any length on small graphs; past 40 modules runs of up to 8 keep the
            # descent to seconds
            incumbent, _, _ = local_search(p, objective, min(scored)[1],
                                           max_run=None if p.n <= 40 else 8)
        result = branch_and_bound(p, objective, incumbent, budget)
        if result.placement is None:
            limits = ", ".join(f"{a}: {int(cap) if cap < math.inf else 'unlimited'}"
                               for a, cap in zip(self.agents, p.cap, strict=True))
            what = "no placement satisfies" if result.complete else (
                f"no placement found within the search budget ({budget} nodes) satisfies")
            raise PlacementError(f"{self.desc.name}: {what} the constraints: the modules "
                                 f"need {sum(p.mem)} bytes in all; memory limits {limits}. "
                                 f"Received: {len(self.pins)} pins")
        return Plan(objective, "search" if result.complete else "heuristic", result.complete,
                    self._prediction(result.placement), alts, result.nodes)

    def split_placements(self, agents: Sequence[str] | None = None) -> list[dict[str, str]]:
        """Every placement cutting the topological order into consecutive runs, one per agent
        in the order given (runs may be empty) and respecting the pins: a chain's split
        points."""
        agents = list(agents or self.agents)
        n, found = len(self.order), []
        for cuts in itertools.combinations_with_replacement(range(n + 1), len(agents) - 1):
            bounds = [0, *cuts, n]
            cand = [agents[k] for k in range(len(agents))
                    for _ in range(bounds[k + 1] - bounds[k])]
            if all(self.pins.get(m, a) == a for m, a in zip(self.order, cand, strict=True)):
                found.append(dict(zip(self.order, cand, strict=True)))
        return found

    def describe(self, placement: Mapping[str, str]) -> str:
        """The runs in topological order, e.g. ``device x5 -> server x9``."""
        runs: list[list[Any]] = []
        for m in self.order:
            if runs and runs[-1][0] == placement[m]:
                runs[-1][1] += 1
            else:
                runs.append([placement[m], 1])
        return " -> ".join(f"{a} x{n}" for a, n in runs)


def plan(desc: NetworkDescription, profiles: Profiles, links: Links | None = None, *,
         constraints: Constraints | None = None, objective: str = "latency",
         client: str | None = None, budget: int = 50_000) -> Plan:
    """The best placement of ``desc`` (see :class:`PlacementModel`)."""
    model = PlacementModel(desc, profiles, links, constraints=constraints, client=client)
    return model.plan(objective, budget)


def predict(desc: NetworkDescription, profiles: Profiles, links: Links | None,
            placement: Mapping[str, str], *, constraints: Constraints | None = None,
            client: str | None = None) -> Prediction:
    """The model's prediction for one placement (see :meth:`PlacementModel.predict`)."""
    model = PlacementModel(desc, profiles, links, constraints=constraints, client=client)
    return model.predict(placement)
