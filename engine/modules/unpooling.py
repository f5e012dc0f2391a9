"""MaxUnpooling (spec §4.2): the inverse of MaxPooling, a Join of (values, indices).

The two predecessors, in ``prev`` order, are MaxPooling's values and its index output (0-based
flat positions within each channel's plane, see ``engine.modules.pooling``). The output size
comes from the properties, as MaxPooling's inverse: ``(in - 1)*stride - 2*pad + window`` per
dimension; every value is written to its index, everything else is zero. Spatial and volumetric
only, as in the original. Backward gathers the gradient at the indices; the index input gets
zeros.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.modules.base import register
from engine.modules.conv_ops import prod
from engine.modules.pooling import PoolBase


def _unpool_example_inputs(rng: np.random.Generator) -> list[np.ndarray]:
    """Values (2, 3, 3) and valid indices: one position inside each 2x2 window of a 6x6 plane."""
    rows = 2 * np.arange(3)[:, None] + rng.integers(0, 2, size=(2, 3, 3))
    cols = 2 * np.arange(3)[None, :] + rng.integers(0, 2, size=(2, 3, 3))
    return [rng.standard_normal((2, 3, 3)), (rows * 6 + cols).astype(np.float64)]


@register
class MaxUnpooling(PoolBase):
    """Inverse of MaxPooling: scatters values to their argmax positions (a Join)."""

    type_name = "MaxUnpooling"
    join = True
    example = {
        "props": {"width": 2, "height": 2},
        "inputs": [(2, 3, 3), (2, 3, 3)],
        "make_inputs": _unpool_example_inputs,
        "check_inputs": [0],
    }

    def _unpooled(self, size: tuple[int, ...], what: Any) -> tuple[int, ...]:
        if self.nd == 1:
            raise self.fail("temporal unpooling is not supported (set height)", self.win)
        if -1 in self.win:
            raise self.fail("a whole-dimension window (-1) cannot be inverted", self.win)
        out = tuple((n - 1) * (kk if st is None or st == -1 else st) - 2 * p + kk
                    for n, kk, st, p in zip(size, self.win, self.strides, self.pads, strict=True))
        if min(out) < 1:
            raise self.shape_fail("output would be empty", what)
        return out

    def output_shape(self, in_shape: Any) -> Any:
        shapes = [tuple(s) for s in in_shape]
        if len(shapes) != 2 or shapes[0] != shapes[1] or len(shapes[0]) != self.nd + 1:
            raise self.shape_fail(f"expects values and indices of one shape {self._layout()}",
                                  shapes)
        return (shapes[0][0], *self._unpooled(shapes[0][1:], shapes))

    def forward(self, x: Any) -> Any:
        xp = self.xp
        if not isinstance(x, list | tuple) or len(x) != 2:
            raise self.fail("expects two inputs in prev order: values, indices",
                            type(x).__name__ if not isinstance(x, list | tuple) else len(x))
        values, indices = x
        if tuple(values.shape) != tuple(indices.shape):
            raise self.shape_fail("values and indices must have the same shape",
                                  (tuple(values.shape), tuple(indices.shape)))
        vb, single = self._canon(values)
        ib, _ = self._canon(indices)
        n, c = vb.shape[:2]
        out = self._unpooled(tuple(vb.shape[2:]), tuple(values.shape))
        plane = prod(out)
        idx = ib.reshape(n * c, -1).astype(np.int64)
        if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= plane):
            raise self.shape_fail(f"indices must lie in [0, {plane}) (the unpooled plane)",
                                  (int(idx.min()), int(idx.max())))
        rows = xp.arange(n * c)[:, None]
        y = xp.zeros((n * c, plane), dtype=vb.dtype)
        y[rows, idx] = vb.reshape(n * c, -1)
        self._state = (tuple(values.shape), indices, rows, idx, plane)
        return self._uncanon(y.reshape((n, c, *out)), single)

    def backward(self, grad_output: Any) -> Any:
        xp = self.xp
        v_shape, indices, rows, idx, plane = self._state
        gc, _ = self._canon(grad_output)
        grad_values = gc.reshape(idx.shape[0], plane)[rows, idx].reshape(v_shape)
        return [grad_values, xp.zeros_like(indices)]
