"""Big-Little: the policy in the network properties, the forwarding rule, the parts, the sweep."""

from __future__ import annotations

import numpy as np
import pytest

from engine.biglittle import BigLittle, LocalRunner, Policy, combine, decide, split
from engine.biglittle_sweep import ROW_KEYS, Measurements, measure, sweep
from engine.builder import NetworkBuilder, sequential
from engine.description import dumps_network, parse_network
from engine.errors import DianneError
from engine.graph import Network
from engine.link import Link, parse_link

DIGITS = [str(d) for d in range(10)]
LITTLE = ["0", "1", "2", "other"]


def pair(little_layers=None, threshold=0.9, name="bl"):
    big = sequential("big", [("Linear", {"input": 784, "output": 10}), ("LogSoftmax", {})],
                     input_dims=(1, 28, 28), labels=DIGITS)
    little = sequential("little", little_layers or [("Linear", {"input": 784, "output": 4}),
                                                    ("Softmax", {})],
                        input_dims=(1, 28, 28), labels=LITTLE)
    return combine(name, little, big, ["0", "1", "2"], threshold)


def little_linear(desc):
    parts = split(desc)
    return next(m for m in parts.device.modules.values() if m.type == "Linear").id


def test_policy_travels_in_the_network_properties():
    desc = pair(threshold=0.75)
    again = parse_network(dumps_network(desc), "x")
    policy = Policy.from_description(again)
    assert policy.priority == ["0", "1", "2"]
    assert policy.threshold == 0.75 and policy.features is False
    assert again.modules[policy.little].properties["name"] == "little"
    assert again.modules[policy.big].properties["name"] == "big"
    assert again.properties["bigLittle.priority"] == "[0, 1, 2]"


def test_policy_errors_name_the_problem():
    desc = pair()
    plain = desc.copy()
    plain.properties = {}
    with pytest.raises(DianneError, match="not a Big-Little network"):
        Policy.from_description(plain)
    p = Policy.from_description(desc)
    with pytest.raises(DianneError, match="priority class '7'"):
        Policy(p.little, p.big, ["7"]).check(desc)
    with pytest.raises(DianneError, match="must differ"):
        Policy(p.little, p.little, ["0"]).check(desc)
    with pytest.raises(DianneError, match="threshold"):
        Policy(p.little, p.big, ["0"], 1.5).check(desc)


def test_decide_forwards_exactly_when_it_should():
    parts = split(pair(threshold=0.8))
    probs = np.array([
        [0.90, 0.05, 0.03, 0.02],  # priority 0, confident        -> local
        [0.10, 0.80, 0.05, 0.05],  # priority 1, exactly threshold -> local
        [0.20, 0.10, 0.79, 0.01],  # priority 2, just below        -> forward
        [0.01, 0.01, 0.01, 0.97],  # other, confident              -> forward
        [0.40, 0.40, 0.10, 0.10],  # tie 0/1 below threshold        -> forward
        [0.25, 0.25, 0.25, 0.25],  # tie everywhere                 -> forward
    ])
    local, top = decide(probs, parts)
    assert local.tolist() == [True, True, False, False, False, False]
    assert top.tolist() == [0, 1, 2, 3, 0, 0]
    assert decide(probs, parts, threshold=0.0)[0].tolist() == [True, True, True, False, True,
                                                               True]
    assert decide(probs, parts, threshold=1.0)[0].tolist() == [False] * 6


@pytest.mark.parametrize("logits, answered_by, label", [
    ([5.0, 0.0, 0.0, 0.0], "little", "0"),   # p(0) = 0.98 >= 0.9
    ([0.0, 0.0, 2.0, 0.0], "big", None),     # p(2) = 0.71 < 0.9
    ([0.0, 0.0, 0.0, 9.0], "big", None),     # "other"
])
def test_classify_with_a_little_net_of_constructed_outputs(logits, answered_by, label):
    desc = pair(threshold=0.9)
    net = Network(desc, seed=3)
    weights = net.get_weights()
    lid = little_linear(desc)
    weights[lid] = np.concatenate([np.zeros(4 * 784, np.float32), np.float32(logits)])
    runner = LocalRunner(split(desc), weights)
    x = np.random.default_rng(0).random((1, 28, 28), dtype=np.float32)
    answer = BigLittle(runner.parts, runner).classify(x)
    assert answer.answered_by == answered_by
    net.set_weights(weights)
    out = net.forward(x)
    big = out[runner.parts.policy.big]
    if answered_by == "little":
        assert answer.label == label and answer.big_ms is None and answer.bytes_sent == 0
        assert answer.probability == pytest.approx(np.exp(5) / (np.exp(5) + 3), rel=1e-5)
    else:
        assert answer.label == DIGITS[int(np.argmax(big))]
        assert answer.bytes_sent == 784 * 4 and answer.big_ms >= 0
        assert answer.probability == pytest.approx(float(np.exp(big.max())), rel=1e-5)


def features_network():
    b = NetworkBuilder("feat")
    i = b.add("Input", dims="1,28,28")
    t = b.add("Linear", input=784, output=16)
    r = b.add("ReLU")
    d = b.add("Duplicate")
    l1 = b.add("Linear", input=16, output=4)
    s = b.add("Softmax")
    lo = b.add("Output", name="little", labels="[0, 1, 2, other]")
    b1 = b.add("Linear", input=16, output=10)
    ls = b.add("LogSoftmax")
    bo = b.add("Output", name="big", labels="[" + ", ".join(DIGITS) + "]")
    b.chain(i, t, r, d, l1, s, lo)
    b.chain(d, b1, ls, bo)
    return Policy("little", "big", ["0", "1"], 0.5, features=True).attach(b.build())


def test_features_part_sends_the_trunk_output_and_matches_the_whole_network():
    desc = features_network()
    net = Network(desc, seed=1)
    parts = split(desc)
    assert sorted(m.type for m in parts.server.modules.values()) == [
        "Input", "Linear", "LogSoftmax", "Output"]
    runner = LocalRunner(parts, net.get_weights())
    x = np.random.default_rng(1).random((1, 28, 28), dtype=np.float32)
    little, payload = runner.little(x)
    assert payload.shape == (16,)
    full = net.forward(x)
    np.testing.assert_allclose(little, full[parts.policy.little], rtol=1e-6)
    np.testing.assert_allclose(runner.big(payload), full[parts.policy.big], rtol=1e-5, atol=1e-6)


def test_sending_features_needs_one_cut_that_is_not_the_input():
    b = NetworkBuilder("two")
    i = b.add("Input", dims="4")
    a = b.add("Linear", input=4, output=3)
    lo = b.add("Output", name="little", labels="[0, 1, other]")
    c = b.add("Linear", input=4, output=2)
    k = b.add("Linear", input=3, output=2)
    j = b.add("Accumulate")
    bo = b.add("Output", name="big", labels="[0, 1]")
    b.chain(i, a, lo)
    b.chain(i, c, j, bo)
    b.connect(a, k).connect(k, j)
    desc = b.build()
    with pytest.raises(DianneError, match=r"exactly one module .*Received: \['"):
        split(desc, Policy("little", "big", ["0"], 0.9, features=True))
    assert len(split(desc, Policy("little", "big", ["0"], 0.9)).server.modules) == 6


def recompute(m, t):
    """The sweep's numbers, sample by sample, the long way."""
    n = len(m.targets)
    prio = {"0", "1", "2"}
    lat, right, fwd, sent = [], 0, 0, 0
    rec_hit = rec_all = prec_hit = prec_all = 0
    for i in range(n):
        p = m.little_probs[i]
        k = max(range(4), key=lambda c: (p[c], -c))
        if LITTLE[k] in prio and p[k] >= t:
            pred, ms = int(LITTLE[k]), m.little_ms[i]
        else:
            pred, ms = int(m.big_pred[i]), m.little_ms[i] + m.forward_ms[i]
            fwd += 1
            sent += int(m.payload_bytes[i])
        truth = int(m.targets[i])
        right += pred == truth
        rec_all += str(truth) in prio
        rec_hit += str(truth) in prio and pred == truth
        prec_all += str(pred) in prio
        prec_hit += str(pred) in prio and pred == truth
        lat.append(ms)
    lat.sort()
    pos = (n - 1) * 0.99
    p99 = lat[int(pos)] + (lat[min(int(pos) + 1, n - 1)] - lat[int(pos)]) * (pos - int(pos))
    return {"threshold": t, "forwarded": fwd / n, "accuracy": right / n,
            "priority_recall": rec_hit / rec_all, "priority_precision":
            prec_hit / prec_all if prec_all else None,
            "big_accuracy": float(np.mean(m.big_pred == m.targets)),
            "latency_ms_mean": sum(lat) / n, "latency_ms_p99": p99,
            "always_big_latency_ms_mean": float(np.mean(m.forward_ms)), "bytes_sent": sent}


def test_sweep_equals_a_straightforward_recomputation():
    rng = np.random.default_rng(7)
    n = 300
    parts = split(pair())
    logits = rng.normal(size=(n, 4)) * 3
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    targets = rng.integers(0, 10, n)
    big_pred = np.where(rng.random(n) < 0.9, targets, rng.integers(0, 10, n))
    m = Measurements(parts, targets, probs, big_pred, rng.random(n), 50 + rng.random(n) * 10,
                     np.full(n, 3136))
    thresholds = [0.0, 0.3, 0.5, 0.8, 0.95, 1.0]
    rows = sweep(m, thresholds)
    for row, t in zip(rows, thresholds, strict=True):
        assert tuple(row) == ROW_KEYS
        want = recompute(m, t)
        for key in ROW_KEYS:
            if want[key] is None:
                assert row[key] is None
            else:
                assert row[key] == pytest.approx(want[key], rel=1e-9, abs=1e-12), key


def test_measure_runs_both_parts_and_adds_the_modelled_link():
    desc = pair()
    net = Network(desc, seed=2)
    parts = split(desc)
    runner = LocalRunner(parts, net.get_weights())
    x = np.random.default_rng(2).random((5, 1, 28, 28), dtype=np.float32)
    link = Link(delay_ms=20.0, rate_bit_s=1e6)
    m = measure(runner, parts, x, [0, 1, 2, 3, 4], link=link)
    wire = 20.0 + 3136 * 8 / 1e6 * 1e3 + 20.0 + 40 * 8 / 1e6 * 1e3
    assert np.all(m.forward_ms >= wire) and np.all(m.forward_ms < wire + 50)
    full = np.stack([net.forward(xi)[parts.policy.big] for xi in x])
    assert m.big_pred.tolist() == np.argmax(full, axis=1).tolist()
    assert m.payload_bytes.tolist() == [3136] * 5


def test_parse_link():
    assert parse_link("50ms") == Link(50.0, None)
    assert parse_link("20ms,10Mbit") == Link(20.0, 1e7)
    assert parse_link("1Mbps, 500us") == Link(0.5, 8e6)
    assert Link(10.0, 8e3).transfer_ms(1000) == pytest.approx(1010.0)
    for bad in ("fast", "10", "10 parsecs", "0Mbit"):
        with pytest.raises(DianneError, match="a link is"):
            parse_link(bad)


def test_combine_refuses_shared_ids():
    big = sequential("b", [("Linear", {"input": 4, "output": 2})], input_dims=(4,),
                     labels=["0", "1"])
    with pytest.raises(DianneError, match="share module UUIDs"):
        combine("x", big, big, ["0"])
