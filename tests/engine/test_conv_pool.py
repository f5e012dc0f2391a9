"""Convolution, FullConvolution, MaxPooling, MaxUnpooling and AvgPooling against independent
references: direct loop implementations written here (float64, tolerance 1e-10), the adjoint
identity between Convolution and FullConvolution, the spec §3.3 weight layouts, finite-difference
gradients (central differences, eps 1e-6, rtol 1e-5 / atol 1e-7) for the kinds the registry-wide
harness does not cover (temporal, volumetric, global), and errors that name the module.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from engine.errors import ModuleError, ShapeError
from engine.modules import create_module

RNG = np.random.default_rng(1234)
TOL = {"rtol": 1e-10, "atol": 1e-10}


def make(type_name, n_next=1, **props):
    mod = create_module(type_name, dtype=np.float64, **props)
    mod.n_next = n_next
    mod.reset(np.random.default_rng(5))
    return mod


# ----------------------------------------------------------------------------- references
def ref_conv(x, w, b, stride, pad):
    """Direct N-d cross-correlation with zero padding; x (C, *S), w (O, C, *k)."""
    nd = x.ndim - 1
    xp = np.pad(x, [(0, 0)] + [(p, p) for p in pad])
    k = w.shape[2:]
    out = [(xp.shape[1 + d] - k[d]) // stride[d] + 1 for d in range(nd)]
    y = np.zeros((w.shape[0], *out))
    for o in range(w.shape[0]):
        for pos in itertools.product(*(range(n) for n in out)):
            win = tuple(slice(pos[d] * stride[d], pos[d] * stride[d] + k[d]) for d in range(nd))
            y[(o, *pos)] = np.sum(xp[(slice(None), *win)] * w[o]) + b[o]
    return y


def ref_temporal_conv(x, w, b, stride):
    """THNN TemporalConvolution: x (T, I), w (O, kW, I)."""
    kw = w.shape[1]
    t_out = (x.shape[0] - kw) // stride + 1
    y = np.zeros((t_out, w.shape[0]))
    for t in range(t_out):
        for o in range(w.shape[0]):
            y[t, o] = b[o] + sum(w[o, j, i] * x[t * stride + j, i]
                                 for j in range(kw) for i in range(x.shape[1]))
    return y


def ref_pool(x, k, stride, pad, how):
    """Loop pooling of (C, *S); windows clipped to the input (padding never wins / counts).

    Returns values and, for max, the 0-based flat index in the plane of the first maximum."""
    nd = x.ndim - 1
    size = x.shape[1:]
    out = [(size[d] + 2 * pad[d] - k[d]) // stride[d] + 1 for d in range(nd)]
    vals = np.zeros((x.shape[0], *out))
    idx = np.zeros((x.shape[0], *out), dtype=np.int64)
    for c in range(x.shape[0]):
        for pos in itertools.product(*(range(n) for n in out)):
            lo = [max(pos[d] * stride[d] - pad[d], 0) for d in range(nd)]
            hi = [min(pos[d] * stride[d] - pad[d] + k[d], size[d]) for d in range(nd)]
            best, best_i, total, count = -np.inf, -1, 0.0, 0
            for q in itertools.product(*(range(lo[d], hi[d]) for d in range(nd))):
                v = x[(c, *q)]
                total, count = total + v, count + 1
                if v > best:
                    best, best_i = v, int(np.ravel_multi_index(q, size))
            vals[(c, *pos)] = best if how == "max" else total / count
            idx[(c, *pos)] = best_i
    return vals, idx


def numeric_grad(f, x, eps=1e-6):
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for j in range(flat.size):
        old = flat[j]
        flat[j] = old + eps
        lp = f()
        flat[j] = old - eps
        lm = f()
        flat[j] = old
        gflat[j] = (lp - lm) / (2 * eps)
    return g


def check_grads(mod, x, fork=False):
    out = mod.forward(x)
    out = out[0] if fork else out
    wts = RNG.standard_normal(out.shape)

    def loss():
        o = mod.forward(x)
        return float(np.sum((o[0] if fork else o) * wts))

    mod.zero_grad()
    mod.forward(x)
    gi = mod.backward([wts] + [None] * (mod.n_next - 1) if fork else wts)
    np.testing.assert_allclose(gi, numeric_grad(loss, x), rtol=1e-5, atol=1e-7)
    for name, grad in mod.grads.items():
        np.testing.assert_allclose(grad, numeric_grad(loss, mod.params[name]),
                                   rtol=1e-5, atol=1e-7, err_msg=name)


# ----------------------------------------------------------------------------- Convolution
@pytest.mark.parametrize("cfg", [
    # (I, O, kH, kW, sY, sX, pY, pX, H, W)
    (1, 2, 3, 3, 1, 1, 0, 0, 5, 6),
    (2, 3, 2, 4, 1, 2, 1, 0, 5, 9),
    (3, 2, 3, 1, 2, 1, 0, 1, 7, 4),
    (2, 2, 3, 3, 2, 3, 1, 1, 6, 8),
    (1, 1, 1, 1, 1, 1, 0, 0, 2, 3),
    (2, 2, 2, 2, 2, 3, 0, 1, 6, 8),  # disjoint windows: the one-add col2im path
])
def test_spatial_convolution_matches_loops(cfg):
    i, o, kh, kw, sy, sx, py, px, h, w = cfg
    conv = make("Convolution", noInputPlanes=i, noOutputPlanes=o, kernelWidth=kw,
                kernelHeight=kh, strideX=sx, strideY=sy, padX=px, padY=py)
    x = RNG.standard_normal((i, h, w))
    want = ref_conv(x, conv.params["weight"], conv.params["bias"], (sy, sx), (py, px))
    np.testing.assert_allclose(conv.forward(x), want, **TOL)
    assert conv.output_shape((i, h, w)) == want.shape
    batch = np.stack([x, 2 * x, -x])
    got = conv.forward(batch)
    for n, s in enumerate((1, 2, -1)):
        want_n = ref_conv(s * x, conv.params["weight"], conv.params["bias"], (sy, sx), (py, px))
        np.testing.assert_allclose(got[n], want_n, **TOL)
    # the buffers are reused per shape: a different shape, then the first again
    np.testing.assert_allclose(conv.forward(x), want, **TOL)
    check_grads(conv, x)


def test_legacy_pad_flag_and_explicit_override():
    x = RNG.standard_normal((2, 7, 6))
    base = {"noInputPlanes": 2, "noOutputPlanes": 2, "kernelWidth": 5, "kernelHeight": 3}
    legacy = make("Convolution", pad="true", **base)
    assert legacy.pad == (1, 2)
    w, b = legacy.params["weight"], legacy.params["bias"]
    np.testing.assert_allclose(legacy.forward(x), ref_conv(x, w, b, (1, 1), (1, 2)), **TOL)
    assert legacy.forward(x).shape == (2, 7, 6)  # "same" size for odd kernels
    override = make("Convolution", pad="true", padX="0", **base)
    assert override.pad == (1, 0)
    assert make("Convolution", pad="false", **base).pad == (0, 0)


def test_volumetric_convolution_matches_loops_and_gradients():
    conv = make("Convolution", noInputPlanes=2, noOutputPlanes=2, kernelWidth=2, kernelHeight=3,
                kernelDepth=2, strideX=2, strideZ=1, padY=1, padZ=1)
    assert conv.kind == "volumetric" and conv.params["weight"].shape == (2, 2, 2, 3, 2)
    x = RNG.standard_normal((2, 3, 3, 4))
    want = ref_conv(x, conv.params["weight"], conv.params["bias"], (1, 1, 2), (1, 1, 0))
    np.testing.assert_allclose(conv.forward(x), want, **TOL)
    np.testing.assert_allclose(conv.forward(x[None])[0], want, **TOL)
    check_grads(conv, x)


def test_temporal_convolution_thnn_layout_and_gradients():
    conv = make("Convolution", noInputPlanes=3, noOutputPlanes=2, kernelWidth=3, strideX=2)
    assert conv.kind == "temporal" and conv.params["weight"].shape == (2, 3, 3)  # [O][kW][I]
    x = RNG.standard_normal((8, 3))  # (T, features)
    want = ref_temporal_conv(x, conv.params["weight"], conv.params["bias"], 2)
    np.testing.assert_allclose(conv.forward(x), want, **TOL)
    assert conv.output_shape((8, 3)) == (3, 2)
    batch = conv.forward(np.stack([x, -x]))
    np.testing.assert_allclose(batch[0], want, **TOL)
    check_grads(conv, x)
    check_grads(conv, np.stack([x, x[::-1]]))


def test_spatial_gradients_batch_and_overlap():
    conv = make("Convolution", noInputPlanes=2, noOutputPlanes=2, kernelWidth=3, kernelHeight=2,
                strideY=2, padX=2)
    check_grads(conv, RNG.standard_normal((2, 2, 5, 4)))


def test_convolution_weight_layout_is_o_i_kh_kw():
    conv = make("Convolution", noInputPlanes=2, noOutputPlanes=3, kernelWidth=4, kernelHeight=2)
    conv.set_flat(np.arange(3 * 2 * 2 * 4 + 3))
    w = conv.params["weight"]
    for o, i, kh, kw in itertools.product(range(3), range(2), range(2), range(4)):
        assert w[o, i, kh, kw] == ((o * 2 + i) * 2 + kh) * 4 + kw
    np.testing.assert_array_equal(conv.params["bias"], [48, 49, 50])
    # semantics: one weight at [o=2][i=1][kh=1][kw=3] and an impulse at x[1, 4, 5]
    flat = np.zeros(51)
    flat[((2 * 2 + 1) * 2 + 1) * 4 + 3] = 1.0
    conv.set_flat(flat)
    x = np.zeros((2, 6, 8))
    x[1, 4, 5] = 1.0
    y = conv.forward(x)
    assert y[2, 4 - 1, 5 - 3] == 1.0 and np.count_nonzero(y) == 1


def test_temporal_weight_layout_is_o_kw_i():
    conv = make("Convolution", noInputPlanes=2, noOutputPlanes=2, kernelWidth=3)
    flat = np.zeros(2 * 3 * 2 + 2)
    flat[(1 * 3 + 2) * 2 + 0] = 1.0  # [o=1][kw=2][i=0]
    conv.set_flat(flat)
    x = np.zeros((6, 2))
    x[4, 0] = 1.0  # time 4, feature 0 -> output frame 4 - 2
    y = conv.forward(x)
    assert y[2, 1] == 1.0 and np.count_nonzero(y) == 1


def test_two_dimensional_input_is_one_plane_when_single_input_plane():
    conv = make("Convolution", noInputPlanes=1, noOutputPlanes=2, kernelWidth=3, kernelHeight=3)
    x = RNG.standard_normal((5, 6))
    np.testing.assert_allclose(conv.forward(x), conv.forward(x[None]), **TOL)
    assert conv.output_shape((5, 6)) == (2, 3, 4)
    conv.forward(x)
    assert conv.backward(np.ones((2, 3, 4))).shape == (5, 6)


def test_init_is_uniform_fan_in():
    conv = make("Convolution", noInputPlanes=4, noOutputPlanes=8, kernelWidth=3, kernelHeight=3)
    bound = 1 / np.sqrt(4 * 9)
    flat = conv.get_flat()
    assert np.all(np.abs(flat) <= bound) and np.abs(flat).max() > 0.8 * bound
    full = make("FullConvolution", noInputPlanes=4, noOutputPlanes=8, kernelWidth=3,
                kernelHeight=3)  # the original inherits Convolution.randomize: fan_in = I*kW*kH
    assert np.all(np.abs(full.get_flat()) <= bound)
    assert conv.parameter_size() == full.parameter_size() == 8 * 4 * 9 + 8


def test_convolution_shape_errors_name_the_module():
    conv = create_module("Convolution", id="c-1", name="conv1", noInputPlanes=3,
                         noOutputPlanes=2, kernelWidth=3, kernelHeight=3)
    with pytest.raises(ShapeError, match=r"Convolution 'conv1' \(c-1\).*3 input planes.*Received"):
        conv.forward(np.zeros((2, 8, 8), np.float32))
    with pytest.raises(ShapeError, match=r"\(c-1\).*smaller than the kernel"):
        conv.forward(np.zeros((3, 2, 8), np.float32))
    with pytest.raises(ShapeError, match=r"\(c-1\)"):
        conv.output_shape((3, 8))
    with pytest.raises(ModuleError, match=r"Convolution.*kernelWidth.*missing"):
        create_module("Convolution", noInputPlanes=1, noOutputPlanes=1)


# ----------------------------------------------------------------------------- FullConvolution
@pytest.mark.parametrize("props, size", [
    ({"kernelWidth": 3, "kernelHeight": 2}, (4, 5)),
    ({"kernelWidth": 4, "kernelHeight": 3, "strideX": 2, "strideY": 3, "padX": 1}, (3, 4)),
    ({"kernelWidth": 2, "kernelHeight": 2, "kernelDepth": 3, "strideZ": 2, "padZ": 1}, (3, 2, 3)),
    ({"kernelWidth": 2, "kernelHeight": 2, "strideX": 2, "strideY": 3}, (3, 3)),
])
def test_full_convolution_is_the_adjoint_of_convolution(props, size):
    n_in, n_out = 3, 2
    full = make("FullConvolution", noInputPlanes=n_in, noOutputPlanes=n_out, **props)
    conv = make("Convolution", noInputPlanes=n_out, noOutputPlanes=n_in, **props)
    conv.params["weight"][...] = full.params["weight"]  # the same [I_full][O_full][k] array
    conv.params["bias"][...] = 0
    full.params["bias"][...] = 0
    x = RNG.standard_normal((n_in, *size))
    fx = full.forward(x)
    want_shape = tuple((n - 1) * s - 2 * p + k for n, k, s, p in
                       zip(size, full.k, full.stride, full.pad, strict=True))
    assert fx.shape == (n_out, *want_shape) == full.output_shape(x.shape)
    y = RNG.standard_normal(fx.shape)
    cy = conv.forward(y)
    assert cy.shape == x.shape
    assert np.isclose(np.sum(cy * x), np.sum(y * fx), rtol=1e-12)
    check_grads(full, x)


def test_full_convolution_weight_layout_and_bias():
    full = make("FullConvolution", noInputPlanes=2, noOutputPlanes=3, kernelWidth=2,
                kernelHeight=2, strideX=2, strideY=2)
    flat = np.zeros(2 * 3 * 4 + 3)
    flat[((1 * 3 + 2) * 2 + 0) * 2 + 1] = 1.0  # [i=1][o=2][kh=0][kw=1]
    flat[24:] = [0.5, 0.25, 0.125]
    full.set_flat(flat)
    x = np.zeros((2, 2, 3))
    x[1, 1, 2] = 1.0
    y = full.forward(x)
    assert y.shape == (3, 4, 6)
    assert y[2, 2 * 1 + 0, 2 * 2 + 1] == 1.125
    assert np.count_nonzero(y - np.array([0.5, 0.25, 0.125])[:, None, None]) == 1


def test_temporal_full_convolution_is_refused():
    with pytest.raises(ModuleError, match=r"FullConvolution.*temporal.*not supported"):
        create_module("FullConvolution", noInputPlanes=1, noOutputPlanes=1, kernelWidth=3)


# ----------------------------------------------------------------------------- pooling
@pytest.mark.parametrize("props, k, s, p", [
    ({"width": 2, "height": 2}, (2, 2), (2, 2), (0, 0)),
    ({"width": 3, "height": 2, "strideX": 1}, (2, 3), (2, 1), (0, 0)),
    ({"width": 3, "height": 3, "strideX": 2, "strideY": 1, "padX": 1, "padY": 1},
     (3, 3), (1, 2), (1, 1)),
    ({"width": 2, "height": 4, "strideX": 3, "padY": 2}, (4, 2), (4, 3), (2, 0)),
    ({"width": 5, "height": 5, "strideX": 1, "strideY": 1}, (5, 5), (1, 1), (0, 0)),
])
def test_max_and_avg_pooling_match_loops(props, k, s, p):
    x = RNG.standard_normal((3, 9, 10))
    want_max, want_idx = ref_pool(x, k, s, p, "max")
    want_avg, _ = ref_pool(x, k, s, p, "avg")
    mp = make("MaxPooling", n_next=2, **props)
    values, idx = mp.forward(x)
    np.testing.assert_allclose(values, want_max, **TOL)
    np.testing.assert_array_equal(idx, want_idx)
    assert idx.dtype == x.dtype
    assert mp.output_shape(x.shape) == [want_max.shape] * 2
    ap = make("AvgPooling", **props)
    np.testing.assert_allclose(ap.forward(x), want_avg, **TOL)
    check_grads(mp, x, fork=True)
    check_grads(ap, x)
    one = make("MaxPooling", **props)
    np.testing.assert_allclose(one.forward(x)[0], want_max, **TOL)
    check_grads(one, x, fork=True)  # argmax found lazily in backward


def test_max_pooling_backward_sums_over_overlapping_windows():
    x = np.array([[[0.0, 5.0, 1.0, 0.0]]])  # 5 wins both windows of width 3, stride 1
    mp = make("MaxPooling", width=3, height=1, strideX=1)
    assert mp.forward(x)[0].tolist() == [[[5.0, 5.0]]]
    np.testing.assert_array_equal(mp.backward([np.array([[[2.0, 3.0]]])]), [[[0, 5.0, 0, 0]]])


def test_more_than_two_successors_get_values_except_the_second():
    x = RNG.standard_normal((2, 4, 4))
    mp = make("MaxPooling", n_next=3, width=2, height=2)
    values, idx, again = mp.forward(x)
    assert again is values and idx.shape == values.shape
    g1, g2 = RNG.standard_normal(values.shape), RNG.standard_normal(values.shape)
    both = mp.backward([g1, None, g2])
    mp.forward(x)
    np.testing.assert_allclose(both, mp.backward([g1 + g2, None, None]), **TOL)


def test_ties_go_to_the_first_maximum():
    mp = make("MaxPooling", n_next=2, width=2, height=2)
    _, idx = mp.forward(np.ones((1, 2, 2)))
    assert idx.tolist() == [[[0.0]]]


def test_global_pooling_with_minus_one():
    x = RNG.standard_normal((4, 6, 7)).astype(np.float32)
    mp = make("MaxPooling", n_next=2, width=-1, height=-1)
    mp_values, mp_idx = mp.forward(x)
    np.testing.assert_array_equal(mp_values, x.max(axis=(1, 2))[:, None, None])
    np.testing.assert_array_equal(mp_idx[:, 0, 0], x.reshape(4, -1).argmax(axis=1))
    ap = make("AvgPooling", width=-1, height=-1)
    np.testing.assert_allclose(ap.forward(x.astype(np.float64))[:, 0, 0],
                               x.astype(np.float64).mean(axis=(1, 2)), **TOL)
    assert ap.output_shape((4, 6, 7)) == (4, 1, 1)
    check_grads(mp, x.astype(np.float64), fork=True)
    check_grads(ap, x.astype(np.float64))
    row = make("MaxPooling", width=-1, height=2)  # whole width, pairs of rows
    assert row.forward(x)[0].shape == (4, 3, 1)


def test_temporal_and_volumetric_pooling():
    x = RNG.standard_normal((7, 3))  # (T, features): pooled over time
    mp = make("MaxPooling", width=2, strideX=1)
    want, _ = ref_pool(x.T, (2,), (1,), (0,), "max")
    np.testing.assert_allclose(mp.forward(x)[0], want.T, **TOL)
    check_grads(mp, x, fork=True)
    ap = make("AvgPooling", width=3, strideX=2)
    np.testing.assert_allclose(ap.forward(x), ref_pool(x.T, (3,), (2,), (0,), "avg")[0].T, **TOL)
    check_grads(ap, np.stack([x, -x]))
    v = RNG.standard_normal((2, 4, 5, 4))
    mv = make("MaxPooling", n_next=2, width=2, height=3, depth=2, strideY=2, padY=1)
    want_v, want_i = ref_pool(v, (2, 3, 2), (2, 2, 2), (0, 1, 0), "max")
    got_v, got_i = mv.forward(v)
    np.testing.assert_allclose(got_v, want_v, **TOL)
    np.testing.assert_array_equal(got_i, want_i)
    check_grads(mv, v, fork=True)
    av = make("AvgPooling", width=2, height=2, depth=2, strideX=1)
    np.testing.assert_allclose(av.forward(v), ref_pool(v, (2, 2, 2), (2, 2, 1), (0, 0, 0),
                                                        "avg")[0], **TOL)
    check_grads(av, v)


def test_unpooling_round_trip():
    x = np.abs(RNG.standard_normal((2, 3, 6, 8))) + 0.1  # positive: zeros never win below
    mp = make("MaxPooling", n_next=2, width=2, height=3)
    values, idx = mp.forward(x)
    up = make("MaxUnpooling", width=2, height=3)
    y = up.forward([values, idx])
    assert y.shape == x.shape == (2, *up.output_shape([values.shape[1:], idx.shape[1:]]))
    # every maximum is back at its place, everything else is zero
    np.testing.assert_array_equal(y, np.where(y != 0, x, 0))
    assert np.count_nonzero(y) == values.size
    np.testing.assert_array_equal(mp.forward(y)[0], values)
    g = RNG.standard_normal(y.shape)
    gv, gi = up.backward(g)
    np.testing.assert_array_equal(gv, np.take_along_axis(
        g.reshape(2, 3, -1), idx.reshape(2, 3, -1).astype(int), axis=2).reshape(values.shape))
    assert gi.shape == idx.shape and not gi.any()


def test_unpooling_size_from_properties_with_stride_and_pad():
    up = make("MaxUnpooling", width=3, height=3, strideX=2, strideY=2, padX=1, padY=1)
    assert up.output_shape([(1, 4, 5), (1, 4, 5)]) == (1, 7, 9)  # (in-1)*2 - 2 + 3
    assert up.output_shape([(1, 3, 4), (1, 3, 4)]) == (1, 5, 7)
    x = RNG.standard_normal((1, 5, 7))
    mp = make("MaxPooling", n_next=2, width=3, height=3, strideX=2, strideY=2, padX=1, padY=1)
    values, idx = mp.forward(x)
    y = up.forward([values, idx])
    assert y.shape == x.shape
    np.testing.assert_array_equal(y.reshape(-1)[idx.reshape(-1).astype(int)], values.reshape(-1))


def test_pooling_errors_name_the_module():
    up = create_module("MaxUnpooling", id="u-1", width=2, height=2)
    v = np.zeros((1, 2, 2))
    with pytest.raises(ShapeError, match=r"MaxUnpooling \(u-1\).*indices must lie in"):
        up.forward([v, np.full((1, 2, 2), 16.0)])
    with pytest.raises(ModuleError, match=r"\(u-1\).*two inputs"):
        up.forward(v)
    with pytest.raises(ModuleError, match=r"MaxUnpooling.*temporal"):
        create_module("MaxUnpooling", width=2).forward([np.zeros((4, 1)), np.zeros((4, 1))])
    mp = create_module("MaxPooling", id="m-1", width=2, height=2)
    with pytest.raises(ShapeError, match=r"MaxPooling \(m-1\).*\(C, H, W\).*Received"):
        mp.forward(np.zeros((4, 4)))
    with pytest.raises(ShapeError, match=r"\(m-1\).*smaller than the window"):
        mp.forward(np.zeros((1, 1, 4)))
    with pytest.raises(ModuleError, match=r"MaxPooling.*half the window"):
        create_module("MaxPooling", width=2, height=2, padX=2)
    with pytest.raises(ModuleError, match=r"AvgPooling.*width.*missing"):
        create_module("AvgPooling", height=2)


def test_float32_in_float32_out_and_lenet_shapes():
    x = RNG.random((1, 28, 28), dtype=np.float32)
    layers = [
        create_module("Convolution", noInputPlanes=1, noOutputPlanes=6, kernelWidth=5,
                      kernelHeight=5),
        create_module("MaxPooling", width=2, height=2),
        create_module("Convolution", noInputPlanes=6, noOutputPlanes=16, kernelWidth=5,
                      kernelHeight=5),
        create_module("AvgPooling", width=2, height=2),
    ]
    shape = x.shape
    for layer in layers:
        layer.reset(0)
        out = layer.forward(x)
        x = out[0] if layer.fork else out
        shape = layer.output_shape(shape)
        shape = shape[0] if layer.fork else shape
        assert x.dtype == np.float32 and x.shape == shape
    assert x.shape == (16, 4, 4)
    assert layers[0].macs((1, 28, 28)) == 6 * 24 * 24 * 25
    assert layers[2].macs((6, 12, 12)) == 16 * 8 * 8 * 6 * 25
