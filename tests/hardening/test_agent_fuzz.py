"""Protocol fuzzing against a real ``dianne-agent`` process: generated malformed messages (random
frames, truncated headers, lying tensor descriptors, oversized messages, wrong versions, unknown
types, valid types with bad content) each get their error reply, the agent never stops serving,
its resident memory stays bounded, and a correct forward works afterwards.

CI sends 2,000 messages; ``-m slow`` sends 10,000. Frames beyond ZeroMQ's own guard
(``MAXMSGSIZE``, twice the message limit) are dropped with the connection by ZeroMQ itself: a
separate test checks the agent survives those too. Figures are printed with ``-s``.
"""

from __future__ import annotations

import numpy as np
import pytest
import zmq

from agent import protocol as P
from agent.client import deploy
from engine.description import dumps_network
from engine.graph import Network
from engine.zoo import mlp
from tests.agent.conftest import start_agents
from tests.hardening.wire_fuzz import Target, fuzz_agent, rss_kib

MAX_MESSAGE = 256 << 10
MAX_ELEMENTS = 1 << 16
RSS_GROWTH_MIB = 48  # allowed growth of the agent's resident memory after warm-up


@pytest.fixture
def fuzzed_agent():
    """A real agent with small limits, a real deployment on it, and the local reference."""
    (agent,) = start_agents(["fuzzed"], "--max-message-bytes", str(MAX_MESSAGE),
                            "--max-tensor-elements", str(MAX_ELEMENTS))
    desc = mlp([784, 32, 10])
    net = Network(desc, seed=5)
    dep = deploy(desc, net.get_weights(), {m: agent.id for m in desc.modules}, [agent.address])
    try:
        yield agent, desc, net, dep
    finally:
        dep.session.close()
        agent.kill()


def run_fuzz(fuzzed_agent, count: int) -> None:
    agent, desc, net, dep = fuzzed_agent
    x = np.random.default_rng(0).random((784,), dtype=np.float32)
    want = net.forward(x)
    np.testing.assert_allclose(dep.forward(x), want, rtol=0, atol=1e-6)
    target = Target(dep.id, desc.inputs()[0].id, 784, dumps_network(desc), MAX_MESSAGE,
                    MAX_ELEMENTS, dep.token)
    stats = fuzz_agent(agent.address, agent.proc.pid, target, count)
    print(f"\nfuzz: {stats.sent} messages in {stats.seconds:.1f} s, {stats.errors} error "
          f"replies, {stats.other_replies} other replies; kinds {dict(stats.by_kind)}; "
          f"agent RSS KiB {stats.rss_kib[0][1]} -> {stats.rss_kib[-1][1]} "
          f"(max {max(r for _, r in stats.rss_kib)})")
    assert stats.problems == [], "\n".join(stats.problems[:20])
    assert stats.sent == count
    assert agent.proc.poll() is None, "the agent died"
    assert stats.errors >= count * 0.6  # most messages are errors by construction
    assert len(stats.by_kind) == 9  # every kind was tried
    warm = stats.rss_kib[1][1] if len(stats.rss_kib) > 1 else stats.rss_kib[0][1]
    peak = max(r for _, r in stats.rss_kib)
    assert peak - warm < RSS_GROWTH_MIB * 1024, stats.rss_kib
    # still serving the real deployment, with the same answers
    np.testing.assert_allclose(dep.forward(x), want, rtol=0, atol=1e-6)


def test_fuzz_2000_messages(fuzzed_agent) -> None:
    run_fuzz(fuzzed_agent, 2000)


@pytest.mark.slow
def test_fuzz_10000_messages(fuzzed_agent) -> None:
    run_fuzz(fuzzed_agent, 10_000)


def test_frames_beyond_zmq_guard_do_not_kill_the_agent(fuzzed_agent) -> None:
    """A 2 MiB frame (over MAXMSGSIZE = 2 x 256 KiB + 1 MiB): ZeroMQ drops that connection;
    the agent keeps serving everyone, its memory does not keep the frames."""
    agent, desc, net, dep = fuzzed_agent
    before = rss_kib(agent.proc.pid)
    ctx = zmq.Context()
    try:
        for _ in range(20):
            sock = ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(agent.address)
            head = P.Message("forward", {"deployment": dep.id})
            sock.send_multipart([P.encode(head)[0], b"\0" * (2 << 20)])
            sock.close(0)
        probe = ctx.socket(zmq.DEALER)
        probe.setsockopt(zmq.LINGER, 0)
        probe.connect(agent.address)
        ping = P.Message("ping")
        probe.send_multipart(P.encode(ping))
        assert probe.poll(5000), "the agent stopped answering"
        assert P.decode(probe.recv_multipart()).parent == ping.id
        probe.close(0)
    finally:
        ctx.term()
    assert agent.proc.poll() is None
    assert rss_kib(agent.proc.pid) - before < RSS_GROWTH_MIB * 1024
    x = np.ones(784, np.float32)
    np.testing.assert_allclose(dep.forward(x), net.forward(x), rtol=0, atol=1e-6)
