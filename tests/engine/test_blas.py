"""engine.blas: the per-product thread governor settles on the faster thread count, re-probes
the other one with back-off, and follows a change; small products never get a governor."""

from __future__ import annotations

import numpy as np
import pytest

from engine import blas


@pytest.fixture
def fake(monkeypatch):
    """A fake clock: each governed call takes ``cost[threads]`` seconds."""
    state = {"now": 0.0, "threads": 1, "cost": {}}
    monkeypatch.setattr(blas, "CPUS", 2)
    monkeypatch.setattr(blas, "use", lambda n: state.__setitem__("threads", n))
    monkeypatch.setattr(blas, "_clock", lambda: state["now"])

    def work():
        state["now"] += state["cost"][state["threads"]]
        used.append(state["threads"])

    used: list[int] = []
    return state, work, used


def test_governor_follows_the_faster_thread_count(fake):
    state, work, used = fake
    gov = blas.Threads()
    state["cost"] = {1: 1.0, 2: 5.0}  # the second core is busy: one thread wins
    for _ in range(200):
        gov.run(work)
    assert gov.choice == 1
    assert used[-100:].count(2) <= 3  # probes of the loser back off
    state["cost"] = {1: 1.0, 2: 0.5}  # the core is free again: the next probe switches
    for _ in range(300):
        gov.run(work)
    assert gov.choice == 2 and used[-100:].count(1) <= 3


def test_only_large_products_are_governed(monkeypatch):
    monkeypatch.setattr(blas, "CPUS", 2)
    assert blas.governor(blas.PARALLEL_MIN_MACS - 1) is None
    assert isinstance(blas.governor(blas.PARALLEL_MIN_MACS), blas.Threads)
    monkeypatch.setattr(blas, "CPUS", 1)
    assert blas.governor(10**12) is None


def test_thread_control_reaches_openblas_when_present():
    info = blas.info()
    a = np.ones((64, 64), np.float32)
    blas.use(1)
    np.testing.assert_allclose(a @ a, 64.0)
    if info["library"] == "OpenBLAS":
        assert blas.info()["threads"] == 1
        blas.use(2)
        assert blas.info()["threads"] == 2
        blas.use(1)


def test_pinned_holds_the_thread_count_against_governors():
    from engine import blas

    if not blas.info()["library"]:
        return  # no OpenBLAS: thread control is a no-op by design (asserted elsewhere)
    with blas.pinned(1):
        blas.use(2)
        assert blas.info()["threads"] == 1
    blas.use(2)
    assert blas.info()["threads"] == 2
    blas.use(1)
