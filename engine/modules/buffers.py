"""Hot-path helpers shared by the modules: one read-only zeros array, and output slots.

numpy's binary ufuncs are 2-3x slower when one operand is a broadcast scalar (a zero stride in
the inner loop) than when both are full arrays, so ``maximum(x, 0)`` is written
``maximum(x, zeros(x.shape))``. The zeros come from one shared, read-only, lazily grown array per
backend and dtype (``calloc``'d: the pages cost no memory until written, and never are).

``Slot`` keeps a module's output buffer together with the input it was made for: while the same
input array comes back (the executor hands every module the same producer buffer on every pass),
everything derived from it -- views, reshapes, scratch -- is reused with one identity check.
``tailed`` buffers carry a 1.0 after their last element, so that a frozen Linear reading one
computes ``[W | b] @ [x; 1]`` in one product (no separate bias add).
A module may also keep there a *runner*: a zero-argument call with every operand bound (itself
and the activation, pooling the executor fused after it); ``bound_or`` makes the fused call
that runs it while the same input array comes back.
``raw`` gives numpy's ``dot`` and ``copyto`` without their ``__array_function__`` dispatch.
"""

from __future__ import annotations

import math
import weakref
from typing import Any

import numpy as np

_ZEROS: dict[tuple[int, Any], Any] = {}
_TAILED: dict[int, Any] = {}  # id -> weak reference of the buffers made by tailed()


def raw(fn: Any) -> Any:
    """numpy's own implementation of an ``__array_function__``-dispatched function (``dot``,
    ``copyto``): the same C call without the dispatch check, which costs ~0.25 us a call here
    (LeNet makes ten such calls in ~30 us). ``fn`` itself where there is none (other
    backends; the hot paths pass only plain ndarrays, for which the dispatch does nothing)."""
    return getattr(fn, "_implementation", fn)


def zeros(xp: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    """A read-only array of zeros of ``shape`` (a view of a shared buffer; never write it)."""
    n = math.prod(shape)
    key = (id(xp), np.dtype(dtype))
    z = _ZEROS.get(key)
    if z is None or z.size < n:
        z = xp.zeros(max(n, 4096), dtype=dtype)
        if isinstance(z, np.ndarray):
            z.flags.writeable = False
        _ZEROS[key] = z
    return z[:n].reshape(shape)


class Slot:
    """What a module derived from its last input: valid while ``x`` is that same array."""

    __slots__ = ("x", "shape", "data")
    generation = 0  # counts keep/clear over all slots: unchanged means every binding is too

    def __init__(self) -> None:
        self.x: Any = None
        self.shape: tuple[int, ...] | None = None
        self.data: Any = None

    def hit(self, x: Any) -> bool:
        """True when ``x`` is the array (same object, same shape) the data was made for."""
        return x is self.x and x.shape == self.shape

    def keep(self, x: Any, data: Any) -> Any:
        self.x, self.shape, self.data = x, x.shape, data
        Slot.generation += 1
        return data

    def clear(self) -> None:
        self.x = self.shape = self.data = None
        Slot.generation += 1


def bound_or(slot: Slot, general: Any) -> Any:
    """A fused call of the executor: the zero-argument runner a module keeps last in
    ``slot.data`` for the slot's input array (None: none), else ``general(x)``."""

    def call(x: Any) -> Any:
        if x is slot.x and x.shape == slot.shape:
            run = slot.data[-1]
            if run is not None:
                return run()
        return general(x)

    call.slot = slot  # type: ignore[attr-defined]  # what engine.plan's hot runners read
    return call


def tailed(xp: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    """An empty array of ``shape`` followed in memory by one element holding 1.0, which no code
    writes: a frozen Linear that reads it folds its bias into the product (``ones_tail``).
    Producers of one-sample outputs (Input, Linear, MaxPooling) allocate their buffers so."""
    n = math.prod(shape)
    base = xp.empty(n + 1, dtype=dtype)
    base[n] = 1
    if isinstance(base, np.ndarray):
        key = id(base)
        _TAILED[key] = weakref.ref(base, lambda _ref: _TAILED.pop(key, None))
    return base[:n].reshape(shape)


def ones_tail(flat: Any) -> Any:
    """``flat`` and the 1.0 after it as one array, when ``flat`` (1-D, contiguous) is all of a
    :func:`tailed` buffer but its last element; else None."""
    base = flat.base if isinstance(flat, np.ndarray) and flat.ndim == 1 else None
    ref = _TAILED.get(id(base)) if base is not None else None
    if (ref is None or ref() is not base or base.size != flat.size + 1
            or not flat.flags.c_contiguous
            or flat.__array_interface__["data"][0] != base.__array_interface__["data"][0]):
        return None
    return base
