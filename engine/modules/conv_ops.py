"""Sliding-window helpers shared by the convolution and pooling modules (no module types here).

Tensors are handled in a canonical batch layout ``(N, C, *S)`` with the windowed dimensions last.
``window_view`` is an ``as_strided`` view of every window (im2col without a copy); copying it into
a reusable buffer gives the im2col matrix for one GEMM. ``col2im_add`` is its adjoint: it adds
window-shaped values back into a (padded) image, in one strided add when windows do not overlap,
else one strided add per kernel offset (a handful of vectorised adds, never a Python loop over
output positions). ``Scratch`` keeps buffers that are reused while the input shape stays the same.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

AXES = ("Z", "Y", "X")  # DIANNE naming: X = last dimension, Y = 2nd last, Z = 3rd last
KINDS = ("temporal", "spatial", "volumetric")  # by number of windowed dimensions


def window_dims(depth: int | None, height: int | None, width: int) -> tuple[int, ...]:
    """Kernel/window extent from DIANNE's depth/height/width keys: a depth makes it
    volumetric (height then defaults to 1, as in the factory), a height spatial, else
    temporal."""
    if depth is not None:
        return (depth, 1 if height is None else height, width)
    if height is not None:
        return (height, width)
    return (width,)


def out_size(size: int, k: int, stride: int, pad: int) -> int:
    """THNN floor-mode output length: ``floor((size + 2*pad - k) / stride) + 1``."""
    return (size + 2 * pad - k) // stride + 1


def prod(values: Any) -> int:
    return math.prod(int(v) for v in values)


def window_view(xp: Any, a: Any, k: tuple[int, ...], stride: tuple[int, ...],
                out: tuple[int, ...], k_last: bool = False) -> Any:
    """View of the windows over the last ``len(k)`` axes of ``a``.

    Shape ``(*lead, *k, *out)`` (im2col order: kernel offsets before positions), or
    ``(*lead, *out, *k)`` with ``k_last``. The caller guarantees every window lies inside ``a``.
    """
    nd = len(k)
    lead, lead_st = a.shape[: a.ndim - nd], a.strides[: a.ndim - nd]
    k_st = a.strides[a.ndim - nd:]
    o_st = tuple(st * s for st, s in zip(k_st, stride, strict=True))
    if k_last:
        shape, strides = lead + tuple(out) + tuple(k), lead_st + o_st + k_st
    else:
        shape, strides = lead + tuple(k) + tuple(out), lead_st + k_st + o_st
    return xp.lib.stride_tricks.as_strided(a, shape=shape, strides=strides)


def offset_slices(k: tuple[int, ...], stride: tuple[int, ...], out: tuple[int, ...],
                  lead: int = 2) -> list[tuple[slice, ...]]:
    """For each kernel offset (row-major order), the strided slice of the input it reads."""
    slices = []
    for off in itertools.product(*(range(kk) for kk in k)):
        sl = tuple(slice(o, o + s * (n - 1) + 1, s)
                   for o, s, n in zip(off, stride, out, strict=True))
        slices.append((slice(None),) * lead + sl)
    return slices


def interior(pad: tuple[int, ...]) -> tuple[slice, ...]:
    """Index of the unpadded part of an array padded by ``pad`` on both sides of every axis."""
    return tuple(slice(p, -p) if p else slice(None) for p in pad)


def col2im_add(xp: Any, target: Any, cols: Any, k: tuple[int, ...], stride: tuple[int, ...],
               out: tuple[int, ...]) -> None:
    """Add ``cols`` (shape ``(N, C, *k, *out)``) into the windows of ``target`` (``(N, C, *S)``)."""
    if all(s >= kk for s, kk in zip(stride, k, strict=True)):
        # Windows are disjoint: the strided view never aliases itself, so one add is exact.
        view = window_view(xp, target, k, stride, out)
        view += cols
        return
    nd = len(k)
    for off, sl in zip(itertools.product(*(range(kk) for kk in k)),
                       offset_slices(k, stride, out, target.ndim - nd), strict=True):
        target[sl] += cols[(slice(None),) * (target.ndim - nd) + off]


class Scratch:
    """Named buffers reused across calls; reallocated only when shape, dtype or backend change."""

    def __init__(self) -> None:
        self._bufs: dict[str, Any] = {}

    def get(self, xp: Any, name: str, shape: tuple[int, ...], dtype: Any,
            fill: float | None = None) -> Any:
        buf = self._bufs.get(name)
        if (buf is None or buf.shape != tuple(shape) or buf.dtype != dtype
                or not isinstance(buf, xp.ndarray)):
            buf = xp.empty(shape, dtype=dtype)
            if fill is not None:
                buf.fill(fill)
            self._bufs[name] = buf
        return buf


def pad_input(xp: Any, scratch: Scratch, name: str, a: Any, pad: tuple[int, ...],
              fill: float = 0.0) -> Any:
    """``a`` padded by ``pad`` (one entry per axis) with ``fill``; ``a`` itself without padding.

    The padded buffer is allocated once per shape: its border keeps ``fill``, only the interior
    is overwritten on each call.
    """
    if not any(pad):
        return a
    shape = tuple(n + 2 * p for n, p in zip(a.shape, pad, strict=True))
    buf = scratch.get(xp, name, shape, a.dtype, fill)
    buf[interior(pad)] = a
    return buf
