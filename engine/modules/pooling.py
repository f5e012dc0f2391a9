"""MaxPooling and AvgPooling (spec §4.1, §4.2 catalog rows); MaxUnpooling is in unpooling.py.

The kind follows DIANNE's factory: ``depth`` set -> volumetric ``(C, D, H, W)``, else ``height``
set -> spatial ``(C, H, W)``, else temporal ``(T, features)`` pooled over time (THNN Temporal*
layout; the original's temporal AvgPooling forward also pools the time axis). One more leading
axis is a batch. Strides default to the window, padding to 0, floor-mode output sizes, and a
window of -1 spans the whole dimension (global pooling). Windows of up to ``LOOP_MAX`` elements
are reduced with one vectorised ``maximum``/``add`` per kernel offset over strided slices; larger
(global) windows reduce a strided window view in one call.

MaxPooling is a Fork: ``forward`` returns one tensor per successor, the second of two being the
argmax indices. Index convention (what MaxUnpooling consumes): the 0-based flat position of the
maximum within one channel's unpadded plane (``h*W + w``; ``(d*H + h)*W + w`` volumetric; ``t``
temporal), in the input's float dtype -- PyTorch's ``return_indices`` convention (THNN itself
stored 1-based indices). Ties go to the first maximum in window scan order, as in THNN.
AvgPooling does not count padding in the divisor (THNN ``count_include_pad=false``).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from engine.modules.base import Module, Prop, register
from engine.modules.buffers import Slot, tailed
from engine.modules.conv_ops import (
    AXES,
    KINDS,
    Scratch,
    interior,
    offset_slices,
    out_size,
    pad_input,
    prod,
    window_dims,
    window_view,
)

LOOP_MAX = 16  # largest window (in elements) reduced offset by offset

_WINDOW_PROPS = (
    Prop("width", "int", required=True, doc="window on the last dimension (-1: all of it)"),
    Prop("height", "int", doc="window on the 2nd last dimension (set: spatial; -1: all of it)"),
    Prop("depth", "int", doc="window on the 3rd last dimension (set: volumetric; -1: all)"),
    Prop("strideX", "int", doc="stride on the last dimension (default: the window width)"),
    Prop("strideY", "int", doc="stride on the 2nd last dimension (default: the window height)"),
    Prop("strideZ", "int", doc="stride on the 3rd last dimension (default: the window depth)"),
    Prop("padX", "int", 0, doc="padding on the last dimension"),
    Prop("padY", "int", 0, doc="padding on the 2nd last dimension"),
)
POOL_PROPS = (*_WINDOW_PROPS, Prop("padZ", "int", 0, doc="padding on the 3rd last dimension"))


class _Geo:
    """Resolved window geometry for one input size (cached per size by the module)."""

    def __init__(self, size: tuple[int, ...], k: tuple[int, ...], s: tuple[int, ...],
                 p: tuple[int, ...], out: tuple[int, ...]) -> None:
        self.size, self.k, self.s, self.p, self.out = size, k, s, p, out
        self.nd, self.K = len(k), prod(k)
        self.slices = offset_slices(k, s, out)
        self.overlap = any(ss < kk for ss, kk in zip(s, k, strict=True))
        self._tables: dict[Any, Any] = {}

    def flat_index(self, xp: Any, arg: Any) -> Any:
        """Window offset numbers -> flat positions in the unpadded plane (see module docs)."""
        key = ("flat", id(xp))
        if key not in self._tables:
            plane = [prod(self.size[d + 1:]) for d in range(self.nd)]
            starts = [(np.arange(o) * s - p) * ps
                      for o, s, p, ps in zip(self.out, self.s, self.p, plane, strict=True)]
            offs = [np.arange(k) * ps for k, ps in zip(self.k, plane, strict=True)]
            base = functools.reduce(np.add.outer, starts).astype(np.int64)
            off = functools.reduce(np.add.outer, offs).astype(np.int64).ravel()
            self._tables[key] = (xp.asarray(base), xp.asarray(off))
        base, off = self._tables[key]
        return xp.take(off, arg) + base

    def inv_count(self, xp: Any, dtype: Any) -> Any:
        """1 / (number of non-padding elements per window), broadcastable to the output."""
        if not any(self.p):
            return 1.0 / self.K  # floor mode without padding: every window is full
        key = ("inv", id(xp), np.dtype(dtype))
        if key not in self._tables:
            counts = []
            for n, k, s, p, o in zip(self.size, self.k, self.s, self.p, self.out, strict=True):
                start = np.arange(o) * s - p
                counts.append(np.minimum(start + k, n) - np.maximum(start, 0))
            count = functools.reduce(np.multiply.outer, counts)
            self._tables[key] = xp.asarray(1.0 / count, dtype=dtype)
        return self._tables[key]


class PoolBase(Module):
    """Window properties, kind, layout canonicalisation ``(N, C, *S)`` and geometry cache."""

    category = "Layer"
    props = POOL_PROPS

    def setup(self) -> None:
        c = self.cfg
        win = window_dims(c["depth"], c["height"], c["width"])
        names = AXES[3 - len(win):]
        strides = tuple(c["stride" + a] for a in names)
        pads = tuple(c.get("pad" + a) or 0 for a in names)
        if any(k == 0 or k < -1 for k in win):
            raise self.fail("window sizes must be positive, or -1 for a whole dimension", win)
        if any(s is not None and s != -1 and s < 1 for s in strides):
            raise self.fail("strides must be positive", strides)
        if any(p < 0 for p in pads) or any(k > 0 and 2 * p > k
                                           for k, p in zip(win, pads, strict=True)):
            raise self.fail("padding must be between 0 and half the window", pads)
        self.nd, self.win, self.strides, self.pads = len(win), win, strides, pads
        self.kind = KINDS[self.nd - 1]
        self._geos: dict[tuple[int, ...], _Geo] = {}
        self._scratch = Scratch()
        self._state: tuple = ()
        self._slot = Slot()

    def _layout(self) -> str:
        return {1: "(T, features)", 2: "(C, H, W)", 3: "(C, D, H, W)"}[self.nd]

    def _canon(self, a: Any) -> tuple[Any, bool]:
        """``a`` as ``(N, C, *S)`` (temporal: time moved last) and whether it was one sample."""
        if a.ndim == self.nd + 1:
            a, single = a[None], True
        elif a.ndim == self.nd + 2:
            single = False
        else:
            raise self.shape_fail(f"{self.kind} input must be {self._layout()} or a batch of "
                                  "those", tuple(a.shape))
        return (a.transpose(0, 2, 1) if self.nd == 1 else a), single

    def _uncanon(self, a: Any, single: bool) -> Any:
        if self.nd == 1:
            a = a.transpose(0, 2, 1)
        return a[0] if single else a

    def _geometry(self, size: tuple[int, ...], what: Any) -> _Geo:
        geo = self._geos.get(size)
        if geo is not None:
            return geo
        k = tuple(n if kk == -1 else kk for n, kk in zip(size, self.win, strict=True))
        s = tuple(kk if st is None or st == -1 else st
                  for kk, st in zip(k, self.strides, strict=True))
        if any(2 * p > kk for kk, p in zip(k, self.pads, strict=True)):
            raise self.shape_fail(f"padding {self.pads} exceeds half the window {k}", what)
        out = tuple(out_size(n, kk, ss, p)
                    for n, kk, ss, p in zip(size, k, s, self.pads, strict=True))
        if min(out) < 1:
            raise self.shape_fail(f"input is smaller than the window {k}", what)
        if len(self._geos) > 8:  # a few shapes in use at once (e.g. batch and single sample)
            self._geos.clear()
        geo = self._geos[size] = _Geo(size, k, s, self.pads, out)
        return geo

    def _pooled_shape(self, in_shape: Any) -> tuple[int, ...]:
        shape = tuple(in_shape)
        if len(shape) != self.nd + 1:
            raise self.shape_fail(f"{self.kind} input must be {self._layout()}", shape)
        if self.nd == 1:
            return (self._geometry(shape[:1], shape).out[0], shape[1])
        return (shape[0], *self._geometry(shape[1:], shape).out)


def _max_arg(xp: Any, src: Any, geo: _Geo) -> tuple[Any, Any]:
    """Maxima and the window offset number of each (first maximum in scan order wins)."""
    if geo.K <= LOOP_MAX:
        best = src[geo.slices[0]].copy()
        arg = xp.zeros(best.shape, dtype=np.intp)
        for i, sl in enumerate(geo.slices[1:], 1):
            cand = src[sl]
            arg[cand > best] = i
            xp.maximum(best, cand, out=best)
        return best, arg
    win = window_view(xp, src, geo.k, geo.s, geo.out, k_last=True)
    win = win.reshape((*src.shape[:2], *geo.out, geo.K))  # one copy, then a single argmax
    arg = win.argmax(axis=-1)
    return xp.take_along_axis(win, arg[..., None], axis=-1)[..., 0], arg


def _span(src: Any) -> int | None:
    """Elements from the first to the last of ``src`` when they lie in one buffer with unit
    stride along the last axis and positive strides elsewhere, and not many more than ``src``
    holds (a conv output seen through its row pitch); else None."""
    isz = src.itemsize
    if src.shape[-1] > 1 and src.strides[-1] != isz:
        return None
    if any(st <= 0 or st % isz for d, st in zip(src.shape, src.strides, strict=True) if d > 1):
        return None
    span = 1 + sum((d - 1) * (st // isz) for d, st in zip(src.shape, src.strides, strict=True))
    return span if span <= 2 * src.size else None


def _flat_stages(src: Any, span: int, geo: _Geo, out: Any) -> list[tuple[Any, list[Any]]]:
    """Tiled max-pooling of ``src`` in two stages whose first is one-dimensional: the max of
    every ``kw`` consecutive elements of the whole buffer behind ``src`` (contiguous operands,
    numpy's fastest loop; the values between rows and planes are computed and never read), then
    the max over the ``kh`` rows of each window, read through strided views of that result."""
    (kh, kw), isz = geo.k, src.itemsize
    flat = np.lib.stride_tricks.as_strided(src, shape=(span,), strides=(isz,))
    length = span - (kw - 1)
    cols = np.empty(span, dtype=src.dtype)
    stages = []
    if kw > 1:
        stages.append((cols[:length], [flat[j: j + length] for j in range(kw)]))
    else:
        cols = flat
    *lead, row, col = src.strides
    shape = (*src.shape[:2], *geo.out)
    strides = (*lead, row * kh, col * kw)
    parts = [np.lib.stride_tricks.as_strided(cols[i * (row // isz):], shape=shape,
                                             strides=strides) for i in range(kh)]
    stages.append((out, parts))
    return stages


class _MaxPlan:
    """Buffers and views of a MaxPooling for one input array (reused while it comes back).

    Windows that tile the input (stride == window, no padding, 2-D) reduce in two stages over
    strided views: the ``kh`` rows of each window, then the ``kw`` columns of the result, one
    ``maximum`` per extra row or column into preallocated buffers. Other small windows take
    one ``maximum`` per window offset; large (global) windows one reduction of a window view.
    """

    def __init__(self, mod: PoolBase, x: Any) -> None:
        xp = mod.xp
        xb, single = mod._canon(x)
        geo = mod._geometry(tuple(xb.shape[2:]), tuple(x.shape))
        n, c = xb.shape[:2]
        self.xb = xb
        if any(geo.p):
            shape = tuple(d + 2 * p for d, p in zip(xb.shape, (0, 0, *geo.p), strict=True))
            buf = xp.full(shape, -np.inf, dtype=xb.dtype)
            self.x_dst, src = buf[interior((0, 0, *geo.p))], buf
        else:
            self.x_dst, src = None, xb
        self.out = tailed(xp, (n, c, *geo.out), xb.dtype)
        self.stages: list[tuple[Any, list[Any]]] = []
        self.reduce = None
        tiles = geo.nd == 2 and geo.k == geo.s and not any(geo.p) and geo.K > 1
        span = _span(src) if tiles and xp is np else None
        if span is not None:
            self.stages = _flat_stages(src, span, geo, self.out)
        elif tiles:
            (oh, ow), (kh, kw) = geo.out, geo.k
            rows = src[:, :, : oh * kh, : ow * kw].reshape(n, c, oh, kh, ow * kw)
            mid = xp.empty((n, c, oh, ow * kw), dtype=xb.dtype) if kh > 1 else rows[:, :, :, 0]
            if kh > 1:
                self.stages.append((mid, [rows[:, :, :, i] for i in range(kh)]))
            cols = mid.reshape(n, c, oh, ow, kw)
            self.stages.append((self.out, [cols[..., j] for j in range(kw)]))
        elif geo.K <= LOOP_MAX:
            self.stages.append((self.out, [src[sl] for sl in geo.slices]))
        else:
            self.reduce = window_view(xp, src, geo.k, geo.s, geo.out, k_last=True)
            self.axes = tuple(range(-geo.nd, 0))
        self.view = mod._uncanon(self.out, single)
        self.state = (tuple(x.shape), single, src, geo, None)
        self.go = self._bound() if xp is np else (lambda: self.run(xp))

    def _bound(self) -> Any:
        """``run`` with its operands bound: two-stage tiles of 2x2 windows (LeNet, OverFeat)
        are exactly two ``maximum`` calls."""
        st = self.stages
        if (self.x_dst is not None or self.reduce is not None or len(st) != 2
                or any(len(parts) != 2 for _, parts in st)):
            return lambda: self.run(np)
        mx, view = np.maximum, self.view
        (d0, (a0, b0)), (d1, (a1, b1)) = st

        def go() -> Any:
            mx(a0, b0, out=d0)
            mx(a1, b1, out=d1)
            return view

        return go

    def run(self, xp: Any) -> Any:
        if self.x_dst is not None:
            xp.copyto(self.x_dst, self.xb)
        if self.reduce is not None:
            self.reduce.max(axis=self.axes, out=self.out)
            return self.view
        for dst, parts in self.stages:
            if len(parts) == 1:
                xp.copyto(dst, parts[0])
                continue
            xp.maximum(parts[0], parts[1], out=dst)
            for part in parts[2:]:
                xp.maximum(dst, part, out=dst)
        return self.view


@register
class MaxPooling(PoolBase):
    """Max over windows; a Fork whose optional second output is the argmax index tensor."""

    type_name = "MaxPooling"
    fork = True
    owns_output = True  # one successor: its own buffer, which backward never reads
    example = {
        "props": {"width": 3, "height": 2, "strideX": 2, "strideY": 1, "padX": 1},
        "inputs": [(2, 4, 7)],
        "n_next": 2,
        "check_outputs": [0],
    }

    def output_shape(self, in_shape: Any) -> Any:
        return [self._pooled_shape(in_shape)] * max(self.n_next, 1)

    def forward(self, x: Any) -> Any:
        n_out = max(self.n_next, 1)
        s = self._slot
        if n_out == 1 and x is s.x and x.shape == s.shape:
            plan = s.data
        elif n_out == 1:
            plan = s.keep(x, _MaxPlan(self, x))
        else:
            return self._forward_with_indices(x, n_out)
        self._state = plan.state
        return [plan.go()]

    def bind(self, x: Any) -> tuple[Any, Any]:
        """``forward(x)`` of one output for this one array as a zero-argument call (it keeps
        its own buffers), and the array the call's one output is."""
        s = self._slot
        plan = s.data if x is s.x and x.shape == s.shape else s.keep(x, _MaxPlan(self, x))
        go, state = plan.go, plan.state

        def run() -> list[Any]:
            self._state = state
            return [go()]

        return run, plan.view

    def _forward_with_indices(self, x: Any, n_out: int) -> Any:
        xp = self.xp
        xb, single = self._canon(x)
        geo = self._geometry(tuple(xb.shape[2:]), tuple(x.shape))
        src = pad_input(xp, self._scratch, "pad", xb, (0, 0, *geo.p), -np.inf)
        values, arg = _max_arg(xp, src, geo)
        self._state = (tuple(x.shape), single, src, geo, arg)
        out = self._uncanon(values, single)
        outs = [out] * n_out
        outs[1] = self._uncanon(geo.flat_index(xp, arg).astype(values.dtype), single)
        return outs

    def backward(self, grad_output: Any) -> Any:
        xp = self.xp
        if callable(self._state):  # a fused producer computes the state on demand (conv_pool)
            self._state()
        in_shape, single, src, geo, arg = self._state
        grads = list(grad_output) if isinstance(grad_output, list | tuple) else [grad_output]
        total = None
        for i, g in enumerate(grads):
            if g is None or (i == 1 and len(grads) >= 2):  # the index branch carries no gradient
                continue
            total = g if total is None else total + g
        if total is None:
            return xp.zeros(in_shape, dtype=src.dtype)
        if arg is None:
            arg = _max_arg(xp, src, geo)[1]
            self._state = (in_shape, single, src, geo, arg)
        gc, _ = self._canon(total)
        n, c = src.shape[:2]
        plane = prod(geo.size)
        flat = geo.flat_index(xp, arg).reshape(n * c, -1)
        pos = (flat + (xp.arange(n * c) * plane)[:, None]).reshape(-1)
        dt = np.result_type(src.dtype, gc.dtype)
        if geo.overlap:  # an input may win several windows: sum its gradients
            gin = xp.bincount(pos, weights=gc.reshape(-1), minlength=n * c * plane)
            gin = gin.astype(dt, copy=False)
        else:
            gin = xp.zeros(n * c * plane, dtype=dt)
            gin[pos] = gc.reshape(-1)
        return self._uncanon(gin.reshape((n, c, *geo.size)), single).reshape(in_shape)


@register
class AvgPooling(PoolBase):
    """Average over windows; padding is not counted in the divisor."""

    type_name = "AvgPooling"
    props = _WINDOW_PROPS  # the factory reads padX/padY only
    example = {
        "props": {"width": 2, "height": 3, "strideX": 1, "strideY": 2, "padX": 1, "padY": 1},
        "inputs": [(2, 5, 4)],
    }

    def output_shape(self, in_shape: Any) -> Any:
        return self._pooled_shape(in_shape)

    def forward(self, x: Any) -> Any:
        xp = self.xp
        xb, single = self._canon(x)
        geo = self._geometry(tuple(xb.shape[2:]), tuple(x.shape))
        src = pad_input(xp, self._scratch, "pad", xb, (0, 0, *geo.p), 0.0)
        if geo.K <= LOOP_MAX:
            acc = src[geo.slices[0]].copy()
            for sl in geo.slices[1:]:
                xp.add(acc, src[sl], out=acc)
        else:
            view = window_view(xp, src, geo.k, geo.s, geo.out, k_last=True)
            acc = view.sum(axis=tuple(range(-geo.nd, 0)))
        acc *= geo.inv_count(xp, acc.dtype)
        self._state = (tuple(x.shape), single, geo, tuple(src.shape), acc.dtype)
        return self._uncanon(acc, single)

    def backward(self, grad_output: Any) -> Any:
        xp = self.xp
        in_shape, single, geo, src_shape, dt = self._state
        gc, _ = self._canon(grad_output)
        share = gc.astype(np.result_type(gc.dtype, dt), copy=True)
        share *= geo.inv_count(xp, share.dtype)
        gpad = xp.zeros(src_shape, dtype=share.dtype)
        if geo.overlap:
            for sl in geo.slices:
                gpad[sl] += share
        else:  # disjoint windows: one broadcast write through the window view
            view = window_view(xp, gpad, geo.k, geo.s, geo.out, k_last=True)
            view[...] = share[(..., *([None] * geo.nd))]
        gin = gpad[interior((0, 0, *geo.p))]
        return self._uncanon(gin, single).reshape(in_shape)
