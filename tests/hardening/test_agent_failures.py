"""Agents that die and clients that do not belong, with real agent processes on loopback.

- A dying agent: during a pipelined stream of forwards, SIGKILL the agent holding the second half
  of the network. The caller gets an error naming that agent within 2 s; once a fallback agent is
  set (``Deployment.set_fallback``) the dead agent's modules go there with the weights the
  client kept and the stream continues — samples in flight are sent again, none is lost,
  results equal the local network's. Figures (detection time, failover time, samples re-sent)
  print with -s.
- CURVE: an agent started with ``--keys`` serves an authorized client, refuses a client whose
  key is not in ``authorized/`` (and one without CURVE) and logs the refusal.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from agent.client import AgentClient, AgentError, deploy
from agent.keys import AGENT, Keys, generate, load
from engine.graph import Network
from engine.zoo import mlp
from tests.agent.conftest import start_agents

DEADLINE_S = 2.0


@pytest.fixture
def agents():
    started = start_agents(["d-one", "d-two", "d-spare"])
    yield started
    for a in started:
        a.kill()


def test_dying_agent_is_named_and_the_stream_fails_over(agents) -> None:
    one, two, spare = agents
    desc = mlp([784, 64, 32, 10])
    net = Network(desc, seed=9)
    weights = net.get_weights()
    half = len(net.order) // 2
    placement = {m: (one.id if i < half else two.id) for i, m in enumerate(net.order)}
    dep = deploy(desc, weights, placement, [one.address, two.address, spare.address])
    xs = [np.random.default_rng(i).random(784, dtype=np.float32) for i in range(200)]
    want = [net.forward(x) for x in xs]
    got: list[np.ndarray] = []
    try:
        with pytest.raises(AgentError) as caught:
            for y in dep.forward_many(xs, window=8):
                got.append(y)
                if len(got) == 50:
                    t_kill = time.monotonic()
                    two.kill()
        detected = time.monotonic() - t_kill
        text = str(caught.value)
        assert "d-two" in text and two.id in text, text
        assert detected < DEADLINE_S, f"error after {detected:.2f} s"
        # Fail over: the dead agent's modules go to the spare, with the weights the client kept.
        dep.set_fallback(spare.address)
        resent = len(xs) - len(got)
        first = None
        for y in dep.forward_many(xs[len(got):], window=8):
            first = first or time.monotonic()
            got.append(y)
        gap = first - t_kill
        assert dep.failovers[0]["agent"] == two.id and dep.failovers[0]["fallback"] == spare.id
        print(f"\ndying agent: error naming it after {detected:.2f} s; stream resumed on the "
              f"fallback {gap:.2f} s after the kill; {len(got) - resent} results before the "
              f"error, {resent} samples sent (again) after it, none lost")
        assert gap < DEADLINE_S, f"failover took {gap:.2f} s"
        assert len(got) == len(xs)
        for k, (a, b) in enumerate(zip(got, want, strict=True)):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-5, err_msg=f"sample {k}")
        assert one.proc.poll() is None and spare.proc.poll() is None
    finally:
        dep.session.close()


def intruder_keys(site: Path, elsewhere: Path) -> Keys:
    """A well-formed CURVE keypair that the site never authorized, aimed at the site's agents."""
    generate(elsewhere, "intruder")
    own = load(elsewhere, "intruder")
    agent_pub = load(site, AGENT).public
    return Keys(own.public, own.secret, agent_pub, elsewhere / "authorized")


def test_curve_refuses_and_logs_an_unknown_client(tmp_path: Path) -> None:
    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    generate(site, "client")
    (agent,) = start_agents(["curved"], "--keys", str(site))
    try:
        with AgentClient(agent.address, keys=load(site, "client")) as ok:
            assert ok.hello()["secure"] is True
        t0 = time.monotonic()
        with pytest.raises(AgentError, match="no agent answers"):
            AgentClient(agent.address, keys=intruder_keys(site, elsewhere), timeout=1.0)
        assert time.monotonic() - t0 < DEADLINE_S + 1.0
        with pytest.raises(AgentError, match="no agent answers"):
            AgentClient(agent.address, timeout=1.0)  # no CURVE at all
        assert agent.proc.poll() is None
    finally:
        agent.kill()
    agent.proc.log.seek(0)
    log = agent.proc.log.read()
    intruder = (elsewhere / "intruder.key").read_text()
    refusals = [line for line in log.splitlines() if "refused" in line.lower()]
    assert refusals, f"no refusal logged:\n{log}"
    assert any("handshake failed" in line for line in refusals), log  # the client without CURVE
    assert any(key in log for key in _z85_keys(intruder)), log


def _z85_keys(cert_text: str) -> list[str]:
    """The z85 public key(s) in a ZeroMQ certificate file."""
    return [line.split("=", 1)[1].strip().strip('"') for line in cert_text.splitlines()
            if line.strip().startswith("public-key")]
