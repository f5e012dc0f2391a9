"""The placement planner against brute force: chains (dynamic programme), fork/join graphs
(exact search), every objective, memory limits, allowed lists and pins; the cost model against
a schedule worked out by hand; infeasible problems give one clear error."""

from __future__ import annotations

import itertools
import random

import pytest

from app.planner import (
    Constraints,
    Link,
    Links,
    PlacementError,
    PlacementModel,
    plan,
    predict,
)
from engine.builder import NetworkBuilder
from engine.description import read_network
from engine.profiling import profile_modules
from tests.conftest import ROOT

AGENTS = ["device", "edge", "server"]
REL = 1e-9


def _chain(n: int) -> NetworkBuilder:
    b = NetworkBuilder("chain")
    ids = [b.add("Input", dims="4")] + [b.add("Linear") for _ in range(n)] + [b.add("Output")]
    b.chain(*ids)
    return b


def _dag(rng: random.Random, n: int) -> NetworkBuilder:
    """Input, n inner modules each fed by one or two earlier ones, one Output: forks
    (Duplicate, Split) and joins (Concat) wherever the random edges put them."""
    b = NetworkBuilder("dag")
    ids = [b.add("Input", dims="4")]
    prevs: list[list[int]] = []
    for i in range(1, n + 1):
        prevs.append(sorted(rng.sample(range(i), min(i, rng.choice([1, 1, 2])))))
    fanout = [sum(j in p for p in prevs) for j in range(n + 1)]
    for ps in prevs:
        kind = "Concat" if len(ps) > 1 else "Linear"
        ids.append(b.add(kind, dim=0) if kind == "Concat" else b.add(kind))
    for j in range(n + 1):  # a module feeding several becomes a fork
        if fanout[j] > 1 and j > 0:
            md = b._modules[ids[j]]
            md.type = "Split" if rng.random() < 0.5 and md.type == "Linear" else md.type
    out = b.add("Output")
    for i, ps in enumerate(prevs, 1):
        for j in ps:
            b.connect(ids[j], ids[i])
    for j in range(n + 1):
        if not any(j in p for p in prevs):
            b.connect(ids[j], out)
    if len(b._modules[out].prev) > 1:  # the Output takes one input: join first
        join = b.add("Concat", dim=0)
        for p in list(b._modules[out].prev):
            b._modules[p].next.remove(out)
            b.connect(p, join)
        b._modules[out].prev.clear()
        b.connect(join, out)
    return b


def _profiles(rng: random.Random, desc, agents=AGENTS) -> dict:
    speed = {a: rng.uniform(0.2, 3.0) for a in agents}
    base = {}
    for mid, md in desc.modules.items():
        out = rng.randint(100, 200_000)
        nxt = {s: (rng.randint(50, 100_000) if md.type == "Split" else out) for s in md.next}
        base[mid] = {"forward_s": rng.uniform(1e-5, 4e-3), "out_bytes": out,
                     "param_bytes": rng.randint(0, 300_000), "next_bytes": nxt}
    return {a: {m: dict(p, forward_s=p["forward_s"] * speed[a] * rng.uniform(0.8, 1.25))
                for m, p in base.items()} for a in agents}


def _links(rng: random.Random, agents=AGENTS, client: str = "client") -> Links:
    nodes = agents + [client]
    pairs = {(x, y): Link.mbit(rng.choice([1, 10, 100, 1000]), rng.uniform(0.1, 20))
             for x, y in itertools.combinations(nodes, 2)}
    pairs[("client", "device")] = Link(50e-6, 1e9)
    return Links(pairs)


def _brute(model: PlacementModel) -> dict[str, float]:
    """The best feasible value per objective over every placement of every module."""
    best = {"latency": float("inf"), "bytes": float("inf"), "throughput": float("inf")}
    domains = [[a for a in model.agents if model.pins.get(m, a) == a] for m in model.order]
    for combo in itertools.product(*domains):
        pred = model.predict(dict(zip(model.order, combo, strict=True)))
        if pred.feasible:
            for obj in best:
                best[obj] = min(best[obj], pred.value(obj))
    return best


def _check_against_brute(model: PlacementModel, methods: set[str]) -> None:
    best = _brute(model)
    for obj, value in best.items():
        chosen = model.plan(obj)
        assert chosen.method in methods, (obj, chosen.method)
        assert chosen.prediction.feasible, chosen.prediction.problems
        assert chosen.exact
        assert chosen.prediction.value(obj) == pytest.approx(value, rel=REL), obj
        for m, a in model.pins.items():
            assert chosen.placement[m] == a


@pytest.mark.parametrize("seed", range(6))
def test_chains_match_brute_force(seed):
    rng = random.Random(seed)
    desc = _chain(rng.randint(3, 6)).build()
    model = PlacementModel(desc, _profiles(rng, desc), _links(rng),
                           constraints=Constraints(pins={"Input": "device"}), client="client")
    best = _brute(model)
    for obj in ("latency", "bytes"):
        chosen = model.plan(obj)
        assert chosen.method == "dp"
        assert chosen.prediction.value(obj) == pytest.approx(best[obj], rel=REL)
    chosen = model.plan("throughput")  # a min-max objective: searched, still exact
    assert chosen.method == "search" and chosen.exact
    assert chosen.prediction.period_s == pytest.approx(best["throughput"], rel=REL)


@pytest.mark.parametrize("seed", range(8))
def test_fork_join_graphs_match_brute_force(seed):
    rng = random.Random(100 + seed)
    desc = _dag(rng, rng.randint(4, 6)).build()
    assert any(len(m.prev) > 1 for m in desc.modules.values())  # a real join is in there
    model = PlacementModel(desc, _profiles(rng, desc), _links(rng),
                           constraints=Constraints(pins={"Input": "device"}), client="client")
    _check_against_brute(model, {"search", "dp"})


@pytest.mark.parametrize("seed", range(4))
def test_memory_limits_and_allowed_lists_are_respected(seed):
    rng = random.Random(200 + seed)
    desc = _dag(rng, 5).build()
    profiles = _profiles(rng, desc)
    ref = profiles["device"]
    need = sum(p["param_bytes"] + p["out_bytes"] for p in ref.values())
    biggest = max(p["param_bytes"] + p["out_bytes"] for p in ref.values())
    memory = {"device": need * 0.3, "server": max(need * 0.45, biggest)}
    heavy = max(ref, key=lambda m: ref[m]["param_bytes"])
    allowed = {"edge": [m for m in desc.modules if m != heavy]}
    cons = Constraints(memory=memory, allowed=allowed, pins={"Input": "device"})
    model = PlacementModel(desc, profiles, _links(rng), constraints=cons, client="client")
    for obj in ("latency", "bytes", "throughput"):
        chosen = model.plan(obj)
        assert chosen.prediction.feasible
        used = chosen.prediction.memory
        assert used["device"] <= memory["device"] and used["server"] <= memory["server"]
        assert chosen.placement[heavy] != "edge"
    _check_against_brute(model, {"search", "dp"})
    # the unconstrained optimum is at least as good
    free = PlacementModel(desc, profiles, model_links(model), client="client")
    assert free.plan("latency").predicted_s <= model.plan("latency").predicted_s * (1 + REL)


def model_links(model: PlacementModel) -> Links:
    p, nodes = model.problem, model.agents + ["client"]
    return Links({(x, y): Link(2 * p.lat[i][j], 1 / p.inv_bw[i][j] if p.inv_bw[i][j] else
                               float("inf"))
                  for (i, x), (j, y) in itertools.combinations(enumerate(nodes), 2)})


def test_memory_limit_on_a_chain_is_searched_exactly():
    rng = random.Random(7)
    desc = _chain(6).build()
    profiles = _profiles(rng, desc, ["device", "server"])
    links = Links(default=Link.mbit(100, 2))
    free = PlacementModel(desc, profiles, links, client="device").plan("latency")
    busiest = max(free.prediction.memory, key=free.prediction.memory.__getitem__)
    limit = free.prediction.memory[busiest] * 0.6  # the free optimum no longer fits
    cons = Constraints(memory={busiest: limit})
    model = PlacementModel(desc, profiles, links, constraints=cons, client="device")
    chosen = model.plan("latency")
    assert chosen.method == "search" and chosen.prediction.feasible
    assert chosen.prediction.memory[busiest] <= limit
    assert chosen.predicted_s > free.predicted_s
    assert chosen.predicted_s == pytest.approx(_brute(model)["latency"], rel=REL)


def test_heuristic_beyond_the_search_budget_is_close():
    ratios = []
    for seed in range(5):
        rng = random.Random(300 + seed)
        desc = _dag(rng, 6).build()
        model = PlacementModel(desc, _profiles(rng, desc), _links(rng),
                               constraints=Constraints(pins={"Input": "device"}),
                               client="client")
        chosen = model.plan("latency", budget=0)
        assert chosen.method == "heuristic" and not chosen.exact
        assert chosen.prediction.feasible
        alts = [p.latency_s for p in model.alternatives().values() if p.feasible]
        assert chosen.predicted_s <= min(alts) * (1 + REL)
        ratios.append(chosen.predicted_s / _brute(model)["latency"])
    assert max(ratios) <= 1.10, ratios


def test_model_matches_a_schedule_worked_by_hand():
    # Input -> Duplicate -> (A on device, B on server) -> Concat on device -> Output
    b = NetworkBuilder("fj")
    i, d = b.add("Input", dims="4"), b.add("Duplicate")
    la, lb, c, o = b.add("Linear"), b.add("Linear"), b.add("Concat", dim=0), b.add("Output")
    b.chain(i, d)
    b.connect(d, la).connect(d, lb).connect(la, c).connect(lb, c).connect(c, o)
    desc = b.build()
    t = {i: 1e-3, d: 0.0, la: 5e-3, lb: 2e-3, c: 1e-3, o: 0.0}
    nbytes = {i: 1000, d: 1000, la: 500, lb: 250, c: 750, o: 750}
    prof = {m: {"forward_s": t[m], "out_bytes": nbytes[m], "param_bytes": 0}
            for m in desc.modules}
    profiles = {"device": prof, "server": {m: dict(p, forward_s=p["forward_s"] / 2)
                                           for m, p in prof.items()}}
    links = Links({("device", "server"): Link(rtt=4e-3, bandwidth=1e6),
                   ("client", "device"): Link(rtt=2e-3, bandwidth=1e6),
                   ("client", "server"): Link(rtt=1.0, bandwidth=1.0)})
    placement = {i: "device", d: "device", la: "device", lb: "server", c: "device",
                 o: "device"}
    pred = predict(desc, profiles, links, placement, client="client")
    # client->device: 1 ms + 1000 B at 1 MB/s = 2 ms; Input 1 ms -> 3 ms; Duplicate -> 3 ms
    # A on device: 3..8 ms. B: sent at 3 ms, 1 ms wire + 2 ms half-rtt -> 6 ms, runs 1 ms
    # -> 7 ms, back 0.25 ms wire + 2 ms -> 9.25 ms. Concat 9.25..10.25 ms; Output 10.25 ms;
    # to the client 0.75 ms wire + 1 ms -> 12 ms.
    assert pred.latency_s == pytest.approx(12e-3, rel=1e-9)
    assert pred.bytes_sent == 1000 + 1000 + 250 + 750
    assert pred.compute_s == pytest.approx({"device": 7e-3, "server": 1e-3})
    # busiest resource per sample: the device's 7 ms of compute
    assert pred.period_s == pytest.approx(7e-3) and pred.throughput == pytest.approx(1 / 7e-3)


def test_alternatives_keep_pins_and_name_local_and_fastest():
    desc = read_network(ROOT / "resources" / "examples" / "mnist-mlp")
    prof = profile_modules(desc, repeat=3)
    profiles = {"device": {m: dict(p, forward_s=p["forward_s"] * 8) for m, p in prof.items()},
                "server": prof}
    links = Links(default=Link.mbit(1, 20))
    cons = Constraints(pins={"Input": "device"})
    chosen = plan(desc, profiles, links, constraints=cons, client="device")
    alts = chosen.alternatives
    assert set(alts["all local"].placement.values()) == {"device"}
    inp = desc.inputs()[0].id
    assert alts["all on fastest"].placement[inp] == "device"
    assert set(alts["all on fastest"].placement.values()) == {"device", "server"}
    assert alts["all on fastest"] is alts["all on server"]
    # on a 1 Mbit/s link shipping the 3 KB image costs more than the device's slowness
    assert chosen.predicted_s <= min(p.latency_s for p in alts.values()) * (1 + REL)
    assert chosen.placement == alts["all local"].placement
    splits = PlacementModel(desc, profiles, links, constraints=cons).split_placements()
    assert len(splits) == len(desc.modules)  # the Input's pin leaves n split points


def test_infeasible_problems_give_clear_errors():
    desc = _chain(3).build()
    rng = random.Random(1)
    profiles = _profiles(rng, desc, ["device", "server"])
    total = sum(p["param_bytes"] + p["out_bytes"] for p in profiles["device"].values())
    biggest = max(p["param_bytes"] + p["out_bytes"] for p in profiles["device"].values())
    tight = Constraints(memory={"device": biggest, "server": biggest})
    if 2 * biggest < total:
        with pytest.raises(PlacementError, match="no placement satisfies the constraints"):
            plan(desc, profiles, constraints=tight)
    lin = next(m for m in desc.modules.values() if m.type == "Linear")
    clash = Constraints(pins={lin.id: "device"}, allowed={"device": ["Input", "Output"]})
    with pytest.raises(PlacementError, match="no agent can host Linear.*allowed.*pinned"):
        plan(desc, profiles, constraints=clash)
    with pytest.raises(PlacementError, match="unknown agent 'phone'"):
        plan(desc, profiles, constraints=Constraints(pins={"Input": "phone"}))
    with pytest.raises(PlacementError, match="over the limit"):
        plan(desc, profiles, constraints=Constraints(memory={"device": 0, "server": 0}))
    with pytest.raises(PlacementError, match="objective"):
        plan(desc, profiles, objective="energy")
    with pytest.raises(PlacementError, match="no link model"):
        plan(desc, profiles, Links({("device", "server"): Link()}), client="phone")
    partial = {"device": profiles["device"], "server": dict(list(profiles["server"].items())[1:])}
    with pytest.raises(PlacementError, match="profile of agent 'server' lacks"):
        plan(desc, partial)
    # a placement that breaks the constraints is predicted, its problems listed
    pred = predict(desc, profiles, None, dict.fromkeys(desc.modules, "device"),
                   constraints=tight)
    assert not pred.feasible and any("over its limit" in p for p in pred.problems)


def test_recurrent_networks_are_planned_with_the_memory_edges_cut():
    """A Memory's incoming edge is cut as the executor and the agents cut it: the network is
    planned (every module placed, the Memory a source), real profiles included; a cycle that
    no Memory breaks is refused with that reason."""
    from tests.agent.test_recurrent import elman  # noqa: PLC0415

    desc, ids = elman()
    rng = random.Random(3)
    profiles = _profiles(rng, desc, ["device", "server"])
    best = plan(desc, profiles, _links(rng, ["device", "server"]), client="client")
    assert set(best.placement) == set(desc.modules)
    real = profile_modules(desc, repeat=3)
    assert set(real) == set(desc.modules)
    assert set(plan(desc, {"a": real, "b": real}).placement) == set(desc.modules)
    b = NetworkBuilder("loop")
    x, p, q, o = (b.add("Input", dims="3"), b.add("Concat", dim=0),
                  b.add("Linear", input=6, output=3), b.add("Output"))
    b.chain(x, p, q, o)
    b.connect(q, p)
    with pytest.raises(PlacementError, match="no Memory module breaks"):
        plan(b.build(), _profiles(rng, b.build(), ["device", "server"]))
