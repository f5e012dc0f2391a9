"""Recurrent networks (a ``Memory`` closing a cycle) deployed across real agents give the local
sequence: the Memory, its producer and its consumer on different agents, one sample after the
other or streamed, a new sequence after ``reset_state`` or in a second deployment, and one step of
backward as the local executor does it. A fragment on its own: a state that arrives before the
client's start, and a start that arrives after the sample was done."""

from __future__ import annotations

import numpy as np
import pytest

from agent.client import deploy
from agent.host import Fragment
from engine.backends import get_backend
from engine.builder import NetworkBuilder
from engine.errors import DianneError, FormatError
from engine.graph import Network
from tests.agent.test_backward import _param_grads

N_IN, N_H, STEPS = 3, 4, 10


def elman() -> tuple:
    """x -> Concat[x, h] -> Linear -> Tanh -> Duplicate -> (Output, Memory -> Concat)."""
    b = NetworkBuilder("elman")
    ids = {"input": b.add("Input", name="x", dims=str(N_IN)),
           "concat": b.add("Concat", dim=0),
           "linear": b.add("Linear", input=N_IN + N_H, output=N_H),
           "tanh": b.add("Tanh"), "dup": b.add("Duplicate"), "output": b.add("Output"),
           "memory": b.add("Memory", size=N_H)}
    b.chain(*(ids[k] for k in ("input", "concat", "linear", "tanh", "dup", "output")))
    b.connect(ids["dup"], ids["memory"])
    b.connect(ids["memory"], ids["concat"])
    return b.build(), ids


def delay() -> tuple:
    """x -> Linear -> Duplicate -> (Accumulate, Memory -> Accumulate) -> Output: y_t = Lx_t +
    Lx_{t-1}; the Memory's producer does not depend on the Memory."""
    b = NetworkBuilder("delay")
    ids = {"input": b.add("Input", dims=str(N_IN)),
           "linear": b.add("Linear", input=N_IN, output=N_H), "dup": b.add("Duplicate"),
           "add": b.add("Accumulate"), "output": b.add("Output"),
           "memory": b.add("Memory", size=N_H)}
    b.chain(ids["input"], ids["linear"], ids["dup"], ids["add"], ids["output"])
    b.connect(ids["dup"], ids["memory"])
    b.connect(ids["memory"], ids["add"])
    return b.build(), ids


# (network, {role: agent index}; unnamed roles go to agent 0)
LAYOUTS = {
    # the Memory alone, its producer on a second agent, its consumer on a third
    "elman-memory-alone": (elman, {"linear": 1, "tanh": 1, "dup": 1, "output": 1,
                                   "memory": 2}),
    # Memory with its producer (the state is handed over there), its consumer elsewhere
    "elman-memory-with-producer": (elman, {"linear": 1, "tanh": 1, "dup": 1, "output": 2,
                                           "memory": 1}),
    # a delay line: producer, Memory and consumer on three agents
    "delay": (delay, {"memory": 1, "add": 2, "output": 2}),
}


def _placement(desc, ids, roles, names) -> dict[str, str]:
    where = {ids[role]: names[k] for role, k in roles.items()}
    return {m: where.get(m, names[0]) for m in desc.modules}


def _local(desc) -> Network:
    return Network(desc, seed=5).train(False)  # what agents run: unfrozen modules


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_recurrent_split_equals_local(trio, layout) -> None:
    make, roles = LAYOUTS[layout]
    desc, ids = make()
    net = _local(desc)
    xs = np.random.default_rng(7).standard_normal((STEPS, N_IN)).astype(np.float32)
    expected = [net.forward(x) for x in xs]
    assert not np.allclose(expected[0], expected[1])  # the state matters
    names = [a.name for a in trio]
    placement = _placement(desc, ids, roles, names)
    assert placement[ids["memory"]] != placement[ids["dup"]] or layout.endswith("producer")
    dep = deploy(desc, net.get_weights(), placement, [a.address for a in trio])
    second = None
    try:
        assert dep.memories() == [ids["memory"]]
        for x, want in zip(xs, expected, strict=True):
            assert np.array_equal(dep.forward(x), want)
        # a second deployment of the same network starts from the initial state
        second = deploy(desc, net.get_weights(), placement, [a.address for a in trio])
        for x, want in zip(xs[:3], expected[:3], strict=True):
            assert np.array_equal(second.forward(x), want)
        # a new sequence, streamed with a window: the same sequence, in order
        dep.reset_state()
        streamed = list(dep.forward_many(list(xs), window=8))
        assert len(streamed) == STEPS
        for got, want in zip(streamed, expected, strict=True):
            assert np.array_equal(got, want)
        # and it carries on from there, as the local network does
        assert np.array_equal(dep.forward(xs[0]), net.forward(xs[0]))
    finally:
        for d in (dep, second):
            if d is not None:
                d.undeploy()
                d.session.close()


def test_one_step_backward_equals_local(trio) -> None:
    """As locally: the gradient stops at the Memory (no backpropagation through time)."""
    desc, ids = elman()
    net = _local(desc)
    names = [a.name for a in trio]
    dep = deploy(desc, net.get_weights(), _placement(desc, ids, LAYOUTS["elman-memory-alone"][1],
                                                     names), [a.address for a in trio])
    try:
        rng = np.random.default_rng(8)
        net.zero_grad()
        dep.zero_grad()
        for _ in range(3):
            x = rng.standard_normal(N_IN).astype(np.float32)
            g = rng.standard_normal(N_H).astype(np.float32)
            assert np.array_equal(dep.forward(x), net.forward(x))
            remote, local = dep.backward(g), net.backward(g)
            assert set(remote) == set(local) == {ids["input"]}
            np.testing.assert_allclose(remote[ids["input"]], local[ids["input"]], rtol=0,
                                       atol=1e-6)
        remote_grads, local_grads = dep.get_weights(grads=True), _param_grads(net)
        assert set(remote_grads) == set(local_grads) == {ids["linear"]}
        np.testing.assert_allclose(remote_grads[ids["linear"]], local_grads[ids["linear"]],
                                   rtol=0, atol=1e-6)
    finally:
        dep.undeploy()
        dep.session.close()


class _Wire:
    """Stands in for the agent: records what a fragment sends and reports."""

    def __init__(self) -> None:
        self.sent: list[tuple] = []
        self.reported: list[tuple] = []

    def attach(self, frag: Fragment) -> Fragment:
        frag.send = lambda *a: self.sent.append(a)
        frag.report = lambda kind, sample, mid, t: self.reported.append((kind, sample, mid, t))
        return frag


def test_fragment_state_before_start_and_late_start() -> None:
    """The Memory alone on an agent: a state that arrives before the client's start still
    follows the emission of the old one; a start after the sample was done changes nothing."""
    desc, ids = elman()
    placement = {m: "a" for m in desc.modules}
    placement[ids["memory"]] = "b"
    wire = _Wire()
    frag = wire.attach(Fragment("d", desc, placement, "b", get_backend("numpy")))
    outputs = (ids["output"],)
    h1 = np.arange(N_H, dtype=np.float32)
    frag.feed("s1", outputs, ids["dup"], ids["memory"], h1, state=True)
    assert [(k, s, m) for k, s, m, _ in wire.reported] == [("state", "s1", ids["memory"])]
    emitted = [(dst, t) for _, kind, sample, _, dst, _, t in wire.sent]
    assert len(emitted) == 1 and emitted[0][0] == ids["concat"]
    assert np.array_equal(emitted[0][1], np.zeros(N_H, np.float32))  # the old state
    frag.start("s1", outputs)  # late: nothing emitted again
    assert len(wire.sent) == 1
    frag.start("s2", outputs)
    assert np.array_equal(wire.sent[-1][-1], h1)
    frag.feed("s2", outputs, ids["dup"], ids["memory"], 2 * h1, state=True)
    with pytest.raises(DianneError, match="is done on this agent"):  # one state per sample
        frag.feed("s2", outputs, ids["dup"], ids["memory"], h1, state=True)
    frag.start("s3", outputs)
    assert np.array_equal(wire.sent[-1][-1], 2 * h1)


def test_fragment_producer_sends_the_state() -> None:
    """On the producer's agent the value for a remote Memory leaves as a ``state`` tensor."""
    desc, ids = elman()
    placement = {m: "a" for m in desc.modules}
    placement[ids["memory"]] = "b"
    wire = _Wire()
    frag = wire.attach(Fragment("d", desc, placement, "a", get_backend("numpy")))
    frag.feed("s1", (ids["output"],), None, ids["input"], np.ones(N_IN, np.float32))
    assert wire.sent == []  # the Concat waits for the Memory's state
    frag.feed("s1", (ids["output"],), ids["memory"], ids["concat"], np.zeros(N_H, np.float32))
    (agent, kind, sample, src, dst, _, value), = wire.sent
    assert (agent, kind, sample, src, dst) == ("b", "state", "s1", ids["dup"], ids["memory"])
    (out,) = [t for k, _, m, t in wire.reported if k == "forward"]
    assert np.array_equal(value, out)


def test_cycle_without_memory_is_refused() -> None:
    b = NetworkBuilder("loop")
    i, acc, t, d, o = (b.add("Input", dims="3"), b.add("Accumulate"), b.add("Tanh"),
                       b.add("Duplicate"), b.add("Output"))
    b.chain(i, acc, t, d, o)
    b.connect(d, acc)
    desc = b.build()
    with pytest.raises(FormatError, match="cycle that no Memory"):
        Fragment("d", desc, {m: "a" for m in desc.modules}, "a", get_backend("numpy"))
