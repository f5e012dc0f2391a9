"""Early exit: the policy, the multiply-adds each exit costs, incremental running, the sweep."""

from __future__ import annotations

import numpy as np
import pytest

from engine.builder import NetworkBuilder
from engine.cascade import (
    ROW_KEYS,
    Cascade,
    CascadePolicy,
    best_row,
    exit_costs,
    exit_outputs,
    sweep,
    threshold_grid,
    train_exits,
)
from engine.datasets.base import Dataset
from engine.description import dumps_network, parse_network
from engine.errors import DianneError
from engine.graph import Network

LABELS = "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"


def cascade_network():
    """exit1: 784->10 (7840 MACs); trunk 784->50 (39200); exit2: 50->10; exit3: 50->10."""
    b = NetworkBuilder("casc")
    ids = {}
    ids["in"] = b.add("Input", dims="1,28,28")
    ids["dup"] = b.add("Duplicate")
    ids["e1"] = b.add("Linear", input=784, output=10)
    ids["sm1"] = b.add("Softmax")
    ids["o1"] = b.add("Output", name="exit1", labels=LABELS)
    ids["trunk"] = b.add("Linear", input=784, output=50)
    ids["relu"] = b.add("ReLU")
    ids["dup2"] = b.add("Duplicate")
    ids["e2"] = b.add("Linear", input=50, output=10)
    ids["o2"] = b.add("Output", name="exit2", labels=LABELS)
    ids["e3"] = b.add("Linear", input=50, output=10)
    ids["ls3"] = b.add("LogSoftmax")
    ids["o3"] = b.add("Output", name="exit3", labels=LABELS)
    b.chain(ids["in"], ids["dup"], ids["e1"], ids["sm1"], ids["o1"])
    b.chain(ids["dup"], ids["trunk"], ids["relu"], ids["dup2"], ids["e2"], ids["o2"])
    b.chain(ids["dup2"], ids["e3"], ids["ls3"], ids["o3"])
    return b.build(), ids


def test_default_policy_orders_exits_by_cost_and_round_trips():
    desc, ids = cascade_network()
    policy = CascadePolicy.from_description(desc)
    assert policy.exits == [ids["o1"], ids["o2"], ids["o3"]]
    assert policy.thresholds == [0.9, 0.9]
    stored = CascadePolicy(["exit1", "exit2", "exit3"], [0.8, 0.99]).attach(desc)
    again = CascadePolicy.from_description(parse_network(dumps_network(stored), "x"))
    assert again.exits == policy.exits and again.thresholds == [0.8, 0.99]
    with pytest.raises(DianneError, match="3 exits need 2 thresholds"):
        CascadePolicy(policy.exits, [0.5]).check(desc)
    with pytest.raises(DianneError, match="not an Output"):
        CascadePolicy([ids["e1"], ids["o3"]], [0.5]).check(desc)


def test_exit_costs_count_each_module_once():
    desc, _ = cascade_network()
    policy = CascadePolicy.from_description(desc)
    costs, full = exit_costs(desc, policy.exits)
    assert costs == [7840, 7840 + 39200 + 500, 7840 + 39200 + 500 + 500]
    assert full == 39200 + 500


def test_cascade_runs_each_module_once_and_reports_the_macs_it_ran():
    desc, ids = cascade_network()
    net = Network(desc, seed=4).eval()
    cascade = Cascade(net)
    calls: list[str] = []
    for mid, mod in net.modules.items():
        original = mod.forward
        mod.forward = lambda x, _f=original, _m=mid: (calls.append(_m), _f(x))[1]
    x = np.random.default_rng(0).random((1, 28, 28), dtype=np.float32)
    macs_of = {ids["e1"]: 7840, ids["trunk"]: 39200, ids["e2"]: 500, ids["e3"]: 500}
    for limits, stop in (([0.0, 0.0], 0), ([1.0, 0.0], 1), ([1.0, 1.0], 2)):
        calls.clear()
        k, probs, macs = cascade.classify(x, limits)
        assert k == stop
        assert len(calls) == len(set(calls))  # nothing recomputed
        assert macs == sum(macs_of.get(m, 0) for m in calls)
        exit_id = cascade.policy.exits[k]
        want = net.forward(x, outputs=exit_id)
        want = np.exp(want) if k == 2 else (want if k == 0 else np.exp(want) / np.exp(want).sum())
        np.testing.assert_allclose(probs, want, rtol=1e-5)
    calls.clear()
    cascade.classify(x, [1.0, 1.0])
    assert ids["o1"] in calls and ids["o3"] in calls


class Noise(Dataset):
    name = "noise"
    labels = [str(d) for d in range(10)]
    input_shape = (1, 28, 28)

    def __init__(self):
        self.x = np.random.default_rng(9).random((40, 1, 28, 28), dtype=np.float32)

    def __len__(self):
        return 40

    def _inputs(self, idx):
        return self.x[idx]

    def _target_indices(self, idx):
        return np.asarray(idx) % 10


def test_exit_outputs_match_single_sample_runs():
    desc, _ = cascade_network()
    net = Network(desc, seed=5).eval()
    cascade = Cascade(net)
    data = Noise()
    probs = exit_outputs(net, cascade.policy.exits, data, batch_size=16)
    assert [p.shape for p in probs] == [(40, 10)] * 3
    for i in (0, 17, 39):
        x = data.input(i)
        _, last, _ = cascade.classify(x, [1.0, 1.0])
        np.testing.assert_allclose(probs[2][i], last, rtol=1e-4, atol=1e-7)


def test_sweep_equals_a_straightforward_recomputation():
    rng = np.random.default_rng(3)
    n = 200
    probs = []
    for _ in range(3):
        z = np.exp(rng.normal(size=(n, 10)) * 3)
        probs.append(z / z.sum(axis=1, keepdims=True))
    targets = rng.integers(0, 10, n)
    costs, full = [100, 1000, 1500], 1200
    settings = threshold_grid(3, (0.3, 0.6, 0.9))
    rows = sweep(probs, targets, costs, full, settings)
    assert len(rows) == 9
    for row, (t1, t2) in zip(rows, settings, strict=True):
        assert tuple(row) == ROW_KEYS
        right, spent = 0, 0
        for i in range(n):
            if probs[0][i].max() >= t1:
                k = 0
            elif probs[1][i].max() >= t2:
                k = 1
            else:
                k = 2
            right += int(np.argmax(probs[k][i]) == targets[i])
            spent += costs[k]
        assert row["thresholds"] == [t1, t2]
        assert row["accuracy"] == pytest.approx(right / n, abs=1e-12)
        assert row["macs_mean"] == pytest.approx(spent / n, rel=1e-12)
        assert row["full_accuracy"] == pytest.approx(np.mean(probs[2].argmax(1) == targets))
        assert row["full_macs"] == 1200


def test_best_row_keeps_within_the_loss():
    rows = [{"accuracy": 0.98, "macs_mean": 10, "full_accuracy": 0.99},
            {"accuracy": 0.989, "macs_mean": 20, "full_accuracy": 0.99},
            {"accuracy": 0.99, "macs_mean": 30, "full_accuracy": 0.99}]
    assert best_row(rows)["macs_mean"] == 20
    assert best_row(rows, max_loss=0.0)["macs_mean"] == 30
    assert best_row(rows[:1]) is None


def test_train_exits_trains_the_last_exit_first_and_keeps_it_fixed():
    from engine.datasets.spec import open_dataset
    from engine.training import TrainConfig, Trainer

    desc, ids = cascade_network()
    net = Network(desc, seed=0)
    data = open_dataset("mnist", range_=(0, 200))
    options = {"method": "SGD", "criterion": "AUTO", "learningRate": "0.05", "batchSize": "50"}
    stages = []

    def train(k, oid, fixed):
        before = net.get_weights()
        config = TrainConfig.from_options({**options, "fixed": ",".join(fixed)})
        Trainer(net, data, config, seed=0, output=oid).run(epochs=1)
        after = net.get_weights()
        changed = {m for m in before if not np.array_equal(before[m], after[m])}
        stages.append((k, sorted(fixed), changed))

    train_exits(desc, CascadePolicy.from_description(desc).exits, train)
    assert [s[0] for s in stages] == [2, 1, 0]
    assert stages[0][1] == [] and stages[0][2] == {ids["trunk"], ids["e3"]}
    shared = {ids[m] for m in ("in", "dup", "trunk", "relu", "dup2")}
    assert stages[1][1] == sorted(shared) and stages[1][2] == {ids["e2"]}
    assert stages[2][1] == sorted({ids["in"], ids["dup"]}) and stages[2][2] == {ids["e1"]}
