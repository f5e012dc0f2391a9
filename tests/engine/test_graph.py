"""The graph executor: forward equals hand-written numpy, forks/joins, several inputs and
outputs, backward of the whole graph against finite differences, topology errors."""

from __future__ import annotations

import numpy as np
import pytest

from engine.builder import NetworkBuilder, sequential
from engine.errors import DianneError, FormatError
from engine.graph import Network


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def mlp_description():
    return sequential("mlp", [("Linear", {"input": 12, "output": 5}), ("Sigmoid", {}),
                              ("Linear", {"input": 5, "output": 3})],
                      input_dims=(1, 3, 4), labels=["a", "b", "c"])


def test_mlp_forward_equals_numpy():
    net = Network(mlp_description(), backend="numpy", seed=3)
    lin = [m for m in net.order if net.modules[m].type_name == "Linear"]
    w1, b1 = (net.modules[lin[0]].params[k] for k in ("weight", "bias"))
    w2, b2 = (net.modules[lin[1]].params[k] for k in ("weight", "bias"))
    x = np.random.default_rng(0).random((1, 3, 4), dtype=np.float32)
    want = w2 @ sigmoid(w1 @ x.ravel() + b1) + b2
    got = net.forward(x)
    assert got.dtype == np.float32 and got.shape == (3,)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert net.labels() == ["a", "b", "c"]


def test_forward_returns_a_copy_not_a_reused_buffer():
    net = Network(mlp_description(), backend="numpy")
    rng = np.random.default_rng(1)
    a = net.forward(rng.random((1, 3, 4)))
    a_saved = a.copy()
    net.forward(rng.random((1, 3, 4)))
    np.testing.assert_array_equal(a, a_saved)


def test_batch_forward_equals_per_sample():
    net = Network(mlp_description(), backend="numpy")
    xs = np.random.default_rng(2).random((4, 1, 3, 4), dtype=np.float32)
    batch = net.forward(xs)
    for i in range(4):
        np.testing.assert_allclose(batch[i], net.forward(xs[i]), rtol=1e-5, atol=1e-6)


def fork_join_description():
    """Input -> Duplicate -> (Linear a -> Tanh) / (Linear b) -> Concat -> Output, plus a second
    Output straight after Linear b."""
    b = NetworkBuilder("forkjoin")
    i = b.add("Input", dims="6")
    d = b.add("Duplicate")
    la = b.add("Linear", name="a", input=6, output=3)
    t = b.add("Tanh")
    lb = b.add("Linear", name="b", input=6, output=2)
    c = b.add("Concat", dim=0)
    o = b.add("Output", name="main")
    o2 = b.add("Output", name="side")
    b.chain(i, d)
    b.connect(d, la).connect(d, lb)
    b.chain(la, t)
    b.connect(t, c).connect(lb, c)
    b.chain(c, o)
    b.connect(lb, o2)
    return b.build(), dict(i=i, la=la, lb=lb, o=o, o2=o2)


def test_fork_join_forward_and_output_selection():
    desc, ids = fork_join_description()
    net = Network(desc, backend="numpy")
    x = np.linspace(-1, 1, 6).astype(np.float32)
    wa, ba = net.modules[ids["la"]].params.values()
    wb, bb = net.modules[ids["lb"]].params.values()
    want_main = np.concatenate([np.tanh(wa @ x + ba), wb @ x + bb])
    outs = net.forward(x)
    assert set(outs) == {ids["o"], ids["o2"]}
    np.testing.assert_allclose(outs[ids["o"]], want_main, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(net.forward(x, outputs="side"), wb @ x + bb, rtol=1e-5)
    with pytest.raises(DianneError, match="2 Output"):
        net.single_output()


def test_only_needed_modules_run(monkeypatch):
    desc, ids = fork_join_description()
    net = Network(desc, backend="numpy")
    calls = []
    tanh = next(m for m in net.modules.values() if m.type_name == "Tanh")
    original, in_place = tanh.forward, tanh.forward_inplace  # the executor may fuse it
    monkeypatch.setattr(tanh, "forward", lambda x: calls.append(1) or original(x))
    monkeypatch.setattr(tanh, "forward_inplace",
                        lambda x, full=None: calls.append(1) or in_place(x, full))
    net.forward(np.zeros(6), outputs="side")
    assert calls == []
    net.forward(np.zeros(6), outputs="main")
    assert calls == [1]


def test_whole_graph_backward_matches_finite_differences():
    desc, ids = fork_join_description()
    net = Network(desc, backend="numpy", dtype=np.float64, seed=5)
    rng = np.random.default_rng(9)
    x = rng.standard_normal(6)
    g_main, g_side = rng.standard_normal(5), rng.standard_normal(2)

    def loss(xv):
        outs = net.forward(xv)
        return float(outs[ids["o"]] @ g_main + outs[ids["o2"]] @ g_side)

    net.zero_grad()
    net.forward(x)
    gin = net.backward({"main": g_main, "side": g_side})[ids["i"]]
    eps = 1e-6
    num = np.array([(loss(x + eps * e) - loss(x - eps * e)) / (2 * eps) for e in np.eye(6)])
    np.testing.assert_allclose(gin, num, rtol=1e-6, atol=1e-8)
    # parameter gradient of Linear b gets contributions from both outputs
    wb = net.modules[ids["lb"]].params["weight"]
    gw = net.modules[ids["lb"]].grads["weight"].copy()
    num_w = np.zeros_like(wb)
    for j in range(wb.size):
        old = wb.flat[j]
        wb.flat[j] = old + eps
        lp = loss(x)
        wb.flat[j] = old - eps
        lm = loss(x)
        wb.flat[j] = old
        num_w.flat[j] = (lp - lm) / (2 * eps)
    np.testing.assert_allclose(gw, num_w, rtol=1e-6, atol=1e-8)


def test_backward_from_one_output_only():
    desc, ids = fork_join_description()
    net = Network(desc, backend="numpy", dtype=np.float64)
    net.zero_grad()
    net.forward(np.ones(6))
    net.backward({"side": np.ones(2)})
    assert not np.any(net.modules[ids["la"]].grads["weight"])
    assert np.any(net.modules[ids["lb"]].grads["weight"])


def test_two_inputs():
    b = NetworkBuilder("two-in")
    i1, i2 = b.add("Input", name="left", dims="3"), b.add("Input", name="right", dims="3")
    acc, o = b.add("Accumulate"), b.add("Output")
    b.connect(i1, acc).connect(i2, acc).connect(acc, o)
    net = Network(b.build(), backend="numpy")
    got = net.forward({"left": [1, 2, 3], "right": [10, 20, 30]})
    np.testing.assert_array_equal(got, [11, 22, 33])
    np.testing.assert_array_equal(net.forward([[1, 1, 1], [2, 2, 2]]), [3, 3, 3])
    with pytest.raises(DianneError, match="2 inputs"):
        net.forward(np.zeros(3))


def test_duplicate_edges_collapse_like_the_original():
    desc = mlp_description()
    first = desc.inputs()[0]
    lin = desc.modules[first.next[0]]
    first.next.append(lin.id)  # the Inception composites have such doubled entries
    lin.prev.append(first.id)
    net = Network(desc, backend="numpy")
    assert net.forward(np.zeros((1, 3, 4))).shape == (3,)


def test_cycle_is_reported_with_the_modules():
    desc = mlp_description()
    ids = [m.id for m in desc.modules.values()]
    lin1, sig = desc.modules[ids[1]], desc.modules[ids[2]]
    sig.next.append(lin1.id)
    lin1.prev.append(sig.id)
    with pytest.raises(FormatError):
        Network(desc, backend="numpy")


def test_non_join_with_two_inputs_is_an_error():
    b = NetworkBuilder("bad")
    i1, i2 = b.add("Input"), b.add("Input")
    s, o = b.add("Sigmoid"), b.add("Output")
    b.connect(i1, s).connect(i2, s).connect(s, o)
    with pytest.raises(FormatError, match="not a Join"):
        Network(b.build(), backend="numpy")


def test_unknown_type_and_bad_property_name_the_module():
    desc = mlp_description()
    lin = next(m for m in desc.modules.values() if m.type == "Linear")
    lin.properties["output"] = "many"
    with pytest.raises(FormatError, match=lin.id):
        Network(desc, backend="numpy")
    lin.properties["output"] = "5"
    lin.type = "Lineer"
    with pytest.raises(FormatError, match="Lineer"):
        Network(desc, backend="numpy")


def test_weights_round_trip_through_flat_vectors():
    a = Network(mlp_description(), backend="numpy", seed=1)
    b = Network(a.description, backend="numpy", seed=2)
    x = np.random.default_rng(4).random((1, 3, 4))
    assert not np.allclose(a.forward(x), b.forward(x))
    b.set_weights(a.get_weights())
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    assert a.parameter_count() == 12 * 5 + 5 + 5 * 3 + 3


def test_same_seed_same_parameters():
    a = Network(mlp_description(), backend="numpy", seed=11)
    b = Network(mlp_description(), backend="numpy", seed=11)
    pairs = zip(a.get_weights().values(), b.get_weights().values(), strict=True)
    for fa, fb in pairs:
        np.testing.assert_array_equal(fa, fb)


def test_next_order_wins_over_file_order_for_fork_outputs():
    """Split sends part k to next[k] even when the successors come first in the file."""
    b = NetworkBuilder("split")
    o2, o1 = b.add("Output", name="second"), b.add("Output", name="first")
    i, sp = b.add("Input", dims="4"), b.add("Split", dim=0)
    b.connect(i, sp).connect(sp, o1).connect(sp, o2)
    net = Network(b.build(), backend="numpy")
    outs = net.forward(np.arange(4, dtype=np.float32))
    np.testing.assert_array_equal(outs[o1], [0, 1])
    np.testing.assert_array_equal(outs[o2], [2, 3])


def test_backward_without_input_grads_skips_them_and_keeps_parameter_grads():
    """Training asks for no input gradient: modules reading an Input skip it (Linear,
    Convolution), parameter gradients are unchanged, and the flag is restored afterwards."""
    from engine import zoo

    for desc, shape in ((zoo.mlp([784, 32, 10]), (4, 784)), (zoo.lenet5(), (4, 1, 28, 28))):
        net = Network(desc, dtype=np.float64, seed=3)
        x = np.random.default_rng(1).random(shape)
        g = np.random.default_rng(2).random((4, 10))
        net.zero_grad()
        net.forward(x)
        full = net.backward(g)
        ref = {m: {k: v.copy() for k, v in mod.grads.items()} for m, mod in net.modules.items()}
        net.zero_grad()
        net.forward(x)
        skipped = net.backward(g, input_grads=False)
        assert full and all(v is not None for v in full.values())
        assert skipped == {}
        for m, mod in net.modules.items():
            assert mod.grad_input_needed
            for k, v in mod.grads.items():
                np.testing.assert_allclose(v, ref[m][k], rtol=0, atol=1e-12)
