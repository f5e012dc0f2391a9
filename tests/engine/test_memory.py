"""The recurrent Memory module in the executor: a cycle through a Memory runs one step per
forward (Elman RNN against hand-written numpy), shape inference treats the Memory as a source,
backward through one step matches finite differences, and a cycle without a Memory is still an
error."""

from __future__ import annotations

import numpy as np
import pytest

from engine.builder import NetworkBuilder
from engine.errors import FormatError
from engine.graph import Network
from engine.shapes import infer_shapes

N_IN, N_H = 3, 4


def elman():
    """x -> Concat[x, h] -> Linear -> Tanh -> Duplicate -> (Output, Memory -> Concat)."""
    b = NetworkBuilder("elman")
    i = b.add("Input", dims=str(N_IN))
    cat = b.add("Concat", dim=0)
    lin = b.add("Linear", input=N_IN + N_H, output=N_H)
    act = b.add("Tanh")
    dup = b.add("Duplicate")
    out = b.add("Output")
    mem = b.add("Memory", size=N_H)
    b.chain(i, cat, lin, act, dup, out)
    b.connect(dup, mem)
    b.connect(mem, cat)
    return b.build(), lin, mem


def test_memory_carries_state_between_forwards():
    desc, lin, _ = elman()
    net = Network(desc, backend="numpy", seed=4)
    w, bias = net.modules[lin].params["weight"], net.modules[lin].params["bias"]
    xs = np.random.default_rng(0).standard_normal((5, N_IN)).astype(np.float32)
    h = np.zeros(N_H, np.float32)
    for x in xs:
        h = np.tanh(w @ np.concatenate([x, h]) + bias)
        np.testing.assert_allclose(net.forward(x), h, rtol=1e-5, atol=1e-6)


def test_reset_state_restarts_the_sequence():
    desc, _, mem = elman()
    net = Network(desc, backend="numpy", seed=4)
    x = np.ones(N_IN, np.float32)
    first = net.forward(x)
    assert not np.allclose(net.forward(x), first)
    net.modules[mem].reset_state()
    np.testing.assert_allclose(net.forward(x), first, rtol=1e-6)


def test_network_reset_state_restarts_every_memory():
    desc, _, _ = elman()
    net = Network(desc, backend="numpy", seed=4)
    x = np.ones(N_IN, np.float32)
    first = net.forward(x)
    assert not np.array_equal(net.forward(x), first)
    net.reset_state()
    assert np.array_equal(net.forward(x), first)


def test_batched_state():
    desc, _, mem = elman()
    net = Network(desc, backend="numpy", seed=4)
    xs = np.random.default_rng(1).standard_normal((3, 2, N_IN)).astype(np.float32)
    net.modules[mem].reset_state(batch=2)
    batched = [net.forward(x) for x in xs]
    for k in range(2):
        net.modules[mem].reset_state()
        for t in range(3):
            np.testing.assert_allclose(net.forward(xs[t, k]), batched[t][k], rtol=1e-5,
                                       atol=1e-6)


def test_shapes_of_a_recurrent_network():
    desc, _, mem = elman()
    shapes = infer_shapes(desc)
    assert not shapes.errors
    assert shapes[mem].out_shape == (N_H,)


def test_state_size_mismatch_is_reported_on_the_memory():
    desc, lin, mem = elman()
    desc.modules[mem].properties["size"] = "5"
    desc.modules[lin].properties["input"] = str(N_IN + 5)
    shapes = infer_shapes(desc)
    assert mem in shapes.errors and "expected 5" in shapes.errors[mem]


def test_one_step_backward_matches_finite_differences():
    desc, lin, mem = elman()
    net = Network(desc, backend="numpy", dtype=np.float64, seed=2)
    rng = np.random.default_rng(3)
    h0 = rng.standard_normal(N_H)
    x = rng.standard_normal(N_IN)
    g = rng.standard_normal(N_H)

    def loss(xv):
        net.modules[mem].reset_state(h0)
        return float(np.sum(net.forward(xv) * g))

    loss(x)
    net.zero_grad()
    gx = next(iter(net.backward(g).values()))
    gh = net.modules[mem].grad_state.copy()  # kept on the Memory for BPTT
    eps = 1e-6
    num = np.array([(loss(x + eps * e) - loss(x - eps * e)) / (2 * eps) for e in np.eye(N_IN)])
    np.testing.assert_allclose(gx, num, rtol=1e-6, atol=1e-8)
    num_h = []
    for e in np.eye(N_H):
        net.modules[mem].reset_state(h0 + eps * e)
        lp = float(np.sum(net.forward(x) * g))
        net.modules[mem].reset_state(h0 - eps * e)
        num_h.append((lp - float(np.sum(net.forward(x) * g))) / (2 * eps))
    np.testing.assert_allclose(gh, num_h, rtol=1e-6, atol=1e-8)


def test_cycle_without_memory_is_still_an_error():
    b = NetworkBuilder("loop")
    i = b.add("Input", dims="3")
    acc = b.add("Accumulate")
    t = b.add("Tanh")
    d = b.add("Duplicate")
    o = b.add("Output")
    b.chain(i, acc, t, d, o)
    b.connect(d, acc)
    with pytest.raises(FormatError, match="cycle"):
        Network(b.build(), backend="numpy")
