"""Threads of the BLAS under numpy, chosen deliberately per product (OpenBLAS via ``ctypes``).

Measured on the 2-core machines this engine targets: a second OpenBLAS thread halves a 1024x784
matrix-vector product (35 -> 18 us) and a large convolution GEMM when the other core is free,
but when another process keeps that core busy the caller waits for a worker that cannot run,
and the same product takes milliseconds. DRAM-bound products (a 450 MB weight matrix) gain
nothing from a second thread. So there is no fixed answer: each product large enough to care
(``PARALLEL_MIN_MACS``) gets a :class:`Threads` governor that times its own calls, runs on
whichever of 1 or all threads is faster lately, and re-probes the other choice now and then
with a short burst of calls (backing off while the probes keep losing), robust to the upward
noise of a shared machine. Smaller products always run on one thread.

:func:`use` switches the OpenBLAS thread count (as threadpoolctl does, through the library's
own entry point, and only when it changes). The kernels OpenBLAS picks are left alone: an
``OPENBLAS_CORETYPE`` in the environment is the user's choice (:func:`info` reports it).
Without OpenBLAS (MKL, Apple Accelerate, cupy) thread control is a no-op.
"""

from __future__ import annotations

import ctypes
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

# Products with fewer multiply-accumulates (about 10 us of work) always run on one thread.
PARALLEL_MIN_MACS = 500_000


class _OpenBLAS:
    """The loaded OpenBLAS's C entry points (found lazily), or nothing."""

    def __init__(self) -> None:
        self.lib = None
        self.prefix = ""
        self.threads = 0  # what we last set (0: not known)
        self._looked = False

    def find(self) -> bool:
        if self._looked:
            return self.lib is not None
        self._looked = True
        path = _loaded_openblas()
        if path is None:
            return False
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            return False
        for prefix in ("scipy_openblas", "openblas"):
            for suffix in ("64_", ""):
                name = f"{prefix}_set_num_threads{suffix}"
                if hasattr(lib, name) and hasattr(lib, f"{prefix}_get_num_threads{suffix}"):
                    self.lib, self.prefix = lib, (prefix, suffix)
                    getattr(lib, name).argtypes = [ctypes.c_int]
                    self._set = getattr(lib, name)
                    self._get = getattr(lib, f"{prefix}_get_num_threads{suffix}")
                    corename = getattr(lib, f"{prefix}_get_corename{suffix}", None)
                    if corename is not None:
                        corename.restype = ctypes.c_char_p
                    self._corename = corename
                    self.threads = int(self._get())
                    return True
        return False


def _loaded_openblas() -> str | None:
    """Path of the OpenBLAS shared library numpy loaded (Linux: from /proc/self/maps)."""
    import numpy  # noqa: F401, PLC0415  (make sure it is loaded)

    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            for line in f:
                path = line.rsplit(" ", 1)[-1].strip()
                if "openblas" in path.lower() and ".so" in path:
                    return path
    except OSError:
        pass
    return None


_BLAS = _OpenBLAS()
_clock = time.perf_counter
CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


_pinned: int | None = None  # set by pinned(): governors and use() leave the count alone


def use(n: int) -> None:
    """Run the following BLAS calls on ``n`` threads (a no-op when already so, or no OpenBLAS,
    or inside :func:`pinned`)."""
    if n == _BLAS.threads or _pinned is not None:
        return
    if _BLAS.find():
        _BLAS._set(int(n))
        _BLAS.threads = int(n)


@contextmanager
def pinned(n: int = 1) -> Iterator[None]:
    """Every BLAS call inside runs on ``n`` threads, whatever the governors would choose.

    Training wants this: its forward products are governed but the backward ones are not, and
    a governor that picks 2 threads for a batch's forward leaves the backward products on 2
    threads too; on the 2-core machines measured, the MNIST MLP trainer ran at 36-47k
    samples/s that way against 111-115k pinned to one thread."""
    global _pinned
    previous = _pinned
    _pinned = None
    use(n)
    _pinned = n
    try:
        yield
    finally:
        _pinned = previous


# A matrix-vector product that follows a healthy all-threads product this soon keeps the thread
# count: switching OpenBLAS to one thread and back costs ~2 us (measured: 1.5 + 0.5), more than
# a small product loses on all threads while the other core is known to be free.
STICKY_S = 0.0005
_parallel_ok_at = -1.0  # when a governed product last finished on all threads in its usual time


def _mark_parallel_ok(t: float) -> None:
    global _parallel_ok_at
    _parallel_ok_at = t


def use_for_vector() -> None:
    """Threads for a small one-sample matrix-vector product: one, unless a governed product
    just ran well on all threads (see ``STICKY_S``)."""
    if _BLAS.threads == 1 or _pinned is not None or _clock() - _parallel_ok_at > STICKY_S:
        use(1)


def governed(macs: int) -> bool:
    """Whether a product of ``macs`` multiply-accumulates gets a thread governor."""
    return macs >= PARALLEL_MIN_MACS and CPUS >= 2


def governor(macs: int) -> Threads | None:
    """A :class:`Threads` for a product of ``macs`` multiply-accumulates, or None (one thread)."""
    return Threads() if governed(macs) else None


class Threads:
    """Runs one product on 1 or ``CPUS`` threads, whichever its own recent calls say is faster.

    Timings on a shared machine are noisy upwards only (a preempted call is slow, never fast),
    so decisions use low values: the chosen count's estimate ``cur`` is a moving average whose
    single-call steps are clamped at twice the estimate (one preempted call cannot flip the
    choice, a lasting slowdown still lifts it within a few calls), and the other count is
    probed by a *burst* of ``BURST`` calls whose minimum is its time (the first call of a
    burst may find the other threads asleep). A burst stops early when a call after its first
    takes more than four times ``cur`` (the other core is busy: no need to go on). A winning
    burst switches; a losing one doubles the calls until the next (16 up to ``MAX_INTERVAL``).
    When ``cur`` drifts to twice the other count's last burst, a burst starts at once."""

    __slots__ = ("choice", "cur", "other", "countdown", "interval", "burst", "burst_min")

    BURST = 3
    MAX_INTERVAL = 256

    def __init__(self) -> None:
        self.choice = CPUS
        self.cur = 0.0  # 0: not measured yet (the first call only warms up)
        self.other = 0.0  # the other count's last burst minimum (0: never probed)
        self.countdown = 2
        self.interval = 16
        self.burst = 0  # calls left in the running burst (0: none running)
        self.burst_min = 0.0

    def run(self, fn: Callable[..., object], *args: object, **kwargs: object) -> None:
        """``fn(*args, **kwargs)`` on the chosen thread count (the other one during a burst),
        timed. Pass the operands positionally where ``fn`` takes them so (``out`` included):
        a keyword costs ~0.4 us here, as much as the rest of the bookkeeping."""
        if self.burst:
            self._probe_call(fn, args, kwargs)
            return
        n = self.choice
        use(n)
        t0 = _clock()
        if kwargs:
            fn(*args, **kwargs)
        else:
            fn(*args)
        dt = _clock() - t0
        cur = self.cur
        if cur:
            if n != 1 and dt <= 1.5 * cur:
                _mark_parallel_ok(t0 + dt)
            cur += 0.25 * ((dt if dt < 2.0 * cur else 2.0 * cur) - cur)
            self.cur = cur
        elif self.countdown <= 1:
            self.cur = cur = dt  # the second call: the first one warmed the threads up
        self.countdown -= 1
        if self.countdown <= 0 or (self.other and cur > 2.0 * self.other):
            self.burst, self.burst_min = self.BURST, float("inf")

    def _probe_call(self, fn: Callable[..., object], args: tuple, kwargs: dict) -> None:
        n = 1 if self.choice != 1 else CPUS
        use(n)
        t0 = _clock()
        fn(*args, **kwargs)
        dt = _clock() - t0
        if n != 1 and dt <= 1.5 * self.cur:
            _mark_parallel_ok(t0 + dt)
        self._probed(dt)

    def _probed(self, dt: float) -> None:
        self.burst -= 1
        self.burst_min = min(self.burst_min, dt)
        if self.burst and (self.burst == self.BURST - 1 or dt <= 4.0 * self.cur):
            return  # the first call may be cold: never stop after it
        self.burst = 0
        best = self.burst_min
        if best < 0.9 * self.cur:  # the other count wins: switch
            self.choice = 1 if self.choice != 1 else CPUS
            self.other, self.cur = self.cur, best
            self.interval = 16
        else:
            self.other = best
            self.interval = min(self.interval * 2, self.MAX_INTERVAL)
        self.countdown = self.interval


def info() -> dict[str, object]:
    """What the bench reports: library, kernels, threads, and whether we chose the kernels."""
    if not _BLAS.find():
        return {"library": None, "corename": None, "threads": None}
    core = _BLAS._corename().decode() if _BLAS._corename is not None else None
    return {"library": "OpenBLAS", "corename": core, "threads": int(_BLAS._get()),
            "coretype_env": os.environ.get("OPENBLAS_CORETYPE")}
