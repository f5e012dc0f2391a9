"""Criteria: hand-computed losses, a float64 finite-difference check of every gradient (mean and
sum forms), NLL's log/probability modes, and the errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.errors import DianneError
from engine.losses import CRITERIA, criterion_name, make_criterion


def _inputs(name: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Outputs inside each criterion's domain (probabilities for BCE, etc.), float64."""
    n, d = 3, 4
    if name == "BCE":
        y = rng.uniform(0.05, 0.95, size=(n, d))
        t = rng.uniform(0.0, 1.0, size=(n, d))
    elif name == "NLL":
        logits = rng.normal(size=(n, d))
        y = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))  # log-probabilities
        t = np.eye(d)[rng.integers(0, d, size=n)]
    elif name == "CE":
        y = rng.normal(size=(n, d))
        t = rng.dirichlet(np.ones(d), size=n)  # soft targets exercise the sum(t) term
    else:
        y = rng.normal(size=(n, d))
        t = rng.normal(size=(n, d))
        if name == "ABS":  # keep away from the kink at y == t
            t = y + np.where(rng.random((n, d)) < 0.5, -1, 1) * rng.uniform(0.1, 1.0, (n, d))
    return y, t


@pytest.mark.parametrize("batch_average", [True, False])
@pytest.mark.parametrize("name", sorted(CRITERIA))
def test_gradient_matches_finite_differences(name, batch_average):
    rng = np.random.default_rng(7)
    y, t = _inputs(name, rng)
    crit = make_criterion(name, batch_average)
    total = (lambda v: crit.losses(v, t).mean()) if batch_average else (
        lambda v: crit.losses(v, t).sum())
    grad = crit.grad(y, t)
    assert grad.shape == y.shape
    h = 1e-6
    numeric = np.zeros_like(y)
    for idx in np.ndindex(y.shape):
        up, down = y.copy(), y.copy()
        up[idx] += h
        down[idx] -= h
        numeric[idx] = (total(up) - total(down)) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)


def test_nll_probability_mode_gradient():
    """NLL on Softmax outputs (first value > 0): log applied first; gradient -t/p."""
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(5), size=2)
    t = np.eye(5)[[1, 4]]
    crit = make_criterion("NLL")
    assert crit.loss(p, t) == pytest.approx(-(np.log(p[0, 1]) + np.log(p[1, 4])) / 2, rel=1e-12)
    np.testing.assert_allclose(crit.grad(p, t), -t / p / 2, rtol=1e-12)


def test_hand_computed_values():
    y = np.array([[0.5, -1.0], [2.0, 0.0]])
    t = np.array([[1.0, 0.0], [0.0, 1.0]])
    # MSE: per sample mean((y-t)^2): [(0.25 + 1)/2, (4 + 1)/2] = [0.625, 2.5] -> mean 1.5625
    assert make_criterion("MSE").loss(y, t) == pytest.approx(1.5625, abs=1e-12)
    # ABS: [(0.5 + 1)/2, (2 + 1)/2] = [0.75, 1.5] -> mean 1.125
    assert make_criterion("ABS").loss(y, t) == pytest.approx(1.125, abs=1e-12)
    # MSE gradient: 2 (y - t) / D / N
    np.testing.assert_allclose(make_criterion("MSE").grad(y, t), (y - t) / 2, atol=1e-12)
    # NLL on log-probabilities: -log p of the target, averaged
    logp = np.log(np.array([[0.25, 0.75], [0.5, 0.5]]))
    assert make_criterion("NLL").loss(logp, t) == pytest.approx(
        (math.log(4) + math.log(2)) / 2, abs=1e-12)
    # BCE of p = 0.8 against t = 1 and p = 0.3 against t = 0: -(log .8 + log .7) / 2
    assert make_criterion("BCE").loss(np.array([[0.8, 0.3]]), np.array([[1.0, 0.0]])) == (
        pytest.approx(-(math.log(0.8) + math.log(0.7)) / 2, abs=1e-9))
    # CE on logits [0, ln 3] with target class 1: -log(3/4)
    assert make_criterion("CE").loss(np.array([[0.0, math.log(3)]]), np.array([[0.0, 1.0]])) == (
        pytest.approx(-math.log(0.75), abs=1e-12))


def test_single_sample_and_dtype():
    crit = make_criterion("MSE")
    y = np.array([1.0, 2.0], dtype=np.float32)
    g = crit.grad(y, np.array([0.0, 0.0]))
    assert g.shape == (2,) and g.dtype == np.float32
    np.testing.assert_allclose(g, [1.0, 2.0])  # 2 (y - t) / 2, batch of one
    assert crit.loss(y, np.zeros(2)) == pytest.approx(2.5)


def test_names_and_errors():
    assert criterion_name("nll") == "NLL"
    assert criterion_name("CrossEntropy") == "CE"
    assert criterion_name("auto") == "AUTO"
    with pytest.raises(DianneError, match="GKL"):
        criterion_name("GKL")
    with pytest.raises(DianneError, match="AUTO"):
        make_criterion("AUTO")
    with pytest.raises(DianneError, match=r"differ in size.*\(2, 3\)"):
        make_criterion("MSE").loss(np.zeros((2, 2)), np.zeros((2, 3)))
