"""``dianne bench placement``: the planner's predictions against measured latencies.

Loopback agents with different speeds (``device`` 10x this machine's steady module times, ``edge``
4x, ``server`` 2x; the client sits with the device, which holds the Input: the camera) and emulated
links: device-edge a LAN (100 Mbit/s, 2 ms), device-server and edge-server the link under test (1,
10, 100 Mbit/s, with ``--rtt-ms`` of latency). For each link the agents are profiled again and the
links measured (what :func:`app.autoplace.plan_for_agents` does), the planner chooses a placement
per network, then every placement of the split points is deployed and timed: the validation table
has predicted and measured milliseconds per placement, the planner's choice and the best measured
one. MLP and LeNet use the three agents and every module boundary; OverFeat uses device and server
and the layer boundaries (each of its placements moves hundreds of MB of weights).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

NAME = "placement"
HELP = "predicted vs measured latency of every split placement over emulated links"

NETS = ("mlp", "lenet", "overfeat")
# Slowdowns against this host's steady per-module reference times (see
# agent.handlers.placement.Slowdown); the server too is padded to a steady speed, 2x the
# reference, so that the load of this shared host does not move its speed during the run.
AGENTS = (("device", 10.0), ("edge", 4.0), ("server", 2.0))
LAN = (100.0, 2.0)  # Mbit/s, rtt ms between device and edge


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nets", default=",".join(NETS), help=f"comma list of {', '.join(NETS)}")
    p.add_argument("--links", default="1,10,100", metavar="MBIT,...",
                   help="links under test in Mbit/s (default 1,10,100)")
    p.add_argument("--rtt-ms", type=float, default=20.0, help="round trip of the link under "
                                                                "test (default 20 ms)")
    p.add_argument("--repeat", type=int, default=20, help="forwards timed per placement "
                                                          "(fewer when slow; default 20)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _network(name: str) -> tuple[Any, list[str], bool]:
    """(description, agents it runs on, whether to cut only at layer boundaries)."""
    from engine import zoo  # noqa: PLC0415

    if name == "mlp":
        return zoo.mlp([784, 20, 10]), ["device", "edge", "server"], False
    if name == "lenet":
        return zoo.lenet5(), ["device", "edge", "server"], False
    if name == "overfeat":
        return zoo.overfeat_fast(), ["device", "server"], True
    from engine.errors import DianneError  # noqa: PLC0415

    raise DianneError(f"unknown network; choose from {', '.join(NETS)}. Received: {name!r}")


_WEIGHTED = ("Linear", "Convolution", "FullConvolution")


def _at_layer_boundaries(desc: Any, order: list[str], placement: dict[str, str]) -> bool:
    """True when no cut falls between a weighted layer and what follows it up to the next
    weighted layer's input (i.e. cuts sit after an activation or pooling, or after the Input)."""
    types = [desc.modules[m].type for m in order]
    for i in range(1, len(order)):
        if placement[order[i]] != placement[order[i - 1]]:
            nxt = types[i]
            if nxt not in _WEIGHTED and nxt != "Output":
                return False
    return True


def run(args: argparse.Namespace) -> int:
    from app.bench._lab import Lab  # noqa: PLC0415
    from app.cli import print_json  # noqa: PLC0415
    from app.linkprobe import measure_links  # noqa: PLC0415
    from app.planner import Link  # noqa: PLC0415
    from engine.graph import Network  # noqa: PLC0415

    nets = [n.strip() for n in args.nets.split(",") if n.strip()]
    speeds = [float(s) for s in args.links.split(",") if s.strip()]
    rows: list[dict[str, Any]] = []
    summary: list[dict[str, Any]] = []
    measured_links: dict[str, Any] = {}
    started = time.perf_counter()
    with Lab([a for a, _ in AGENTS], [s for _, s in AGENTS]) as lab:
        conns = [lab.conns[a] for a, _ in AGENTS]
        prepared = {}
        for name in nets:
            desc, agents, coarse = _network(name)
            net = Network(desc, seed=0)
            x = np.random.default_rng(0).standard_normal(
                net.modules[net.inputs[0]].cfg["dims"]).astype(np.float32)
            prepared[name] = (desc, agents, coarse, net.get_weights(), x)
            del net
        for mbit in speeds:
            # profiles are taken again for every link, close in time to the measurements:
            # the load of this shared machine drifts over minutes
            lab.emulate({})
            profiles = {name: _profile(lab, *prepared[name][:2]) for name in nets}
            test = Link.mbit(mbit, args.rtt_ms)
            lab.emulate({("device", "edge"): Link.mbit(*LAN), ("device", "server"): test,
                         ("edge", "server"): test})
            label = f"{mbit:g} Mbit/s, {args.rtt_ms:g} ms"
            for name in nets:
                links = measure_links(lab.session, conns)  # fresh, just before the timing
                measured_links[f"{name}, {label}"] = lab.named(links.to_json())
                r, s = _case(lab, name, prepared[name], profiles[name], links, label,
                             args.repeat)
                rows += r
                summary.append(s)
    errors = [abs(r["predicted_ms"] / r["measured_ms"] - 1.0) for r in rows]
    result = {"rows": rows, "summary": summary, "links": measured_links,
              "max_prediction_error": max(errors),
              "within_15pct": sum(e <= 0.15 for e in errors), "placements": len(rows),
              "seconds": time.perf_counter() - started}
    if args.json:
        print_json(result)
    else:
        _print(result)
    return 0


def _profile(lab: Any, desc: Any, agents: list[str]) -> dict[str, Any]:
    from app.autoplace import profile_agents  # noqa: PLC0415

    return profile_agents(lab.session, [lab.conns[a] for a in agents], desc)


def _case(lab: Any, name: str, prepared: tuple, profiles: dict[str, Any], links: Any,
          label: str, repeat: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Plan one network for one link, then measure every candidate placement."""
    from app.autoplace import plan_for_agents  # noqa: PLC0415

    desc, agents, coarse, weights, x = prepared
    ids = lab.ids
    inp = desc.inputs()[0].id
    auto = plan_for_agents(desc, [lab.conns[a].info for a in agents], pins={inp: ids["device"]},
                           links=links, profiles=profiles, session=lab.session)
    model = auto.model
    cands = [p for p in model.split_placements([ids[a] for a in agents])
             if not coarse or _at_layer_boundaries(desc, model.order, p)]
    if auto.placement not in cands:
        cands.append(auto.placement)
    measured = _measure_all(lab, desc, weights, x, cands, repeat, coarse)
    best = min(range(len(cands)), key=lambda i: measured[i])
    rows = [{"network": name, "link": label, "placement": lab.named(model.describe(plc)),
             "predicted_ms": model.predict(plc).latency_s * 1e3,
             "measured_ms": measured[i] * 1e3, "chosen": plc == auto.placement,
             "best": i == best} for i, plc in enumerate(cands)]
    server = dict.fromkeys(desc.modules, ids["server"]) | {inp: ids["device"]}
    chosen_ms = measured[cands.index(auto.placement)] * 1e3
    server_ms = measured[cands.index(server)] * 1e3
    return rows, {"network": name, "link": label, "chosen_ms": chosen_ms,
                  "best_ms": measured[best] * 1e3,
                  "chosen_over_best": chosen_ms / (measured[best] * 1e3),
                  "all_on_server_ms": server_ms, "gain_over_server": server_ms / chosen_ms,
                  "method": auto.plan.method}


def _measure_all(lab: Any, desc: Any, weights: dict, x: Any, cands: list[dict[str, str]],
                 repeat: int, heavy: bool) -> list[float]:
    """Median seconds per placement, each deployed alone while it is timed (the way it would
    serve). Small networks: two sweeps, forwards then backwards through the placements, so a
    drift in this machine's load weighs on all of them alike. Heavy ones: one sweep with one
    deployment moved from placement to placement (only the modules that move carry their
    weights)."""
    if not heavy:
        samples: list[list[float]] = [[] for _ in cands]
        half = max(1, -(-repeat // 2))
        for order in (range(len(cands)), reversed(range(len(cands)))):
            for i in order:
                dep = lab.deploy(desc, weights, cands[i])
                try:
                    samples[i] += lab.time_samples(dep, x, half)
                finally:
                    dep.undeploy()
        return [float(np.median(s)) for s in samples]
    dep = lab.deploy(desc, weights, cands[0])
    try:
        out = []
        for plc in cands:
            if plc != dep.placement:
                dep.place(plc)
            out.append(lab.time_forward(dep, x, repeat=repeat))
        return out
    finally:
        dep.undeploy()


def _print(result: dict[str, Any]) -> None:
    print(f"{'network':<9} {'link':<20} {'placement':<34} {'predicted':>10} {'measured':>10} "
          f"{'pred/meas':>9}  chosen best")
    for r in result["rows"]:
        print(f"{r['network']:<9} {r['link']:<20} {r['placement']:<34} "
              f"{r['predicted_ms']:8.2f}ms {r['measured_ms']:8.2f}ms "
              f"{r['predicted_ms'] / r['measured_ms']:9.3f}  {'*' if r['chosen'] else ' ':^6} "
              f"{'*' if r['best'] else ' ':^4}")
    print()
    print(f"{'network':<9} {'link':<20} {'chosen':>10} {'best':>10} {'chosen/best':>11} "
          f"{'all-on-server':>13} {'gain':>7}  method")
    for s in result["summary"]:
        print(f"{s['network']:<9} {s['link']:<20} {s['chosen_ms']:8.2f}ms {s['best_ms']:8.2f}ms "
              f"{s['chosen_over_best']:11.3f} {s['all_on_server_ms']:11.2f}ms "
              f"{s['gain_over_server']:6.2f}x  {s['method']}")
    print(f"\npredicted within 15% of measured: {result['within_15pct']}/{result['placements']}"
          f" placements (largest error {result['max_prediction_error'] * 100:.1f}%); "
          f"{result['seconds']:.0f} s")
