"""How a spatial/volumetric Convolution runs for one input array: buffers and views made once.

A :class:`ConvPlan` is built the first time a Convolution sees an input array and reused while
the same array comes back (the executor hands a module the same producer buffer on every pass):
the padded copy of the input, the im2col matrix, the output and every strided view between them
are allocated once, so a forward pass is a few copies and one GEMM with no allocation.

Two layouts of the im2col matrix:

* ``im2col``: ``(C*kh*kw, OH*OW)``, copied from a strided window view of the padded input.
* ``shifted`` (stride 1, small layers): the padded input is kept flat with its row pitch ``Wp``,
  and row ``(c, i, j)`` of the matrix is the contiguous run ``flat[c*Hp*Wp + i*Wp + j:][:OH*Wp]``.
  The copy is then ``C*kh*kw`` contiguous runs instead of ``C*kh*kw*OH`` short rows (what decides
  small layers), at the price of ``Wp - OW`` ignored columns per output row, which the GEMM also
  computes. Its output is a ``(O, OH, Wp)`` buffer seen through an ``(O, OH, OW)`` view.

Small layers also fold the bias into the GEMM (a row of ones under the matrix, the bias as one
more weight column), saving a broadcast add that costs more than the GEMM's extra row. That
``(O, C*K + 1)`` matrix is refilled from the parameters on every call, except while the layer is
frozen (``Network.eval()``): it is filled once and the parameters are read-only until thawed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine import blas
from engine.modules.buffers import raw
from engine.modules.conv_ops import interior, prod, window_view

SHIFTED_MAX_EXTRA_MACS = 2_000_000  # ignored-column work the shifted layout may add
AUG_MAX_WEIGHTS = 8192  # weights copied per call when the bias is folded into the GEMM


def folded_bytes(conv: Any) -> int:
    """Bytes of the bias-folded matrix a frozen spatial/volumetric ``conv`` keeps (0: none)."""
    size = conv.n_out * (conv.n_in * conv.K + 1)
    return size * conv.dtype.itemsize if conv.nd > 1 and size <= AUG_MAX_WEIGHTS else 0


class ConvPlan:
    """Buffers and views for one input shape of one Convolution (see the module docstring)."""

    def __init__(self, conv: Any, xb: Any, single: bool, out: tuple[int, ...]) -> None:
        xp = conv.xp
        n, c = xb.shape[:2]
        sizes = tuple(xb.shape[2:])
        k, stride, pad = conv.k, conv.stride, conv.pad
        self.n, self.out, self.single = n, out, single
        self.dt = dt = np.result_type(xb.dtype, conv.dtype)
        ck, o = c * conv.K, conv.n_out
        padded = tuple(s + 2 * p for s, p in zip(sizes, pad, strict=True))
        extra = o * ck * out[0] * (padded[-1] - out[-1]) * n if conv.nd == 2 else -1
        self.shifted = (conv.nd == 2 and stride == (1, 1) and xp is np
                        and 0 <= extra <= SHIFTED_MAX_EXTRA_MACS)
        self.aug = o * (ck + 1) <= AUG_MAX_WEIGHTS
        rows = ck + (1 if self.aug else 0)
        self.src_shape = (n, c, *padded)
        if self.shifted:
            hp, wp = padded
            self.wp = wp
            length = out[0] * wp
            block = c * hp * wp
            # flat padded input (zeros around, slack at the end for the last rows' overrun)
            self.flat = xp.zeros(n * block + k[1], dtype=dt)
            src = self.flat[: n * block].reshape(self.src_shape)
            self.x_dst = src[interior((0, 0, *pad))]
            isz = self.flat.itemsize
            self.window = xp.lib.stride_tricks.as_strided(
                self.flat, shape=(n, c, k[0], k[1], length),
                strides=(block * isz, hp * wp * isz, wp * isz, isz, isz))
            self.cols = xp.empty((n, rows, length), dtype=dt)
            self.cols_dst = self.cols[:, :ck].reshape(n, c, k[0], k[1], length)
            self.y = xp.empty((n, o, length), dtype=dt)
            view = self.y.reshape(n, o, out[0], wp)[:, :, :, : out[1]]
        else:
            length = prod(out)
            if any(pad) or xb.dtype != dt:
                buf = xp.zeros(self.src_shape, dtype=dt)
                self.x_dst, src = buf[interior((0, 0, *pad))], buf
            else:
                self.x_dst, src = None, xb
            self.window = window_view(xp, src, k, stride, out)
            self.cols = xp.empty((n, rows, length), dtype=dt)
            self.cols_dst = self.cols[:, :ck].reshape((n, c, *k, *out))
            self.y = xp.empty((n, o, length), dtype=dt)
            view = self.y.reshape((n, o, *out))
        self.ck, self.length = ck, length
        # Frozen (numpy: read-only flags): the folded matrix is filled once, not per call.
        self.fixed = self.aug and conv._frozen and xp is np
        if self.aug:
            self.cols[:, ck] = 1.0
            self.wb = xp.empty((o, ck + 1), dtype=dt)
            if self.fixed:
                self._fold(conv)
                conv.lock_params()
        self.view = view[0] if single else view
        self.threads = blas.governor(n * o * ck * length)
        self.bound = self.fixed and n == 1 and self.threads is None
        self.go = self._bound(xb) if self.bound else self.run

    def _bound(self, xb: Any) -> Any:
        """``run`` for one frozen sample with every operand bound: three calls, no lookups."""
        copyto, dot, use = raw(np.copyto), raw(np.dot), blas.use
        x_dst, cols_dst, window = self.x_dst, self.cols_dst, self.window
        wb, cols, y, view = self.wb, self.cols[0], self.y[0], self.view

        def go(conv: Any, xb: Any = xb) -> Any:
            if x_dst is not None:
                copyto(x_dst, xb)
            copyto(cols_dst, window)
            use(1)
            dot(wb, cols, out=y)
            return view

        return go

    def run(self, conv: Any, xb: Any) -> Any:
        """One forward pass of ``xb`` (the array the plan was made for, batch axis first)."""
        xp = conv.xp
        if self.x_dst is not None:
            xp.copyto(self.x_dst, xb)
        xp.copyto(self.cols_dst, self.window)
        if self.aug:
            if not self.fixed:
                self._fold(conv)
            w2 = self.wb
        else:
            w2 = conv.params["weight"].reshape(conv.n_out, self.ck)
        gemm, a, b, y = ((xp.dot, w2, self.cols[0], self.y[0]) if self.n == 1
                         else (xp.matmul, w2, self.cols, self.y))
        if self.threads is None:
            blas.use(1)
            gemm(a, b, out=y)
        else:
            self.threads.run(gemm, a, b, out=y)
        if not self.aug:
            xp.add(self.y, conv.params["bias"][:, None], out=self.y)
        return self.view

    def _fold(self, conv: Any) -> None:
        wb, ck = self.wb, self.ck
        wb[:, :ck] = conv.params["weight"].reshape(conv.n_out, ck)
        wb[:, ck] = conv.params["bias"]

    # ------------------------------------------------------------------ backward
    def backward(self, conv: Any, grad_output: Any, in_shape: tuple[int, ...]) -> Any:
        xp = conv.xp
        n, o, ck = self.n, conv.n_out, self.ck
        g = grad_output.reshape((n, o, *self.out))
        conv.grads["bias"] += g.sum(axis=tuple(i for i in range(g.ndim) if i != 1))
        if self.shifted:  # back into the (O, OH, Wp) layout, zeros in the ignored columns
            gy = xp.zeros((n, o, self.out[0], self.wp), dtype=g.dtype)
            gy[..., : self.out[1]] = g
            g2 = gy.reshape(n, o, self.length)
        else:
            g2 = g.reshape(n, o, self.length)
        cols = self.cols[:, :ck]
        w2 = conv.params["weight"].reshape(o, ck)
        gw = conv.grads["weight"].reshape(o, ck)  # a view: += lands in grads
        gw += xp.tensordot(g2, cols, axes=([0, 2], [0, 2]))
        if not conv.grad_input_needed:
            return None
        gcols = xp.matmul(w2.T, g2)  # (n, ck, length)
        if self.shifted:
            return self._col2im_shifted(xp, conv, gcols, in_shape)
        gpad = xp.zeros(self.src_shape, dtype=gcols.dtype)
        from engine.modules.conv_ops import col2im_add  # noqa: PLC0415

        col2im_add(xp, gpad, gcols.reshape((n, self.src_shape[1], *conv.k, *self.out)), conv.k,
                   conv.stride, self.out)
        return gpad[interior((0, 0, *conv.pad))].reshape(in_shape)

    def _col2im_shifted(self, xp: Any, conv: Any, gcols: Any, in_shape: tuple[int, ...]) -> Any:
        n, c, hp, wp = self.src_shape
        kh, kw = conv.k
        block = c * hp * wp
        gflat = xp.zeros(n * block + kw, dtype=gcols.dtype)
        g5 = gcols.reshape(n, c, kh, kw, self.length)
        isz = gflat.itemsize
        for i in range(kh):
            for j in range(kw):
                off = i * wp + j
                view = xp.lib.stride_tricks.as_strided(
                    gflat[off:], shape=(n, c, self.length),
                    strides=(block * isz, hp * wp * isz, isz))
                view += g5[:, :, i, j]
        gpad = gflat[: n * block].reshape(self.src_shape)
        return gpad[interior((0, 0, *conv.pad))].reshape(in_shape)
