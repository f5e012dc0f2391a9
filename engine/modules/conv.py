"""Convolution and FullConvolution (spec §3.3 weight layout, §4.1 tensor conventions, §4.2 rows).

The kind follows DIANNE's factory: ``kernelDepth`` set -> volumetric ``(C, D, H, W)``, else
``kernelHeight`` set -> spatial ``(C, H, W)`` (THNN SpatialConvolutionMM), else temporal (THNN
TemporalConvolution: input ``(T, features)``, time first). One more leading axis is a batch.
Weights: Convolution ``[O][I][kH][kW]`` / ``[O][I][kD][kH][kW]`` / temporal ``[O][kW][I]``;
FullConvolution ``[I][O][kH][kW]`` / ``[I][O][kD][kH][kW]`` (PyTorch ConvTranspose order); then
the bias ``[O]``. Zero padding, floor-mode output sizes. Spatial and volumetric forward is im2col
(a strided view copied into a reused buffer) plus one GEMM per sample; backward gets the weight
gradient from the cached columns and the input gradient through col2im. FullConvolution is the
exact adjoint: its forward is Convolution's input-gradient path and vice versa.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.modules import conv_pool, winograd
from engine.modules.base import Module, Prop, register, uniform_fan_in
from engine.modules.buffers import Slot, bound_or
from engine.modules.conv_ops import (
    AXES,
    KINDS,
    Scratch,
    col2im_add,
    interior,
    out_size,
    pad_input,
    prod,
    window_dims,
    window_view,
)
from engine.modules.conv_plan import ConvPlan, folded_bytes
from engine.modules.conv_temporal import TemporalConvMixin
from engine.modules.freezing import Freezable

CONV_PROPS = (
    Prop("noInputPlanes", "int", required=True, doc="input channels (features when temporal)"),
    Prop("noOutputPlanes", "int", required=True, doc="output channels"),
    Prop("kernelWidth", "int", required=True, doc="kernel size on the last dimension"),
    Prop("kernelHeight", "int", doc="kernel size on the 2nd last dimension (set: spatial)"),
    Prop("kernelDepth", "int", doc="kernel size on the 3rd last dimension (set: volumetric)"),
    Prop("strideX", "int", 1, doc="stride on the last dimension"),
    Prop("strideY", "int", 1, doc="stride on the 2nd last dimension"),
    Prop("strideZ", "int", 1, doc="stride on the 3rd last dimension"),
    Prop("padX", "int", doc="zero padding on the last dimension (default 0)"),
    Prop("padY", "int", doc="zero padding on the 2nd last dimension (default 0)"),
    Prop("padZ", "int", doc="zero padding on the 3rd last dimension (default 0)"),
    Prop("pad", "bool", doc="legacy: true pads (k-1)/2 per dimension; explicit pads win"),
)


class _ConvBase(Module):
    """Property parsing, parameters and input-layout checks shared by both convolutions."""

    category = "Layer"
    trainable = True
    props = CONV_PROPS

    def setup(self) -> None:
        c = self.cfg
        self.n_in, self.n_out = c["noInputPlanes"], c["noOutputPlanes"]
        k = window_dims(c["kernelDepth"], c["kernelHeight"], c["kernelWidth"])
        nd = len(k)
        names = AXES[3 - nd:]
        stride = tuple(c["stride" + a] for a in names)
        legacy = bool(c["pad"])
        pad = tuple(c["pad" + a] if c["pad" + a] is not None else ((kk - 1) // 2 if legacy else 0)
                    for a, kk in zip(names, k, strict=True))
        if self.n_in < 1 or self.n_out < 1:
            raise self.fail("noInputPlanes and noOutputPlanes must be positive",
                            (self.n_in, self.n_out))
        if min(k) < 1 or min(stride) < 1 or min(pad) < 0:
            raise self.fail("kernel sizes and strides must be positive, pads non-negative",
                            {"kernel": k, "stride": stride, "pad": pad})
        self.nd, self.k, self.stride, self.pad = nd, k, stride, pad
        self.kind = KINDS[nd - 1]
        self.K = prod(k)
        self.add_param("weight", self.weight_shape())
        self.add_param("bias", (self.n_out,))
        self._scratch = Scratch()
        self._cache: tuple = ()
        self._slot = Slot()
        self._wino: tuple[Any, Any] | None = None
        self._after: tuple[Module, Module] | None = None  # ReLU, MaxPooling fused (fuse_pool)

    def weight_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        # The original's randomize() (shared by FullConvolution, which extends Convolution):
        # every value uniform in +-1/sqrt(noInputPlanes*kW*kH*kD).
        fan_in = self.n_in * self.K
        return {
            "weight": uniform_fan_in(rng, self.weight_shape(), fan_in),
            "bias": uniform_fan_in(rng, (self.n_out,), fan_in),
        }

    def _sample_shape(self, shape: tuple[int, ...], planes: int, what: Any) -> tuple[int, ...]:
        """One sample's (C, *S); a 2-D (H, W) counts as one plane when planes == 1 (original)."""
        if self.nd == 2 and len(shape) == 2 and planes == 1:
            shape = (1, *shape)
        if len(shape) != self.nd + 1:
            raise self.shape_fail(
                f"{self.kind} input must be {self.nd + 1}-D (C, ...) or a {self.nd + 2}-D batch",
                what)
        if shape[0] != planes:
            raise self.shape_fail(f"expects {planes} input planes on the first axis", what)
        return shape

    def _batch(self, x: Any, planes: int) -> tuple[Any, bool]:
        """``x`` as ``(N, C, *S)`` plus whether it was one sample."""
        if x.ndim == self.nd + 2:
            self._sample_shape(tuple(x.shape[1:]), planes, tuple(x.shape))
            return x, False
        sample = self._sample_shape(tuple(x.shape), planes, tuple(x.shape))
        return x.reshape((1, *sample)), True

    def _bias_view(self) -> Any:
        return self.params["bias"].reshape((self.n_out,) + (1,) * self.nd)


@register
class Convolution(Freezable, TemporalConvMixin, _ConvBase):
    """Temporal, spatial or volumetric convolution (cross-correlation, as THNN)."""

    type_name = "Convolution"
    owns_output = True  # forward returns its own buffer, which backward never reads
    example = {
        "props": {"noInputPlanes": 2, "noOutputPlanes": 3, "kernelWidth": 3, "kernelHeight": 2,
                  "strideX": 2, "padX": 1},
        "inputs": [(2, 4, 5)],
    }

    def weight_shape(self) -> tuple[int, ...]:
        if self.nd == 1:
            return (self.n_out, self.k[0], self.n_in)  # THNN TemporalConvolution: [O][kW][I]
        return (self.n_out, self.n_in, *self.k)

    def _out(self, sizes: tuple[int, ...], what: Any) -> tuple[int, ...]:
        out = tuple(out_size(n, kk, s, p)
                    for n, kk, s, p in zip(sizes, self.k, self.stride, self.pad, strict=True))
        if min(out) < 1:
            raise self.shape_fail(
                f"input is smaller than the kernel {self.k} (padding {self.pad})", what)
        return out

    def output_shape(self, in_shape: Any) -> Any:
        shape = tuple(in_shape)
        if self.nd == 1:
            t_len = self._temporal_len(shape, shape)
            return (self._out((t_len,), shape)[0], self.n_out)
        sample = self._sample_shape(shape, self.n_in, shape)
        return (self.n_out, *self._out(sample[1:], shape))

    def macs(self, in_shape: Any) -> int:
        out = self.output_shape(in_shape)
        return prod(out) * self.n_in * self.K

    def forward(self, x: Any) -> Any:
        if self.nd == 1:
            return self._forward_temporal(x)
        s = self._slot
        if x is not s.x or x.shape != s.shape:
            xb, single = self._batch(x, self.n_in)
            out = self._out(tuple(xb.shape[2:]), tuple(x.shape))
            wino = self._frozen and not self.training and winograd.eligible(self, xb, out)
            kind = winograd.WinogradPlan if wino else ConvPlan
            plan = kind(self, xb, single, out)
            go, cache = getattr(plan, "go", plan.run), (plan, x.shape)
            fused = None
            if self._after is not None and getattr(plan, "bound", False):
                relu, pool = self._after
                fused = (conv_pool.PooledConvPlan(self, relu, pool, xb, out).bound(x.shape)
                         if conv_pool.eligible(self, pool, xb, out)
                         else self._fused_runner(xb, cache, go, plan.view))
            s.keep(x, (plan, xb, cache, go, fused))
        _, xb, self._cache, go, _ = s.data
        return go(self, xb)

    def fuse_pool(self, relu: Module, pool: Module, general: Any) -> Any:
        """The executor's Convolution -> ReLU -> MaxPooling (the ReLU applied after the
        pooling; ``general`` is that call from ``engine.plan``) as one callable: a frozen
        single sample runs bound runners of all three per input array. None when the parts
        cannot bind."""
        if self.nd == 1 or not hasattr(pool, "bind") or not hasattr(relu, "bind_apply"):
            return None
        self._after = (relu, pool)
        self._slot.clear()  # rebind: the fused runner is made with the output buffer
        return bound_or(self._slot, general)

    def _fused_runner(self, xb: Any, cache: tuple, go: Any, y: Any) -> Any:
        relu, pool = self._after  # type: ignore[misc]
        pooled, out = pool.bind(y)
        record, apply = relu.record, relu.bind_apply(out)

        def run() -> Any:
            self._cache = cache
            go(self, xb)
            record(y)
            res = pooled()
            apply()
            return res

        return run

    # ------------------------------------------------------------------ frozen weights
    # freeze() (engine.modules.freezing): large 3x3 layers may run as Winograd with transformed
    # weights computed once, small layers keep their bias-folded GEMM matrix (ConvPlan) and,
    # before a 2x2 MaxPooling, the phase-GEMM weights (conv_pool) instead of refilling them.
    def freeze_bytes(self) -> int:
        """Memory :meth:`freeze` may keep (the Winograd weights, or the bias-folded matrix plus
        the phase-GEMM weights of ``conv_pool``; 0 when it would keep none)."""
        return max(winograd.kept_bytes(self), folded_bytes(self) + conv_pool.kept_bytes(self))

    def _drop_kept(self) -> None:
        self._wino = None

    def winograd_weights(self) -> Any:
        """The Winograd-transformed weights of the current (read-only) weight array."""
        w = self.params["weight"]
        if self._wino is None or self._wino[0] is not w:
            self._wino = (w, winograd.transform_weights(w))
            self.lock_params()
        return self._wino[1]

    def output_buffer(self) -> Any:
        """The contiguous buffer behind the last output (may hold ignored columns): what an
        element-wise activation fused by the executor runs over."""
        return self._cache[0].y if self.nd > 1 else None

    def backward(self, grad_output: Any) -> Any:
        if self.nd == 1:
            return self._backward_temporal(grad_output)
        plan, in_shape = self._cache
        return plan.backward(self, grad_output, in_shape)


@register
class FullConvolution(_ConvBase):
    """Transposed ("full") convolution, spatial or volumetric: the adjoint of Convolution."""

    type_name = "FullConvolution"
    example = {
        "props": {"noInputPlanes": 2, "noOutputPlanes": 3, "kernelWidth": 3, "kernelHeight": 2,
                  "strideX": 2, "padX": 1},
        "inputs": [(2, 3, 3)],
    }

    def setup(self) -> None:
        super().setup()
        if self.nd == 1:  # the original factory throws here too
            raise self.fail("temporal full convolution is not supported (set kernelHeight)",
                            self.cfg["kernelWidth"])

    def weight_shape(self) -> tuple[int, ...]:
        return (self.n_in, self.n_out, *self.k)

    def _out(self, sizes: tuple[int, ...], what: Any) -> tuple[int, ...]:
        out = tuple((n - 1) * s - 2 * p + kk
                    for n, kk, s, p in zip(sizes, self.k, self.stride, self.pad, strict=True))
        if min(out) < 1:
            raise self.shape_fail(
                f"output would be empty: (in-1)*stride - 2*pad + k < 1 for kernel {self.k}, "
                f"stride {self.stride}, padding {self.pad}", what)
        return out

    def output_shape(self, in_shape: Any) -> Any:
        shape = tuple(in_shape)
        sample = self._sample_shape(shape, self.n_in, shape)
        return (self.n_out, *self._out(sample[1:], shape))

    def macs(self, in_shape: Any) -> int:
        sample = self._sample_shape(tuple(in_shape), self.n_in, tuple(in_shape))
        return prod(sample) * self.n_out * self.K

    def forward(self, x: Any) -> Any:
        xp = self.xp
        xb, single = self._batch(x, self.n_in)
        n = xb.shape[0]
        sizes = tuple(xb.shape[2:])
        out = self._out(sizes, tuple(x.shape))
        n_pos, ok = prod(sizes), self.n_out * self.K
        w2 = self.params["weight"].reshape(self.n_in, ok)
        x2 = xb.reshape(n, self.n_in, n_pos)
        if n == 1:
            cols = (w2.T @ x2[0]).reshape(1, ok, n_pos)
        else:
            cols = xp.matmul(w2.T, x2)
        padded = tuple(o + 2 * p for o, p in zip(out, self.pad, strict=True))
        ypad = xp.zeros((n, self.n_out, *padded), dtype=cols.dtype)
        col2im_add(xp, ypad, cols.reshape((n, self.n_out, *self.k, *sizes)), self.k,
                   self.stride, sizes)
        y = ypad[interior((0, 0, *self.pad))]
        y += self._bias_view()
        self._cache = (tuple(x.shape), x2, sizes, out)
        return y[0] if single else y

    def backward(self, grad_output: Any) -> Any:
        xp = self.xp
        in_shape, x2, sizes, out = self._cache
        n = x2.shape[0]
        n_pos, ok = prod(sizes), self.n_out * self.K
        g = grad_output.reshape((n, self.n_out, *out))
        self.grads["bias"] += g.sum(axis=(0, *range(2, 2 + self.nd)))
        src = pad_input(xp, self._scratch, "gpad", g, (0, 0, *self.pad))
        dt = np.result_type(g.dtype, self.dtype)
        cols = self._scratch.get(xp, "cols", (n, self.n_out, *self.k, *sizes), dt)
        xp.copyto(cols, window_view(xp, src, self.k, self.stride, sizes))
        cols2 = cols.reshape(n, ok, n_pos)
        w2 = self.params["weight"].reshape(self.n_in, ok)
        gw = self.grads["weight"].reshape(self.n_in, ok)
        if n == 1:
            gw += x2[0] @ cols2[0].T
            gx = w2 @ cols2[0]
        else:
            gw += xp.tensordot(x2, cols2, axes=([0, 2], [0, 2]))
            gx = xp.matmul(w2, cols2)
        return gx.reshape(in_shape)
