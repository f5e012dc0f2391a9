"""Winograd F(2x2, 3x3) for large 3x3 stride-1 convolutions of a frozen (inference) network.

Lavin & Gray, *Fast Algorithms for Convolutional Neural Networks* (2016): each 2x2 block of
output comes from a 4x4 tile of input as ``A^T [(G g G^T) * (B^T d B)] A``, so the 9 products
per output of a direct 3x3 convolution become 16 per 4 outputs (2.25x fewer), computed as 16
GEMMs ``U[k] (O x C) @ V[k] (C x tiles)``. The input transform ``B^T d B`` and the output
transform ``A^T m A`` are additions over strided views of reused buffers (no tile copies); the
bias is added once to the one transformed component that reaches every output (k = 5).

``U = G g G^T`` depends on the weights only, so it is computed once and kept while the network
is *frozen* (``Network.eval()``: see ``Convolution.freeze``). Outputs differ from the direct
convolution by a few float32 roundings (the transforms add and subtract input values).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine import blas

# Layers with fewer multiply-accumulates keep the direct (im2col) convolution.
MIN_MACS = 50_000_000

_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])


def eligible(conv: Any, xb: Any, out: tuple[int, ...]) -> bool:
    """Whether ``conv`` on input ``xb`` (batch axis first) runs as Winograd when frozen."""
    return (conv.nd == 2 and conv.k == (3, 3) and conv.stride == (1, 1) and conv.xp is np
            and conv.n_out * conv.n_in * 9 * out[0] * out[1] * xb.shape[0] >= MIN_MACS)


def kept_bytes(conv: Any) -> int:
    """Bytes of transformed weights a frozen ``conv`` would keep (0: never Winograd)."""
    if conv.nd != 2 or conv.k != (3, 3) or conv.stride != (1, 1) or conv.xp is not np:
        return 0
    return 16 * conv.n_out * conv.n_in * conv.dtype.itemsize


def transform_weights(w: Any) -> Any:
    """``(O, C, 3, 3)`` weights -> ``U`` of shape ``(16, O, C)``: ``G g G^T`` per (o, c)."""
    o, c = w.shape[:2]
    kg = np.kron(_G, _G).astype(w.dtype)  # vec(G g G^T) = kron(G, G) vec(g)
    u = np.empty((16, o, c), dtype=w.dtype)
    np.dot(kg, w.reshape(o * c, 9).T, out=u.reshape(16, o * c))
    return u


class WinogradPlan:
    """Buffers and views of one frozen 3x3 Convolution for one input (same role as ConvPlan)."""

    def __init__(self, conv: Any, xb: Any, single: bool, out: tuple[int, ...]) -> None:
        n, c, h, w = xb.shape
        o, (ph, pw), (oh, ow) = conv.n_out, conv.pad, out
        th, tw = (oh + 1) // 2, (ow + 1) // 2
        self.dt = dt = np.result_type(xb.dtype, conv.dtype)
        self.n, self.out, self.single, self.shape_t = n, out, single, (th, tw)
        # zeros around the input: the convolution's padding and the last tiles' overrun
        self.pad = np.zeros((n, c, 2 * th + 2, 2 * tw + 2), dtype=dt)
        self.x_dst = self.pad[:, :, ph:ph + h, pw:pw + w]
        self.rows = [self.pad[:, :, k:k + 2 * th:2, :] for k in range(4)]
        self.r = np.empty((4, n, c, th, 2 * tw + 2), dtype=dt)
        self.cols = [[self.r[i][..., k:k + 2 * tw:2] for k in range(4)] for i in range(4)]
        self.v = np.empty((16, n, c, th * tw), dtype=dt)
        self.v6 = self.v.reshape(4, 4, n, c, th, tw)
        self.m = np.empty((16, n, o, th * tw), dtype=dt)
        self.m6 = self.m.reshape(4, 4, n, o, th, tw)
        self.s = np.empty((2, 4, n, o, th, tw), dtype=dt)
        self.y = np.empty((n, o, 2 * th, 2 * tw), dtype=dt)
        self.quads = [(self.y[:, :, dy::2, 0::2], self.y[:, :, dy::2, 1::2]) for dy in (0, 1)]
        view = self.y[:, :, :oh, :ow]
        self.view = view[0] if single else view
        self.threads = blas.governor(16 * n * o * c * th * tw)

    def run(self, conv: Any, xb: Any) -> Any:
        add, sub = np.add, np.subtract
        np.copyto(self.x_dst, xb)
        r0, r1, r2, r3 = self.rows  # B^T over the rows of every tile...
        r = self.r
        sub(r0, r2, out=r[0])
        add(r1, r2, out=r[1])
        sub(r2, r1, out=r[2])
        sub(r1, r3, out=r[3])
        v6 = self.v6
        for i, (c0, c1, c2, c3) in enumerate(self.cols):  # ...then B over its columns
            sub(c0, c2, out=v6[i, 0])
            add(c1, c2, out=v6[i, 1])
            sub(c2, c1, out=v6[i, 2])
            sub(c1, c3, out=v6[i, 3])
        u = conv.winograd_weights()[:, None]
        if self.threads is None:
            blas.use(1)
            np.matmul(u, self.v, out=self.m)
        else:
            self.threads.run(np.matmul, u, self.v, out=self.m)
        m6, s = self.m6, self.s
        add(m6[1, 1], conv.params["bias"][:, None, None], out=m6[1, 1])
        add(m6[0], m6[1], out=s[0])  # A^T over the rows...
        add(s[0], m6[2], out=s[0])
        sub(m6[1], m6[2], out=s[1])
        sub(s[1], m6[3], out=s[1])
        for dy, (even, odd) in enumerate(self.quads):  # ...then A over the columns
            sd = s[dy]
            add(sd[0], sd[1], out=even)
            add(even, sd[2], out=even)
            sub(sd[1], sd[2], out=odd)
            sub(odd, sd[3], out=odd)
        return self.view

    def backward(self, conv: Any, grad_output: Any, in_shape: tuple[int, ...]) -> Any:
        """Backward through the direct convolution (rarely needed in inference): re-run its
        forward on the same input, then its backward."""
        from engine.modules.conv_plan import ConvPlan  # noqa: PLC0415

        xb = np.array(self.x_dst)  # a copy of the last input
        plan = ConvPlan(conv, xb, self.single, self.out)
        plan.run(conv, xb)
        return plan.backward(conv, grad_output, in_shape)
