"""Convolution -> ReLU -> 2x2 MaxPooling of one frozen sample as one GEMM over the pooling phases.

A convolution with few output planes (LeNet's first layer: 6) makes a GEMM with few rows, which
the BLAS kernels (16-row tiles) run at half their speed, and the 2x2 pooling after it reads its
output through strided views (numpy's slow general loop). Both go away when the padded input is
stored *space-to-depth*: ``S[c, q, r, a, b] = padded[c, 2a + q, 2b + r]``. The convolution output
at ``(2a + py, 2b + px)`` -- pooling phase ``(py, px)`` of pooled position ``(a, b)`` -- reads
``S[c, q, r, a + da, b + db]`` for a ``ceil((k + 1) / 2)``-wide neighbourhood, the same for all
four phases. So one GEMM with ``4 * O`` rows (phase-major; weights rearranged once, zeros where a
phase's window does not reach) computes every output, grouped by phase, and the pooling is three
``maximum`` calls over contiguous blocks, the ReLU one more. The columns use the *shifted* layout
of :mod:`engine.modules.conv_plan` over ``S`` (contiguous runs, ``B - PW`` ignored columns per
row). The GEMM does ~1.4x the multiply-adds of the direct one (5x5: 36 taps per phase instead of
25) and is still faster where it pays; :func:`eligible` says where.

Only the forward pass runs this way. Backward (rare in inference) re-runs the direct convolution
on the last input and gives the ReLU and the MaxPooling their usual state first (``materialize``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine import blas
from engine.modules.buffers import raw, zeros

MAX_PLANES = 8  # output planes below the GEMM kernel's row tile: where the rearrangement pays
MAX_WEIGHTS = 8192  # the rearranged (4*O, C*4*DA*DB + 1) matrix is kept while frozen


def eligible(conv: Any, pool: Any, xb: Any, out: tuple[int, ...]) -> bool:
    """Whether frozen ``conv`` on the one sample ``xb`` (batch axis first) with the MaxPooling
    ``pool`` after it runs as phase GEMM: 2-D, stride 1, numpy, few planes, a 2x2 stride-2
    unpadded pooling that sees at least one full window."""
    if not (conv.xp is np and xb.shape[0] == 1 and pool.nd == 2 and min(out) >= 2):
        return False
    geo = pool._geometry(out, (conv.n_out, *out))
    return geo.k == (2, 2) and geo.s == (2, 2) and not any(geo.p) and kept_bytes(conv) > 0


def kept_bytes(conv: Any) -> int:
    """Bytes of the rearranged weights a frozen ``conv`` may keep (0: never a phase GEMM)."""
    if conv.nd != 2 or conv.stride != (1, 1) or conv.n_out > MAX_PLANES:
        return 0
    da, db = (k // 2 + 1 for k in conv.k)
    size = 4 * conv.n_out * (4 * conv.n_in * da * db + 1)
    return size * conv.dtype.itemsize if size <= MAX_WEIGHTS else 0


class PooledConvPlan:
    """Buffers, views and the rearranged weights for one input array (see the module docstring);
    :meth:`bound` is the forward pass, returning the pooled, rectified ``(O, PH, PW)`` output."""

    def __init__(self, conv: Any, relu: Any, pool: Any, xb: Any, out: tuple[int, ...]) -> None:
        self.conv, self.relu, self.pool, self.xb = conv, relu, pool, xb
        c, h, w = xb.shape[1:]
        o, (kh, kw), (ph, pw) = conv.n_out, conv.k, conv.pad
        self.dt = dt = np.result_type(xb.dtype, conv.dtype)
        hp, wp = h + 2 * ph, w + 2 * pw
        a_n, b_n = (hp + 1) // 2, (wp + 1) // 2  # the space-to-depth grid
        self.ph_n, self.pw_n = out[0] // 2, out[1] // 2  # pooled size
        da, db = kh // 2 + 1, kw // 2 + 1
        block = a_n * b_n
        isz = np.dtype(dt).itemsize
        # S as one flat buffer (zeros: the padding), slack for the last runs' overrun
        self.flat = np.zeros(c * 4 * block + da * b_n + db, dtype=dt)
        s6 = self.flat[: c * 4 * block].reshape(c, 2, 2, a_n, b_n)
        # padded[c, y + ph, x + pw] = x[c, y, x] -> S[c, q, r, a, b] with 2a + q = y + ph: one
        # strided copy when every parity class starts on the same S row/column, else four
        if h % 2 == 0 and w % 2 == 0 and ph % 2 == 0 and pw % 2 == 0:
            a0, b0 = ph // 2, pw // 2
            self.copies = [(s6[:, :, :, a0:a0 + h // 2, b0:b0 + w // 2],
                            xb[0].reshape(c, h // 2, 2, w // 2, 2).transpose(0, 2, 4, 1, 3))]
        else:
            self.copies = []
            for q in range(2):
                for r in range(2):
                    y0, x0 = (q - ph) % 2, (r - pw) % 2  # first input row/col of this parity
                    ny, nx = len(range(y0, h, 2)), len(range(x0, w, 2))
                    a0, b0 = (y0 + ph) // 2, (x0 + pw) // 2
                    self.copies.append((s6[:, q, r, a0:a0 + ny, b0:b0 + nx],
                                        xb[0, :, y0::2, x0::2]))
        length = self.ph_n * b_n
        self.window = np.lib.stride_tricks.as_strided(
            self.flat, shape=(c, 2, 2, da, db, length),
            strides=(4 * block * isz, 2 * block * isz, block * isz, b_n * isz, isz, isz))
        ck = c * 4 * da * db
        self.cols = np.empty((ck + 1, length), dtype=dt)
        self.cols[ck] = 1.0
        self.cols_dst = self.cols[:ck].reshape(c, 2, 2, da, db, length)
        self.wb = _phase_weights(conv, da, db, dt)
        conv.lock_params()  # the rearranged weights stay valid while the plan is kept
        self.y = np.empty((4 * o, length), dtype=dt)
        self.t = np.empty((2, o * length), dtype=dt)
        self.out = np.empty((o, self.ph_n, b_n), dtype=dt)
        self.view = self.out[:, :, : self.pw_n]
        self.zero = zeros(np, self.out.shape, dt)
        self.conv_out = out
        self.direct: Any = None  # the ConvPlan that backward re-runs (made on demand)

    def bound(self, x_shape: tuple[int, ...]) -> Any:
        """The forward pass as a zero-argument call with every operand bound."""
        copyto, dot, mx, use = raw(np.copyto), raw(np.dot), np.maximum, blas.use
        copies, cols_dst, window, wb, cols = (self.copies, self.cols_dst, self.window, self.wb,
                                              self.cols)
        y0, y1, y2, y3 = self.y.reshape(4, -1)  # the four phases' blocks
        t0, t1 = self.t
        out, flat_out, zero, view, y = self.out, self.out.reshape(-1), self.zero, self.view, self.y
        conv, relu, pool = self.conv, self.relu, self.pool
        lazy = self.materialize
        cache = (self, x_shape)

        def run() -> list[Any]:
            for dst, src in copies:
                copyto(dst, src)
            copyto(cols_dst, window)
            use(1)
            dot(wb, cols, out=y)
            mx(y0, y1, out=t0)
            mx(y2, y3, out=t1)
            mx(t0, t1, out=flat_out)
            mx(out, zero, out=out)
            conv._cache = cache
            relu._x = pool._state = lazy
            return [view]

        return run

    # ------------------------------------------------------------------ backward
    def materialize(self) -> None:
        """Run the direct convolution on the last input and the usual ReLU/MaxPooling state
        from its output, so that the three modules' backward passes work as unfused."""
        from engine.modules.conv_plan import ConvPlan  # noqa: PLC0415

        conv, xb = self.conv, np.array(self.xb)  # a copy of the last input
        self.direct = ConvPlan(conv, xb, True, self.conv_out)
        y = self.direct.run(conv, xb)
        self.relu.record(y)
        self.pool.forward(y)

    def backward(self, conv: Any, grad_output: Any, in_shape: tuple[int, ...]) -> Any:
        if self.direct is None or callable(self.pool._state):  # not since the last forward
            self.materialize()
        return self.direct.backward(conv, grad_output, in_shape)


def _phase_weights(conv: Any, da: int, db: int, dt: Any) -> Any:
    """The ``(4*O, C*4*DA*DB + 1)`` matrix: row ``(py, px, o)``, column ``(c, q, r, i, j)``
    holds ``w[o, c, 2i + q - py, 2j + r - px]`` (0 outside the kernel); the last column is the
    bias."""
    w, bias = conv.params["weight"], conv.params["bias"]
    o, c, kh, kw = w.shape
    m = np.zeros((2, 2, o, c, 2, 2, da, db), dtype=dt)
    for py in range(2):
        for px in range(2):
            for q in range(2):
                for r in range(2):
                    for i in range(da):
                        for j in range(db):
                            ky, kx = 2 * i + q - py, 2 * j + r - px
                            if 0 <= ky < kh and 0 <= kx < kw:
                                m[py, px, :, :, q, r, i, j] = w[:, :, ky, kx]
    wb = np.empty((4 * o, c * 4 * da * db + 1), dtype=dt)
    wb[:, :-1] = m.reshape(4 * o, -1)
    wb[:, -1] = np.tile(bias, 4)
    return wb
