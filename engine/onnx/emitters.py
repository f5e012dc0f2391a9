"""ONNX emitters: one function per DIANNE module type, ``emitter(ctx, inputs) -> output``.

``ctx`` is an :class:`engine.onnx.export.ModuleContext` (module, one-sample input shapes, the
graph builder); ``inputs`` are tensor names (batch axis first). An emitter returns its output
tensor name, or a list (one per successor) for a fork. The axis rules are DIANNE's for one
sample (``Concat``/``Split`` ``dim`` from the last axis, Softmax over channels of a 3-D sample,
temporal layers on ``(T, features)``), shifted by one for the batch axis.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from engine.modules.activations import SELU_ALPHA, SELU_LAMBDA
from engine.modules.conv_ops import prod

EMITTERS: dict[str, Callable[[Any, list[str]], Any]] = {}


def emits(*type_names: str) -> Callable:
    def deco(fn: Callable) -> Callable:
        for t in type_names:
            EMITTERS[t] = fn
        return fn
    return deco


def _param(ctx: Any, name: str) -> np.ndarray:
    p = ctx.module.params[name]
    return np.asarray(p.get() if hasattr(p, "get") else p, dtype=np.float32)


def _to_channels_first(ctx: Any, x: str) -> str:
    """(N, T, F) -> (N, F, T) for temporal layers."""
    return ctx.node("Transpose", [x], perm=[0, 2, 1])


# ----------------------------------------------------------------------------- plain ops
@emits("Output", "Duplicate")
def _alias(ctx: Any, xs: list[str]) -> str:
    return xs[0]


_UNARY = {"ReLU": "Relu", "Sigmoid": "Sigmoid", "Tanh": "Tanh"}


@emits(*_UNARY)
def _unary(ctx: Any, xs: list[str]) -> str:
    return ctx.node(_UNARY[ctx.module.type_name], xs)


@emits("LeakyReLU")
def _leaky(ctx: Any, xs: list[str]) -> str:
    return ctx.node("LeakyRelu", xs, alpha=float(ctx.module.cfg["leakyness"]))


@emits("ELU")
def _elu(ctx: Any, xs: list[str]) -> str:
    return ctx.node("Elu", xs, alpha=float(ctx.module.cfg["alpha"]))


@emits("SELU")
def _selu(ctx: Any, xs: list[str]) -> str:
    return ctx.node("Selu", xs, alpha=SELU_ALPHA, gamma=SELU_LAMBDA)


@emits("PReLU")
def _prelu(ctx: Any, xs: list[str]) -> str:
    return ctx.node("PRelu", [xs[0], ctx.const("slope", _param(ctx, "weight").reshape(1))])


@emits("SoftPlus")
def _softplus(ctx: Any, xs: list[str]) -> str:
    beta = float(ctx.module.cfg["beta"])
    if beta == 1.0:
        return ctx.node("Softplus", xs)
    b = ctx.const("beta", beta)
    return ctx.node("Div", [ctx.node("Softplus", [ctx.node("Mul", [xs[0], b])]), b])


@emits("Softmax", "LogSoftmax")
def _softmax(ctx: Any, xs: list[str]) -> str:
    rank = len(ctx.in_shape)
    if rank > 4:
        raise ctx.fail("Softmax takes at most 4-D input")
    axis = (0 if rank in (1, 3) else 1) + 1
    return ctx.node(ctx.module.type_name, xs, axis=axis)


@emits("Threshold")
def _threshold(ctx: Any, xs: list[str]) -> str:
    cfg = ctx.module.cfg
    keep = ctx.node("Greater", [xs[0], ctx.const("thresh", cfg["thresh"])])
    return ctx.node("Where", [keep, xs[0], ctx.const("val", cfg["val"])])


@emits("Invert")
def _invert(ctx: Any, xs: list[str]) -> str:
    return ctx.node("Sub", [ctx.const("one", 1.0), xs[0]])


@emits("Normalization")
def _normalization(ctx: Any, xs: list[str]) -> str:
    mean, std = _param(ctx, "mean").reshape(()), _param(ctx, "std").reshape(())
    return ctx.node("Div", [ctx.node("Sub", [xs[0], ctx.const("mean", mean)]),
                            ctx.const("std", std)])


@emits("Denormalization")
def _denormalization(ctx: Any, xs: list[str]) -> str:
    mean, std = _param(ctx, "mean").reshape(()), _param(ctx, "std").reshape(())
    return ctx.node("Add", [ctx.node("Mul", [xs[0], ctx.const("std", std)]),
                            ctx.const("mean", mean)])


@emits("Dropout")
def _dropout(ctx: Any, xs: list[str]) -> str:
    # Inference mode: the identity; the ratio travels along so an import gets it back.
    return ctx.node("Dropout", [xs[0], ctx.const("ratio", ctx.module.cfg["rate"])])


# ----------------------------------------------------------------------------- layers
@emits("Linear")
def _linear(ctx: Any, xs: list[str]) -> str:
    x = xs[0] if len(ctx.in_shape) == 1 else ctx.node("Flatten", xs, axis=1)
    w, b = _param(ctx, "weight"), _param(ctx, "bias")
    return ctx.node("Gemm", [x, ctx.const("weight", w), ctx.const("bias", b)], transB=1)


@emits("Convolution")
def _convolution(ctx: Any, xs: list[str]) -> str:
    mod = ctx.module
    w, b = _param(ctx, "weight"), _param(ctx, "bias")
    attrs = {"kernel_shape": list(mod.k), "strides": list(mod.stride),
             "pads": list(mod.pad) * 2}
    if mod.nd == 1:  # THNN temporal: (T, F) samples, weight [O][kW][I]
        x = xs[0]
        if len(ctx.in_shape) == 1:
            x = ctx.node("Unsqueeze", [x, ctx.ints("axes", [2])])
        y = ctx.node("Conv", [_to_channels_first(ctx, x),
                              ctx.const("weight", w.transpose(0, 2, 1)),
                              ctx.const("bias", b)], **attrs)
        return _to_channels_first(ctx, y)
    x = xs[0]
    if len(ctx.in_shape) == mod.nd:  # one plane given without its channel axis
        x = ctx.node("Unsqueeze", [x, ctx.ints("axes", [1])])
    return ctx.node("Conv", [x, ctx.const("weight", w), ctx.const("bias", b)], **attrs)


@emits("FullConvolution")
def _full_convolution(ctx: Any, xs: list[str]) -> str:
    mod = ctx.module
    x = xs[0]
    if len(ctx.in_shape) == mod.nd:
        x = ctx.node("Unsqueeze", [x, ctx.ints("axes", [1])])
    w, b = _param(ctx, "weight"), _param(ctx, "bias")
    return ctx.node("ConvTranspose", [x, ctx.const("weight", w), ctx.const("bias", b)],
                    kernel_shape=list(mod.k), strides=list(mod.stride), pads=list(mod.pad) * 2)


def _pool_geometry(ctx: Any) -> tuple[Any, tuple[int, ...]]:
    mod, shape = ctx.module, ctx.in_shape
    size = shape[:1] if mod.nd == 1 else shape[1:]
    geo = mod._geometry(tuple(size), shape)
    return geo, tuple(size)


def _pool_attrs(geo: Any) -> dict[str, Any]:
    return {"kernel_shape": list(geo.k), "strides": list(geo.s), "pads": list(geo.p) * 2}


@emits("MaxPooling")
def _max_pooling(ctx: Any, xs: list[str]) -> list[str]:
    mod = ctx.module
    geo, size = _pool_geometry(ctx)
    x = _to_channels_first(ctx, xs[0]) if mod.nd == 1 else xs[0]
    n_out = max(mod.n_next, 1)
    if n_out == 1:
        y = ctx.node("MaxPool", [x], **_pool_attrs(geo))
        return [_to_channels_first(ctx, y) if mod.nd == 1 else y]
    y, idx = ctx.node("MaxPool", [x], n_out=2, **_pool_attrs(geo))
    # ONNX indices count over the whole (N, C, *S) tensor; DIANNE's within one plane.
    idx = ctx.node("Mod", [idx, ctx.const("plane", prod(size), np.int64)])
    idx = ctx.node("Cast", [idx], to=1)  # FLOAT, as the module hands indices on
    if mod.nd == 1:
        y, idx = _to_channels_first(ctx, y), _to_channels_first(ctx, idx)
    return [y, idx] + [y] * (n_out - 2)


@emits("AvgPooling")
def _avg_pooling(ctx: Any, xs: list[str]) -> str:
    mod = ctx.module
    geo, _ = _pool_geometry(ctx)
    x = _to_channels_first(ctx, xs[0]) if mod.nd == 1 else xs[0]
    y = ctx.node("AveragePool", [x], count_include_pad=0, **_pool_attrs(geo))
    return _to_channels_first(ctx, y) if mod.nd == 1 else y


@emits("MaxUnpooling")
def _max_unpooling(ctx: Any, xs: list[str]) -> str:
    mod = ctx.module
    values, indices = xs
    channels, size = ctx.in_shape[0], ctx.in_shape[1:]
    k = mod.win
    s = tuple(kk if st is None or st == -1 else st for kk, st in zip(k, mod.strides, strict=True))
    plane = prod(ctx.out_shape[1:])
    # DIANNE's per-plane indices + (n*C + c)*plane = ONNX's whole-tensor indices.
    n = ctx.node("Squeeze", [ctx.node("Shape", [values], start=0, end=1)])
    nc = ctx.node("Mul", [n, ctx.const("channels", channels, np.int64)])
    rows = ctx.node("Range", [ctx.const("zero", 0, np.int64), nc, ctx.const("one", 1, np.int64)])
    rows = ctx.node("Reshape", [rows, ctx.ints("shape", [-1, channels] + [1] * len(size))])
    offsets = ctx.node("Mul", [rows, ctx.const("plane", plane, np.int64)])
    idx = ctx.node("Add", [ctx.node("Cast", [indices], to=7), offsets])  # INT64
    return ctx.node("MaxUnpool", [values, idx], kernel_shape=list(k), strides=list(s),
                    pads=list(mod.pads) * 2)


@emits("BatchNormalization")
def _batch_norm(ctx: Any, xs: list[str]) -> str:
    shape = tuple(ctx.in_shape)
    axis, _ = ctx.module._layout(shape)
    args = [ctx.const(n, _param(ctx, n)) for n in ("weight", "bias", "running_mean",
                                                    "running_var")]
    if axis == 0:  # channels first: (C), (C,H,W), (C,D,H,W) -> (N, C, ...)
        return ctx.node("BatchNormalization", [xs[0], *args], epsilon=ctx.module.EPS)
    # The sample is itself a batch (features on its second axis): fold it into N.
    x = ctx.node("Reshape", [xs[0], ctx.ints("fold", [-1, *shape[1:]])])
    y = ctx.node("BatchNormalization", [x, *args], epsilon=ctx.module.EPS)
    return ctx.node("Reshape", [y, ctx.ints("unfold", [-1, *shape])])


@emits("LRN")
def _lrn(ctx: Any, xs: list[str]) -> str:
    cfg, rank = ctx.module.cfg, len(ctx.in_shape)
    if rank not in (1, 3):
        raise ctx.fail("only (C) and (C,H,W) samples map to ONNX LRN")
    x = xs[0]
    if rank == 1:
        x = ctx.node("Unsqueeze", [x, ctx.ints("axes", [2, 3])])
    y = ctx.node("LRN", [x], size=int(cfg["size"]), alpha=float(cfg["alpha"]),
                 beta=float(cfg["beta"]), bias=float(cfg["k"]))
    return ctx.node("Squeeze", [y, ctx.ints("axes", [2, 3])]) if rank == 1 else y


# ----------------------------------------------------------------------------- shape layers
@emits("Reshape")
def _reshape(ctx: Any, xs: list[str]) -> str:
    return ctx.node("Reshape", [xs[0], ctx.ints("shape", [-1, *ctx.out_shape])])


@emits("Zeropad")
def _zeropad(ctx: Any, xs: list[str]) -> str:
    pads = list(ctx.module.pads)
    lead = [0] * (len(ctx.in_shape) + 1 - len(pads))
    return ctx.node("Pad", [xs[0], ctx.ints("pads", (lead + pads) * 2)])


@emits("Narrow")
def _narrow(ctx: Any, xs: list[str]) -> str:
    window = ctx.module._window(ctx.in_shape)
    axes = [i + 1 for i, sl in enumerate(window) if sl.start is not None]
    starts = [sl.start for sl in window if sl.start is not None]
    ends = [sl.stop for sl in window if sl.start is not None]
    return ctx.node("Slice", [xs[0], ctx.ints("starts", starts), ctx.ints("ends", ends),
                              ctx.ints("axes", axes)])


def _axis_from_end(ctx: Any, rank: int) -> int:
    dim = ctx.module.cfg["dim"]
    if not 0 <= dim < rank:
        raise ctx.fail(f"dim {dim} needs more than {rank} dimensions")
    return rank - dim  # (rank - 1 - dim) in the sample, + 1 for the batch axis


@emits("Split")
def _split(ctx: Any, xs: list[str]) -> list[str]:
    axis = _axis_from_end(ctx, len(ctx.in_shape))
    bounds = ctx.module._bounds(ctx.in_shape[axis - 1])
    sizes = ctx.ints("split", [b - a for a, b in bounds])
    out = ctx.node("Split", [xs[0], sizes], n_out=len(bounds), axis=axis)
    return out if isinstance(out, list) else [out]


@emits("Concat")
def _concat(ctx: Any, xs: list[str]) -> str:
    return ctx.node("Concat", xs, axis=_axis_from_end(ctx, len(ctx.in_shape)))


@emits("Accumulate", "Average")
def _sum(ctx: Any, xs: list[str]) -> str:
    return ctx.node("Sum" if ctx.module.type_name == "Accumulate" else "Mean", xs)


@emits("Multiply")
def _multiply(ctx: Any, xs: list[str]) -> str:
    out = xs[0]
    for x in xs[1:]:
        out = ctx.node("Mul", [out, x])
    return out


# ----------------------------------------------------------------------------- resizing
def _resize_to(ctx: Any, x: str, hw: tuple[int, int]) -> str:
    lead = ctx.node("Shape", [x], end=-2)
    sizes = ctx.node("Concat", [lead, ctx.ints("hw", list(hw))], axis=0)
    return ctx.node("Resize", [x, "", "", sizes], mode="linear",
                    coordinate_transformation_mode="align_corners")


def _spread(ctx: Any, y: str, rank_now: int) -> str:
    """Add/replicate the channel axis so ``y`` matches the module's output shape."""
    out = ctx.out_shape
    if len(out) + 1 > rank_now:
        y = ctx.node("Unsqueeze", [y, ctx.ints("axes", [1])])
    return ctx.node("Expand", [y, ctx.ints("shape", [1, *out])])


@emits("Scale")
def _scale(ctx: Any, xs: list[str]) -> str:
    y = _resize_to(ctx, xs[0], tuple(ctx.out_shape[-2:]))
    if tuple(ctx.out_shape) != tuple(ctx.in_shape[:-2]) + tuple(ctx.out_shape[-2:]):
        y = _spread(ctx, y, len(ctx.in_shape) + 1)
    return y


@emits("Frame")
def _frame(ctx: Any, xs: list[str]) -> str:
    mod, shape = ctx.module, ctx.in_shape
    channels, _ = mod._layout(shape)
    rows, cols = mod._crop(int(shape[-2]), int(shape[-1]))
    rank = len(shape) + 1
    x = ctx.node("Slice", [xs[0], ctx.ints("starts", [rows.start, cols.start]),
                           ctx.ints("ends", [rows.stop, cols.stop]),
                           ctx.ints("axes", [rank - 2, rank - 1])])
    if len(mod.dims) == 2 and channels:
        x = ctx.node("Gather", [x, ctx.const("channel", 0, np.int64)], axis=1)
        rank -= 1
    elif len(mod.dims) == 3 and channels > mod.dims[0]:
        x = ctx.node("Slice", [x, ctx.ints("c0", [0]), ctx.ints("c1", [mod.dims[0]]),
                               ctx.ints("caxis", [1])])
    y = _resize_to(ctx, x, tuple(mod.dims[-2:]))
    if len(mod.dims) == 3 and channels in (0, 1):
        y = _spread(ctx, y, rank)
    return y
