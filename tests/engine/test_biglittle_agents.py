"""Big-Little through two real agent processes on loopback equals Big-Little in process."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from app.biglittle_agents import AgentRunner
from engine.biglittle import BigLittle, LocalRunner, split
from engine.biglittle_sweep import measure, sweep
from engine.graph import Network
from engine.link import Link
from tests.agent.conftest import start_agents
from tests.engine.test_biglittle import features_network, pair


@pytest.fixture(scope="module")
def agents():
    started = start_agents(["bl-device", "bl-server"])
    yield started
    for a in started:
        a.kill()


def open_runner(agents, parts, weights, link=None):
    args = argparse.Namespace(agent=[a.address for a in agents], device="bl-device",
                              server="bl-server", interface=None)
    return AgentRunner.open(args, parts, weights, link)


def samples(n=24):
    return np.random.default_rng(11).random((n, 1, 28, 28), dtype=np.float32)


@pytest.mark.parametrize("make, threshold, seed", [(lambda: pair(threshold=0.3), None, 5),
                                                   (features_network, 0.0, 1)],
                         ids=["sample", "features"])
def test_agents_answer_exactly_as_in_process(agents, make, threshold, seed):
    desc = make()
    weights = Network(desc, seed=seed).get_weights()
    parts = split(desc)
    local = BigLittle(parts, LocalRunner(parts, weights))
    runner = open_runner(agents, parts, weights)
    try:
        placed = runner.dep.placement
        device = {m for m, a in placed.items() if a == agents[0].id}
        assert set(parts.device.modules) <= device
        assert {m for m in placed if m not in device} == set(parts.server.modules) - device - {
            m for m in parts.server.modules if parts.server.modules[m].type == "Input"}
        remote = BigLittle(parts, runner)
        xs = samples()
        got = [remote.classify(x, threshold) for x in xs]
        want = [local.classify(x, threshold) for x in xs]
        assert {a.answered_by for a in want} == {"little", "big"}  # both paths are exercised
        for g, w in zip(got, want, strict=True):
            assert (g.label, g.answered_by, g.bytes_sent) == (w.label, w.answered_by,
                                                              w.bytes_sent)
            assert g.probability == pytest.approx(w.probability, rel=1e-5)
        targets = np.arange(len(xs)) % 10
        rows_remote = sweep(measure(runner, parts, xs, targets), [0.0, 0.3, 0.6])
        rows_local = sweep(measure(local.runner, parts, xs, targets), [0.0, 0.3, 0.6])
        for r, w in zip(rows_remote, rows_local, strict=True):
            for key in ("forwarded", "accuracy", "priority_recall", "priority_precision",
                        "big_accuracy", "bytes_sent"):
                assert r[key] == w[key], key
    finally:
        runner.close()


def test_the_agents_emulate_the_link(agents):
    desc = pair(threshold=0.3)
    weights = Network(desc, seed=5).get_weights()
    parts = split(desc)
    runner = open_runner(agents, parts, weights, Link(delay_ms=40.0))
    try:
        m = measure(runner, parts, samples(6), np.zeros(6, dtype=np.int64))
        # a forwarded sample crosses the link twice (device -> server, server -> client)
        assert np.all(m.forward_ms >= 80.0) and np.all(m.forward_ms < 80.0 + 200.0)
        assert np.all(m.little_ms < 40.0)  # the device answers the client without the link
    finally:
        runner.close()
    runner = open_runner(agents, parts, weights)  # closing switched the emulation off
    try:
        m = measure(runner, parts, samples(3), np.zeros(3, dtype=np.int64))
        assert np.all(m.forward_ms < 40.0)
    finally:
        runner.close()


def test_cli_sweep_through_agents_equals_in_process(agents, tmp_path, capsys):
    import json

    from app.cli import main
    from tests.app.test_biglittle_cli import save

    model = save(pair(threshold=0.3), tmp_path / "bl", seed=5)
    common = ["biglittle", "sweep", str(model), "--dataset", "mnist", "--range", "9000,9030",
              "--thresholds", "0,0.3,0.6", "--json", "--no-progress", "--csv",
              str(tmp_path / "s.csv"), "--png", str(tmp_path / "s.png")]
    assert main(common) == 0
    local = json.loads(capsys.readouterr().out)
    assert main([*common, "--agent", agents[0].address, "--agent", agents[1].address,
                 "--link", "5ms"]) == 0
    remote = json.loads(capsys.readouterr().out)
    for r, w in zip(remote, local, strict=True):
        assert {k: v for k, v in r.items() if "latency" not in k} == {
            k: v for k, v in w.items() if "latency" not in k}
        assert r["always_big_latency_ms_mean"] >= 10.0  # two 5 ms sends per forwarded sample
