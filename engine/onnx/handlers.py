"""ONNX op -> DIANNE module: one handler per op type, ``handler(importer, node)``.

A handler reads the node's attributes and constant inputs, checks that the DIANNE module can
express it exactly (else a :class:`FormatError` naming the node), and calls ``imp.add``. Some
handlers absorb the node that follows (``imp.sole_consumer``): a Conv/Gemm/MatMul's bias
``Add``; ``Sub``+``Div`` (Normalization) and ``Mul``+``Add`` (Denormalization) by scalars;
``Mul``+``Softplus``+``Div`` (SoftPlus with beta); ``Greater``+``Where`` (Threshold); and
``Transpose``+1-D Conv/pool+``Transpose`` (DIANNE's temporal layers on ``(T, features)``).
Shapes below are one sample's (no batch axis); ONNX axes count the batch axis as 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

HANDLERS: dict[str, Callable[[Any, Any], None]] = {}
_AXES = ("Z", "Y", "X")
_KERNEL = ("kernelDepth", "kernelHeight", "kernelWidth")
_WINDOW = ("depth", "height", "width")


def handles(*ops: str) -> Callable:
    def deco(fn: Callable) -> Callable:
        for op in ops:
            HANDLERS[op] = fn
        return fn
    return deco


def _flat(*arrays: Any) -> np.ndarray:
    return np.concatenate([np.asarray(a, dtype=np.float32).ravel() for a in arrays])


def _scalar(imp: Any, name: str) -> float | None:
    c = imp.const(name)
    return float(c.ravel()[0]) if c is not None and c.size == 1 else None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


# --------------------------------------------------------------------------- activations
_SIMPLE = {"Relu": "ReLU", "Sigmoid": "Sigmoid", "Tanh": "Tanh", "Softplus": "SoftPlus"}


@handles(*_SIMPLE)
def _simple(imp: Any, node: Any) -> None:
    imp.add(node, _SIMPLE[node.op_type], {}, [imp.arg(node, 0)], [node.output[0]])


@handles("LeakyRelu")
def _leaky(imp: Any, node: Any) -> None:
    imp.add(node, "LeakyReLU", {"leakyness": imp.attr(node, "alpha", 0.01)},
            [imp.arg(node, 0)], [node.output[0]])


@handles("Elu")
def _elu(imp: Any, node: Any) -> None:
    imp.add(node, "ELU", {"alpha": imp.attr(node, "alpha", 1.0)}, [imp.arg(node, 0)],
            [node.output[0]])


@handles("Selu")
def _selu(imp: Any, node: Any) -> None:
    from engine.modules.activations import SELU_ALPHA, SELU_LAMBDA
    alpha, gamma = imp.attr(node, "alpha", SELU_ALPHA), imp.attr(node, "gamma", SELU_LAMBDA)
    if abs(alpha - SELU_ALPHA) > 1e-5 or abs(gamma - SELU_LAMBDA) > 1e-5:
        raise imp.fail(node, f"DIANNE's SELU has fixed alpha/gamma. Received: {alpha}, {gamma}")
    imp.add(node, "SELU", {}, [imp.arg(node, 0)], [node.output[0]])


@handles("PRelu")
def _prelu(imp: Any, node: Any) -> None:
    slope = imp.const(node.input[1])
    if slope is None or not np.all(slope == slope.ravel()[0]):
        raise imp.fail(node, "DIANNE's PReLU has one slope shared by all channels")
    imp.add(node, "PReLU", {}, [imp.arg(node, 0)], [node.output[0]],
            weights=slope.ravel()[:1])


@handles("Softmax", "LogSoftmax")
def _softmax(imp: Any, node: Any) -> None:
    x = imp.arg(node, 0)
    rank = len(imp.sample(x))
    default = -1 if imp.opset >= 13 else 1
    axis = imp.attr(node, "axis", default) % (rank + 1)
    want = (0 if rank in (1, 3) else 1) + 1
    # Before opset 13 the op flattened everything from `axis` on: the same only for the last.
    if axis != want or (imp.opset < 13 and axis != rank):
        raise imp.fail(node, f"DIANNE's {node.op_type} on a {rank}-D sample works on axis "
                             f"{want} (batch axis 0). Received: axis {axis}, opset {imp.opset}")
    imp.add(node, node.op_type, {}, [x], [node.output[0]])


@handles("Dropout")
def _dropout(imp: Any, node: Any) -> None:
    ratio = imp.attr(node, "ratio", None)
    if ratio is None:
        ratio = _scalar(imp, node.input[1]) if len(node.input) > 1 and node.input[1] else 0.5
    imp.add(node, "Dropout", {"rate": ratio}, [imp.arg(node, 0)], [node.output[0]])


@handles("Identity")
def _identity(imp: Any, node: Any) -> None:
    imp.alias(node.output[0], imp.arg(node, 0))


@handles("Cast")
def _cast(imp: Any, node: Any) -> None:
    if imp.attr(node, "to") != 1:  # FLOAT
        raise imp.fail(node, "DIANNE tensors are float; only a cast to float is accepted")
    imp.alias(node.output[0], imp.arg(node, 0))


# --------------------------------------------------------------------------- bias folding
def _channel_vector(node: Any, b: np.ndarray, n: int, rank: int) -> np.ndarray | None:
    """``b`` as a per-channel (axis 1) vector of length n for an Add on a rank-``rank`` tensor,
    or None when it is not one (legacy ``broadcast``/``axis`` attributes included)."""
    attrs = {a.name: a for a in node.attribute}
    if "broadcast" in attrs:
        axis = attrs["axis"].i if "axis" in attrs else rank - b.ndim
        if axis != 1 or b.ndim == 0 or any(d != 1 for d in b.shape[1:]):
            return None
        size = b.shape[0]
    else:
        if b.ndim > rank:
            return None
        full = (1,) * (rank - b.ndim) + b.shape
        if any(d != 1 for i, d in enumerate(full) if i != 1):
            return None
        size = full[1] if rank > 1 else 1
    if size not in (1, n):
        return None
    return np.broadcast_to(b.ravel().astype(np.float32), (n,)).copy()


def _fold_bias(imp: Any, out: str, n: int, rank: int) -> tuple[np.ndarray, str]:
    """The bias of a following ``Add`` (absorbed), else zeros; and the final output name."""
    nxt = imp.sole_consumer(out)
    if nxt is not None and nxt[1].op_type == "Add":
        i, add = nxt
        other = add.input[1] if add.input[0] == out else add.input[0]
        b = imp.const(other)
        vec = _channel_vector(add, b, n, rank) if b is not None else None
        if vec is not None:
            imp.done.add(i)
            return vec, add.output[0]
    return np.zeros(n, np.float32), out


# --------------------------------------------------------------------------- layers
@handles("Gemm")
def _gemm(imp: Any, node: Any) -> None:
    x = imp.arg(node, 0)
    b = imp.const(node.input[1])
    if b is None or imp.attr(node, "transA", 0) or len(imp.sample(x)) != 1:
        raise imp.fail(node, "only x @ W (+ c) with a constant W and 1-D samples maps to Linear")
    w = (b if imp.attr(node, "transB", 0) else b.T) * imp.attr(node, "alpha", 1.0)
    n_out, n_in = w.shape
    out = node.output[0]
    c = imp.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if c is not None:
        if c.size not in (1, n_out):
            raise imp.fail(node, f"bias C must have 1 or {n_out} values. Received: {c.shape}")
        bias = np.broadcast_to(c.ravel(), (n_out,)) * imp.attr(node, "beta", 1.0)
    else:
        bias, out = _fold_bias(imp, out, n_out, 2)
    imp.add(node, "Linear", {"input": n_in, "output": n_out}, [x], [out], _flat(w, bias))


@handles("MatMul")
def _matmul(imp: Any, node: Any) -> None:
    x, w = imp.arg(node, 0), imp.const(node.input[1])
    if w is None or w.ndim != 2 or len(imp.sample(x)) != 1:
        raise imp.fail(node, "only x @ W with a constant 2-D W and 1-D samples maps to Linear")
    bias, out = _fold_bias(imp, node.output[0], w.shape[1], 2)
    imp.add(node, "Linear", {"input": w.shape[0], "output": w.shape[1]}, [x], [out],
            _flat(w.T, bias))


def _pads(imp: Any, node: Any, sizes: tuple[int, ...], k: list[int], s: list[int]) -> list[int]:
    """Symmetric per-axis padding (DIANNE pads both sides alike)."""
    nd = len(k)
    auto = _text(imp.attr(node, "auto_pad", "NOTSET"))
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        total = [max((-(-n // ss) - 1) * ss + kk - n, 0) for n, kk, ss in zip(sizes, k, s,
                                                                             strict=True)]
        pads = [t // 2 for t in total] + [t - t // 2 for t in total]
    elif auto == "VALID":
        pads = [0] * (2 * nd)
    else:
        pads = list(imp.attr(node, "pads", [0] * (2 * nd)))
        if len(pads) == nd:  # early ONNX wrote one value per axis
            pads = pads * 2
    if len(pads) != 2 * nd or pads[:nd] != pads[nd:] or min(pads) < 0:
        raise imp.fail(node, f"DIANNE pads both sides of an axis alike. Received: pads {pads}")
    return pads[:nd]


def _geometry(imp: Any, node: Any, sizes: tuple[int, ...], k: list[int], names: tuple,
              default_stride: bool = True) -> dict[str, Any]:
    nd = len(k)
    if any(d != 1 for d in imp.attr(node, "dilations", [1] * nd)):
        raise imp.fail(node, "dilated windows have no DIANNE form")
    s = list(imp.attr(node, "strides", [1] * nd))
    p = _pads(imp, node, sizes, k, s)
    if imp.attr(node, "ceil_mode", 0):
        floor = [(n + 2 * pp - kk) // ss + 1 for n, kk, ss, pp in zip(sizes, k, s, p,
                                                                      strict=True)]
        ceil = [-(-(n + 2 * pp - kk) // ss) + 1 for n, kk, ss, pp in zip(sizes, k, s, p,
                                                                         strict=True)]
        if floor != ceil:
            raise imp.fail(node, "ceil_mode output sizes differ from DIANNE's floor mode")
    axes = _AXES[3 - nd:]
    props: dict[str, Any] = dict(zip(names[3 - nd:], k, strict=True))
    props.update({f"stride{a}": v for a, v in zip(axes, s, strict=True)})
    props.update({f"pad{a}": v for a, v in zip(axes, p, strict=True) if v})
    return props


def _conv_like(imp: Any, node: Any, x: str, sizes: tuple[int, ...], transposed: bool
               ) -> tuple[dict[str, Any], np.ndarray, np.ndarray, str]:
    w = imp.const(node.input[1]) if len(node.input) > 1 else None
    if w is None:
        raise imp.fail(node, "the weights must be a constant")
    if imp.attr(node, "group", 1) != 1:
        raise imp.fail(node, f"grouped convolution has no DIANNE form. Received: group "
                             f"{imp.attr(node, 'group')}")
    k = list(imp.attr(node, "kernel_shape", w.shape[2:]))
    props = _geometry(imp, node, sizes, k, _KERNEL)
    n_in, n_out = (w.shape[0], w.shape[1]) if transposed else (w.shape[1], w.shape[0])
    props.update(noInputPlanes=n_in, noOutputPlanes=n_out)
    if len(node.input) > 2 and node.input[2]:
        bias, out = imp.const(node.input[2]), node.output[0]
        if bias is None:
            raise imp.fail(node, "the bias must be a constant")
    else:
        bias, out = _fold_bias(imp, node.output[0], n_out, len(k) + 2)
    return props, w, bias, out


def _spatial_input(imp: Any, node: Any, what: str) -> tuple[str, tuple[int, ...]]:
    """The node's input and its one-sample shape, which must be (C, H, W) or (C, D, H, W):
    a 1-D ``what`` on (C, T) has no DIANNE form."""
    x = imp.arg(node, 0)
    shape = imp.sample(x)
    if len(shape) not in (3, 4):
        raise imp.fail(node, f"1-D {what} on (C, T) has no DIANNE form (DIANNE's temporal "
                             f"{what} takes (T, features): Transpose around it)")
    return x, shape


@handles("Conv")
def _conv(imp: Any, node: Any) -> None:
    x, shape = _spatial_input(imp, node, "convolution")
    props, w, bias, out = _conv_like(imp, node, x, shape[1:], False)
    imp.add(node, "Convolution", props, [x], [out], _flat(w, bias))


@handles("ConvTranspose")
def _conv_transpose(imp: Any, node: Any) -> None:
    x = imp.arg(node, 0)
    shape = imp.sample(x)
    if any(imp.attr(node, "output_padding", [0])) or imp.attr(node, "output_shape"):
        raise imp.fail(node, "output_padding/output_shape have no DIANNE form")
    if len(shape) not in (3, 4):
        raise imp.fail(node, "only spatial and volumetric transposed convolution map")
    props, w, bias, out = _conv_like(imp, node, x, shape[1:], True)
    imp.add(node, "FullConvolution", props, [x], [out], _flat(w, bias))


def _pool_props(imp: Any, node: Any, sizes: tuple[int, ...]) -> dict[str, Any]:
    k = list(imp.attr(node, "kernel_shape", []))
    if len(k) != len(sizes):
        raise imp.fail(node, f"kernel_shape must have {len(sizes)} values. Received: {k}")
    if node.op_type == "MaxPool":
        if imp.attr(node, "storage_order", 0):
            raise imp.fail(node, "storage_order 1 has no DIANNE form")
        if len(node.output) > 1 and node.output[1] and imp.consumers.get(node.output[1]):
            raise imp.fail(node, "the Indices output (ONNX counts over the whole tensor) is "
                                 "not imported")
    props = _geometry(imp, node, sizes, k, _WINDOW)
    if (node.op_type == "AveragePool" and imp.attr(node, "count_include_pad", 0)
            and any(v for key, v in props.items() if key.startswith("pad"))):
        raise imp.fail(node, "DIANNE's AvgPooling does not count padding")
    if node.op_type == "AveragePool" and props.get("padZ"):
        raise imp.fail(node, "DIANNE's AvgPooling has no depth padding")
    return props


@handles("MaxPool", "AveragePool")
def _pool(imp: Any, node: Any) -> None:
    x, shape = _spatial_input(imp, node, "pooling")
    kind = "MaxPooling" if node.op_type == "MaxPool" else "AvgPooling"
    imp.add(node, kind, _pool_props(imp, node, shape[1:]), [x], [node.output[0]])


@handles("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(imp: Any, node: Any) -> None:
    x = imp.arg(node, 0)
    nd = len(imp.sample(x)) - 1
    if nd not in (2, 3):
        raise imp.fail(node, "only spatial and volumetric global pooling map")
    props = {key: -1 for key in _WINDOW[3 - nd:]}
    kind = "MaxPooling" if node.op_type == "GlobalMaxPool" else "AvgPooling"
    imp.add(node, kind, props, [x], [node.output[0]])


@handles("BatchNormalization")
def _batchnorm(imp: Any, node: Any) -> None:
    x = imp.arg(node, 0)
    shape = imp.sample(x)
    params = [imp.const(n) for n in node.input[1:5]]
    if len(params) != 4 or any(p is None for p in params):
        raise imp.fail(node, "scale, B, mean and var must be constants")
    if any(o for o in node.output[1:]) or imp.attr(node, "training_mode", 0):
        raise imp.fail(node, "only inference-mode batch normalisation maps")
    size = params[0].size
    if len(shape) not in (1, 3, 4) or shape[0] != size or (len(shape) == 4 and
                                                           shape[1] == size):
        raise imp.fail(node, f"DIANNE's BatchNormalization needs the {size} channels first "
                             f"in a (C), (C,H,W) or (C,D,H,W) sample. Received: {shape}")
    from engine.modules.regularization import BatchNormalization
    var = params[3] + imp.attr(node, "epsilon", 1e-5) - BatchNormalization.EPS
    if np.any(var <= 0):
        raise imp.fail(node, "variance + epsilon must stay positive at DIANNE's epsilon 1e-5")
    imp.add(node, "BatchNormalization", {"size": size}, [x], [node.output[0]],
            _flat(params[0], params[1], params[2], var))


@handles("LRN")
def _lrn(imp: Any, node: Any) -> None:
    x = imp.arg(node, 0)
    if len(imp.sample(x)) not in (1, 3):
        raise imp.fail(node, "DIANNE's LRN works across the channels of (C) or (C,H,W)")
    imp.add(node, "LRN", {"size": imp.attr(node, "size"), "alpha": imp.attr(node, "alpha", 1e-4),
                          "beta": imp.attr(node, "beta", 0.75),
                          "k": imp.attr(node, "bias", 1.0)}, [x], [node.output[0]])


from engine.onnx import handlers_shape as _shape  # noqa: E402,F401  (registers the rest)
