"""The single-sample fast paths give the reference results: fused activations (and the ReLU run
after a MaxPooling), reused buffers (never aliased across calls or with the caller's arrays),
both im2col layouts, the folded bias, frozen Winograd convolutions, the small-vector
(log-)softmax, and gradients through all of them. Tolerances: float32 1e-5, float64 1e-9."""

from __future__ import annotations

import numpy as np
import pytest

from engine import zoo
from engine.builder import NetworkBuilder
from engine.errors import DianneError
from engine.graph import Network
from engine.modules import conv_plan, create_module, winograd

RNG = np.random.default_rng(7)
F32 = {"rtol": 1e-5, "atol": 1e-5}


def chain_net(layers, dims, dtype=np.float32, seed=1):
    b = NetworkBuilder("t")
    ids = [b.add("Input", dims=",".join(map(str, dims)))]
    ids += [b.add(t, **p) for t, p in layers] + [b.add("Output")]
    b.chain(*ids)
    return Network(b.build(), dtype=dtype, seed=seed)


SMALL_CNN = [("Convolution", {"noInputPlanes": 2, "noOutputPlanes": 3, "kernelWidth": 3,
                              "kernelHeight": 3, "padX": 1, "padY": 1}),
             ("ReLU", {}), ("MaxPooling", {"width": 2, "height": 2}),
             ("Convolution", {"noInputPlanes": 3, "noOutputPlanes": 4, "kernelWidth": 2,
                              "kernelHeight": 2}),
             ("Sigmoid", {}),
             ("Linear", {"input": 4 * 3 * 3, "output": 5}), ("Tanh", {}),
             ("Linear", {"input": 5, "output": 3}), ("LogSoftmax", {})]


def reference(net, x):
    """Every module's own forward on a fresh copy of its input, in order: no fusion, no
    shared buffers (the executor's result must equal this)."""
    v = np.array(x, dtype=net.dtype)
    for mid in net.order:
        out = net.modules[mid].forward(np.array(v))
        v = np.array(out[0] if isinstance(out, list) else out)
    return v


@pytest.mark.parametrize("desc_dims", [
    (lambda: zoo.mlp([784, 20, 10]), (784,)),
    (zoo.lenet5, (1, 28, 28)),
    (None, (2, 8, 8)),
])
def test_fused_network_equals_module_by_module_reference(desc_dims):
    make, dims = desc_dims
    net = Network(make(), seed=2) if make else chain_net(SMALL_CNN, dims)
    ref = Network(net.description, seed=2) if make else chain_net(SMALL_CNN, dims)
    prog_x = RNG.standard_normal(dims).astype(np.float32)
    got = net.forward(prog_x)
    np.testing.assert_allclose(got, reference(ref, prog_x), **F32)
    ops = net._programs[tuple(net.outputs)]
    assert ops.chain is not None and len(ops.ops) < len(net.order) - 1  # something was fused


def test_lenet_program_fuses_conv_relu_pool_and_linear_activation():
    net = Network(zoo.lenet5())
    net.forward(np.zeros((1, 28, 28), np.float32))
    ops = net._programs[tuple(net.outputs)].ops
    assert [op.step.module.type_name for op in ops] == [
        "Input", "Convolution", "Convolution", "Linear", "Linear", "Linear"]
    assert [net.modules[op.mids[-1]].type_name for op in ops] == [
        "Input", "MaxPooling", "MaxPooling", "ReLU", "ReLU", "LogSoftmax"]


def test_results_are_not_aliased_across_calls_nor_with_the_input():
    net = Network(zoo.lenet5(), seed=0)
    x1 = RNG.standard_normal((1, 28, 28)).astype(np.float32)
    x2 = RNG.standard_normal((1, 28, 28)).astype(np.float32)
    keep1 = x1.copy()
    y1 = net.forward(x1)
    saved = y1.copy()
    y2 = net.forward(x2)
    np.testing.assert_array_equal(y1, saved)  # the first result survives the second call
    np.testing.assert_array_equal(x1, keep1)  # in-place activations never touch the caller's
    assert not np.shares_memory(y1, y2)
    y1 += 100.0  # the caller may write into a result: the next pass is unaffected
    np.testing.assert_allclose(net.forward(x2), y2, **F32)
    np.testing.assert_allclose(net.forward(x1), saved, **F32)


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-9)])
def test_batch_through_fused_network_equals_stacked_singles(dtype, tol):
    net = chain_net(SMALL_CNN, (2, 8, 8), dtype=dtype)
    xs = RNG.standard_normal((4, 2, 8, 8)).astype(dtype)
    singles = np.stack([net.forward(x) for x in xs])
    batch = net.forward(xs)
    assert batch.dtype == dtype
    np.testing.assert_allclose(batch, singles, rtol=tol, atol=tol)
    np.testing.assert_allclose(net.forward(xs[1]), singles[1], rtol=tol, atol=tol)


def test_gradients_through_fused_network_match_finite_differences():
    net = chain_net(SMALL_CNN, (2, 8, 8), dtype=np.float64, seed=4)
    x = RNG.standard_normal((2, 8, 8))
    g = RNG.standard_normal(3)
    net.zero_grad()
    net.forward(x)
    gx = net.backward(g)[net.inputs[0]]
    conv = next(m for m in net.modules.values() if m.type_name == "Convolution")
    w = conv.params["weight"]
    analytic_w = conv.grads["weight"].copy()

    def loss():
        return float(net.forward(x) @ g)

    eps = 1e-6
    for arr, analytic in ((x, gx), (w, analytic_w)):
        flat, num = arr.reshape(-1), np.zeros(arr.size)
        for j in range(0, arr.size, 7):  # a spread of entries keeps the test fast
            old = flat[j]
            flat[j] = old + eps
            up = loss()
            flat[j] = old - eps
            num[j] = (up - loss()) / (2 * eps)
            flat[j] = old
        picked = np.arange(0, arr.size, 7)
        np.testing.assert_allclose(analytic.reshape(-1)[picked], num[picked], rtol=1e-4,
                                   atol=1e-6)


def test_shifted_and_im2col_layouts_and_folded_bias_agree(monkeypatch):
    x = RNG.standard_normal((3, 9, 7)).astype(np.float64)
    props = {"noInputPlanes": 3, "noOutputPlanes": 4, "kernelWidth": 3, "kernelHeight": 2,
             "padX": 1}
    results = []
    for extra, aug in ((10**9, 10**9), (-1, 0)):  # shifted + bias in GEMM, then neither
        monkeypatch.setattr(conv_plan, "SHIFTED_MAX_EXTRA_MACS", extra)
        monkeypatch.setattr(conv_plan, "AUG_MAX_WEIGHTS", aug)
        conv = create_module("Convolution", dtype=np.float64, **props)
        conv.reset(5)
        y = np.array(conv.forward(x))
        plan = conv._cache[0]
        assert plan.shifted == (extra > 0) and plan.aug == (aug > 0)
        gx = conv.backward(np.random.default_rng(11).standard_normal(y.shape))
        results.append((y, gx, conv.grads["weight"].copy(), conv.grads["bias"].copy()))
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def winograd_conv(monkeypatch, c_in=6, c_out=5):
    monkeypatch.setattr(winograd, "MIN_MACS", 0)
    conv = create_module("Convolution", noInputPlanes=c_in, noOutputPlanes=c_out,
                         kernelWidth=3, kernelHeight=3, padX=1, padY=1)
    conv.reset(2)
    return conv


def test_frozen_winograd_equals_direct_and_locks_the_weights(monkeypatch):
    conv = winograd_conv(monkeypatch)
    x = RNG.standard_normal((6, 7, 9)).astype(np.float32)  # odd sizes: partial tiles
    direct = np.array(conv.forward(x))
    conv.freeze()
    fast = np.array(conv.forward(x))
    assert type(conv._cache[0]).__name__ == "WinogradPlan"
    np.testing.assert_allclose(fast, direct, **F32)
    with pytest.raises(ValueError, match="read-only"):
        conv.params["weight"][0, 0, 0, 0] = 1.0  # would leave the transformed weights stale
    new = conv.get_flat() * 0.5
    conv.set_flat(new)  # the supported way: the kept weights follow
    np.testing.assert_allclose(conv.forward(x), direct * 0.5, **F32)
    batch = np.array(conv.forward(np.stack([x, -x])))
    np.testing.assert_allclose(batch[1], np.array(conv.forward(-x)), **F32)
    conv.train()  # training: back to the direct path, weights writable
    conv.params["weight"][0, 0, 0, 0] = 1.0
    assert type((conv.forward(x), conv._cache[0])[1]).__name__ == "ConvPlan"


def test_frozen_small_conv_keeps_its_folded_matrix_and_locks_the_parameters():
    conv = create_module("Convolution", noInputPlanes=2, noOutputPlanes=3, kernelWidth=3,
                         kernelHeight=3, padX=1)
    conv.reset(3)
    x = RNG.standard_normal((2, 6, 7)).astype(np.float32)
    direct = np.array(conv.forward(x))
    conv.freeze()
    np.testing.assert_allclose(conv.forward(x), direct, **F32)
    plan = conv._cache[0]
    assert plan.aug and plan.fixed
    for name in ("weight", "bias"):
        with pytest.raises(ValueError, match="read-only"):
            conv.params[name][0] = 1.0  # would leave the folded matrix stale
    conv.set_flat(conv.get_flat() * 0.5)  # the supported way: the matrix is refilled
    np.testing.assert_allclose(conv.forward(x), direct * 0.5, **F32)
    conv.train()  # training: refilled per call, parameters writable and followed
    conv.params["bias"][...] += 1.0
    np.testing.assert_allclose(conv.forward(x), direct * 0.5 + 1.0, **F32)
    assert not conv._cache[0].fixed


def test_backward_after_a_frozen_forward(monkeypatch):
    conv = winograd_conv(monkeypatch)
    x = RNG.standard_normal((6, 6, 6)).astype(np.float32)
    g = RNG.standard_normal((5, 6, 6)).astype(np.float32)
    conv.forward(x)
    want = conv.backward(g)
    want_w = conv.grads["weight"].copy()
    conv.zero_grad()
    conv.freeze()
    conv.forward(x)
    np.testing.assert_allclose(conv.backward(g), want, **F32)
    np.testing.assert_allclose(conv.grads["weight"], want_w, rtol=1e-4, atol=1e-4)


def test_network_eval_freezes_within_its_memory_budget(monkeypatch):
    from engine.modules import conv_pool  # noqa: PLC0415

    monkeypatch.setattr(winograd, "MIN_MACS", 0)
    monkeypatch.setattr(conv_pool, "MAX_PLANES", 0)  # no phase-GEMM weights counted
    conv = ("Convolution", {"noInputPlanes": 4, "noOutputPlanes": 4, "kernelWidth": 3,
                            "kernelHeight": 3, "padX": 1, "padY": 1})
    net = chain_net([conv, ("ReLU", {}), conv, ("ReLU", {})], (4, 6, 6))
    x = RNG.standard_normal((4, 6, 6)).astype(np.float32)
    want = net.forward(x)
    convs = [m for m in net.modules.values() if m.type_name == "Convolution"]
    import engine.graph as graph  # noqa: PLC0415

    monkeypatch.setattr(graph, "FREEZE_BUDGET", 1.0)  # room for one layer's 16/9 x weights
    monkeypatch.setattr(graph, "FREEZE_MIN_BYTES", 0)
    net.eval()
    assert sorted(c._frozen for c in convs) == [False, True]
    np.testing.assert_allclose(net.forward(x), want, **F32)
    net.train()
    assert not any(c._frozen for c in convs)


@pytest.mark.parametrize("kind", ["Softmax", "LogSoftmax"])
def test_small_vector_softmax_paths_match_the_shifted_formula(kind):
    mod = create_module(kind)
    for x in (RNG.standard_normal(10).astype(np.float32) * 5,
              np.array([1000.0, 999.0, -5.0], np.float32),  # large: the shifted form
              RNG.standard_normal(300).astype(np.float32)):  # long: the shifted form
        s = x.astype(np.float64) - x.max()
        logp = s - np.log(np.exp(s).sum())
        want = np.exp(logp) if kind == "Softmax" else logp
        np.testing.assert_allclose(mod.forward(x), want, rtol=1e-5, atol=2e-6)
        inplace = x.copy()
        mod.forward_inplace(inplace)
        np.testing.assert_allclose(inplace, want, rtol=1e-5, atol=2e-6)
    with np.errstate(invalid="ignore"):
        assert np.isnan(mod.forward(np.array([np.nan, 1.0], np.float32))).all()


@pytest.mark.parametrize("kind", ["ReLU", "Softmax", "LogSoftmax"])
def test_bound_inplace_forms_equal_forward_inplace_and_follow_the_contents(kind):
    mod, ref = create_module(kind), create_module(kind)
    g = RNG.standard_normal(10).astype(np.float32)
    for xs in ([RNG.standard_normal(10).astype(np.float32) * 4 for _ in range(2)]
               + [np.linspace(900.0, 990.0, 10, dtype=np.float32)],  # large: shifted form
               [RNG.standard_normal(200).astype(np.float32)]):  # long: the general path
        t = np.empty_like(xs[0])
        run = mod.bind_inplace(t)
        for x in xs:  # one bound call, new contents each time
            t[...] = x
            run()
            want = x.copy()
            ref.forward_inplace(want)
            np.testing.assert_allclose(t, want, rtol=1e-6, atol=1e-6)
            gg = g if len(x) == len(g) else np.ones_like(x)
            np.testing.assert_allclose(mod.backward(gg), ref.backward(gg), rtol=1e-5, atol=1e-6)


def test_fused_linear_activation_gradients_match_finite_differences():
    layers = [("Linear", {"input": 6, "output": 5}), ("ReLU", {}),
              ("Linear", {"input": 5, "output": 3}), ("LogSoftmax", {})]
    net = chain_net(layers, (6,), dtype=np.float64, seed=5)
    x, g = RNG.standard_normal(6), RNG.standard_normal(3)
    net.forward(RNG.standard_normal(6))
    net.forward(x)  # the bound (fused) runners from here on
    ops = net._programs[tuple(net.outputs)].ops
    assert [net.modules[op.mids[-1]].type_name for op in ops] == ["Input", "ReLU", "LogSoftmax"]
    net.zero_grad()
    net.forward(x)
    gx = net.backward(g)[net.inputs[0]]
    lin = next(m for m in net.modules.values() if m.type_name == "Linear")
    w, gw = lin.params["weight"], lin.grads["weight"].copy()
    eps = 1e-6
    for arr, analytic in ((x, gx), (w, gw)):
        flat, num = arr.reshape(-1), np.zeros(arr.size)
        for j in range(arr.size):
            old = flat[j]
            flat[j] = old + eps
            up = float(net.forward(x) @ g)
            flat[j] = old - eps
            num[j] = (up - float(net.forward(x) @ g)) / (2 * eps)
            flat[j] = old
        np.testing.assert_allclose(analytic.reshape(-1), num, rtol=1e-5, atol=1e-7)


def test_frozen_bound_runners_give_the_same_outputs_and_gradients():
    """eval(): Convolution -> ReLU -> MaxPooling and Linear -> activation run as bound
    runners; outputs, input gradients and parameter gradients equal the unfrozen network's."""
    fast, ref = Network(zoo.lenet5(), seed=3).eval(), Network(zoo.lenet5(), seed=3)
    convs = [m for m in fast.modules.values() if m.type_name == "Convolution"]
    for _ in range(3):  # the first pass binds, later ones run the bound runners
        x = RNG.standard_normal((1, 28, 28)).astype(np.float32)
        g = RNG.standard_normal(10).astype(np.float32)
        np.testing.assert_allclose(fast.forward(x), ref.forward(x), **F32)
        assert all(c._slot.data[-1] is not None for c in convs)
        fast.zero_grad()
        ref.zero_grad()
        gx = fast.backward(g)[fast.inputs[0]]
        np.testing.assert_allclose(gx, ref.backward(g)[ref.inputs[0]], **F32)
        for mid, mod in fast.modules.items():
            for name, grad in mod.grads.items():
                np.testing.assert_allclose(grad, ref.modules[mid].grads[name], rtol=1e-4,
                                           atol=1e-5)


@pytest.mark.parametrize("kh,kw", [(2, 2), (2, 3), (3, 1), (1, 2)])
def test_tiled_max_pooling_of_views_equals_window_maxima(kh, kw):
    """Tiles reduce through the buffer behind the input (pitched conv outputs, batches, size-1
    axes of any stride); reversed or broadcast inputs take the strided stages."""
    base = RNG.standard_normal((2, 3, 9, 13)).astype(np.float32)
    inputs = [base[0], base[:, :, :, :11], base[1, :, :, :10][None][0], base[0, :, ::-1, :],
              np.broadcast_to(base[0, :1], (3, 9, 13))]
    for n, x in enumerate(inputs):
        pool = create_module("MaxPooling", width=kw, height=kh)
        oh, ow = x.shape[-2] // kh, x.shape[-1] // kw
        t = x[..., : oh * kh, : ow * kw]
        want = t.reshape(*t.shape[:-2], oh, kh, ow, kw).max(axis=(-3, -1))
        for _ in range(2):  # the second pass reuses the plan
            np.testing.assert_array_equal(pool.forward(x)[0], want)
        flat_first = pool._slot.data.stages[0][0].ndim == 1
        assert flat_first == (n < 3 and kw > 1)
        run, out = pool.bind(x)
        assert run()[0] is out
        np.testing.assert_array_equal(out, want)


def test_fused_forward_errors_name_the_module(monkeypatch):
    net = Network(zoo.mlp([784, 20, 10]))
    relu = next(m for m in net.modules.values() if m.type_name == "ReLU")

    def broken(x, full=None):
        raise RuntimeError("boom")

    monkeypatch.setattr(relu, "forward_inplace", broken)  # before the plan fuses it
    with pytest.raises(DianneError, match=r"Linear .*forward failed: boom"):
        net.forward(np.zeros(784, np.float32))


@pytest.mark.parametrize("c,o,h,w,kh,kw,pad", [
    (1, 6, 28, 28, 5, 5, 2),   # LeNet's first layer: one strided copy into space-to-depth
    (2, 3, 9, 7, 3, 3, 1),     # odd input: the four-copy form, an odd conv output dropped
    (3, 4, 10, 11, 4, 2, 0),   # even kernels, unequal sides, no padding
    (1, 8, 7, 6, 5, 3, 1),     # odd padding
])
def test_phase_gemm_conv_relu_pool_equals_the_direct_path(c, o, h, w, kh, kw, pad):
    """A frozen Convolution (few planes) -> ReLU -> 2x2 MaxPooling runs as one GEMM over the
    pooling phases on a space-to-depth input (conv_pool); outputs, input gradients and parameter
    gradients equal the unfrozen network's (float32, 1e-5)."""
    from engine.modules import conv_pool  # noqa: PLC0415

    layers = [("Convolution", {"noInputPlanes": c, "noOutputPlanes": o, "kernelWidth": kw,
                               "kernelHeight": kh, "padX": pad, "padY": pad}),
              ("ReLU", {}), ("MaxPooling", {"width": 2, "height": 2})]
    fast, ref = chain_net(layers, (c, h, w)).eval(), chain_net(layers, (c, h, w))
    conv = next(m for m in fast.modules.values() if m.type_name == "Convolution")
    conv.freeze()  # alone in its network: above eval()'s memory budget for kept forms
    fast.forward(np.zeros((c, h, w), np.float32))  # the first pass binds the runners
    for _ in range(3):
        x = RNG.standard_normal((c, h, w)).astype(np.float32)
        got = fast.forward(x)
        assert isinstance(conv._cache[0], conv_pool.PooledConvPlan)
        np.testing.assert_allclose(got, ref.forward(x), **F32)
        g = RNG.standard_normal(got.shape).astype(np.float32)
        fast.zero_grad()
        ref.zero_grad()
        np.testing.assert_allclose(fast.backward(g)[fast.inputs[0]],
                                   ref.backward(g)[ref.inputs[0]], **F32)
        for a, b in zip(fast.order, ref.order, strict=True):  # built twice: other ids
            for name, grad in fast.modules[a].grads.items():
                np.testing.assert_allclose(grad, ref.modules[b].grads[name], **F32)


def test_phase_gemm_follows_new_weights():
    """set_weights on a frozen network: the rearranged weights are rebuilt (not stale)."""
    net = Network(zoo.lenet5(), seed=3).eval()
    ref = Network(zoo.lenet5(), seed=4)
    x = RNG.standard_normal((1, 28, 28)).astype(np.float32)
    net.forward(x)
    net.set_weights(ref.get_weights())
    np.testing.assert_allclose(net.forward(x), ref.forward(x), **F32)


def test_frozen_linear_folds_its_bias_when_the_input_has_a_ones_tail():
    """eval(): a Linear whose one-sample input is a tailed buffer (Input, Linear, MaxPooling
    outputs) computes [W | b] @ [x; 1] (few outputs) or [x, 1] @ [W^T; b] (more); outputs and
    gradients equal the unfrozen MLP's, the weights are read-only while the matrix is kept, and
    train() gives them back."""
    from engine.modules.buffers import ones_tail, tailed  # noqa: PLC0415

    sizes = [12, 40, 33, 5, 3]  # 40 outputs: transposed; 33 inputs + 1 = 34 rows; 5, 3: [W | b]
    fast, ref = Network(zoo.mlp(sizes), seed=4).eval(), Network(zoo.mlp(sizes), seed=4)
    lins = [m for m in fast.modules.values() if m.type_name == "Linear"]
    for _ in range(3):
        x = RNG.standard_normal(12).astype(np.float32)
        np.testing.assert_allclose(fast.forward(x), ref.forward(x), **F32)
        g = RNG.standard_normal(3).astype(np.float32)
        fast.zero_grad()
        ref.zero_grad()
        np.testing.assert_allclose(fast.backward(g)[fast.inputs[0]],
                                   ref.backward(g)[ref.inputs[0]], **F32)
    assert [m._kept.shape for m in lins] == [(13, 40), (41, 33), (5, 34), (3, 6)]
    with pytest.raises(ValueError):
        lins[0].params["bias"][0] = 1.0
    fast.train()
    assert all(m._kept is None and m.params["weight"].flags.writeable for m in lins)
    # the tail: only a whole tailed buffer qualifies
    buf = tailed(np, (4, 5), np.float32)
    assert ones_tail(buf.reshape(-1))[-1] == 1.0
    assert ones_tail(buf.reshape(-1)[1:]) is None and ones_tail(buf[0]) is None
    assert ones_tail(np.empty(20, np.float32)) is None


def test_hot_chain_follows_new_weights_shapes_and_modes():
    """After a steady pass the network calls its ops' runners directly; new weights, a batch,
    train() and a bad input all leave that path and give the reference results."""
    fast = Network(zoo.lenet5(), seed=5).eval()
    ref = Network(zoo.lenet5(), seed=5)
    xs = RNG.standard_normal((4, 1, 28, 28)).astype(np.float32)
    for x in xs[:3]:
        np.testing.assert_allclose(fast.forward(x), ref.forward(x), **F32)
    assert fast._hot is not None
    other = Network(zoo.lenet5(), seed=6)
    fast.set_weights(other.get_weights())
    np.testing.assert_allclose(fast.forward(xs[3]), other.forward(xs[3]), **F32)
    np.testing.assert_allclose(fast.forward(xs), other.forward(xs), **F32)  # a batch
    np.testing.assert_allclose(fast.forward(xs[0]), other.forward(xs[0]), **F32)
    fast.train()
    np.testing.assert_allclose(fast.forward(xs[1]), other.forward(xs[1]), **F32)
    with pytest.raises(DianneError, match="Convolution|Input"):
        fast.forward(np.zeros((2, 28, 28), np.float32))
