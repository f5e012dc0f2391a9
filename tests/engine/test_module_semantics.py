"""Forward semantics of the non-convolution module types against hand-computed values and
independent numpy formulas (spec sections 3.3, 4.1, 4.2 and 10).

Tolerances: exact (``assert_array_equal``) where the result is a copy, slice or exact arithmetic;
``rtol=1e-12`` in float64 and ``rtol=1e-6`` in float32 for transcendental functions.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import ModuleError, ShapeError
from engine.modules import REGISTRY, create_module

F64 = {"rtol": 1e-12, "atol": 1e-12}


def mod(type_name: str, dtype=np.float64, **props):
    return create_module(type_name, dtype=dtype, **props)


def numeric_grad(module, x, weights, eps=1e-6):
    """Central differences of sum(forward(x) * weights) w.r.t. x (float64)."""
    num = np.zeros_like(x)
    flat = x.reshape(-1)
    for j in range(flat.size):
        old = flat[j]
        flat[j] = old + eps
        lp = float(np.sum(module.forward(x) * weights))
        flat[j] = old - eps
        lm = float(np.sum(module.forward(x) * weights))
        flat[j] = old
        num.reshape(-1)[j] = (lp - lm) / (2 * eps)
    return num


# --------------------------------------------------------------------------- registry facts
SPEC_TABLE = {
    "Tanh": "Activation",
    "ReLU": "Activation",
    "LeakyReLU": "Activation",
    "PReLU": "Activation",
    "ELU": "Activation",
    "SELU": "Activation",
    "SoftPlus": "Activation",
    "Softmax": "Activation",
    "LogSoftmax": "Activation",
    "Threshold": "Activation",
    "Sigmoid": "Activation",
    "Reshape": "Layer",
    "Zeropad": "Layer",
    "Narrow": "Layer",
    "Invert": "Layer",
    "Duplicate": "Fork",
    "Split": "Fork",
    "Accumulate": "Join",
    "Average": "Join",
    "Multiply": "Join",
    "Concat": "Join",
    "Normalization": "Preprocessing",
    "Denormalization": "Preprocessing",
    "Frame": "Preprocessing",
    "Scale": "Preprocessing",
    "BatchNormalization": "Regularization",
    "Dropout": "Regularization",
    "DropPath": "Regularization",
    "LRN": "Regularization",
}


@pytest.mark.parametrize("type_name", sorted(SPEC_TABLE))
def test_category_as_in_spec_table(type_name):
    assert REGISTRY[type_name].category == SPEC_TABLE[type_name]


def test_property_names_and_defaults():
    names = {t: {p.name: p.default for p in REGISTRY[t].props} for t in REGISTRY}
    assert names["LeakyReLU"] == {"leakyness": 0.01}
    assert names["ELU"] == {"alpha": 1.0}
    assert names["SoftPlus"] == {"beta": 1.0}
    assert set(names["Threshold"]) == {"thresh", "val"}
    assert names["Dropout"].keys() == {"rate"} and names["DropPath"].keys() == {"rate"}
    assert names["LRN"] == {"size": None, "alpha": 1e-4, "beta": 0.75, "k": 1.0}
    assert names["Normalization"] == {"mean": 0.0, "stdev": 1.0}
    assert names["Denormalization"] == {"mean": 0.0, "stdev": 1.0}
    for t in ("Duplicate", "Split", "Accumulate", "Average", "Multiply", "Concat"):
        assert names[t]["waitForAll"] is True
    assert REGISTRY["Split"].fork and not REGISTRY["Duplicate"].fork
    assert all(REGISTRY[t].join for t in ("Accumulate", "Average", "Multiply", "Concat"))
    with pytest.raises(ModuleError, match="thresh"):
        create_module("Threshold", val="0")


# --------------------------------------------------------------------------- activations
def test_relu_leaky_threshold_values():
    x = np.array([-2.0, -0.5, 0.0, 0.5, 3.0])
    np.testing.assert_array_equal(mod("ReLU").forward(x), [0, 0, 0, 0.5, 3])
    np.testing.assert_allclose(mod("LeakyReLU").forward(x), [-0.02, -0.005, 0, 0.5, 3], **F64)
    np.testing.assert_allclose(
        mod("LeakyReLU", leakyness="0.2").forward(x), [-0.4, -0.1, 0, 0.5, 3], **F64
    )
    th = mod("Threshold", thresh="0.5", val="-7")
    np.testing.assert_array_equal(th.forward(x), [-7, -7, -7, -7, 3])  # x == thresh -> val
    np.testing.assert_array_equal(th.backward(np.ones(5)), [0, 0, 0, 0, 1])


def test_prelu_shared_slope_and_its_gradient():
    m = mod("PReLU")
    assert m.params["weight"].shape == (1,) and m.params["weight"][0] == 0.25
    m.reset(0)
    assert m.params["weight"][0] == 0.25 and m.get_flat().tolist() == [0.25]
    x = np.array([[-2.0, 1.0], [-4.0, 3.0]])
    np.testing.assert_allclose(m.forward(x), [[-0.5, 1.0], [-1.0, 3.0]], **F64)
    g = np.array([[1.0, 10.0], [2.0, 20.0]])
    np.testing.assert_allclose(m.backward(g), [[0.25, 10.0], [0.5, 20.0]], **F64)
    np.testing.assert_allclose(m.grads["weight"], [-2.0 * 1 + -4.0 * 2], **F64)


def test_elu_is_a_real_elu_not_softplus():
    x = np.array([-3.0, -1.0, 0.0, 2.0])
    y = mod("ELU", alpha="2").forward(x)
    np.testing.assert_allclose(y, [2 * (np.exp(-3) - 1), 2 * (np.exp(-1) - 1), 0, 2], **F64)


def test_selu_constants():
    lam, alpha = 1.0507009873554805, 1.6732632423543772
    x = np.array([-2.0, -0.1, 0.0, 1.5])
    want = np.where(x > 0, lam * x, lam * alpha * (np.exp(x) - 1))
    np.testing.assert_allclose(mod("SELU").forward(x), want, **F64)


def test_softplus_threshold_and_beta():
    m = mod("SoftPlus", beta="2")
    x = np.array([-3.0, 0.0, 1.0, 9.99, 10.01, 50.0])
    want = np.log1p(np.exp(2 * x)) / 2
    want[2 * x > 20] = x[2 * x > 20]  # linear above beta*x > 20
    y = m.forward(x)
    np.testing.assert_allclose(y, want, **F64)
    assert y[-1] == 50.0 and y[-2] == 10.01
    g = m.backward(np.ones(6))
    np.testing.assert_allclose(g[:4], 1 / (1 + np.exp(-2 * x[:4])), **F64)
    assert g[4] == 1.0 and g[5] == 1.0
    y32 = mod("SoftPlus", dtype=np.float32).forward(np.array([100.0, -100.0], np.float32))
    assert y32.dtype == np.float32 and np.all(np.isfinite(y32)) and y32[0] == 100.0


def _np_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("shape,axis", [((5,), 0), ((3, 4), 1), ((3, 2, 2), 0), ((2, 3, 2, 2), 1)])
def test_softmax_and_logsoftmax_axis_rules(shape, axis):
    x = np.random.default_rng(0).standard_normal(shape) * 3
    want = _np_softmax(x, axis)
    y = mod("Softmax").forward(x)
    np.testing.assert_allclose(y, want, **F64)
    np.testing.assert_allclose(y.sum(axis=axis), 1.0, **F64)
    np.testing.assert_allclose(mod("LogSoftmax").forward(x), np.log(want), **F64)


def test_softmax_is_stable_for_large_values():
    y = mod("Softmax", dtype=np.float32).forward(np.array([1000.0, 1000.0], np.float32))
    np.testing.assert_array_equal(y, [0.5, 0.5])


def test_tanh_and_invert():
    x = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_allclose(mod("Tanh").forward(x), np.tanh(x), **F64)
    inv = mod("Invert")
    np.testing.assert_array_equal(inv.forward(np.array([0.0, 0.25, 1.0])), [1.0, 0.75, 0.0])
    np.testing.assert_array_equal(inv.backward(np.array([1.0, -2.0])), [-1.0, 2.0])


# --------------------------------------------------------------------------- shape layers
def test_reshape_single_and_batch_rule():
    m = mod("Reshape", dim0="2", dim1="3")
    x = np.arange(6.0)
    np.testing.assert_array_equal(m.forward(x), x.reshape(2, 3))
    xb = np.arange(24.0).reshape(4, 6)
    assert m.forward(xb).shape == (4, 2, 3)
    assert m.backward(np.ones((4, 2, 3))).shape == (4, 6)
    assert m.output_shape((4, 6)) == (4, 2, 3)
    assert m.output_shape((1, 6)) == (2, 3)  # size equal to the target: no batch axis
    with pytest.raises(ShapeError):
        m.forward(np.zeros(7))


def test_reshape_reads_consecutive_keys_only():
    assert mod("Reshape", dim0="4", dim1="", dim2="3").dims == (4,)
    assert mod(
        "Reshape", dim0="1", dim1="1", dim2="1", dim3="1", dim4="1", dim5="2", dim6="3"
    ).dims == (1, 1, 1, 1, 1, 2, 3)


def test_zeropad_two_values_pad_h_and_w():
    m = mod("Zeropad", dim0="1", dim1="2")
    x = np.arange(1.0, 7.0).reshape(1, 2, 3)  # (C,H,W)
    y = m.forward(x)
    assert y.shape == (1, 4, 7)
    want = np.zeros((1, 4, 7))
    want[:, 1:3, 2:5] = x
    np.testing.assert_array_equal(y, want)
    np.testing.assert_array_equal(
        m.backward(np.arange(28.0).reshape(1, 4, 7)), np.arange(28.0).reshape(1, 4, 7)[:, 1:3, 2:5]
    )


def test_zeropad_three_values_pad_channels_first_and_batch():
    # Residual_b: dim0 = (out-in)/2 channels, dim1 = dim2 = 0
    m = mod("Zeropad", dim0="2", dim1="0", dim2="0")
    x = np.ones((3, 2, 2))
    y = m.forward(x)
    assert y.shape == (7, 2, 2)
    assert y[:2].sum() == 0 and y[5:].sum() == 0 and np.all(y[2:5] == 1)
    xb = np.ones((4, 3, 2, 2))
    yb = m.forward(xb)
    assert yb.shape == (4, 7, 2, 2) and np.all(yb[:, 2:5] == 1) and yb[:, :2].sum() == 0
    assert m.output_shape((3, 2, 2)) == (7, 2, 2)


def test_narrow_without_and_with_batch():
    m = mod("Narrow", index0="1", size0="2", index1="0", size1="1")
    x = np.arange(24.0).reshape(2, 3, 4)  # 3-D with 2 ranges: one extra dim = batch
    y = m.forward(x)
    np.testing.assert_array_equal(y, x[:, 1:3, 0:1])
    g = m.backward(np.ones_like(y))
    assert g.shape == x.shape and g.sum() == y.size and np.all(g[:, 1:3, 0:1] == 1)
    x2 = np.arange(12.0).reshape(3, 4)  # 2-D with 2 ranges: no batch
    np.testing.assert_array_equal(m.forward(x2), x2[1:3, 0:1])
    x4 = np.arange(48.0).reshape(3, 4, 2, 2)  # 2 more dims: leading dims cropped, rest kept
    np.testing.assert_array_equal(m.forward(x4), x4[1:3, 0:1])
    with pytest.raises(ShapeError):
        m.forward(np.zeros((2, 2)))
    with pytest.raises(ModuleError):
        create_module("Narrow", index0="0")


# --------------------------------------------------------------------------- forks and joins
def test_duplicate_passes_input_and_gradient_through():
    m = mod("Duplicate")
    x = np.arange(3.0)
    assert m.forward(x) is x
    g = np.ones(3)
    assert m.backward(g) is g


def test_split_equal_parts_from_the_end_and_on_a_batch():
    m = mod("Split", dim="0")
    m.n_next = 2
    x = np.arange(1.0, 11.0)
    a, b = m.forward(x)
    np.testing.assert_array_equal(a, [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(b, [6, 7, 8, 9, 10])
    xb = np.stack([x, x])  # (2, 10): dim 0 is still the last axis
    a, b = m.forward(xb)
    np.testing.assert_array_equal(a, xb[:, :5])
    np.testing.assert_array_equal(m.backward([a, b]), xb)
    m1 = mod("Split", dim="1")  # second to last axis
    m1.n_next = 2
    a, b = m1.forward(np.arange(24.0).reshape(2, 4, 3))
    assert a.shape == (2, 2, 3)
    with pytest.raises(ShapeError):
        m.forward(np.arange(9.0))


def test_split_with_offsets_one_and_several_values():
    m = mod("Split", dim="0", split="4")
    m.n_next = 2
    x = np.arange(1.0, 11.0)
    a, b = m.forward(x)  # the original's SplitTest: [1..4], [5..10]
    np.testing.assert_array_equal(a, [1, 2, 3, 4])
    np.testing.assert_array_equal(b, [5, 6, 7, 8, 9, 10])
    m3 = mod("Split", dim="0", split="2,5")  # several values (the original threw)
    m3.n_next = 3
    parts = m3.forward(x)
    assert [p.tolist() for p in parts] == [[1, 2], [3, 4, 5], [6, 7, 8, 9, 10]]
    assert m3.output_shape((10,)) == [(2,), (3,), (5,)]
    g = m3.backward([np.ones(2), None, np.full(5, 3.0)])  # None -> zeros
    np.testing.assert_array_equal(g, [1, 1, 0, 0, 0, 3, 3, 3, 3, 3])
    full = mod("Split", dim="0", split="2,5,10")  # the last end may also be given
    full.n_next = 3
    assert [p.shape for p in full.forward(x)] == [(2,), (3,), (5,)]
    with pytest.raises(ShapeError):
        m3.forward(np.arange(4.0))


def test_concat_counts_dim_from_the_end_incl_batch():
    m = mod("Concat", dim="2")  # Inception: channels of (C,H,W)
    a, b = np.zeros((2, 3, 3)), np.ones((1, 3, 3))
    y = m.forward([a, b])
    assert y.shape == (3, 3, 3) and y[2].sum() == 9 and y[:2].sum() == 0
    yb = m.forward([np.zeros((4, 2, 3, 3)), np.ones((4, 1, 3, 3))])  # same dim on a batch
    assert yb.shape == (4, 3, 3, 3) and np.all(yb[:, 2] == 1)
    m0 = mod("Concat", dim="0")
    y = m0.forward([np.array([[1.0], [2.0]]), np.array([[3.0, 4.0], [5.0, 6.0]])])
    np.testing.assert_array_equal(y, [[1, 3, 4], [2, 5, 6]])  # prev order, last axis
    g1, g2 = m0.backward(np.array([[1.0, 2, 3], [4, 5, 6]]))
    np.testing.assert_array_equal(g1, [[1], [4]])
    np.testing.assert_array_equal(g2, [[2, 3], [5, 6]])
    assert m0.output_shape([(2, 1), (2, 2)]) == (2, 3)
    with pytest.raises(ShapeError):
        m0.forward([np.zeros((2, 1)), np.zeros((3, 1))])


def test_accumulate_average_multiply():
    x1, x2, x3 = np.array([1.0, 2.0]), np.array([3.0, 0.0]), np.array([5.0, 7.0])
    acc, avg, mul = mod("Accumulate"), mod("Average"), mod("Multiply")
    np.testing.assert_array_equal(acc.forward([x1, x2, x3]), [9, 9])
    np.testing.assert_allclose(avg.forward([x1, x2, x3]), [3, 3], **F64)
    np.testing.assert_array_equal(mul.forward([x1, x2, x3]), [15, 0])
    g = np.array([1.0, 2.0])
    assert all(np.array_equal(gi, g) for gi in acc.backward(g))
    assert all(np.allclose(gi, g / 3) for gi in avg.backward(g))
    g1, g2, g3 = mul.backward(g)
    np.testing.assert_array_equal(g1, [15, 0])  # g * x2 * x3
    np.testing.assert_array_equal(g2, [5, 28])  # exact although x2 has a zero
    np.testing.assert_array_equal(g3, [3, 0])
    assert x1.tolist() == [1, 2]  # inputs untouched
    with pytest.raises(ShapeError):
        acc.forward([np.zeros(2), np.zeros(3)])


# --------------------------------------------------------------------------- regularization
def test_batchnorm_parameter_order_and_init():
    m = mod("BatchNormalization", size="3")
    assert list(m.params) == ["weight", "bias", "running_mean", "running_var"]
    assert list(m.grads) == ["weight", "bias"]
    m.reset(4)
    w = m.params["weight"]
    assert np.all((w >= 0) & (w <= 1)) and not np.all(w == w[0])
    flat = m.get_flat()
    assert flat.size == 12
    np.testing.assert_array_equal(flat[3:], [0, 0, 0, 0, 0, 0, 1, 1, 1])


def test_batchnorm_training_running_stats_thnn():
    rng = np.random.default_rng(0)
    m = mod("BatchNormalization", size="2")
    m.reset(1)
    m.params["weight"][...] = [2.0, 0.5]
    m.params["bias"][...] = [0.1, -1.0]
    m.train()
    x = rng.standard_normal((5, 2)) * 3 + 1
    y = m.forward(x)
    mean, var_b, var_u = x.mean(0), x.var(0), x.var(0, ddof=1)
    # normalised with the biased variance
    np.testing.assert_allclose(
        y, (x - mean) / np.sqrt(var_b + 1e-5) * [2.0, 0.5] + [0.1, -1], **F64
    )
    # running average with momentum 0.1 and the unbiased variance
    np.testing.assert_allclose(m.params["running_mean"], 0.1 * mean, **F64)
    np.testing.assert_allclose(m.params["running_var"], 0.9 + 0.1 * var_u, **F64)
    m.forward(x)
    np.testing.assert_allclose(m.params["running_mean"], 0.1 * mean * (0.9 + 1), **F64)
    # eval: running statistics
    m.eval()
    rm, rv = m.params["running_mean"].copy(), m.params["running_var"].copy()
    np.testing.assert_allclose(
        m.forward(x), (x - rm) / np.sqrt(rv + 1e-5) * [2, 0.5] + [0.1, -1], **F64
    )
    np.testing.assert_array_equal(m.params["running_mean"], rm)  # eval does not update


def test_batchnorm_input_layouts():
    rng = np.random.default_rng(1)
    m = mod("BatchNormalization", size="3").train()
    x3 = rng.standard_normal((3, 4, 5))  # one spatial sample: per channel over H, W
    y = m.forward(x3)
    np.testing.assert_allclose(y.mean(axis=(1, 2)), 0, atol=1e-12)
    x4 = rng.standard_normal((2, 3, 4, 5))  # dim1 == size: a batch
    y = m.forward(x4)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    x4v = rng.standard_normal((3, 2, 4, 5))  # dim1 != size: one volumetric sample
    y = m.forward(x4v)
    np.testing.assert_allclose(y.mean(axis=(1, 2, 3)), 0, atol=1e-12)
    y = m.forward(rng.standard_normal((2, 3, 2, 2, 2)))  # volumetric batch
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3, 4)), 0, atol=1e-12)
    m.eval()
    assert m.forward(rng.standard_normal(3)).shape == (3,)  # 1-D: one sample
    with pytest.raises(ShapeError):
        m.forward(np.zeros((2, 4)))


def test_batchnorm_eval_backward_and_float32():
    m = mod("BatchNormalization", size="2")
    m.reset(2)
    m.params["running_mean"][...] = [0.5, -1.0]
    m.params["running_var"][...] = [4.0, 0.25]
    x = np.random.default_rng(3).standard_normal((3, 2))
    w = np.random.default_rng(4).standard_normal((3, 2))
    m.forward(x)
    got = m.backward(w)
    np.testing.assert_allclose(got, numeric_grad(m, x.copy(), w), rtol=1e-6, atol=1e-8)
    m32 = mod("BatchNormalization", dtype=np.float32, size="2").train()
    assert m32.forward(np.ones((3, 2), np.float32)).dtype == np.float32
    assert m32.params["running_var"].dtype == np.float32


def test_dropout_train_and_eval():
    m = mod("Dropout", rate="0.25")
    x = np.ones(10000)
    assert m.forward(x) is x  # eval: identity
    m.train()
    m.rng = np.random.default_rng(0)
    y = m.forward(x)
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.02
    np.testing.assert_allclose(y[kept], 1 / 0.75, **F64)
    np.testing.assert_array_equal(m.backward(np.ones(10000)), y)
    with pytest.raises(ModuleError):
        create_module("Dropout", rate="1")


def test_droppath_whole_output_in_train_and_eval():
    m = mod("DropPath", rate="0.5")
    x = np.arange(1.0, 5.0)
    outcomes = []
    for seed in range(40):
        m.rng = np.random.default_rng(seed)
        draw = np.random.default_rng(seed).random() < 0.5
        y = m.forward(x)
        if draw:
            assert not y.any() and not m.backward(np.ones(4)).any()
        else:
            np.testing.assert_array_equal(y, x)  # no rescaling
            np.testing.assert_array_equal(m.backward(np.ones(4)), np.ones(4))
        outcomes.append(draw)
    assert any(outcomes) and not all(outcomes)  # applied in eval mode too
    assert not mod("DropPath", rate="1").forward(x).any()
    np.testing.assert_array_equal(mod("DropPath", rate="0").forward(x), x)


def _np_lrn(x, size, alpha, beta, k, axis):
    out = np.empty_like(x)
    n = x.shape[axis]
    lo, hi = (size - 1) // 2, size - 1 - (size - 1) // 2
    xs = np.moveaxis(x, axis, 0)
    os_ = np.moveaxis(out, axis, 0)
    for c in range(n):
        sq = (xs[max(0, c - lo) : min(n, c + hi + 1)] ** 2).sum(axis=0)
        os_[c] = xs[c] / (k + alpha / size * sq) ** beta
    return out


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_lrn_matches_onnx_formula(size):
    x = np.random.default_rng(size).standard_normal((2, 4, 3, 3)) * 2
    m = mod("LRN", size=str(size), alpha="0.3", beta="0.75", k="2")
    np.testing.assert_allclose(m.forward(x), _np_lrn(x, size, 0.3, 0.75, 2.0, 1), **F64)
    np.testing.assert_allclose(m.forward(x[0]), _np_lrn(x[0], size, 0.3, 0.75, 2.0, 0), **F64)
    w = np.random.default_rng(9).standard_normal(x[0].shape)
    m.forward(x[0])
    got = m.backward(w)
    np.testing.assert_allclose(got, numeric_grad(m, x[0].copy(), w), rtol=1e-5, atol=1e-8)


def test_lrn_defaults():
    m = create_module("LRN", size="5")
    assert (m.cfg["alpha"], m.cfg["beta"], m.cfg["k"]) == (1e-4, 0.75, 1.0)


# --------------------------------------------------------------------------- preprocessing
def test_normalization_and_denormalization():
    n = mod("Normalization", mean="0.1307", stdev="0.3081")
    assert list(n.params) == ["mean", "std"] and not n.grads
    x = np.array([0.0, 1.0])
    np.testing.assert_allclose(n.forward(x), (x - 0.1307) / 0.3081, **F64)
    np.testing.assert_allclose(n.backward(np.ones(2)), 1 / 0.3081, **F64)
    n.set_flat(np.array([1.0, 4.0], np.float32))  # a 2-float weight file [mean, std]
    np.testing.assert_allclose(n.forward(x), [-0.25, 0.0], **F64)
    d = mod("Denormalization", mean="1", stdev="4")
    np.testing.assert_allclose(d.forward(np.array([0.0, 0.5])), [1.0, 3.0], **F64)
    np.testing.assert_allclose(d.backward(np.ones(2)), [4.0, 4.0], **F64)  # times std
    d.reset(0)
    np.testing.assert_array_equal(d.get_flat(), [1.0, 4.0])
    default = create_module("Normalization")
    np.testing.assert_array_equal(default.get_flat(), [0.0, 1.0])


def _ramp(h, w, a=3.0, b=0.5):
    return a * np.arange(h)[:, None] + b * np.arange(w)[None, :]


def test_scale_bilinear_on_a_ramp_and_sizes():
    x = np.stack([_ramp(4, 5), -_ramp(4, 5)])  # (2, 4, 5)
    m = mod("Scale", dim0="7", dim1="3")
    y = m.forward(x)
    assert y.shape == (2, 7, 3)
    # corners aligned: output (i, j) samples the input at (i * 3/6, j * 4/2); a ramp is exact
    want = 3.0 * (np.arange(7) * 0.5)[:, None] + 0.5 * (np.arange(3) * 2.0)[None, :]
    np.testing.assert_allclose(y[0], want, **F64)
    np.testing.assert_allclose(y[1], -want, **F64)
    np.testing.assert_allclose(y[0][[0, -1]][:, [0, -1]], [[0, 2], [9, 11]], **F64)
    # batch: leading dims kept
    assert m.forward(np.zeros((3, 2, 4, 5))).shape == (3, 2, 7, 3)
    # factors aligned to the trailing dims, int(n * f) in float32
    f = mod("Scale", factor0="0.5", factor1="1.5")
    assert f.output_shape((2, 4, 5)) == (2, 2, 7)
    assert f.forward(x).shape == (2, 2, 7)
    with pytest.raises(ModuleError):
        create_module("Scale")


def test_scale_non_integer_positions_and_adjoint():
    x = np.array([[0.0, 10.0], [20.0, 40.0]])
    y = mod("Scale", dim0="3", dim1="3").forward(x)
    np.testing.assert_allclose(y, [[0, 5, 10], [10, 17.5, 25], [20, 30, 40]], **F64)
    m = mod("Scale", dim0="3", dim1="4")
    xr = np.random.default_rng(0).standard_normal((2, 5, 6))
    g = np.random.default_rng(1).standard_normal((2, 3, 4))
    m.forward(xr)
    # adjoint: <R x, g> == <x, R^T g>
    assert np.isclose(np.sum(m.forward(xr) * g), np.sum(xr * m.backward(g)), rtol=1e-12)


def test_scale_replicates_one_channel_with_three_targets():
    m = mod("Scale", dim0="3", dim1="2", dim2="2")
    x = _ramp(3, 3)[None]  # (1, 3, 3)
    y = m.forward(x)
    assert y.shape == (3, 2, 2)
    assert np.all(y == y[0]) and np.allclose(y[0], [[0, 1], [6, 7]])
    w = np.random.default_rng(2).standard_normal((3, 2, 2))
    m.forward(x)
    np.testing.assert_allclose(m.backward(w), numeric_grad(m, x.copy(), w), rtol=1e-6, atol=1e-8)
    with pytest.raises(ShapeError):
        m.forward(np.zeros((2, 3, 3)))


def test_frame_crops_centre_to_aspect_then_resizes():
    # 6x12 input, target 3x3: square centre crop of 6x6 at columns 3..8, then resize
    x = _ramp(6, 12, a=10.0, b=1.0)[None]
    m = mod("Frame", dim0="1", dim1="3", dim2="3")
    y = m.forward(x)
    assert y.shape == (1, 3, 3)
    rows = np.arange(3) * 2.5  # (6-1)/(3-1)
    cols = 3 + np.arange(3) * 2.5
    np.testing.assert_allclose(y[0], 10.0 * rows[:, None] + cols[None, :], **F64)
    # batch and output_shape
    assert m.forward(np.zeros((2, 1, 6, 12))).shape == (2, 1, 3, 3)
    assert m.output_shape((1, 480, 640)) == (1, 3, 3)
    # grey 2-D input to 3 channels: replicated
    rgb = mod("Frame", dim0="3", dim1="2", dim2="4")
    y = rgb.forward(_ramp(4, 8))
    assert y.shape == (3, 2, 4) and np.all(y == y[0])
    # two targets: (H, W); a (C,H,W) input gives its first channel (the original)
    hw = mod("Frame", dim0="2", dim1="2")
    two = np.stack([_ramp(4, 4), np.full((4, 4), 99.0)])
    np.testing.assert_allclose(hw.forward(two), [[0, 1.5], [9, 10.5]], **F64)
    assert hw.forward(_ramp(4, 4)).shape == (2, 2)


def test_frame_of_the_same_size_copies():
    x = np.arange(12.0).reshape(1, 3, 4)
    y = mod("Frame", dim0="1", dim1="3", dim2="4").forward(x)
    np.testing.assert_array_equal(y, x)
    assert not np.shares_memory(y, x)


def test_float32_stays_float32_for_resizes():
    x = np.random.default_rng(0).random((3, 8, 8)).astype(np.float32)
    for m in (
        mod("Scale", np.float32, dim0="4", dim1="5"),
        mod("Frame", np.float32, dim0="3", dim1="4", dim2="4"),
    ):
        assert m.forward(x).dtype == np.float32
