"""Backend choice: numpy always works, cupy only when a GPU answers, explicit choices are
honoured or refused clearly, and the choice is logged."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from engine import backends
from engine.backends import get_backend
from engine.errors import BackendError


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch):
    monkeypatch.setattr(backends, "_cache", {})


def test_numpy_is_always_available():
    b = get_backend("numpy")
    assert b.name == "numpy" and b.xp is np
    arr = b.asarray([1, 2, 3])
    assert arr.dtype == np.float32 and b.to_host(arr) is arr


def test_auto_falls_back_to_numpy_with_a_log_line(monkeypatch, caplog):
    monkeypatch.setattr(backends, "_try_cupy", lambda: (None, "cupy is not installed (test)"))
    with caplog.at_level(logging.INFO, logger="engine.backends"):
        b = get_backend("auto")
    assert b.name == "numpy"
    assert any("numpy" in r.message and "not installed" in r.message for r in caplog.records)


def test_explicit_cupy_without_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(backends, "_try_cupy", lambda: (None, "no CUDA GPU answers"))
    with pytest.raises(BackendError, match="cupy.*no CUDA GPU"):
        get_backend("cupy")


def test_environment_variable_is_read(monkeypatch):
    monkeypatch.setenv("DIANNE_BACKEND", "numpy")
    assert get_backend().name == "numpy"
    monkeypatch.setenv("DIANNE_BACKEND", "tpu")
    with pytest.raises(BackendError, match="tpu"):
        get_backend()


def test_available_lists_numpy():
    assert "numpy" in backends.available()


def test_cupy_parity_when_a_gpu_answers():
    """numpy/cupy parity on a small network; only meaningful where a GPU is present."""
    found, reason = backends._try_cupy()
    if found is None:
        pytest.skip(f"no GPU here: {reason}")
    from engine.builder import sequential
    from engine.graph import Network

    desc = sequential("p", [("Linear", {"input": 12, "output": 5}), ("ReLU", {}),
                            ("Linear", {"input": 5, "output": 3}), ("Softmax", {})],
                      input_dims=(1, 3, 4))
    a, b = Network(desc, backend="numpy", seed=1), Network(desc, backend=found, seed=1)
    x = np.random.default_rng(0).random((1, 3, 4), dtype=np.float32)
    np.testing.assert_allclose(found.to_host(b.forward(x)), a.forward(x), rtol=1e-5, atol=1e-6)
