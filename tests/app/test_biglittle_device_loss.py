"""Big-Little when the DEVICE agent is lost: the little part moves to the server (the
deployment's failover, with the kept weights) and every sample is still answered, as in process;
it moves back when an agent answers at the device's address again; with both agents gone,
``classify`` raises one line naming both. Real agent processes on loopback, killed with SIGKILL.
"""

from __future__ import annotations

import json
import signal
import time

import numpy as np
import pytest

from app.biglittle_agents import AgentRunner
from engine.biglittle import BigLittle, LocalRunner, split
from engine.errors import DianneError
from engine.graph import Network
from engine.link import Link
from tests.agent.conftest import start_agents
from tests.engine.test_biglittle import pair
from tests.engine.test_biglittle_fallback import (
    free_port,
    kill_during_cli_run,
    samples,
    start_server,
)

BOUND_S = 6.0  # generous: losing an agent is noticed after 1.4 s without heartbeat


def same(got, want, little_on=None) -> bool:
    return (got.label, got.answered_by, got.fallback, got.little_on) == (
        want.label, want.answered_by, False, little_on) and \
        got.probability == pytest.approx(want.probability, rel=1e-5)


def kill(agent) -> None:
    agent.proc.send_signal(signal.SIGKILL)
    agent.proc.wait(5)


def setup(names, link=None, device_port=None, device_id=None, timeout_s=0.3):
    desc = pair(threshold=0.3)
    weights = Network(desc, seed=5).get_weights()
    parts = split(desc)
    if device_port is None:
        device, server = start_agents(names)
    else:
        device = start_server(names[0], device_id, device_port)
        (server,) = start_agents(names[1:])
    runner = AgentRunner.connect(parts, weights, [device.address, server.address], names[0],
                                 names[1], link, timeout_s=timeout_s, retry_s=0.5)
    return BigLittle(parts, runner), BigLittle(parts, LocalRunner(parts, weights)), device, server


def test_device_killed_little_part_moves_to_the_server_and_back():
    port, device_id = free_port(), "d1e5e2a0-0000-4000-8000-00000000d00d"
    bl, local, device, server = setup(["dl-device", "dl-server"], Link(delay_ms=5.0), port,
                                      device_id)
    runner = bl.runner
    xs = samples(40, seed=3)
    want = [local.classify(x) for x in xs]
    assert {w.answered_by for w in want} == {"little", "big"}
    try:
        assert all(same(bl.classify(x), w) for x, w in zip(xs[:8], want[:8], strict=True))
        assert runner.little_on is None and runner.status == "big part on dl-server: forwarding"

        kill(device)
        t0 = time.monotonic()
        first = bl.classify(xs[8])  # waits for the heartbeat to stop, then runs on the server
        first_s = time.monotonic() - t0
        assert first_s < BOUND_S
        after = [first] + [bl.classify(x) for x in xs[9:30]]
        assert all(same(g, w, "dl-server") for g, w in zip(after, want[8:30], strict=True))
        # the server delays all it sends: every little result crosses the link now
        assert all(g.little_ms >= 5.0 for g in after)
        assert runner.status == ("device dl-device gone: little part on dl-server; "
                                 "big part on dl-server: forwarding")
        (record,) = runner.dep.failovers
        assert (record["agent"], record["fallback"]) == (device_id, server.id)
        assert set(record["modules"]) == set(runner.parts.device.modules)
        assert bl.fallbacks == 0

        t_up = time.monotonic()
        device = start_server("dl-device", device_id, port)  # the same identity, restarted
        t_up = time.monotonic() - t_up
        deadline, k = time.monotonic() + 10.0, 0
        while runner.little_on is not None and time.monotonic() < deadline:
            a = bl.classify(xs[k % 40])  # the one that moves it back runs on the device
            assert same(a, want[k % 40], runner.little_on), a
            k += 1
            time.sleep(0.02)
        assert runner.little_on is None, runner.status
        (back,) = runner.device_returns
        assert back["agent"] == device_id and back["down_s"] >= runner.retry_s
        assert runner.status == "big part on dl-server: forwarding"
        again = [bl.classify(x) for x in xs]
        assert all(same(g, w) for g, w in zip(again, want, strict=True))
        assert {runner.dep.placement[m] for m in runner.parts.device.modules} == {device_id}
        assert all(g.big_ms >= 2 * 5.0 for g in again if g.answered_by == "big")  # link again
        moved = [g.latency_ms for g in after[1:]]
        print(f"\ndevice killed: first answer {first_s:.2f} s after the kill (heartbeat gone, "
              f"little part redeployed in {record['redeploy_s'] * 1e3:.1f} ms), later answers "
              f"{np.mean(moved):.2f} ms mean with the little part on the server (link 5 ms); "
              f"restart took {t_up:.2f} s, little part back {back['down_s']:.2f} s after the "
              f"loss was noticed (move {back['seconds'] * 1e3:.1f} ms, retry_s "
              f"{runner.retry_s:g})")
    finally:
        runner.close()
        device.kill()
        server.kill()


def _forwarded_with_the_device_killed(bl, device, xs, want):
    """Classify the first sample the big network answers locally, killing the device agent
    right after the little part ran it (so the forward to the big part finds it gone);
    returns the answer and the sample's index."""
    runner = bl.runner
    k = next(i for i, w in enumerate(want) if w.answered_by == "big")
    little = runner.little

    def little_then_kill(x):
        out = little(x)
        kill(device)
        return out

    runner.little = little_then_kill
    try:
        return bl.classify(xs[k]), k
    finally:
        runner.little = little


def test_device_killed_while_a_sample_waits_for_the_big_part():
    """The forwarded sample goes through the device agent: its loss looks like the server's
    (a timeout), so that sample is answered by the little network (fallback); the next one
    finds the device gone, takes the server back at once and moves the little part there."""
    bl, local, device, server = setup(["d4-device", "d4-server"])
    runner = bl.runner
    xs = samples(12, seed=3)
    want = [local.classify(x) for x in xs]
    try:
        a, _ = _forwarded_with_the_device_killed(bl, device, xs, want)
        assert a.fallback and a.reason == "timeout" and a.little_on is None
        t0 = time.monotonic()
        after = [bl.classify(x) for x in xs]
        assert time.monotonic() - t0 < BOUND_S
        assert all(same(g, w, "d4-server") for g, w in zip(after, want, strict=True))
        (record,) = runner.rejoins
        assert record["agent"] == server.id and not record["redeployed"]
        assert runner.status == ("device d4-device gone: little part on d4-server; "
                                 "big part on d4-server: forwarding")
    finally:
        runner.close()
        device.kill()
        server.kill()


def test_device_killed_under_a_long_big_timeout_the_sample_goes_again_from_the_server():
    """With a big-part timeout longer than the heartbeat's 1.4 s, the forwarded sample sees
    the device gone: the little part moves to the server and the sample is sent again from
    there with a bound of its own, so the big network answers it (no fallback). Its little
    verdict ran on the device (little_on None); the next answers say the server."""
    bl, local, device, server = setup(["d5-device", "d5-server"], timeout_s=3.0)
    runner = bl.runner
    xs = samples(12, seed=3)
    want = [local.classify(x) for x in xs]
    try:
        t0 = time.monotonic()
        a, k = _forwarded_with_the_device_killed(bl, device, xs, want)
        assert time.monotonic() - t0 < BOUND_S
        assert same(a, want[k]) and runner.down is None, (a, runner.status)
        assert [r["agent"] for r in runner.dep.failovers] == [device.id]  # moved within big()
        assert all(same(bl.classify(x), w, "d5-server") for x, w in zip(xs, want, strict=True))
        assert len(runner.dep.failovers) == 1
    finally:
        runner.close()
        device.kill()
        server.kill()


def test_device_then_server_killed_raises_one_line_naming_both():
    bl, local, device, server = setup(["d2-device", "d2-server"])
    xs = samples(12, seed=7)
    try:
        assert same(bl.classify(xs[0]), local.classify(xs[0]))
        kill(device)
        assert same(bl.classify(xs[1]), local.classify(xs[1]), "d2-server")
        kill(server)
        for x in xs[2:4]:  # the one that finds the server gone, and a later one
            t0 = time.monotonic()
            with pytest.raises(DianneError) as caught:
                bl.classify(x)
            assert time.monotonic() - t0 < BOUND_S
            _names_both(str(caught.value), device, server)
        assert "gone" in bl.runner.status
    finally:
        bl.runner.close()
        device.kill()
        server.kill()


def test_both_killed_at_once_raises_then_answers_once_the_server_is_back():
    desc = pair(threshold=0.3)
    weights = Network(desc, seed=5).get_weights()
    parts = split(desc)
    local = BigLittle(parts, LocalRunner(parts, weights))
    port, server_id = free_port(), "d3e5e2a0-0000-4000-8000-00000000beef"
    (device,) = start_agents(["d3-device"])
    server = start_server("d3-server", server_id, port)
    runner = AgentRunner.connect(parts, weights, [device.address, server.address], "d3-device",
                                 "d3-server", timeout_s=0.3, retry_s=0.5)
    bl = BigLittle(parts, runner)
    xs = samples(12, seed=9)
    want = [local.classify(x) for x in xs]
    try:
        assert all(same(bl.classify(x), w) for x, w in zip(xs[:3], want, strict=False))
        kill(device)
        kill(server)
        for x in xs[3:5]:
            t0 = time.monotonic()
            with pytest.raises(DianneError) as caught:
                bl.classify(x)
            assert time.monotonic() - t0 < BOUND_S
            _names_both(str(caught.value), device, server)
        assert runner.status == "device d3-device and server d3-server gone: no answers"

        server = start_server("d3-server", server_id, port)  # restarted: it holds nothing
        deadline, answered = time.monotonic() + 10.0, None
        while answered is None and time.monotonic() < deadline:
            try:
                answered = bl.classify(xs[5])
            except DianneError:
                time.sleep(0.05)
        assert answered is not None, runner.status
        got = [answered] + [bl.classify(x) for x in xs[6:]]
        assert all(same(g, w, "d3-server") for g, w in zip(got, want[5:], strict=True))
        (record,) = runner.rejoins
        assert record["agent"] == server_id and record["redeployed"]
    finally:
        runner.close()
        device.kill()
        server.kill()


def _names_both(message: str, device, server) -> None:
    assert "\n" not in message
    for agent in (device, server):
        assert agent.name in message and agent.id in message, message


def test_cli_run_counts_answers_with_the_little_part_on_the_server(tmp_path, capsys,
                                                                   monkeypatch):
    from app.cli import main
    from tests.app.test_biglittle_cli import save

    model = save(pair(threshold=0.3), tmp_path / "bl", seed=5)
    device, server = start_agents(["dc-device", "dc-server"])
    argv = ["biglittle", "run", str(model), "--dataset", "mnist", "--range", "9000,9020",
            "--no-progress"]
    try:
        assert main([*argv, "--json"]) == 0
        local = json.loads(capsys.readouterr().out)
        kill_during_cli_run(monkeypatch, device)  # the device dies after the tenth sample
        assert main([*argv, "--agent", device.address, "--agent", server.address,
                     "--json"]) == 0
        res = json.loads(capsys.readouterr().out)
    finally:
        device.kill()
        server.kill()
    answers = res["answers"]
    assert res["samples"] == 20 and res["fallbacks"] == 0
    assert [a["little_on"] for a in answers] == [None] * 10 + ["dc-server"] * 10
    assert res["little_on_server"] == 10 and local["little_on_server"] == 0
    for got, want in zip(answers, local["answers"], strict=True):
        assert (got["label"], got["answered_by"]) == (want["label"], want["answered_by"])
        assert got["probability"] == pytest.approx(want["probability"], rel=1e-5)
    assert list(answers[0])[-1] == "little_on" and list(answers[0])[:-1] == [
        "label", "answered_by", "probability", "latency_ms", "little_ms", "big_ms",
        "bytes_sent", "fallback", "reason"]
