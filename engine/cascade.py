"""Early exit (Leroux et al. 2015, BranchyNet): a network with several Outputs tried in order.

A cascade is an ordinary DIANNE network whose Outputs are *exits*, cheapest first. A sample
runs up to the first exit; if that exit's top class probability is >= its threshold the sample
stops there, otherwise the modules of the next exit that have not run yet are run, and so on; the
last exit always answers. The policy is stored as top-level network properties (as Big-Little's):
``cascade.exits`` (the Output UUIDs in order, ``[a, b, c]``; default: all Outputs ordered by the
multiply-adds they need) and ``cascade.thresholds`` (one per exit but the last, ``[0.9, 0.95]``).

Cost is counted in multiply-adds (MACs, from :func:`engine.shapes.infer_shapes`): stopping at
exit k costs the MACs of every module the exits 1..k need, each counted once (what really ran).
:class:`Cascade` runs one sample incrementally, never recomputing a module; :func:`exit_outputs`
+ :func:`sweep` evaluate threshold settings from one batched pass over a dataset.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.datasets.base import Dataset
from engine.description import NetworkDescription
from engine.graph import Network
from engine.shapes import infer_shapes
from engine.subnet import (
    ancestors,
    last_module_type,
    output_id,
    probabilities,
    require,
    with_policy,
)

PREFIX = "cascade."
GRID = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9999)
ROW_KEYS = ("thresholds", "accuracy", "macs_mean", "full_accuracy", "full_macs")


@dataclass
class CascadePolicy:
    """The exits in order and the thresholds of all but the last."""

    exits: list[str]
    thresholds: list[float]

    def to_properties(self) -> dict[str, str]:
        return {PREFIX + "exits": "[" + ", ".join(self.exits) + "]",
                PREFIX + "thresholds": "[" + ", ".join(repr(float(t)) for t in self.thresholds)
                + "]"}

    def attach(self, desc: NetworkDescription) -> NetworkDescription:
        """A copy of ``desc`` carrying this policy (after checking it fits the network)."""
        self.check(desc)
        return with_policy(desc, PREFIX, self.to_properties())

    def check(self, desc: NetworkDescription) -> None:
        self.exits = [output_id(desc, e) for e in self.exits]
        require(len(self.exits) >= 2 and len(set(self.exits)) == len(self.exits), desc,
                "a cascade needs at least two distinct exits (Outputs)", self.exits)
        require(len(self.thresholds) == len(self.exits) - 1, desc,
                f"{len(self.exits)} exits need {len(self.exits) - 1} thresholds",
                self.thresholds)
        require(all(0.0 <= t <= 1.0 for t in self.thresholds), desc,
                "thresholds must lie in [0, 1]", self.thresholds)

    @classmethod
    def from_description(cls, desc: NetworkDescription) -> CascadePolicy:
        """The stored policy; without one, every Output by cost and thresholds of 0.9."""
        props = desc.properties or {}
        text = props.get(PREFIX + "exits")
        if text:
            exits = [e.strip() for e in text.strip().strip("[]").split(",") if e.strip()]
        else:
            outs = [m.id for m in desc.outputs()]
            macs = module_macs(desc)
            exits = sorted(outs, key=lambda o: sum(macs[m] for m in ancestors(desc, [o])))
        raw = props.get(PREFIX + "thresholds")
        try:
            thresholds = ([float(t) for t in raw.strip().strip("[]").split(",") if t.strip()]
                          if raw else [0.9] * (len(exits) - 1))
        except ValueError:
            require(False, desc, f"{PREFIX}thresholds must be numbers", raw)
        policy = cls(exits, thresholds)
        policy.check(desc)
        return policy


def module_macs(desc: NetworkDescription) -> dict[str, int]:
    """MACs of one forward of one sample, per module (the Input's dims must be set)."""
    shapes = infer_shapes(desc)
    bad = shapes.errors
    require(not bad, desc, "shapes cannot be inferred (MACs need them)",
            next(iter(bad.values()), None))
    return {m: s.macs for m, s in shapes.modules.items()}


def exit_costs(desc: NetworkDescription, exits: Sequence[str]) -> tuple[list[int], int]:
    """(MACs spent when stopping at each exit, MACs of the last exit's network alone)."""
    macs = module_macs(desc)
    costs, ran = [], set()
    for e in exits:
        ran |= ancestors(desc, [e])
        costs.append(sum(macs[m] for m in ran))
    return costs, sum(macs[m] for m in ancestors(desc, [exits[-1]]))


class Cascade:
    """Runs one sample exit by exit, each module at most once; reports the MACs spent."""

    def __init__(self, net: Network, policy: CascadePolicy | None = None) -> None:
        self.net = net
        self.policy = policy or CascadePolicy.from_description(net.description)
        self.policy.check(net.description)
        desc = net.description
        self.macs = module_macs(desc)
        self.kinds = [last_module_type(desc, e) for e in self.policy.exits]
        # Stage k: the modules exit k needs that no earlier exit ran, in execution order.
        self.stages: list[list[str]] = []
        done: set[str] = set()
        for e in self.policy.exits:
            need = ancestors(desc, [e]) - done
            self.stages.append([m for m in net.order if m in need])
            done |= need

    def classify(self, x: Any, thresholds: Sequence[float] | None = None
                 ) -> tuple[int, np.ndarray, int]:
        """(exit index, that exit's probabilities, MACs spent) for one sample ``x``."""
        net = self.net
        limits = list(self.policy.thresholds if thresholds is None else thresholds)
        values: dict[str, Any] = {}
        spent = 0
        for k, (stage, exit_id) in enumerate(zip(self.stages, self.policy.exits, strict=True)):
            for m in stage:
                values[m] = self._run(m, values, x)
                spent += self.macs[m]
            probs = probabilities(net.backend.to_host(values[exit_id]).ravel(), self.kinds[k])
            if k == len(self.stages) - 1 or probs.max() >= limits[k]:
                return k, probs, spent
        raise AssertionError("unreachable: the last exit always answers")

    def _run(self, mid: str, values: dict[str, Any], x: Any) -> Any:
        # The executor's rule (engine.graph): a fork hands each successor its own slot, a join
        # gets its inputs in prev order, an Input gets the sample.
        net = self.net
        mod = net.modules[mid]
        if mod.type_name == "Input":
            return mod.forward(net.xp.asarray(x, dtype=net.dtype))
        args = []
        for p in net.pred[mid]:
            v = values[p]
            args.append(v[net.succ[p].index(mid)] if net.modules[p].fork else v)
        return mod.forward(args if mod.join else args[0])


def train_exits(desc: NetworkDescription, exits: Sequence[str],
                train: Callable[[int, str, list[str]], Any]) -> None:
    """Train the exits last first: ``train(k, exit id, fixed module ids)`` for each.

    The last exit trains every module it needs; each earlier exit then trains only what no later
    exit uses (the later exits' modules are ``fixed``), so an early exit never degrades the
    later ones — the stage-wise recipe of early-exit networks with a shared trunk.
    """
    trained: set[str] = set()
    for k in range(len(exits) - 1, -1, -1):
        need = ancestors(desc, [exits[k]])
        train(k, exits[k], sorted(trained & need))
        trained |= need


def exit_outputs(net: Network, exits: Sequence[str], dataset: Dataset, batch_size: int = 100,
                 progress: Callable[[int, int], None] | None = None) -> list[np.ndarray]:
    """Every exit's class probabilities on every sample, ``[(N, C)] * exits`` (batched)."""
    kinds = [last_module_type(net.description, e) for e in exits]
    n = len(dataset)
    outs: list[list[np.ndarray]] = [[] for _ in exits]
    for start in range(0, n, batch_size):
        idx = np.arange(start, min(n, start + batch_size))
        got = net.forward(dataset.inputs(idx), outputs=list(exits))
        for k, e in enumerate(exits):
            outs[k].append(probabilities(net.backend.to_host(got[e]), kinds[k]))
        if progress is not None:
            progress(int(idx[-1]) + 1, n)
    return [np.concatenate(o) for o in outs]


def threshold_grid(n_exits: int, grid: Sequence[float] = GRID) -> list[tuple[float, ...]]:
    """Every combination of grid values for the exits but the last (the same value for all
    when there are more than three exits, to keep the grid small)."""
    if n_exits - 1 <= 2:
        return list(itertools.product(grid, repeat=n_exits - 1))
    return [(t,) * (n_exits - 1) for t in grid]


def sweep(probs: Sequence[np.ndarray], targets: np.ndarray, costs: Sequence[int], full_macs: int,
          settings: Sequence[Sequence[float]]) -> list[dict[str, Any]]:
    """One row per threshold setting, keys :data:`ROW_KEYS`."""
    targets = np.asarray(targets, dtype=np.int64)
    n, last = len(targets), len(probs) - 1
    tops = [np.argmax(p, axis=1) for p in probs]
    confs = [p[np.arange(n), t] for p, t in zip(probs, tops, strict=True)]
    full_accuracy = float(np.mean(tops[last] == targets))
    rows = []
    for setting in settings:
        chosen = np.full(n, last)
        for k in range(last - 1, -1, -1):  # the first confident exit wins
            chosen = np.where(confs[k] >= setting[k], k, chosen)
        pred = np.choose(chosen, tops)
        rows.append({"thresholds": [float(t) for t in setting],
                     "accuracy": float(np.mean(pred == targets)),
                     "macs_mean": float(np.mean(np.asarray(costs, dtype=np.float64)[chosen])),
                     "full_accuracy": full_accuracy, "full_macs": int(full_macs)})
    return rows


def best_row(rows: Sequence[dict[str, Any]], max_loss: float = 0.001) -> dict[str, Any] | None:
    """The row with the fewest MACs whose accuracy is at most ``max_loss`` below the full net."""
    ok = [r for r in rows if r["accuracy"] >= r["full_accuracy"] - max_loss - 1e-12]
    return min(ok, key=lambda r: (r["macs_mean"], -r["accuracy"])) if ok else None
