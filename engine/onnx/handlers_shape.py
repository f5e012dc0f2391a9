"""ONNX op -> DIANNE module, continued: shape ops, element-wise arithmetic, and the patterns
that need a look at the following nodes (temporal layers, Threshold, SoftPlus with beta).

Shape ops (Reshape, Flatten, Squeeze, Unsqueeze) become ``Reshape`` when they keep the batch
axis; Pad -> ``Zeropad``, Slice -> ``Narrow``, Concat/Split with the axis counted from the end
as DIANNE does. Arithmetic with a *scalar* constant maps to Normalization ``(x-m)/s`` or
Denormalization ``x*s+m`` (a pair of nodes fuses into one module); between tensors: Add/Sum ->
Accumulate, Mean -> Average, Mul -> Multiply; ``1 - x`` -> Invert.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.onnx.handlers import (
    _KERNEL,
    _WINDOW,
    _flat,
    _fold_bias,
    _geometry,
    _scalar,
    _text,
    handles,
)


# --------------------------------------------------------------------------- shape ops
def _as_reshape(imp: Any, node: Any, x: str, full: tuple[int, ...]) -> None:
    """Reshape to the ONNX output shape ``full`` computed for a batch of one."""
    if not full or full[0] != 1:
        raise imp.fail(node, f"the batch axis must stay first. Received: output shape {full} "
                             f"for a batch of one")
    sample = tuple(int(d) for d in full[1:])
    if sample == imp.sample(x):
        imp.alias(node.output[0], x)
        return
    if not sample:
        sample = (1,)
    imp.add(node, "Reshape", {f"dim{i}": d for i, d in enumerate(sample)}, [x],
            [node.output[0]])


def _axes(imp: Any, node: Any, k: int) -> list[int] | None:
    axes = imp.attr(node, "axes")
    if axes is None and len(node.input) > k and node.input[k]:
        c = imp.const(node.input[k])
        if c is None:
            raise imp.fail(node, "axes must be a constant")
        axes = c.tolist()
    return None if axes is None else [int(a) for a in axes]


@handles("Reshape")
def _reshape(imp: Any, node: Any) -> None:
    x = imp.arg(node, 0)
    shape = imp.attr(node, "shape")
    if shape is None:
        c = imp.const(node.input[1]) if len(node.input) > 1 else None
        if c is None:
            raise imp.fail(node, "the target shape must be a constant")
        shape = c.tolist()
    full_in = (1, *imp.sample(x))
    target = [full_in[i] if v == 0 and not imp.attr(node, "allowzero", 0) else int(v)
              for i, v in enumerate(shape)]
    try:
        full = np.empty(full_in, dtype=np.uint8).reshape(target).shape
    except ValueError as exc:
        raise imp.fail(node, f"cannot reshape {full_in} to {shape}: {exc}") from None
    _as_reshape(imp, node, x, full)


@handles("Flatten")
def _flatten(imp: Any, node: Any) -> None:
    x = imp.arg(node, 0)
    full_in = (1, *imp.sample(x))
    axis = imp.attr(node, "axis", 1) % (len(full_in) + 1)
    lead = int(np.prod(full_in[:axis]))
    _as_reshape(imp, node, x, (lead, int(np.prod(full_in)) // max(lead, 1)))


@handles("Squeeze", "Unsqueeze")
def _squeeze(imp: Any, node: Any) -> None:
    x = imp.arg(node, 0)
    a = np.empty((1, *imp.sample(x)), dtype=np.uint8)
    axes = _axes(imp, node, 1)
    if node.op_type == "Squeeze":
        if axes is None:
            axes = [i for i in range(1, a.ndim) if a.shape[i] == 1]
        if any(ax % a.ndim == 0 for ax in axes):
            raise imp.fail(node, "the batch axis cannot be squeezed")
        out = np.squeeze(a, axis=tuple(axes)).shape
    else:
        out = np.expand_dims(a, axis=tuple(axes or ())).shape
    _as_reshape(imp, node, x, out)


@handles("Pad")
def _pad(imp: Any, node: Any) -> None:
    x = imp.arg(node, 0)
    rank = len(imp.sample(x)) + 1
    mode = _text(imp.attr(node, "mode", "constant"))
    pads = imp.attr(node, "pads") or imp.attr(node, "paddings")
    if pads is None:
        c = imp.const(node.input[1]) if len(node.input) > 1 else None
        pads = None if c is None else c.tolist()
    value = imp.attr(node, "value", None)
    if value is None and len(node.input) > 2 and node.input[2]:
        value = _scalar(imp, node.input[2])
    if mode != "constant" or pads is None or (value or 0.0) != 0.0:
        raise imp.fail(node, "only constant zero padding with constant pads maps to Zeropad")
    if len(pads) != 2 * rank or pads[:rank] != pads[rank:] or pads[0] or min(pads) < 0:
        raise imp.fail(node, f"Zeropad pads both sides alike and never the batch axis. "
                             f"Received: pads {list(pads)}")
    per_axis = list(pads[1:rank])
    while per_axis and per_axis[0] == 0:
        per_axis.pop(0)
    if not per_axis:
        imp.alias(node.output[0], x)
        return
    imp.add(node, "Zeropad", {f"dim{i}": p for i, p in enumerate(per_axis)}, [x],
            [node.output[0]])


def _slice_args(imp: Any, node: Any) -> tuple[list[int], list[int], list[int]]:
    if imp.opset < 10:
        starts, ends = imp.attr(node, "starts"), imp.attr(node, "ends")
        axes, steps = imp.attr(node, "axes"), None
    else:
        vals = []
        for k in range(1, 5):
            has = len(node.input) > k and node.input[k]
            c = imp.const(node.input[k]) if has else None
            if has and c is None:
                raise imp.fail(node, "starts/ends/axes/steps must be constants")
            vals.append(None if c is None else c.tolist())
        starts, ends, axes, steps = vals
    if steps is not None and any(s != 1 for s in steps):
        raise imp.fail(node, "strided slices have no DIANNE form")
    axes = list(range(len(starts))) if axes is None else axes
    return list(starts), list(ends), list(axes)


@handles("Slice")
def _slice(imp: Any, node: Any) -> None:
    x = imp.arg(node, 0)
    shape = imp.sample(x)
    starts, ends, axes = _slice_args(imp, node)
    ranges = {}
    for s, e, a in zip(starts, ends, axes, strict=True):
        a %= len(shape) + 1
        if a == 0:
            raise imp.fail(node, "the batch axis cannot be sliced")
        n = shape[a - 1]
        s, e = (s + n if s < 0 else s), (e + n if e < 0 else e)
        s, e = min(max(s, 0), n), min(max(e, 0), n)
        ranges[a - 1] = (s, e - s)
    count = max(ranges) + 1
    if count == len(shape) - 1:  # DIANNE would take the first axis for a batch: cover one more
        count += 1
    if count > 3 or any(size <= 0 for _, size in ranges.values()):
        raise imp.fail(node, "Narrow crops the first three sample axes, to a non-empty range")
    props = {}
    for i in range(count):
        start, size = ranges.get(i, (0, shape[i]))
        props[f"index{i}"], props[f"size{i}"] = start, size
    imp.add(node, "Narrow", props, [x], [node.output[0]])


def _dim_from_end(imp: Any, node: Any, rank: int, axis: int) -> int:
    axis %= rank + 1
    if axis == 0:
        raise imp.fail(node, "joining or splitting along the batch axis has no DIANNE form")
    return rank - axis  # DIANNE counts from the last axis of one sample


@handles("Concat")
def _concat(imp: Any, node: Any) -> None:
    xs = [imp.arg(node, k) for k in range(len(node.input))]
    dim = _dim_from_end(imp, node, len(imp.sample(xs[0])), imp.attr(node, "axis", 1))
    if len(xs) == 1:
        imp.alias(node.output[0], xs[0])
        return
    imp.add(node, "Concat", {"dim": dim}, xs, [node.output[0]])


@handles("Split")
def _split(imp: Any, node: Any) -> None:
    x = imp.arg(node, 0)
    shape = imp.sample(x)
    axis = imp.attr(node, "axis", 0)
    dim = _dim_from_end(imp, node, len(shape), axis)
    sizes = imp.attr(node, "split")
    if sizes is None and len(node.input) > 1 and node.input[1]:
        c = imp.const(node.input[1])
        sizes = None if c is None else c.tolist()
    n = shape[len(shape) - 1 - dim]
    parts = len(node.output)
    if sizes is None:
        sizes = [n // parts] * parts
    unused = [o for o in node.output if not o or not (imp.consumers.get(o) or o in imp.outputs)]
    if unused or sum(sizes) != n:
        raise imp.fail(node, "every part must be used and the parts must cover the axis")
    props: dict[str, Any] = {"dim": dim}
    if len(set(sizes)) > 1:
        props["split"] = ",".join(str(v) for v in np.cumsum(sizes)[:-1])
    imp.add(node, "Split", props, [x], list(node.output))


# --------------------------------------------------------------------------- arithmetic
def _tensor_and_scalar(imp: Any, node: Any) -> tuple[str, float, int] | None:
    """(tensor input, scalar constant, position of the constant) or None."""
    for k in (0, 1):
        c = _scalar(imp, node.input[k])
        other = node.input[1 - k]
        if c is not None and other in imp.refs:
            return other, c, k
    return None


def _affine(imp: Any, node: Any, kind: str, mean: float, std: float, x: str, out: str) -> None:
    if std == 0.0:
        raise imp.fail(node, "a zero scale has no DIANNE form")
    imp.add(node, kind, {"mean": mean, "stdev": std}, [x], [out],
            weights=np.array([mean, std], np.float32))


def _next_scalar_op(imp: Any, out: str, op: str) -> tuple[float, str] | None:
    """A following ``op`` by a scalar constant (absorbed): (the scalar, its output)."""
    nxt = imp.sole_consumer(out)
    if nxt is None or nxt[1].op_type != op:
        return None
    i, node = nxt
    pos = 1 if node.input[0] == out else 0  # where the scalar must be
    c = _scalar(imp, node.input[pos])
    if c is None or (op in ("Sub", "Div") and pos != 1):
        return None
    ts = (out, c, pos)
    imp.done.add(i)
    return ts[1], node.output[0]


@handles("Add", "Sum", "Mean")
def _add(imp: Any, node: Any) -> None:
    ts = _tensor_and_scalar(imp, node) if node.op_type == "Add" else None
    if ts is not None:
        _affine(imp, node, "Denormalization", ts[1], 1.0, ts[0], node.output[0])
        return
    xs = [imp.arg(node, k) for k in range(len(node.input))]
    if len(xs) == 1:
        imp.alias(node.output[0], xs[0])
        return
    if len({imp.sample(x) for x in xs}) != 1:
        raise imp.fail(node, "DIANNE's joins take inputs of one shape (no broadcasting)")
    kind = "Average" if node.op_type == "Mean" else "Accumulate"
    imp.add(node, kind, {}, xs, [node.output[0]])


@handles("Sub")
def _sub(imp: Any, node: Any) -> None:
    ts = _tensor_and_scalar(imp, node)
    if ts is None:
        raise imp.fail(node, "only x - scalar and 1 - x have a DIANNE form")
    x, c, pos = ts
    if pos == 0:
        if c != 1.0:
            raise imp.fail(node, f"only 1 - x (Invert) has a DIANNE form. Received: {c} - x")
        imp.add(node, "Invert", {}, [x], [node.output[0]])
        return
    div = _next_scalar_op(imp, node.output[0], "Div")
    std, out = div if div is not None else (1.0, node.output[0])
    _affine(imp, node, "Normalization", c, std, x, out)


@handles("Div")
def _div(imp: Any, node: Any) -> None:
    ts = _tensor_and_scalar(imp, node)
    if ts is None or ts[2] != 1:
        raise imp.fail(node, "only x / scalar has a DIANNE form (Normalization)")
    _affine(imp, node, "Normalization", 0.0, ts[1], ts[0], node.output[0])


@handles("Mul")
def _mul(imp: Any, node: Any) -> None:
    ts = _tensor_and_scalar(imp, node)
    if ts is None:
        xs = [imp.arg(node, 0), imp.arg(node, 1)]
        if imp.sample(xs[0]) != imp.sample(xs[1]):
            raise imp.fail(node, "DIANNE's Multiply takes inputs of one shape (no broadcasting)")
        imp.add(node, "Multiply", {}, xs, [node.output[0]])
        return
    x, scale, _ = ts
    if _softplus_beta(imp, node, x, scale):
        return
    add = _next_scalar_op(imp, node.output[0], "Add")
    mean, out = add if add is not None else (0.0, node.output[0])
    _affine(imp, node, "Denormalization", mean, scale, x, out)


def _softplus_beta(imp: Any, node: Any, x: str, beta: float) -> bool:
    """Mul(x, b) -> Softplus -> Div(b): DIANNE's SoftPlus(beta)."""
    sp = imp.sole_consumer(node.output[0])
    if sp is None or sp[1].op_type != "Softplus":
        return False
    div = imp.sole_consumer(sp[1].output[0])
    if div is None or div[1].op_type != "Div" or div[1].input[0] != sp[1].output[0]:
        return False
    if _scalar(imp, div[1].input[1]) != beta or beta <= 0:
        return False
    imp.done.update((sp[0], div[0]))
    imp.add(node, "SoftPlus", {"beta": beta}, [x], [div[1].output[0]])
    return True


@handles("Greater")
def _greater(imp: Any, node: Any) -> None:
    """Where(x > t, x, v): DIANNE's Threshold."""
    x, t = node.input[0], _scalar(imp, node.input[1])
    where = imp.sole_consumer(node.output[0])
    ok = (t is not None and x in imp.refs and where is not None
          and where[1].op_type == "Where" and list(where[1].input[:2]) == [node.output[0], x]
          and _scalar(imp, where[1].input[2]) is not None)
    if not ok:
        raise imp.fail(node, "only Where(x > t, x, v) with scalar t and v maps (Threshold)")
    imp.done.add(where[0])
    imp.add(node, "Threshold", {"thresh": t, "val": _scalar(imp, where[1].input[2])}, [x],
            [where[1].output[0]])


# --------------------------------------------------------------------------- temporal layers
def _is_swap(imp: Any, node: Any) -> bool:
    return node.op_type == "Transpose" and list(imp.attr(node, "perm", [])) == [0, 2, 1]


@handles("Transpose")
def _transpose(imp: Any, node: Any) -> None:
    """(N,T,F) -> (N,F,T), a 1-D Conv/MaxPool/AveragePool, then back: a temporal layer."""
    x = imp.arg(node, 0)
    layer = imp.sole_consumer(node.output[0])
    if not _is_swap(imp, node) or len(imp.sample(x)) != 2 or layer is None or \
            layer[1].op_type not in ("Conv", "MaxPool", "AveragePool"):
        raise imp.fail(node, "a transpose has no DIANNE form (except around a 1-D "
                             "convolution or pooling: DIANNE's temporal layers)")
    i, op = layer
    t_len, feats = imp.sample(x)
    out, extra = op.output[0], {}
    if op.op_type == "Conv":
        w = imp.const(op.input[1])
        if w is None or w.ndim != 3 or imp.attr(op, "group", 1) != 1:
            raise imp.fail(op, "a temporal convolution needs constant 3-D weights, group 1")
        props = _geometry(imp, op, (t_len,), [w.shape[2]], _KERNEL)
        props.update(noInputPlanes=w.shape[1], noOutputPlanes=w.shape[0])
        if len(op.input) > 2 and op.input[2]:
            bias = imp.const(op.input[2])
        else:
            bias, out = _fold_bias(imp, out, w.shape[0], 3)
        extra["weights"] = _flat(w.transpose(0, 2, 1), bias)  # THNN [O][kW][I]
        kind = "Convolution"
    else:
        k = list(imp.attr(op, "kernel_shape", []))
        props = _geometry(imp, op, (t_len,), k, _WINDOW)
        kind = "MaxPooling" if op.op_type == "MaxPool" else "AvgPooling"
    back = imp.sole_consumer(out)
    if back is None or not _is_swap(imp, back[1]):
        raise imp.fail(op, "a temporal layer must be followed by Transpose(perm=[0,2,1])")
    imp.done.update((i, back[0]))
    imp.add(op, kind, props, [x], [back[1].output[0]], extra.get("weights"))


# --------------------------------------------------------------------------- resizing
@handles("Resize")
def _resize(imp: Any, node: Any) -> None:
    x = imp.arg(node, 0)
    shape = imp.sample(x)
    mode = _text(imp.attr(node, "mode", "nearest"))
    ctm = _text(imp.attr(node, "coordinate_transformation_mode", "half_pixel"))
    if mode != "linear" or ctm != "align_corners" or len(shape) < 2:
        raise imp.fail(node, "only linear resizing with align_corners maps to Scale")
    sizes = imp.const(node.input[3]) if len(node.input) > 3 and node.input[3] else None
    full = (1, *shape)
    if sizes is None:
        scales = imp.const(node.input[2]) if len(node.input) > 2 else None
        if scales is None:
            raise imp.fail(node, "scales or sizes must be constants")
        sizes = [int(np.floor(n * s)) for n, s in zip(full, scales, strict=True)]
    sizes = [int(v) for v in sizes]
    if tuple(sizes[:-2]) != full[:-2]:
        raise imp.fail(node, "Scale resizes the last two axes only")
    imp.add(node, "Scale", {"dim0": sizes[-2], "dim1": sizes[-1]}, [x], [node.output[0]])
