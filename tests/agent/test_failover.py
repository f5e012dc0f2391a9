"""Failover as an API: with a fallback agent configured, a stream of forwards survives the
death of an agent (real agent processes on loopback; figures print with -s)."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from agent.client import AgentClient, AgentError, deploy
from engine.graph import Network
from engine.zoo import mlp

DEADLINE_S = 2.0


def split(net: Network, first: str, second: str) -> dict[str, str]:
    half = len(net.order) // 2
    return {m: (first if i < half else second) for i, m in enumerate(net.order)}


def test_stream_continues_on_the_fallback_with_the_kept_weights(spawn) -> None:
    one, two, spare = spawn(["f-one", "f-two", "f-spare"])
    desc = mlp([784, 64, 32, 10])
    net = Network(desc, seed=3)
    placement = split(net, one.id, two.id)
    dep = deploy(desc, Network(desc, seed=4).get_weights(), placement,
                 [one.address, two.address], fallback=spare.address)
    try:
        dep.set_weights(net.get_weights())  # the kept weights follow set_weights
        xs = [np.random.default_rng(i).random(784, dtype=np.float32) for i in range(120)]
        want = [net.forward(x).copy() for x in xs]
        got, stamps = [], []
        for y in dep.forward_many(xs, window=8):
            got.append(y)
            stamps.append(time.monotonic())
            if len(got) == 40:  # freeze it: its heartbeat stops, its process stays
                t_stop = time.monotonic()
                os.kill(two.proc.pid, signal.SIGSTOP)
        assert len(got) == len(xs)
        for k, (a, b) in enumerate(zip(got, want, strict=True)):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-5, err_msg=f"sample {k}")
        (record,) = dep.failovers
        moved = sorted(m for m, a in placement.items() if a == two.id)
        assert record["agent"] == two.id and record["fallback"] == spare.id
        assert record["modules"] == moved
        assert record["state_reset"] == []  # no recurrent state to lose in an MLP
        assert {dep.placement[m] for m in moved} == {spare.id}
        assert 1 <= record["resent"] <= 8
        # results already on their way still arrive; the stall ends with the first result
        # after the failover
        after = next(t for t in stamps if t > record["monotonic"])
        gap = after - t_stop
        print(f"\nfailover: agent given up {record['monotonic'] - t_stop:.2f} s after it froze,"
              f" redeploy {record['redeploy_s'] * 1e3:.1f} ms, stream resumed {gap:.2f} s after "
              f"the freeze (longest gap between results {max(np.diff(stamps)):.2f} s, before "
              f"it {max(np.diff(stamps[:40])) * 1e3:.1f} ms); {record['resent']} samples in "
              f"flight sent again, none lost")
        assert gap < DEADLINE_S, f"failover took {gap:.2f} s"
    finally:
        os.kill(two.proc.pid, signal.SIGCONT)
        dep.session.close()
    # Nothing was sent to the frozen agent after it was given up: it still holds its share.
    with AgentClient(two.address) as c:
        held = {d["id"]: d["modules"] for d in c.hello()["deployments"]}
    assert held.get(dep.id) == sorted(m for m, a in placement.items() if a == two.id)


def test_single_forward_fails_over_and_an_error_without_fallback(spawn) -> None:
    one, two, spare = spawn(["g-one", "g-two", "g-spare"])
    desc = mlp([20, 8, 3])
    net = Network(desc, seed=5)
    x = np.linspace(0, 1, 20, dtype=np.float32)
    dep = deploy(desc, net.get_weights(), split(net, one.id, two.id),
                 [one.address, two.address, spare.address])
    try:
        np.testing.assert_allclose(dep.forward(x), net.forward(x), rtol=0, atol=1e-6)
        two.kill()
        with pytest.raises(AgentError, match="g-two") as caught:
            dep.forward(x)
        assert caught.value.code == "gone" and caught.value.agent == two.id
        dep.set_fallback("g-spare")  # by name: an agent the deployment knows
        np.testing.assert_allclose(dep.forward(x), net.forward(x), rtol=0, atol=1e-6)
        assert dep.failovers[0]["fallback"] == spare.id
        spare.kill()  # the only fallback is gone too: a clear error, no hang
        with pytest.raises(AgentError, match="no live fallback"):
            dep.forward(x)
    finally:
        dep.session.close()


def _small_split(one, two, seed: int, fallback=None) -> tuple:
    """An MLP 16-8-4 split over agents ``one`` and ``two``: (net, placement, deployment, x)."""
    desc = mlp([16, 8, 4])
    net = Network(desc, seed=seed)
    placement = split(net, one.id, two.id)
    dep = deploy(desc, net.get_weights(), placement, [one.address, two.address],
                 fallback=fallback)
    return net, placement, dep, np.random.default_rng(seed).random(16, dtype=np.float32)


def _agrees(dep, net, x, **kw) -> None:
    np.testing.assert_allclose(dep.forward(x, **kw), net.forward(x), rtol=0, atol=1e-5)


def test_forward_needing_a_let_go_agent_fails_at_once_or_fails_over(spawn) -> None:
    """An agent let go by disconnect() takes no part in later forwards: a forward that needs
    its modules raises a one-line 'gone' error naming it at once (no wait on an agent nobody
    listens to), and with a fallback configured it fails over to it instead."""
    one, two, spare = spawn(["g-one", "g-two", "g-spare"])
    net, _, dep, x = _small_split(one, two, seed=3)
    try:
        dep.disconnect(two.id)
        t0 = time.monotonic()
        with pytest.raises(AgentError, match="g-two.*let go") as err:
            dep.forward(x)  # no timeout given: it must not wait
        assert err.value.code == "gone" and time.monotonic() - t0 < 1.0
        assert "\n" not in str(err.value)
        dep.set_fallback(spare.address)
        _agrees(dep, net, x)
        assert dep.failovers[-1]["agent"] == two.id
        assert dep.failovers[-1]["fallback"] == spare.id
    finally:
        dep.undeploy()


def test_connect_takes_an_agent_back_after_its_failover(spawn) -> None:
    """After a failover the deployment forgets the dead agent; connect() makes a new agent
    (here: another process) known and live, and a placement moves the modules onto it."""
    one, two, spare = spawn(["c-one", "c-two", "c-spare"])
    net, placement, dep, x = _small_split(one, two, seed=5, fallback=spare.address)
    try:
        dep.disconnect(two.id)
        _agrees(dep, net, x)
        assert dep.failovers[-1]["agent"] == two.id and two.id not in dep.all_conns
        (back,) = spawn(["c-back"])
        info = dep.connect(back.address)
        assert info.id == back.id and back.id not in dep.lost
        moved = dict(dep.placement, **{m: back.id for m, a in placement.items() if a == two.id})
        dep.place(moved)
        _agrees(dep, net, x)
        assert set(dep.placement.values()) == {one.id, back.id}
    finally:
        dep.undeploy()


def test_connect_by_id_reconnects_an_agent_that_was_let_go(spawn) -> None:
    """disconnect() closes an agent's sockets; connect() by its id (or name) connects anew,
    so forwards reach it again (not the closed connection)."""
    one, two = spawn(["k-one", "k-two"])
    net, _, dep, x = _small_split(one, two, seed=6)
    try:
        dep.disconnect(two.id)
        assert dep.connect("k-two").id == two.id and two.id not in dep.lost
        _agrees(dep, net, x, timeout=5)
    finally:
        dep.undeploy()
