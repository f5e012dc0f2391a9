"""Hot-path helpers shared by the modules: one read-only zeros array, and output slots.

numpy's binary ufuncs are 2-3x slower when one operand is a broadcast scalar (a zero stride in
the inner loop) than when both are full arrays, so ``maximum(x, 0)`` is written
``maximum(x, zeros(x.shape))``. The zeros come from one shared, read-only, lazily grown array per
backend and dtype (``calloc``'d: the pages cost no memory until written, and never are).

``Slot`` keeps a module's output buffer together with the input it was made for: while the same
input array comes back (the executor hands every module the same producer buffer on every pass),
everything derived from it -- views, reshapes, scratch -- is reused with one identity check.
A module may also keep there a *runner*: a zero-argument call with every operand bound (itself
and the activation, pooling the executor fused after it); ``bound_or`` makes the fused call
that runs it while the same input array comes back.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

_ZEROS: dict[tuple[int, Any], Any] = {}


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

    def __init__(self) -> None:
        self.x: Any = None
        self.shape: tuple[int, ...] | None = None
        self.data: Any = None

    def hit(self, x: Any) -> bool:
        """True when ``x`` is the array (same object, same shape) the data was made for."""
        return x is self.x and x.shape == self.shape

    def keep(self, x: Any, data: Any) -> Any:
        self.x, self.shape, self.data = x, x.shape, data
        return data

    def clear(self) -> None:
        self.x = self.shape = self.data = None


def bound_or(slot: Slot, general: Any) -> Any:
    """A fused call of the executor: the zero-argument runner a module keeps last in
    ``slot.data`` for the slot's input array (None: none), else ``general(x)``."""

    def call(x: Any) -> Any:
        if x is slot.x and x.shape == slot.shape:
            run = slot.data[-1]
            if run is not None:
                return run()
        return general(x)

    return call
