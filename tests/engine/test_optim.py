"""Optimisers against references computed by hand: three steps of every method and decorator on
a two-element parameter with a fixed gradient sequence, the reference written out element by
element with scalar ``math`` (no numpy), plus literal numbers for the simplest cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.errors import DianneError
from engine.optim import Optimizer

P0 = [0.5, -1.0]
GRADS = [[0.2, -0.4], [-0.1, 0.3], [0.05, 0.5]]


def run(options: dict, steps: int = 3) -> np.ndarray:
    param = np.array(P0, dtype=np.float64)
    grad = np.zeros_like(param)
    opt = Optimizer([(param, grad)], options)
    for i in range(steps):
        grad[:] = GRADS[i]
        opt.step(i)
    return param


def reference(method, steps: int = 3, **k) -> list[float]:
    """Scalar re-statement of spec 6.1, one element at a time."""
    out = []
    for e in range(2):
        p, state = P0[e], {"m": 0.0, "v": 0.0, "acc": 0.0, "eg": 0.0, "edx": 0.0, "mom": 0.0}
        for i in range(steps):
            g = GRADS[i][e]
            delta = method(p, g, i, state, **k)
            if "l2" in k:
                delta -= k["l2"] * p
            if "momentum" in k:
                state["mom"] = k["momentum"] * state["mom"] + delta
                delta = state["mom"]
            if "nesterov" in k:
                prev = state["mom"]
                state["mom"] = k["nesterov"] * prev + delta
                delta = -k["nesterov"] * prev + (1 + k["nesterov"]) * state["mom"]
            p += delta
        out.append(p)
    return out


def sgd(p, g, i, s, lr=0.01, decay=0.0, min_lr=0.0, linear=False, **_):
    rate = max(min_lr, lr - decay * i) if linear else min_lr + (lr - min_lr) * math.exp(-i * decay)
    return -rate * g


def adam(p, g, i, s, lr=0.001, b1=0.9, b2=0.999, eps=1e-8, **_):
    s["m"] = b1 * s["m"] + (1 - b1) * g
    s["v"] = b2 * s["v"] + (1 - b2) * g * g
    t = i + 1
    return -lr * math.sqrt(1 - b2**t) / (1 - b1**t) * s["m"] / (math.sqrt(s["v"]) + eps)


def rmsprop(p, g, i, s, lr=0.001, decay=0.9, eps=1e-8, **_):
    s["v"] = decay * s["v"] + (1 - decay) * g * g
    return -lr * g / math.sqrt(s["v"] + eps)


def adagrad(p, g, i, s, lr=0.01, eps=1e-8, **_):
    s["acc"] += g * g
    return -lr * g / (math.sqrt(s["acc"]) + eps)


def adadelta(p, g, i, s, rho=0.95, eps=1e-8, lr=1.0, **_):
    s["eg"] = rho * s["eg"] + (1 - rho) * g * g
    dx = -math.sqrt(s["edx"] + eps) / math.sqrt(s["eg"] + eps) * g
    s["edx"] = rho * s["edx"] + (1 - rho) * dx * dx
    return lr * dx


CASES = [
    ({"method": "SGD"}, sgd, {}),
    ({"method": "SGD", "learningRate": "0.1"}, sgd, {"lr": 0.1}),
    ({"method": "SGD", "learningRate": "0.1", "decayRate": "0.5", "minLearningRate": "0.02"},
     sgd, {"lr": 0.1, "decay": 0.5, "min_lr": 0.02}),
    ({"method": "SGD", "learningRate": "0.1", "decayRate": "0.03", "decayType": "linear"},
     sgd, {"lr": 0.1, "decay": 0.03, "linear": True}),
    ({"method": "SGD", "learningRate": "0.1", "momentum": "0.9"}, sgd,
     {"lr": 0.1, "momentum": 0.9}),
    ({"method": "SGD", "learningRate": "0.1", "nesterov": "0.8"}, sgd,
     {"lr": 0.1, "nesterov": 0.8}),
    ({"method": "SGD", "learningRate": "0.1", "l2": "0.01"}, sgd, {"lr": 0.1, "l2": 0.01}),
    ({"method": "ADAM"}, adam, {}),
    ({"method": "adam", "learningRate": "0.01", "beta1": "0.8", "beta2": "0.99",
      "epsilon": "1e-6"}, adam, {"lr": 0.01, "b1": 0.8, "b2": 0.99, "eps": 1e-6}),
    ({"method": "ADAM", "learningRate": "0.01", "momentum": "0.5", "l2": "0.001"}, adam,
     {"lr": 0.01, "momentum": 0.5, "l2": 0.001}),
    ({"method": "RMSPROP"}, rmsprop, {}),
    ({"method": "RMSPROP", "learningRate": "0.01", "decayRate": "0.5"}, rmsprop,
     {"lr": 0.01, "decay": 0.5}),
    ({"method": "ADAGRAD"}, adagrad, {}),
    ({"method": "ADAGRAD", "learningRate": "0.5", "nesterov": ""}, adagrad,
     {"lr": 0.5, "nesterov": 0.9}),
    ({"method": "ADADELTA"}, adadelta, {}),
    ({"method": "ADADELTA", "decayRate": "0.5", "learningRate": "2"}, adadelta,
     {"rho": 0.5, "lr": 2.0}),
]


@pytest.mark.parametrize(("options", "method", "kwargs"), CASES,
                         ids=[",".join(f"{k}={v}" for k, v in c[0].items()) for c in CASES])
def test_three_steps_match_the_hand_reference(options, method, kwargs):
    np.testing.assert_allclose(run(options), reference(method, **kwargs), rtol=1e-12, atol=1e-15)


def test_literal_numbers():
    # SGD lr 0.1: p - 0.1 (g1 + g2 + g3) = [0.5 - 0.015, -1 - 0.04]
    np.testing.assert_allclose(run({"method": "SGD", "learningRate": "0.1"}), [0.485, -1.04],
                               atol=1e-15)
    # Momentum 0.5, lr 1, one element, g = 1, 1: v1 = -1, v2 = -1.5 -> p = -2.5
    p, g = np.zeros(1), np.ones(1)
    opt = Optimizer([(p, g)], {"learningRate": "1", "momentum": "0.5"})
    opt.step(0)
    opt.step(1)
    assert p[0] == pytest.approx(-2.5, abs=1e-15)
    # Adam's first step is -lr * sign(g) (bias correction), whatever the gradient's scale
    p, g = np.zeros(2), np.array([0.5, -50.0])
    Optimizer([(p, g)], {"method": "ADAM", "learningRate": "0.1"}).step(0)
    np.testing.assert_allclose(p, [-0.1, 0.1], rtol=1e-6)


def test_float32_params_update_in_place():
    param = np.ones(3, dtype=np.float32)
    grad = np.full(3, 2.0, dtype=np.float32)
    view = param
    Optimizer([(param, grad)], {"method": "RMSPROP", "momentum": ""}).step(0)
    assert view is param and param.dtype == np.float32
    assert not np.allclose(param, 1.0)


def test_defaults_of_present_but_empty_keys():
    """An empty ``l2`` / ``momentum`` value takes the original's defaults (0.0001 / 0.9)."""
    opt = Optimizer([], {"l2": "", "momentum": ""})
    assert opt.l2 == 0.0001 and opt.momentum == 0.9 and opt.nesterov is None
    assert Optimizer([], {"momentum": "0.5", "nesterov": "0.7"}).nesterov is None


def test_errors():
    with pytest.raises(DianneError, match="LBFGS"):
        Optimizer([], {"method": "LBFGS"})
    with pytest.raises(DianneError, match="learningRate.*'fast'"):
        Optimizer([], {"learningRate": "fast"})
    with pytest.raises(DianneError, match="decayType"):
        Optimizer([], {"decayType": "STEP"})
