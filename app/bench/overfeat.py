"""``dianne bench overfeat``: the paper's OverFeat experiment on loopback agents.

The fast OverFeat (``engine.zoo.overfeat_fast``, random weights) runs one sample at a time on
one agent, then split: the first five layers (the five convolutions with their ReLUs and
poolings) on agent ``a``, which holds the Input, and the fully connected part on agent ``b``,
over emulated links (default 1 Gbit/s with 0.2 ms round trip, and 100 Mbit/s with 1 ms). The
client sits with ``a``. Each row has the planner's prediction for that placement (profiles and
links measured by :func:`app.autoplace.plan_for_agents`), the measured median and the ratio to
the one-agent time measured in the same run; the planner's own choice is shown per link.
Both agents run at ``--slowdown`` times this host's steady module times (padded, see
:class:`agent.handlers.placement.Slowdown`) so that the shared host's load does not move them;
each agent calibrates its own reference times, so two agents can differ by the host's load at
that moment: the predictions use each agent's own profile.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

NAME = "overfeat"
HELP = "OverFeat on one agent vs the first five layers on another, over emulated links"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--links", default="1000:0.2,100:1", metavar="MBIT:RTT_MS,...",
                   help="emulated links between the agents (default 1000:0.2,100:1)")
    p.add_argument("--slowdown", type=float, default=3.0,
                   help="both agents' speed against this host's steady module times "
                        "(default 3; 1 = unpadded, at the mercy of the host's load)")
    p.add_argument("--repeat", type=int, default=10, help="forwards timed per row "
                                                          "(default 10)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _links(text: str) -> list[tuple[float, float]]:
    from engine.errors import DianneError  # noqa: PLC0415

    out = []
    for item in (t.strip() for t in text.split(",") if t.strip()):
        mbit, _, rtt = item.partition(":")
        try:
            out.append((float(mbit), float(rtt or 0.0)))
        except ValueError:
            raise DianneError(f"--links takes MBIT:RTT_MS,... Received: {item!r}") from None
    return out


def first_five_layers(desc: Any, order: list[str]) -> int:
    """How many modules (in execution order) make the first five layers: up to the fifth
    Convolution and the ReLU/pooling after it."""
    convs = [i for i, m in enumerate(order) if desc.modules[m].type == "Convolution"]
    end = convs[4] + 1
    while end < len(order) and desc.modules[order[end]].type in ("ReLU", "MaxPooling"):
        end += 1
    return end


def run(args: argparse.Namespace) -> int:
    import numpy as np  # noqa: PLC0415

    from app.autoplace import plan_for_agents, profile_agents  # noqa: PLC0415
    from app.bench._lab import Lab  # noqa: PLC0415
    from app.cli import print_json  # noqa: PLC0415
    from app.linkprobe import measure_links  # noqa: PLC0415
    from app.planner import Link  # noqa: PLC0415
    from engine import zoo  # noqa: PLC0415
    from engine.graph import Network  # noqa: PLC0415

    started = time.perf_counter()
    desc = zoo.overfeat_fast()
    net = Network(desc, seed=0)
    weights, order = net.get_weights(), list(net.order)
    x = np.random.default_rng(0).standard_normal((3, 231, 231)).astype(np.float32)
    del net
    rows: list[dict[str, Any]] = []
    with Lab(["a", "b"], [args.slowdown, args.slowdown]) as lab:
        a, b = lab.ids["a"], lab.ids["b"]
        conns = [lab.conns["a"], lab.conns["b"]]
        k = first_five_layers(desc, order)
        one = dict.fromkeys(order, a)
        split = {m: (a if i < k else b) for i, m in enumerate(order)}
        profiles = profile_agents(lab.session, conns, desc, repeat=args.repeat)
        dep = lab.deploy(desc, weights, one)
        try:
            one_ms = float(np.median(lab.time_samples(dep, x, args.repeat))) * 1e3
            for mbit, rtt in _links(args.links):
                lab.emulate({("a", "b"): Link.mbit(mbit, rtt)})
                links = measure_links(lab.session, conns)
                auto = plan_for_agents(desc, [c.info for c in conns], pins={"Input": "a"},
                                       links=links, profiles=profiles, session=lab.session)
                label = f"{mbit:g} Mbit/s, {rtt:g} ms"
                if not rows:
                    rows.append({"config": "one agent", "link": "-",
                                 "predicted_ms": auto.model.predict(one).latency_s * 1e3,
                                 "measured_ms": one_ms, "ratio_to_one_agent": 1.0})
                dep.place(split)
                ms = float(np.median(lab.time_samples(dep, x, args.repeat))) * 1e3
                rows.append({"config": f"5 layers ({k} modules) on a, rest on b",
                             "link": label,
                             "predicted_ms": auto.model.predict(split).latency_s * 1e3,
                             "measured_ms": ms, "ratio_to_one_agent": ms / one_ms,
                             "planner_choice": lab.named(auto.model.describe(auto.placement)),
                             "planner_predicted_ms": auto.plan.predicted_s * 1e3})
                dep.place(one)
        finally:
            dep.undeploy()
    result = {"rows": rows, "slowdown": args.slowdown,
              "seconds": time.perf_counter() - started}
    if args.json:
        print_json(result)
        return 0
    print(f"{'configuration':<42} {'link':<18} {'predicted':>10} {'measured':>10} "
          f"{'vs one agent':>12}")
    for r in rows:
        print(f"{r['config']:<42} {r['link']:<18} {r['predicted_ms']:8.1f}ms "
              f"{r['measured_ms']:8.1f}ms {r['ratio_to_one_agent']:11.3f}x")
        if "planner_choice" in r:
            print(f"{'':<42} planner's choice: {r['planner_choice']} "
                  f"({r['planner_predicted_ms']:.1f} ms predicted)")
    print(f"\n{result['seconds']:.0f} s; agents at {args.slowdown:g}x the host's steady "
          f"module times")
    return 0
