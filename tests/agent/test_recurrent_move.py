"""A recurrent network's state through placement changes and failovers (real agents on
loopback): a Memory that moves (``move``/``place``) takes its state along, and so do the Memories
of agents whose share is only redeployed; a Memory that dies with its agent restarts from zeros on
the fallback, which the failover record says (``state_reset``); a Memory on a live agent keeps its
state through a failover, even when the sample sent again had already updated it."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from agent import protocol as P
from agent.client import AgentError, deploy
from agent.host import Fragment
from agent.session import Session
from engine.backends import get_backend
from engine.builder import NetworkBuilder
from engine.graph import Network
from tests.agent.test_recurrent import N_H, N_IN, _local, _placement, _Wire, elman

STEPS, MOVE_AT = 10, 5


def _sequence() -> tuple:
    desc, ids = elman()
    net = _local(desc)
    xs = np.random.default_rng(11).standard_normal((STEPS, N_IN)).astype(np.float32)
    return desc, ids, net, xs


def _assert_reset_at_move(got, net, xs) -> None:
    """``got`` equals the local sequence with its state reset to zeros at ``MOVE_AT``."""
    want = [net.forward(x).copy() for x in xs[:MOVE_AT]]
    net.reset_state()
    want += [net.forward(x).copy() for x in xs[MOVE_AT:]]
    for k, (a, b) in enumerate(zip(got, want, strict=True)):
        assert np.array_equal(a, b), f"sample {k}"


def _close(dep) -> None:
    try:
        dep.undeploy()
    finally:
        dep.session.close()


# role -> agent index after the move (the Elman Memory starts alone on agent 2)
MOVES = {
    "memory-to-consumer": {"memory": 0},
    "memory-to-producer": {"memory": 1},
    "producer-away": {"linear": 2},          # a non-Memory module; the Memory stays
    "memory-and-producer-swap": {"memory": 1, "linear": 2, "tanh": 2, "dup": 2},
}


@pytest.mark.parametrize("move", list(MOVES))
def test_state_survives_a_move(trio, move) -> None:
    desc, ids, net, xs = _sequence()
    want = [net.forward(x).copy() for x in xs]
    names = [a.name for a in trio]
    roles = {"linear": 1, "tanh": 1, "dup": 1, "output": 1, "memory": 2}
    dep = deploy(desc, net.get_weights(), _placement(desc, ids, roles, names),
                 [a.address for a in trio])
    try:
        got = [dep.forward(x) for x in xs[:MOVE_AT]]
        changes = MOVES[move]
        if len(changes) == 1:
            ((role, k),) = changes.items()
            dep.move(ids[role], names[k])
        else:
            dep.place(_placement(desc, ids, {**roles, **changes}, [a.id for a in trio]))
        for role, k in changes.items():
            assert dep.agent_of(ids[role]).name == names[k]
        got += list(dep.forward_many(list(xs[MOVE_AT:])))
        for k, (a, b) in enumerate(zip(got, want, strict=True)):
            assert np.array_equal(a, b), f"sample {k}"
    finally:
        _close(dep)


def test_recurrent_composite_state_survives_a_move(trio) -> None:
    """An LSTM (two inner Memories) moved mid-sequence carries both states."""
    b = NetworkBuilder("lstm")
    i, lstm, o = (b.add("Input", dims=str(N_IN)), b.add("LSTM", input=N_IN, output=N_H),
                  b.add("Output"))
    b.chain(i, lstm, o)
    desc = b.build()
    net = _local(desc)
    xs = np.random.default_rng(12).standard_normal((STEPS, N_IN)).astype(np.float32)
    want = [net.forward(x).copy() for x in xs]
    dep = deploy(desc, net.get_weights(), {i: trio[0].id, lstm: trio[1].id, o: trio[0].id},
                 [a.address for a in trio])
    try:
        got = [dep.forward(x) for x in xs[:MOVE_AT]]
        dep.move(lstm, trio[2].name)
        got += [dep.forward(x) for x in xs[MOVE_AT:]]
        for k, (a, b_) in enumerate(zip(got, want, strict=True)):
            assert np.array_equal(a, b_), f"sample {k}"
    finally:
        _close(dep)


def _failover_run(spawn, roles: dict[str, int], kill: int) -> tuple:
    """Deploy the Elman network over two agents (+ a spare as fallback), run half the
    sequence, kill agent ``kill`` and run the rest; returns (ids, outputs, record, net, xs)."""
    desc, ids, net, xs = _sequence()
    agents = spawn(["r-one", "r-two", "r-spare"])
    ids_of = [a.id for a in agents]
    dep = deploy(desc, net.get_weights(), _placement(desc, ids, roles, ids_of),
                 [a.address for a in agents[:2]], fallback=agents[2].address)
    try:
        got = [dep.forward(x) for x in xs[:MOVE_AT]]
        agents[kill].kill()
        got += [dep.forward(x) for x in xs[MOVE_AT:]]
        (record,) = dep.failovers
        assert record["agent"] == ids_of[kill] and record["fallback"] == ids_of[2]
        assert record["resent"] == 1
    finally:
        _close(dep)
    return ids, got, record, net, xs


def test_failover_of_the_memory_agent_resets_its_state(spawn, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="agent.failover"):
        ids, got, record, net, xs = _failover_run(spawn, {"memory": 1}, kill=1)
    assert record["state_reset"] == [ids["memory"]]
    (line,) = [r.getMessage() for r in caplog.records if r.name == "agent.failover"]
    assert "r-two (" in line and "is gone" in line
    assert f"the state of {ids['memory']} was lost" in line
    _assert_reset_at_move(got, net, xs)  # the Memory restarted from zeros on the fallback


# The Memory on agent 0. "output-dies": the sample lost with agent 1 had already updated the
# Memory (its producer is on agent 0 too), so that update is undone before the sample goes again.
# "producer-dies": the lost sample never reached the Memory's update.
SURVIVORS = {"output-dies": {"output": 1},
             "producer-dies": {"linear": 1, "tanh": 1, "dup": 1, "output": 1}}


@pytest.mark.parametrize("layout", list(SURVIVORS))
def test_failover_elsewhere_keeps_the_state(spawn, layout) -> None:
    ids, got, record, net, xs = _failover_run(spawn, SURVIVORS[layout], kill=1)
    assert record["state_reset"] == []
    assert ids["memory"] not in record["modules"]
    for k, x in enumerate(xs):
        assert np.array_equal(got[k], net.forward(x)), f"sample {k}"


def test_get_and_set_state_on_the_wire(trio) -> None:
    """``get_state``/``set_state``: the Memory's state as a tensor (null before its first
    sample), only for its client or with the token; a wrong number of tensors names the
    module."""
    desc, ids, net, xs = _sequence()
    names = [a.name for a in trio]
    dep = deploy(desc, net.get_weights(), _placement(desc, ids, {"memory": 1}, names),
                 [a.address for a in trio])
    intruder = Session()
    try:
        conn, mem = dep.conns[dep.placement[ids["memory"]]], ids["memory"]

        def get(session: Session = dep.session, **extra) -> dict:
            msg = P.Message("get_state", {"deployment": dep.id, **extra})
            reply = session.request(session.connect(conn.address), msg, timeout=5.0)
            return {m: [None if r is None else reply.tensors[r] for r in refs]
                    for m, refs in reply.content["modules"].items()}

        assert get() == {mem: [None]}
        h = net.forward(xs[0]).copy()
        assert np.array_equal(dep.forward(xs[0]), h)
        (state,) = get(modules=[mem])[mem]
        assert np.array_equal(state, h)
        with pytest.raises(AgentError, match="refused"):
            get(intruder)
        assert np.array_equal(get(intruder, token=dep.token)[mem][0], h)
        msg = P.Message("set_state", {"deployment": dep.id, "modules": {mem: [0]}},
                        [np.full(N_H, 0.5, np.float32)])
        dep.session.request(conn, msg, timeout=5.0)
        net.modules[mem].reset_state(state=np.full(N_H, 0.5, np.float32))
        assert np.array_equal(dep.forward(xs[1]), net.forward(xs[1]))
        bad = P.Message("set_state", {"deployment": dep.id, "modules": {mem: [None, None]}})
        with pytest.raises(AgentError, match=f"{mem}.*holds 1 state tensor.*Received: 2"):
            dep.session.request(conn, bad, timeout=5.0)
    finally:
        intruder.close()
        _close(dep)


def test_fragment_undoes_a_lost_samples_update() -> None:
    """``before``: the state a Memory held before the update of a sample being sent again."""
    desc, ids, net, _ = _sequence()
    wire = _Wire()
    frag = wire.attach(Fragment("d", desc, dict.fromkeys(desc.modules, "a"), "a",
                                get_backend("numpy")))
    frag.modules[ids["linear"]].set_flat(net.get_weights()[ids["linear"]])
    mem, outputs = ids["memory"], (ids["output"],)
    for k, sample in enumerate(("s1", "s2")):
        frag.start(sample, outputs)
        frag.feed(sample, outputs, None, ids["input"], np.full(N_IN, k + 1, np.float32))
    after_s1 = frag.states(before=["s2"])[mem][0]
    now = frag.states()[mem][0]
    assert not np.array_equal(after_s1, now)
    assert np.array_equal(frag.states(before=["s1"])[mem][0], now)  # s2 came after s1
    frag.set_states({mem: [after_s1]})
    assert np.array_equal(frag.states(before=["s2"])[mem][0], after_s1)  # nothing to undo
    assert frag.states([ids["linear"]]) == {}  # no state there


def test_local_reference_is_stateful() -> None:
    """The sequences above would not tell a kept state from a reset one otherwise."""
    desc, _, net, xs = _sequence()
    first = [net.forward(x).copy() for x in xs]
    fresh = Network(desc, seed=5).train(False)
    fresh.forward(xs[0])
    fresh.reset_state()
    assert not np.array_equal(fresh.forward(xs[1]), first[1])


def test_streamed_recurrent_composite_through_a_failover(spawn) -> None:
    """forward_many over an LSTM composite (its Memories are inside it): samples go one at a
    time, as with a top-level Memory. The Output's agent dies mid-stream: the next sample
    updates the LSTM on the surviving agent, then is lost with its Output; the failover sends
    it again (one sample) after undoing that update, so the stream equals the local one."""
    b = NetworkBuilder("lstm-stream")
    i, lin, lstm, o = (b.add("Input", dims=str(N_IN)), b.add("Linear", input=N_IN, output=N_IN),
                       b.add("LSTM", input=N_IN, output=N_H), b.add("Output"))
    b.chain(i, lin, lstm, o)
    desc = b.build()
    net = _local(desc)
    xs = np.random.default_rng(13).standard_normal((24, N_IN)).astype(np.float32)
    want = [net.forward(x).copy() for x in xs]
    agents = spawn(["s-one", "s-two", "s-spare"])
    one, two, spare = agents
    dep = deploy(desc, net.get_weights(), {i: two.id, lin: two.id, lstm: two.id, o: one.id},
                 [one.address, two.address], fallback=spare.address)
    try:
        got = []
        for y in dep.forward_many(list(xs), window=8):
            got.append(y)
            if len(got) == 10:
                one.kill()
        (record,) = dep.failovers
        assert record["agent"] == one.id and record["state_reset"] == []
        assert record["resent"] == 1  # one sample in flight: the LSTM's order is the sequence
        for k, (a, b_) in enumerate(zip(got, want, strict=True)):
            assert np.array_equal(a, b_), f"sample {k}"
    finally:
        _close(dep)


def test_rejoin_of_a_restarted_memory_agent_says_its_state_restarts(spawn, caplog) -> None:
    """An agent restarted at its address (same id) gets its modules again from rejoin; the
    Memory among them starts from zeros, which rejoin's record (state_reset) and a warning
    say; the sequence goes on as a local network reset at that point."""
    import uuid  # noqa: PLC0415

    from tests.agent.conftest import start_agents  # noqa: PLC0415
    from tests.engine.test_biglittle_fallback import free_port  # noqa: PLC0415

    port, mem_id = free_port(), str(uuid.uuid4())
    desc, ids, net, xs = _sequence()
    (one,) = spawn(["j-one"])
    (two,) = start_agents(["j-two"], "--id", mem_id, "--bind", f"tcp://127.0.0.1:{port}")
    dep = deploy(desc, net.get_weights(), _placement(desc, ids, {"memory": 1}, [one.id, mem_id]),
                 [one.address, two.address])
    again = None
    try:
        got = [dep.forward(x) for x in xs[:MOVE_AT]]
        two.kill()
        dep.disconnect(mem_id)
        (again,) = start_agents(["j-two"], "--id", mem_id, "--bind", f"tcp://127.0.0.1:{port}")
        with caplog.at_level(logging.WARNING, logger="agent.failover"):
            record = dep.rejoin(mem_id)
        assert record["redeployed"] and record["state_reset"] == [ids["memory"]]
        assert any("restarts from zeros" in r.getMessage() for r in caplog.records)
        got += [dep.forward(x) for x in xs[MOVE_AT:]]
        _assert_reset_at_move(got, net, xs)
    finally:
        _close(dep)
        for agent in (two, again):
            if agent is not None:
                agent.kill()


def test_moving_a_memory_off_a_let_go_agent_says_its_state_restarts(trio, caplog) -> None:
    """A Memory moved away from an agent the deployment let go (disconnect) cannot take its
    state along (nothing is asked of that agent): a warning names it, and the sequence goes
    on from zeros on the new agent."""
    desc, ids, net, xs = _sequence()
    names = [a.name for a in trio]
    dep = deploy(desc, net.get_weights(), _placement(desc, ids, {"memory": 2}, names),
                 [a.address for a in trio])
    try:
        got = [dep.forward(x) for x in xs[:MOVE_AT]]
        dep.disconnect(trio[2].id)
        with caplog.at_level(logging.WARNING, logger="agent.deployment"):
            dep.move(ids["memory"], names[1])
        assert any(ids["memory"] in r.getMessage() and "restarts from zeros" in r.getMessage()
                   for r in caplog.records)
        got += [dep.forward(x) for x in xs[MOVE_AT:]]
        _assert_reset_at_move(got, net, xs)
    finally:
        _close(dep)
