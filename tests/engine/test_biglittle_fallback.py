"""Big-Little when the big part is lost: the little network answers (marked fallback) within a
bounded time, and forwarding resumes when the server agent is back. Real agent processes on
loopback: the server is killed (SIGKILL) or frozen (SIGSTOP) mid-stream; figures print with -s.

Restarting "the same agent" is a new ``dianne-agent`` process started with the killed one's
``--id``, ``--name`` and ``--bind`` address: it holds nothing, so the runner deploys the big part
on it again with the weights the deployment kept.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time

import numpy as np
import pytest

from app.biglittle_agents import RETRY_S, TIMEOUT_S, AgentRunner
from engine.biglittle import FALLBACK_REASONS, BigLittle, BigUnreachable, LocalRunner, split
from engine.graph import Network
from engine.link import Link
from tests.agent.conftest import start_agents
from tests.engine.test_biglittle import DIGITS, LITTLE, little_linear, pair

SLACK_MS = 150.0  # scheduling noise allowed on top of the bound (a loaded CI machine)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(name: str, agent_id: str, port: int):
    (agent,) = start_agents([name], "--id", agent_id, "--bind", f"tcp://127.0.0.1:{port}")
    return agent


def samples(n: int, seed: int = 11) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 1, 28, 28), dtype=np.float32)


def same_answer(got, want) -> bool:
    return (got.label, got.answered_by, got.fallback, got.bytes_sent) == (
        want.label, want.answered_by, False, want.bytes_sent) and \
        got.probability == pytest.approx(want.probability, rel=1e-5)


class Unreachable(LocalRunner):
    """The in-process parts with a big part that cannot be reached."""

    def big(self, payload):
        raise BigUnreachable("no route to the server", "timeout", sent=True)


def test_a_fallback_answer_is_the_little_verdict_marked():
    desc = pair(threshold=0.9)
    weights = Network(desc, seed=3).get_weights()
    parts = split(desc)
    lid = little_linear(desc)
    x = np.random.default_rng(0).random((1, 28, 28), dtype=np.float32)
    for logits, label in (([5.0, 0, 0, 0], "0"),  # confident priority class: local, as ever
                          ([0, 0, 2.0, 0], "2"),  # priority class below the threshold
                          ([0, 0, 0, 9.0], "other")):
        weights[lid] = np.concatenate([np.zeros(4 * 784, np.float32), np.float32(logits)])
        want = BigLittle(parts, LocalRunner(parts, weights)).classify(x)
        bl = BigLittle(parts, Unreachable(parts, weights))
        got = bl.classify(x)
        p = np.exp(logits) / np.exp(logits).sum()
        assert got.label == label and got.answered_by == "little"
        assert got.probability == pytest.approx(p.max(), rel=1e-5)
        if want.answered_by == "little":
            assert (got.label, got.probability, got.bytes_sent) == (
                want.label, want.probability, 0)
            assert not got.fallback and got.reason is None and got.big_ms is None
            assert bl.fallbacks == 0
        else:
            assert got.fallback and got.reason == "timeout" and bl.fallbacks == 1
            assert got.bytes_sent == 784 * 4 and got.big_ms >= 0
            assert got.latency_ms >= got.little_ms
        # one JSON shape for every answer
        assert list(json.loads(json.dumps(got.to_json()))) == [
            "label", "answered_by", "probability", "latency_ms", "little_ms", "big_ms",
            "bytes_sent", "fallback", "reason", "little_on"]
        assert got.little_on is None


def _stream(bl, xs, threshold=None, gap_s=0.0):
    out = []
    for x in xs:
        t0 = time.monotonic()
        out.append((bl.classify(x, threshold), time.monotonic() - t0))
        if gap_s:
            time.sleep(gap_s)  # a sensor's frame interval
    return out


def test_server_killed_mid_stream_then_restarted_with_its_identity():
    desc = pair(threshold=0.3)
    weights = Network(desc, seed=5).get_weights()
    parts = split(desc)
    local = BigLittle(parts, LocalRunner(parts, weights))
    port, server_id = free_port(), "b1e5e2a0-0000-4000-8000-00000000f00d"
    (device,) = start_agents(["fb-device"])
    server = start_server("fb-server", server_id, port)
    link = Link(delay_ms=10.0)  # emulated by the agents: the restarted one gets it again
    runner = AgentRunner.connect(parts, weights, [device.address, server.address],
                                 "fb-device", "fb-server", link)
    bl = BigLittle(parts, runner)
    xs = samples(60)
    want = [local.classify(x) for x in xs]
    assert {w.answered_by for w in want} == {"little", "big"}
    try:
        before = _stream(bl, xs[:10])
        assert all(same_answer(g, w) for (g, _), w in zip(before, want, strict=False))
        assert runner.status == "big part on fb-server: forwarding"

        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(5)
        t_kill = time.monotonic()
        during = []
        for x, w in zip(xs[10:30], want[10:30], strict=True):
            t0 = time.monotonic()
            a = bl.classify(x)
            during.append((a, time.monotonic() - t0, time.monotonic()))
            bound_ms = a.little_ms + runner.bound_s(x) * 1e3
            assert a.latency_ms <= bound_ms + SLACK_MS, (a, bound_ms)
            if w.answered_by == "little":  # priority answers do not change
                assert same_answer(a, w), (a, w)
            else:
                assert a.fallback and a.answered_by == "little" and a.reason in FALLBACK_REASONS
                assert a.label == LITTLE[int(np.argmax(runner.little(x)[0]))]
        fell = [(a, s, t) for a, s, t in during if a.fallback]
        assert len(fell) == sum(w.answered_by == "big" for w in want[10:30]) >= 5
        assert fell[0][0].reason == "timeout" and {a.reason for a, _, _ in fell[1:]} == {"down"}
        assert "unreachable (timeout" in runner.status
        first_s = fell[0][2] - t_kill
        later_ms = [a.latency_ms for a, _, _ in fell[1:]]

        t_restart = time.monotonic()
        server = start_server("fb-server", server_id, port)
        t_up = time.monotonic()
        resumed, k, waiting = None, 30, []
        while resumed is None and time.monotonic() < t_up + 10.0:
            a = bl.classify(xs[k % len(xs)])
            waiting.append(a)
            if a.answered_by == "big":
                resumed = time.monotonic() - t_up
            k += 1
            time.sleep(0.02)
        assert resumed is not None, runner.status
        assert runner.status == "big part on fb-server: forwarding"
        (record,) = runner.rejoins
        assert record["agent"] == server_id and record["redeployed"]
        after = _stream(bl, xs[:30])
        assert all(same_answer(g, w) for (g, _), w in zip(after, want[:30], strict=True))
        assert all(g.big_ms >= 2 * link.delay_ms for g, _ in after if g.answered_by == "big")
        assert bl.fallbacks == runner.fallbacks == len(fell) + sum(a.fallback for a in waiting)
        print(f"\nserver killed: first fallback answer {first_s * 1e3:.0f} ms after the kill "
              f"(bound {runner.bound_s(xs[0]) * 1e3:.0f} ms = timeout {TIMEOUT_S * 1e3:.0f} ms "
              f"+ link {link} both ways); later fallbacks {np.mean(later_ms):.2f} ms mean, "
              f"{max(later_ms):.2f} ms max (little alone "
              f"{np.mean([a.little_ms for a, _, _ in during]):.2f} ms); restart took "
              f"{t_up - t_restart:.2f} s, forwarding resumed {resumed:.2f} s after the agent "
              f"was up (down {record['down_s']:.2f} s, retry_s {RETRY_S:g}, redeploy "
              f"{record['seconds'] * 1e3:.1f} ms)")
    finally:
        runner.close()
        device.kill()
        server.kill()


def test_frozen_server_heartbeat_gone_then_resumed_without_redeploy():
    desc = pair(threshold=0.3)
    weights = Network(desc, seed=5).get_weights()
    parts = split(desc)
    local = BigLittle(parts, LocalRunner(parts, weights))
    device, server = start_agents(["fz-device", "fz-server"])
    runner = AgentRunner.connect(parts, weights, [device.address, server.address],
                                 "fz-device", "fz-server", timeout_s=0.3, retry_s=0.5)
    bl = BigLittle(parts, runner)
    xs = samples(30, seed=4)
    want = [local.classify(x) for x in xs]
    forwarded = [i for i, w in enumerate(want) if w.answered_by == "big"]
    try:
        assert same_answer(bl.classify(xs[forwarded[0]]), want[forwarded[0]])
        os.kill(server.proc.pid, signal.SIGSTOP)
        time.sleep(1.6)  # the stream saw only priority samples meanwhile: the heartbeat is gone
        t0 = time.monotonic()
        a = bl.classify(xs[forwarded[1]])
        waited = time.monotonic() - t0
        assert a.fallback and a.reason == "gone" and waited < 0.1  # not even the bound
        os.kill(server.proc.pid, signal.SIGCONT)
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            a = bl.classify(xs[forwarded[2]])
            if not a.fallback:
                break
            time.sleep(0.05)
        assert same_answer(a, want[forwarded[2]])
        (record,) = runner.rejoins
        assert record["agent"] == server.id and not record["redeployed"]
        assert all(same_answer(bl.classify(x), w) for x, w in zip(xs, want, strict=True))
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
        runner.close()
        device.kill()
        server.kill()


def kill_during_cli_run(monkeypatch, agent, after: int = 10) -> None:
    """Make the next CLI sweep kill ``agent`` once ``after`` samples are done (through the
    sweep's progress callback)."""
    import app.sweep_io

    plain = app.sweep_io.progress_bar

    def progress_bar(n, hidden):
        update, done = plain(n, hidden)

        def on(i, total):
            update(i, total)
            if i == after:
                agent.kill()
        return on, done

    monkeypatch.setattr(app.sweep_io, "progress_bar", progress_bar)


def test_cli_run_through_agents_counts_and_marks_fallbacks(tmp_path, capsys, monkeypatch):
    from app.cli import main
    from tests.app.test_biglittle_cli import save

    model = save(pair(threshold=0.3), tmp_path / "bl", seed=5)
    device, server = start_agents(["fc-device", "fc-server"])
    kill_during_cli_run(monkeypatch, server)  # the server dies after the tenth sample
    try:
        argv = ["biglittle", "run", str(model), "--dataset", "mnist", "--range", "9000,9030",
                "--agent", device.address, "--agent", server.address, "--big-timeout", "300ms",
                "--no-progress"]
        assert main([*argv, "--json"]) == 0
        res = json.loads(capsys.readouterr().out)
    finally:
        device.kill()
        server.kill()
    answers = res["answers"]
    assert res["samples"] == 30 and all(a["fallback"] is False for a in answers[:10])
    fell = [a for a in answers if a["fallback"]]
    assert res["fallbacks"] == len(fell) >= 5
    assert all(a["answered_by"] == "little" and a["label"] in LITTLE for a in fell)
    assert [a["reason"] for a in fell] == ["timeout"] + ["down"] * (len(fell) - 1)
    assert fell[0]["latency_ms"] < fell[0]["little_ms"] + 300 + SLACK_MS
    assert res["forwarded"] == pytest.approx(
        sum(a["answered_by"] == "big" for a in answers) / 30)
    assert all(a["label"] in DIGITS for a in answers if a["answered_by"] == "big")
    assert "fallback" in res["answers"][0] and "fallbacks" in res
