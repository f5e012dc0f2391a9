"""The placement planner's cost model and search, on plain indices (no descriptions, no I/O).

:class:`Problem` is a network reduced to numbers: modules ``0..n-1`` in topological order, each
with a forward time per agent, a memory need, the agents allowed to host it, its predecessors
with the bytes each edge carries, and the link costs between nodes (the agents, plus the client
that sends the input and receives the output). One model serves every placement:

* a module starts when its inputs have arrived and its agent is free (an agent runs one module
  at a time, in topological order); it takes its profiled forward time there;
* a tensor crossing from agent ``x`` to ``y`` waits for that link to be free, occupies it for
  ``bytes / bandwidth`` and arrives ``rtt / 2`` later; on one agent it costs nothing;
* latency is the time the last Output reaches the client; bytes is everything sent between
  nodes; the pipelined period (1 / throughput) is the busiest agent or link per sample.

The state is advanced one module at a time in topological order, so the same code scores a
full placement and extends a partial one in the branch-and-bound search.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

INF = math.inf


@dataclass
class Problem:
    """A placement problem on indices; built by ``app.planner``."""

    agents: list[str]
    comp: list[list[float]]            # comp[i][a]: forward seconds of module i on agent a
    mem: list[int]                     # bytes module i needs where it runs
    cap: list[float]                   # memory limit per agent
    domain: list[list[int]]            # agents allowed for module i
    preds: list[list[tuple[int, int]]]  # (predecessor, bytes on that edge)
    lat: list[list[float]]             # one-way latency between nodes (agents, then client)
    inv_bw: list[list[float]]          # seconds per byte between nodes
    in_bytes: dict[int, int] = field(default_factory=dict)   # Input i -> bytes from the client
    out_bytes: dict[int, int] = field(default_factory=dict)  # Output i -> bytes to the client
    client: int | None = None          # node index of the client (may be an agent's index)

    def __post_init__(self) -> None:
        self.n, self.k = len(self.comp), len(self.agents)
        self.succs: list[list[int]] = [[] for _ in range(self.n)]
        for i, ps in enumerate(self.preds):
            for j, _ in ps:
                self.succs[j].append(i)
        self.domain_sets = [frozenset(d) for d in self.domain]
        self.min_comp = [min((self.comp[i][a] for a in self.domain[i]), default=INF)
                         for i in range(self.n)]
        # tail[i]: the least compute that must still follow module i on any path (a bound).
        self.tail = [0.0] * self.n
        for i in reversed(range(self.n)):
            self.tail[i] = max((self.min_comp[s] + self.tail[s] for s in self.succs[i]),
                               default=0.0)
        # rest_min[i]: the least compute of the modules after i (a bound for throughput).
        after = list(itertools.accumulate(reversed(self.min_comp)))[::-1]
        self.rest_min = after[1:] + [0.0]
        self.is_chain = all(len(s) <= 1 for s in self.succs) and all(
            [j for j, _ in ps] == ([i - 1] if i else []) for i, ps in enumerate(self.preds))

    def send(self, x: int, y: int, nbytes: int) -> tuple[float, float]:
        """(seconds on the wire, latency) of ``nbytes`` from node ``x`` to node ``y``."""
        if x == y:
            return 0.0, 0.0
        return nbytes * self.inv_bw[x][y], self.lat[x][y]


class State:
    """A partial schedule: modules ``0..placed-1`` are placed and timed."""

    __slots__ = ("place", "finish", "avail", "wire_free", "load", "wire_load", "nbytes",
                 "mem", "latency", "bound")

    def __init__(self, p: Problem) -> None:
        self.place: list[int] = []
        self.finish: list[float] = []
        self.avail = [0.0] * p.k
        self.wire_free: dict[tuple[int, int], float] = {}
        self.load = [0.0] * p.k
        self.wire_load: dict[tuple[int, int], float] = {}
        self.nbytes = 0
        self.mem = [0] * p.k
        self.latency = 0.0
        self.bound = 0.0

    def copy(self) -> State:
        s = State.__new__(State)
        s.place, s.finish = self.place[:], self.finish[:]
        s.avail, s.load, s.mem = self.avail[:], self.load[:], self.mem[:]
        s.wire_free, s.wire_load = dict(self.wire_free), dict(self.wire_load)
        s.nbytes, s.latency, s.bound = self.nbytes, self.latency, self.bound
        return s

    def _transfer(self, p: Problem, x: int, y: int, nbytes: int, ready: float) -> float:
        """Send ``nbytes`` from node x to y once ``ready``; returns the arrival time."""
        if x == y:
            return ready
        wire, lat = p.send(x, y, nbytes)
        start = max(ready, self.wire_free.get((x, y), 0.0))
        self.wire_free[(x, y)] = start + wire
        self.wire_load[(x, y)] = self.wire_load.get((x, y), 0.0) + wire
        self.nbytes += nbytes
        return start + wire + lat

    def step(self, p: Problem, a: int, strict: bool = True) -> bool:
        """Place the next module on agent ``a``; False (when ``strict``) if the module may not
        run there or does not fit in its memory."""
        i = len(self.place)
        if strict and (a not in p.domain_sets[i] or self.mem[a] + p.mem[i] > p.cap[a]):
            return False
        self.mem[a] += p.mem[i]
        ready = 0.0
        if i in p.in_bytes and p.client is not None:
            ready = self._transfer(p, p.client, a, p.in_bytes[i], 0.0)
        for j, nbytes in p.preds[i]:
            ready = max(ready, self._transfer(p, self.place[j], a, nbytes, self.finish[j]))
        done = max(ready, self.avail[a]) + p.comp[i][a]
        self.avail[a] = done
        self.load[a] += p.comp[i][a]
        self.place.append(a)
        self.finish.append(done)
        end = done
        if i in p.out_bytes and p.client is not None:
            end = self._transfer(p, a, p.client, p.out_bytes[i], done)
        self.latency = max(self.latency, end)
        return True

    def period(self) -> float:
        return max(max(self.load), max(self.wire_load.values(), default=0.0))

    def value(self, objective: str) -> float:
        if objective == "latency":
            return self.latency
        if objective == "bytes":
            return float(self.nbytes)
        return self.period()


def evaluate(p: Problem, placement: list[int], strict: bool = True) -> State | None:
    """The full schedule of a placement (None, when ``strict``, if it breaks a constraint)."""
    st = State(p)
    for a in placement:
        if not st.step(p, a, strict):
            return None
    return st


# ----------------------------------------------------------------------- chain DP ----------

def chain_rest(p: Problem, objective: str) -> list[list[float]] | None:
    """For a chain and an additive objective, rest[i][a]: the least cost of modules after i
    (their compute, the edges from i on, the Output's trip to the client) with i on agent a.
    This is the exact dynamic programme (memory limits aside) and a bound for the search."""
    if not p.is_chain or objective == "throughput":
        return None
    timed = objective == "latency"
    rest = [[INF] * p.k for _ in range(p.n)]

    def edge(x: int, y: int, nbytes: int) -> float:
        if x == y:
            return 0.0
        wire, lat = p.send(x, y, nbytes)
        return wire + lat if timed else float(nbytes)

    for i in reversed(range(p.n)):
        for a in p.domain[i]:
            if i == p.n - 1:
                tail = 0.0
                if i in p.out_bytes and p.client is not None:
                    tail = edge(a, p.client, p.out_bytes[i])
                rest[i][a] = tail
                continue
            nxt, nbytes = i + 1, p.preds[i + 1][0][1]
            rest[i][a] = min((edge(a, b, nbytes) + (p.comp[nxt][b] if timed else 0.0)
                              + rest[nxt][b] for b in p.domain[nxt]), default=INF)
    return rest


def chain_placement(p: Problem, objective: str) -> list[int] | None:
    """The dynamic programme's optimum for a chain (memory limits not applied), else None."""
    rest = chain_rest(p, objective)
    if rest is None:
        return None
    st = State(p)
    for _ in range(p.n):
        options = []
        for a in p.domain[len(st.place)]:
            child = st.copy()
            child.step(p, a, strict=False)
            options.append((_bound(p, child, objective, rest), a, child))
        if not options:
            return None
        st = min(options, key=lambda o: o[:2])[2]
    return st.place


# ------------------------------------------------------------------ branch and bound -------

def _bound(p: Problem, st: State, objective: str, rest: list[list[float]] | None) -> float:
    i, a = len(st.place) - 1, st.place[-1]
    if objective == "latency":
        if rest is not None:  # rest[] of the last module is its trip to the client: counted
            return st.finish[i] + rest[i][a] if i < p.n - 1 else st.latency
        st.bound = max(st.bound, st.finish[i] + p.tail[i], st.latency)
        return st.bound
    if objective == "bytes":
        return st.nbytes + (rest[i][a] if rest is not None and i < p.n - 1 else 0.0)
    spread = (sum(st.load) + p.rest_min[i]) / p.k
    return max(st.period(), spread)


@dataclass
class SearchResult:
    placement: list[int] | None
    value: float
    nodes: int
    complete: bool  # True: the whole tree was searched or pruned, the answer is optimal


def branch_and_bound(p: Problem, objective: str, incumbent: list[int] | None = None,
                     budget: int = 50_000) -> SearchResult:
    """Exact search over placements in topological order, cheapest child first, pruning by
    an admissible bound; stops after ``budget`` expanded nodes (then not ``complete``)."""
    rest = chain_rest(p, objective)
    best_val, best = INF, None
    if incumbent is not None:
        st = evaluate(p, incumbent)
        if st is not None:
            best_val, best = st.value(objective), list(incumbent)
    nodes = 0
    stack: list[State] = [State(p)]
    while stack:
        if nodes >= budget:
            return SearchResult(best, best_val, nodes, False)
        st = stack.pop()
        nodes += 1
        children = []
        for a in p.domain[len(st.place)]:
            child = st.copy()
            if not child.step(p, a):
                continue
            lb = _bound(p, child, objective, rest)
            if lb >= best_val * (1 - 1e-12):
                continue
            if len(child.place) == p.n:
                best_val, best = child.value(objective), child.place
            else:
                children.append((lb, child))
        children.sort(key=lambda c: -c[0])  # the most promising one is popped first
        stack.extend(c for lb, c in children if lb < best_val)
    return SearchResult(best, best_val, nodes, True)


# ------------------------------------------------------------------------- heuristic ------

def greedy(p: Problem, objective: str) -> list[int] | None:
    """Earliest-finish (or least added cost) list scheduling in topological order."""
    st = State(p)
    for i in range(p.n):
        best = None
        for a in p.domain[i]:
            child = st.copy()
            if child.step(p, a):
                key = (child.value(objective), child.finish[i], child.latency)
                if best is None or key < best[0]:
                    best = (key, child)
        if best is None:
            return None
        st = best[1]
    return st.place


def local_search(p: Problem, objective: str, start: list[int], max_evals: int = 20_000,
                 max_run: int | None = None) -> tuple[list[int], float, int]:
    """First-improvement descent: move one module, or a run of consecutive modules (in
    topological order), to another agent; repeat until no move helps."""
    st = evaluate(p, start)
    if st is None:
        raise ValueError("local_search needs a feasible start")
    best, best_val, evals = list(start), st.value(objective), 0
    longest = p.n if max_run is None else max_run
    improved = True
    while improved and evals < max_evals:
        improved = False
        for length in range(1, longest + 1):
            for lo in range(0, p.n - length + 1):
                for a in range(p.k):
                    run = range(lo, lo + length)
                    if all(best[i] == a for i in run) or any(a not in p.domain[i] for i in run):
                        continue
                    cand = best[:lo] + [a] * length + best[lo + length:]
                    evals += 1
                    cst = evaluate(p, cand)
                    if cst is not None and cst.value(objective) < best_val * (1 - 1e-9):
                        best, best_val, improved = cand, cst.value(objective), True
            if evals >= max_evals:
                break
    return best, best_val, evals
