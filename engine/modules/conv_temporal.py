"""The temporal path of Convolution (THNN TemporalConvolution layout, spec §3.3 and §4.1).

Input ``(T, features)`` (time first; ``(T,)`` counts as ``(T, 1)`` when there is one input
plane, as in the original), a batch ``(N, T, features)``; output ``(T', noOutputPlanes)``.
Weight ``[O][kW][I]``: each output frame is one GEMM row over the kW*I values of its window,
time-major, exactly THNN's unfolding, so a whole batch is a single GEMM. ``padX`` pads the time
axis with zeros; note that the original's temporal constructor dropped padding altogether (it
only matters when padX or the legacy ``pad`` is set on a temporal convolution).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.modules.conv_ops import interior, pad_input


class TemporalConvMixin:
    """Mixed into Convolution; uses its ``k``, ``stride``, ``pad``, params and scratch."""

    def _temporal_len(self, shape: tuple[int, ...], what: Any) -> int:
        if len(shape) == 1 and self.n_in == 1:  # the original reshapes (T,) to (T, 1)
            shape = (shape[0], 1)
        if len(shape) != 2 or shape[1] != self.n_in:
            raise self.shape_fail(
                f"temporal input must be (T, {self.n_in}) or a batch (N, T, {self.n_in})", what)
        return shape[0]

    def _forward_temporal(self, x: Any) -> Any:
        xp = self.xp
        if x.ndim == 3:
            self._temporal_len(tuple(x.shape[1:]), tuple(x.shape))
            xb, single = x, False
        else:
            t_len = self._temporal_len(tuple(x.shape), tuple(x.shape))
            xb, single = x.reshape(1, t_len, self.n_in), True
        n, t_len, n_in = xb.shape
        (kw,), (s,), (p,) = self.k, self.stride, self.pad
        t_out = self._out((t_len,), tuple(x.shape))[0]
        dt = np.result_type(xb.dtype, self.dtype)
        src = pad_input(xp, self._scratch, "pad", xb, (0, p, 0))
        st = src.strides
        view = xp.lib.stride_tricks.as_strided(
            src, shape=(n, t_out, kw, n_in), strides=(st[0], st[1] * s, st[1], st[2]))
        cols = self._scratch.get(xp, "cols", (n, t_out, kw, n_in), dt)
        xp.copyto(cols, view)  # THNN unfolding: each output frame sees kW*I values, time-major
        c2 = cols.reshape(n * t_out, kw * n_in)
        y = c2 @ self.params["weight"].reshape(self.n_out, kw * n_in).T
        y += self.params["bias"]
        self._cache = (tuple(x.shape), tuple(src.shape), t_out, c2)
        return y.reshape(t_out, self.n_out) if single else y.reshape(n, t_out, self.n_out)

    def _backward_temporal(self, grad_output: Any) -> Any:
        xp = self.xp
        in_shape, src_shape, t_out, c2 = self._cache
        n, _, n_in = src_shape
        (kw,), (s,), (p,) = self.k, self.stride, self.pad
        g2 = grad_output.reshape(n * t_out, self.n_out)
        self.grads["bias"] += g2.sum(axis=0)
        gw = self.grads["weight"].reshape(self.n_out, kw * n_in)  # a view: += lands in grads
        gw += g2.T @ c2
        gcols = (g2 @ self.params["weight"].reshape(self.n_out, kw * n_in))
        gcols = gcols.reshape(n, t_out, kw, n_in)
        gpad = xp.zeros(src_shape, dtype=gcols.dtype)
        for j in range(kw):
            gpad[:, j: j + s * (t_out - 1) + 1: s] += gcols[:, :, j]
        return gpad[interior((0, p, 0))].reshape(in_shape)
