"""Image resizing preprocessing: Scale and Frame (spec section 4.2).

Both use the original's bilinear resize of the last two dimensions (DIANNE ``scale2d``): corners
aligned, source coordinate ``o * (in - 1) / (out - 1)``, the two neighbours ``floor`` and
``floor + 1`` (clamped). The resize is separable and linear, so the forward interpolates rows
then columns with gathers, and Scale's backward is the exact adjoint ``Ry^T G Rx`` of that map.
A target channel count differing from a one-channel input replicates the channel (a grey image
fed to an RGB network); Frame keeps the first channels when the input has more.

``Scale`` takes target dims ``dim0..`` or factors ``factor0..``, aligned to the trailing
dimensions; leading dimensions (a batch) are kept. ``Frame`` first crops the centre to the
target aspect ratio, then resizes; 3 targets = ``(C,H,W)``, 2 = ``(H,W)`` (a 3-D input then
gives its first channel, as the original does); one extra leading dimension is a batch; it has
no backward.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.modules.base import Module, Prop, register

_CACHE_LIMIT = 16


def _axis_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower/upper source index and upper weight of each output position along one axis."""
    scale = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    src = np.arange(n_out, dtype=np.float64) * scale
    lo = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, src - lo


def _axis_matrix(n_in: int, n_out: int) -> np.ndarray:
    lo, hi, w = _axis_taps(n_in, n_out)
    mat = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    np.add.at(mat, (rows, lo), 1.0 - w)
    np.add.at(mat, (rows, hi), w)
    return mat


class _Bilinear:
    """Cached taps (forward) and matrices (adjoint) for the last two dims, on one backend."""

    def __init__(self, xp: Any) -> None:
        self.xp = xp
        self._taps: dict[tuple, tuple] = {}
        self._mats: dict[tuple, tuple] = {}

    def forward(self, x: Any, out_hw: tuple[int, int]) -> Any:
        xp = self.xp
        (h_in, w_in), (h_out, w_out) = x.shape[-2:], out_hw
        key = (h_in, w_in, h_out, w_out, x.dtype.str)
        taps = self._taps.get(key)
        if taps is None:
            if len(self._taps) > _CACHE_LIMIT:
                self._taps.clear()
            ylo, yhi, wy = _axis_taps(h_in, h_out)
            xlo, xhi, wx = _axis_taps(w_in, w_out)
            taps = tuple(xp.asarray(a) for a in (ylo, yhi, xlo, xhi)) + tuple(
                xp.asarray(a, dtype=x.dtype) for a in (wy[:, None], wx)
            )
            self._taps[key] = taps
        ylo, yhi, xlo, xhi, wy, wx = taps
        if h_in != h_out:
            rows = x[..., ylo, :]
            x = rows + (x[..., yhi, :] - rows) * wy
        if w_in != w_out:
            cols = x[..., xlo]
            x = cols + (x[..., xhi] - cols) * wx
        return x

    def adjoint(self, grad: Any, in_hw: tuple[int, int]) -> Any:
        xp = self.xp
        (h_out, w_out), (h_in, w_in) = grad.shape[-2:], in_hw
        key = (h_in, w_in, h_out, w_out, grad.dtype.str)
        mats = self._mats.get(key)
        if mats is None:
            if len(self._mats) > _CACHE_LIMIT:
                self._mats.clear()
            ry = xp.asarray(_axis_matrix(h_in, h_out).T, dtype=grad.dtype)
            rx = xp.asarray(_axis_matrix(w_in, w_out), dtype=grad.dtype)
            mats = self._mats[key] = (ry, rx)
        ry, rx = mats
        return xp.matmul(xp.matmul(ry, grad), rx)


def _dims(module: Module, prefix: str) -> tuple:
    values = []
    for i in range(3):
        value = module.cfg[f"{prefix}{i}"]
        if value is None:
            break
        values.append(value)
    return tuple(values)


@register
class Scale(Module):
    """Bilinear resize of the last two dims to dim0.. or by factor0.. (trailing-aligned)."""

    type_name = "Scale"
    category = "Preprocessing"
    props = tuple(Prop(f"dim{i}", "int", doc=f"target dimension {i}") for i in range(3)) + tuple(
        Prop(f"factor{i}", "float", doc=f"scale factor {i}") for i in range(3)
    )
    example = {"props": {"dim0": 3, "dim1": 5}, "inputs": [(2, 4, 3)]}

    def setup(self) -> None:
        self.dims = _dims(self, "dim")
        self.factors = _dims(self, "factor")
        if self.dims:
            if len(self.dims) < 2 or any(d <= 0 for d in self.dims):
                raise self.fail("needs positive dim0 and dim1 (and optionally dim2)", self.dims)
        elif len(self.factors) < 2 or any(f <= 0 for f in self.factors):
            raise self.fail("needs dim0, dim1[, dim2] or factor0, factor1[, factor2]", self.factors)
        self._resize = _Bilinear(self.xp)

    def _target(self, in_shape: Any) -> tuple[int, ...]:
        if len(in_shape) < 2:
            raise self.shape_fail("input needs at least 2 dimensions", tuple(in_shape))
        if self.dims:
            return tuple(self.dims)
        k = len(self.factors)
        trailing = (1,) * max(0, k - len(in_shape)) + tuple(in_shape[-k:])
        # float32 arithmetic, as the original's (int)(inputDim * factor)
        return tuple(
            int(np.float32(n) * np.float32(f)) for n, f in zip(trailing, self.factors, strict=True)
        )

    def output_shape(self, in_shape: Any) -> Any:
        target = self._target(in_shape)
        if any(t <= 0 for t in target):
            raise self.shape_fail(f"target size {target} is empty", tuple(in_shape))
        if len(target) == 2:
            return tuple(in_shape[:-2]) + target
        channels = int(in_shape[-3]) if len(in_shape) >= 3 else 1
        if channels not in (1, target[0]):
            raise self.shape_fail(f"cannot map {channels} channels to {target[0]}", tuple(in_shape))
        return tuple(in_shape[:-3]) + target

    def forward(self, x: Any) -> Any:
        shape = self.output_shape(x.shape)
        self._in_shape = x.shape
        y = self._resize.forward(x, shape[-2:])
        self._spread = len(shape) > len(x.shape) or shape[-3:] != y.shape[-3:]
        if self._spread:  # one channel replicated to the target channels
            y = self.xp.broadcast_to(y.reshape(shape[:-3] + (1,) + shape[-2:]), shape).copy()
        return y

    def backward(self, grad_output: Any) -> Any:
        grad = grad_output
        if self._spread:
            grad = grad.sum(axis=-3)
            if len(self._in_shape) >= 3:
                grad = grad.reshape(self._in_shape[:-2] + grad.shape[-2:])
        return self._resize.adjoint(grad, self._in_shape[-2:])


@register
class Frame(Module):
    """Centre-crop to the target aspect ratio, then bilinear resize to (dim0, dim1[, dim2])."""

    type_name = "Frame"
    category = "Preprocessing"
    props = (
        Prop("dim0", "int", required=True, doc="target dimension 0 (C, or H with 2 values)"),
        Prop("dim1", "int", required=True, doc="target dimension 1"),
        Prop("dim2", "int", doc="target dimension 2 (W with 3 values)"),
    )
    example = {"props": {"dim0": 1, "dim1": 3, "dim2": 4}, "inputs": [(1, 5, 8)], "grad": False}

    def setup(self) -> None:
        self.dims = _dims(self, "dim")
        if any(d <= 0 for d in self.dims):
            raise self.fail("target dimensions must be positive", self.dims)
        self._resize = _Bilinear(self.xp)

    def _crop(self, h: int, w: int) -> tuple[slice, slice]:
        th, tw = self.dims[-2:]
        # float32 arithmetic, as the original's; an input smaller than the crop is kept whole
        s = min(np.float32(w) / np.float32(tw), np.float32(h) / np.float32(th))
        ch, cw = min(int(np.float32(th) * s), h), min(int(np.float32(tw) * s), w)
        return slice((h - ch) // 2, (h - ch) // 2 + ch), slice((w - cw) // 2, (w - cw) // 2 + cw)

    def _layout(self, shape: Any) -> tuple[int, bool]:
        """(input channels, 0 for a plain (H,W) image; batched) of an input shape."""
        n = len(shape)
        if n not in (2, 3, 4):
            raise self.shape_fail("input must be (H,W), (C,H,W) or a batch (N,C,H,W)", tuple(shape))
        return (0 if n == 2 else int(shape[-3])), n == 4

    def output_shape(self, in_shape: Any) -> Any:
        channels, batched = self._layout(in_shape)
        head = (int(in_shape[0]),) if batched else ()
        if len(self.dims) == 3 and channels not in (0, 1) and channels < self.dims[0]:
            raise self.shape_fail(
                f"cannot map {channels} channels to {self.dims[0]}", tuple(in_shape)
            )
        return head + tuple(self.dims)

    def forward(self, x: Any) -> Any:
        shape = self.output_shape(x.shape)
        channels, batched = self._layout(x.shape)
        rows, cols = self._crop(int(x.shape[-2]), int(x.shape[-1]))
        if len(self.dims) == 2:
            part = x[..., 0, rows, cols] if channels else x[..., rows, cols]
        elif channels == 0:
            part = x[None, rows, cols]
        else:
            part = x[..., : min(channels, self.dims[0]), rows, cols]
        y = self._resize.forward(part, self.dims[-2:])
        if y.shape != shape:  # one channel replicated to the target channels
            return self.xp.broadcast_to(y, shape).copy()
        if y is part:  # nothing was resized: never hand out a view of the caller's image
            return y.copy()
        return y
