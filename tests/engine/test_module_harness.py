"""Registry-wide harnesses: every registered module type is gradient-checked in float64 by
central finite differences (inputs and every learnable parameter), its batch forward equals
its per-sample forwards, and its declared properties round-trip through their JSON strings.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.modules import REGISTRY, create_module

TYPES = sorted(REGISTRY)


def _learnable(type_name: str) -> bool:
    ex = REGISTRY[type_name].example
    mod = create_module(type_name, **ex["props"])
    return bool(mod.grads) and ex.get("grad", True) is not False


LEARNABLE = [t for t in TYPES if _learnable(t)]
EPS = 1e-6
# |analytic - numeric| <= ATOL + RTOL * |numeric|, in float64
ATOL, RTOL = 1e-6, 1e-4


def build(type_name: str, dtype=np.float64, training: bool | None = None):
    cls = REGISTRY[type_name]
    ex = cls.example
    mod = create_module(type_name, dtype=dtype, **ex["props"])
    mod.n_next = ex.get("n_next", 1)
    mod.n_prev = len(ex["inputs"])
    mod.reset(np.random.default_rng(1))
    mod.train(ex.get("training", False) if training is None else training)
    return mod


def make_inputs(type_name: str, rng: np.random.Generator, dtype=np.float64):
    ex = REGISTRY[type_name].example
    if "make_inputs" in ex:
        return [np.asarray(a, dtype=dtype) if a.dtype.kind == "f" else a
                for a in ex["make_inputs"](rng)]
    return [rng.standard_normal(shape).astype(dtype) for shape in ex["inputs"]]


def run_forward(mod, xs):
    mod.rng = np.random.default_rng(123)  # same dropout masks on every call
    out = mod.forward(xs if mod.join else xs[0])
    outs = list(out) if mod.fork else [out]
    return [np.array(o, copy=True) for o in outs]


def numeric_gradient(array: np.ndarray, loss) -> np.ndarray:
    """Central differences of ``loss()`` w.r.t. every element of ``array`` (changed in place
    and restored)."""
    num = np.zeros_like(array)
    flat = array.reshape(-1)  # a view: the module sees the perturbation
    for j in range(flat.size):
        old = flat[j]
        flat[j] = old + EPS
        lp = loss()
        flat[j] = old - EPS
        lm = loss()
        flat[j] = old
        num.reshape(-1)[j] = (lp - lm) / (2 * EPS)
    return num


def loss_of(outs, weights, check):
    return sum(float(np.sum(outs[k] * weights[k])) for k in check)


@pytest.mark.parametrize("type_name", TYPES)
def test_every_type_has_an_example(type_name):
    ex = REGISTRY[type_name].example
    assert "props" in ex and "inputs" in ex and len(ex["inputs"]) >= 1


@pytest.mark.parametrize("type_name", TYPES)
def test_gradient_check(type_name):
    ex = REGISTRY[type_name].example
    if ex.get("grad", True) is False:
        pytest.skip(f"{type_name} has no backward in DIANNE (forward-only preprocessing)")
    rng = np.random.default_rng(7)
    mod = build(type_name)
    xs = make_inputs(type_name, rng)
    outs = run_forward(mod, xs)
    check_out = ex.get("check_outputs", list(range(len(outs))))
    weights = [rng.standard_normal(o.shape) for o in outs]

    mod.zero_grad()
    run_forward(mod, xs)
    go = [weights[k] if k in check_out else None for k in range(len(outs))]
    gi = mod.backward(go if mod.fork else go[0])
    gis = list(gi) if mod.join else [gi]

    def loss() -> float:
        return loss_of(run_forward(mod, xs), weights, check_out)

    for i in ex.get("check_inputs", range(len(xs))):
        x = xs[i]
        num = numeric_gradient(x, loss)
        got = np.asarray(gis[i], dtype=np.float64).reshape(x.shape)
        np.testing.assert_allclose(got, num, rtol=RTOL, atol=ATOL,
                                   err_msg=f"{type_name}: grad of input {i}")

    for pname, grad in mod.grads.items():
        num = numeric_gradient(mod.params[pname], loss)
        np.testing.assert_allclose(grad, num, rtol=RTOL, atol=ATOL,
                                   err_msg=f"{type_name}: grad of parameter {pname}")


def test_learnable_types_are_known():
    assert {"Linear", "Convolution", "BatchNormalization", "PReLU"} <= set(LEARNABLE)


@pytest.mark.parametrize("type_name", LEARNABLE)
def test_backward_accumulates(type_name):
    """torch7 contract: backward adds into grads, zero_grad clears them."""
    mod = build(type_name)
    rng = np.random.default_rng(3)
    xs = make_inputs(type_name, rng)
    outs = run_forward(mod, xs)
    go = [np.ones_like(o) for o in outs]
    mod.zero_grad()
    mod.backward(go if mod.fork else go[0])
    once = {k: g.copy() for k, g in mod.grads.items()}
    run_forward(mod, xs)
    mod.backward(go if mod.fork else go[0])
    for k, g in mod.grads.items():
        np.testing.assert_allclose(g, 2 * once[k], rtol=1e-12, atol=1e-12)
    mod.zero_grad()
    assert all(not np.any(g) for g in mod.grads.values())


@pytest.mark.parametrize("type_name", TYPES)
def test_batch_equals_single_samples(type_name):
    ex = REGISTRY[type_name].example
    if ex.get("batch", True) is False:
        pytest.skip(f"{type_name}: batch semantics differ from per-sample by design")
    rng = np.random.default_rng(11)
    mod = build(type_name, dtype=np.float64, training=False)
    samples = [make_inputs(type_name, rng) for _ in range(3)]
    singles = [run_forward(mod, xs) for xs in samples]
    batch_in = [np.stack([xs[i] for xs in samples]) for i in range(len(samples[0]))]
    batched = run_forward(mod, batch_in)
    for k in range(len(batched)):
        want = np.stack([s[k] for s in singles])
        np.testing.assert_allclose(batched[k], want, rtol=1e-10, atol=1e-10,
                                   err_msg=f"{type_name}: output {k}")


@pytest.mark.parametrize("type_name", TYPES)
def test_output_shape_matches_forward(type_name):
    mod = build(type_name, dtype=np.float32, training=False)
    rng = np.random.default_rng(5)
    xs = make_inputs(type_name, rng, dtype=np.float32)
    outs = run_forward(mod, xs)
    shapes = [tuple(x.shape) for x in xs]
    predicted = mod.output_shape(shapes if mod.join else shapes[0])
    predicted = list(predicted) if mod.fork else [predicted]
    assert [tuple(p) for p in predicted] == [o.shape for o in outs]


@pytest.mark.parametrize("type_name", TYPES)
def test_float32_forward_keeps_float32(type_name):
    mod = build(type_name, dtype=np.float32, training=False)
    xs = make_inputs(type_name, np.random.default_rng(2), dtype=np.float32)
    for o in run_forward(mod, xs):
        if o.dtype.kind == "f":
            assert o.dtype == np.float32, f"{type_name} returned {o.dtype}"


@pytest.mark.parametrize("type_name", TYPES)
def test_properties_round_trip_as_strings(type_name):
    cls = REGISTRY[type_name]
    mod = create_module(type_name, **cls.example["props"])
    as_json = mod.properties_json()
    assert all(isinstance(v, str) for v in as_json.values())
    again = create_module(type_name, **as_json)
    assert again.cfg == mod.cfg


@pytest.mark.parametrize("type_name", TYPES)
def test_flat_parameters_round_trip(type_name):
    mod = build(type_name, dtype=np.float32)
    flat = mod.get_flat()
    assert flat.dtype == np.float32 and flat.size == mod.parameter_size()
    other = build(type_name, dtype=np.float32)
    other.set_flat(np.arange(flat.size, dtype=np.float32))
    np.testing.assert_array_equal(other.get_flat(), np.arange(flat.size, dtype=np.float32))
