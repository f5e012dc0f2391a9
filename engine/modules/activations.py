"""Element-wise activations: Sigmoid, Tanh, ReLU, LeakyReLU, PReLU, ELU, SELU, SoftPlus, Softmax,
LogSoftmax and Threshold (spec section 4.2).

Each keeps what its backward needs (its input or its output) and works on one sample or a batch.
Softmax and LogSoftmax pick their axis from the rank, as THNN does: 1-D over all values, 2-D per
row, 3-D ``(C,H,W)`` over the channels of each pixel, 4-D ``(N,C,H,W)`` over dim 1. ``ELU`` is a
real ELU (the original's factory built SoftPlus instead, spec section 10). PReLU has one shared
slope ``weight`` of shape ``(1,)`` (the one value of its DIANNE weight file, init 0.25).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.modules.base import Module, Prop, register
from engine.modules.buffers import Slot, zeros

# SELU constants of Klambauer et al. (the values THNN/PyTorch use).
SELU_LAMBDA = 1.0507009873554805
SELU_ALPHA = 1.6732632423543772


def _away_from(point: float, shape: tuple[int, ...]):
    """make_inputs for kinked activations: normal values pushed >= 0.1 away from ``point``."""

    def make(rng: np.random.Generator) -> list[np.ndarray]:
        x = rng.standard_normal(shape)
        return [point + np.sign(x) * (np.abs(x) + 0.1)]

    return make


class _FromOutput(Module):
    """An element-wise activation whose backward needs only its output ``y``: a reused output
    buffer, and an in-place form for the executor; subclasses give ``_fn(x, out)``."""

    category = "Activation"
    elementwise = True
    example = {"props": {}, "inputs": [(5,)]}

    def setup(self) -> None:
        self._slot = Slot()

    def _fn(self, x: Any, out: Any) -> Any:
        raise NotImplementedError

    def forward(self, x: Any) -> Any:
        self._y = self._fn(x, _out(self, x))
        return self._y

    def forward_inplace(self, x: Any, full: Any = None) -> Any:
        """Overwrite ``x`` (or the whole buffer ``full`` it is a view of) with the output."""
        t = x if full is None else full
        self._fn(t, t)
        self._y = x
        return x


@register
class Sigmoid(_FromOutput):
    """y = 1 / (1 + e^-x)."""

    type_name = "Sigmoid"

    def _fn(self, x: Any, out: Any) -> Any:
        return _sigmoid(self.xp, x, out)

    def backward(self, grad_output: Any) -> Any:
        y = self._y
        return grad_output * y * (1.0 - y)


def _sigmoid(xp: Any, x: Any, y: Any) -> Any:
    xp.negative(x, out=y)
    xp.exp(y, out=y)
    y += 1.0
    return xp.reciprocal(y, out=y)


@register
class Tanh(_FromOutput):
    """y = tanh(x)."""

    type_name = "Tanh"

    def _fn(self, x: Any, out: Any) -> Any:
        return self.xp.tanh(x, out=out)

    def backward(self, grad_output: Any) -> Any:
        y = self._y
        return grad_output * (1.0 - y * y)


@register
class ReLU(Module):
    """y = max(0, x) (THNN Threshold 0 -> 0: x > 0 keeps x)."""

    type_name = "ReLU"
    category = "Activation"
    elementwise = True
    # max(relu(a), relu(b)) == relu(max(a, b)): the executor may apply it after a MaxPooling.
    commutes_with_max = True
    example = {"props": {}, "inputs": [(6,)], "make_inputs": _away_from(0.0, (6,))}

    def setup(self) -> None:
        self._slot = Slot()
        self._zslot = Slot()

    def forward(self, x: Any) -> Any:
        s = self._slot
        if x is not s.x or x.shape != s.shape:
            _out(self, x)
        self._x = x
        return self.xp.maximum(x, s.data[1], out=s.data[0])

    def forward_inplace(self, x: Any, full: Any = None) -> Any:
        """Overwrite ``x`` (or the whole buffer ``full`` it is a view of) with the output."""
        self.apply(x if full is None else full)
        self._x = x  # relu(x) > 0 exactly where x > 0: the output serves as backward's mask
        return x

    def bind_inplace(self, t: Any) -> Any:
        """``forward_inplace(t)`` for this one array as a zero-argument call (operands bound)."""
        z, mx = zeros(self.xp, t.shape, t.dtype), self.xp.maximum

        def run() -> None:
            mx(t, z, out=t)
            self._x = t

        return run

    def bind_apply(self, t: Any) -> Any:
        """``apply(t)`` for this one array as a zero-argument call (no state kept)."""
        z, mx = zeros(self.xp, t.shape, t.dtype), self.xp.maximum
        return lambda: mx(t, z, out=t)

    def record(self, x: Any) -> None:
        """Keep what backward needs for input ``x`` without computing the output."""
        self._x = x

    def apply(self, t: Any) -> Any:
        """max(t, 0) in place, with no state kept."""
        z = self._zslot
        if t is not z.x or t.shape != z.shape:
            z.keep(t, zeros(self.xp, t.shape, t.dtype))
        return self.xp.maximum(t, z.data, out=t)

    def backward(self, grad_output: Any) -> Any:
        if callable(self._x):  # a fused producer computes the state on demand (conv_pool)
            self._x()
        return grad_output * (self._x > 0)


def _out(module: Module, x: Any) -> Any:
    """The module's reused output buffer for input ``x`` (plus zeros of its shape, in the slot's
    data); reallocated only when the shape or dtype changes."""
    s = module._slot  # type: ignore[attr-defined]
    if x is s.x and x.shape == s.shape:
        return s.data[0]
    old = s.data[0] if s.data is not None else None
    if old is None or old.shape != x.shape or old.dtype != x.dtype:
        old = module.xp.empty(x.shape, dtype=x.dtype)
    s.keep(x, (old, zeros(module.xp, x.shape, x.dtype)))
    return old


@register
class LeakyReLU(Module):
    """y = x if x > 0 else leakyness * x."""

    type_name = "LeakyReLU"
    category = "Activation"
    props = (Prop("leakyness", "float", 0.01, doc="slope for negative inputs"),)
    example = {"props": {"leakyness": 0.1}, "inputs": [(6,)], "make_inputs": _away_from(0.0, (6,))}

    def forward(self, x: Any) -> Any:
        self._pos = x > 0
        return self.xp.where(self._pos, x, x * self.cfg["leakyness"])

    def backward(self, grad_output: Any) -> Any:
        return self.xp.where(self._pos, grad_output, grad_output * self.cfg["leakyness"])


@register
class PReLU(Module):
    """y = x if x > 0 else a * x, with one learnable slope ``a`` shared by all channels."""

    type_name = "PReLU"
    category = "Activation"
    trainable = True
    example = {"props": {}, "inputs": [(6,)], "make_inputs": _away_from(0.0, (6,))}

    def setup(self) -> None:
        self.add_param("weight", (1,))
        self.params["weight"][...] = 0.25  # usable without reset(), like the original

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"weight": np.full((1,), 0.25, dtype=np.float32)}

    def forward(self, x: Any) -> Any:
        self._x = x
        self._pos = x > 0
        return self.xp.where(self._pos, x, x * self.params["weight"])

    def backward(self, grad_output: Any) -> Any:
        xp = self.xp
        neg = xp.where(self._pos, 0.0, grad_output * self._x)
        self.grads["weight"] += neg.sum()
        return xp.where(self._pos, grad_output, grad_output * self.params["weight"])


@register
class ELU(Module):
    """y = x if x > 0 else alpha * (e^x - 1) (a real ELU, not the original's SoftPlus bug)."""

    type_name = "ELU"
    category = "Activation"
    props = (Prop("alpha", "float", 1.0, doc="saturation value for negative inputs"),)
    example = {"props": {"alpha": 1.5}, "inputs": [(6,)], "make_inputs": _away_from(0.0, (6,))}

    def forward(self, x: Any) -> Any:
        xp = self.xp
        self._pos = x > 0
        neg = xp.expm1(xp.minimum(x, 0.0)) * self.cfg["alpha"]
        self._y = xp.where(self._pos, x, neg)
        return self._y

    def backward(self, grad_output: Any) -> Any:
        # for x <= 0: dy/dx = alpha * e^x = y + alpha
        return self.xp.where(self._pos, grad_output, grad_output * (self._y + self.cfg["alpha"]))


@register
class SELU(Module):
    """y = lambda * (x if x > 0 else alpha * (e^x - 1)), lambda 1.0507..., alpha 1.6733...."""

    type_name = "SELU"
    category = "Activation"
    example = {"props": {}, "inputs": [(6,)], "make_inputs": _away_from(0.0, (6,))}

    def forward(self, x: Any) -> Any:
        xp = self.xp
        self._pos = x > 0
        self._e = xp.exp(xp.minimum(x, 0.0))  # e^x on the negative side, kept for backward
        return xp.where(self._pos, x, (self._e - 1.0) * SELU_ALPHA) * SELU_LAMBDA

    def backward(self, grad_output: Any) -> Any:
        slope = self.xp.where(self._pos, SELU_LAMBDA, self._e * (SELU_LAMBDA * SELU_ALPHA))
        return grad_output * slope


@register
class SoftPlus(Module):
    """y = log(1 + e^(beta x)) / beta, and y = x where beta x > 20 (THNN threshold)."""

    type_name = "SoftPlus"
    category = "Activation"
    props = (Prop("beta", "float", 1.0, doc="sharpness"),)
    example = {"props": {"beta": 2.0}, "inputs": [(6,)]}
    THRESHOLD = 20.0

    def forward(self, x: Any) -> Any:
        xp = self.xp
        beta = self.cfg["beta"]
        bx = x * beta
        self._lin = bx > self.THRESHOLD
        self._bx = bx
        # clamp before exp so the branch that where() discards cannot overflow
        soft = xp.log1p(xp.exp(xp.minimum(bx, self.THRESHOLD))) * (1.0 / beta)
        return xp.where(self._lin, x, soft)

    def backward(self, grad_output: Any) -> Any:
        xp = self.xp
        e = xp.exp(-xp.maximum(self._bx, -self.THRESHOLD * 4))  # sigmoid(bx) = 1/(1+e^-bx)
        return xp.where(self._lin, grad_output, grad_output / (1.0 + e))


def _shifted(module: Module, x: Any) -> tuple[int, Any]:
    """The (log-)softmax axis for ``x``'s rank, and ``x`` minus its max along it (a new
    array, so callers may work in place)."""
    module.need_rank(x, (1, 2, 3, 4))
    axis = 0 if x.ndim in (1, 3) else 1
    return axis, x - x.max(axis=axis, keepdims=True)


# One sample of at most _LSE_MAX values normalises through np.logaddexp.reduce: one stable call
# for the log of the sum of exponentials, cheaper than the max shift. Its absolute error grows
# with the magnitude of that log (one rounding per value), so the result is kept only when it
# is below _LSE_LIMIT; otherwise (and for NaN or infinities) the max-shifted form recomputes it.
_LSE_MAX = 64
_LSE_LIMIT = 80.0
_LSE, _SUB = np.logaddexp.reduce, np.subtract


class _Normalized(Module):
    """Softmax and LogSoftmax: a reused output, a fast path for one small 1-D sample on numpy
    of moderate values (``x - logaddexp.reduce(x)``, then ``exp`` for Softmax), an in-place form
    for the executor, and the max-shifted form for everything else."""

    category = "Activation"
    example = {"props": {}, "inputs": [(5,)]}

    def setup(self) -> None:
        self._slot = Slot()
        self._lse = Slot()  # the log-sum-exp of the small-vector path, filled to x's shape

    def forward(self, x: Any) -> Any:
        return self._run(x, _out(self, x))

    def forward_inplace(self, x: Any, full: Any = None) -> Any:
        """Overwrite ``x`` with the output (``full`` is ignored: not element-wise)."""
        return self._run(x, x)

    def bind_inplace(self, t: Any) -> Any:
        """``forward_inplace(t)`` for this one array as a zero-argument call: the small-vector
        path with its operands bound, the general one otherwise."""
        if not (t.ndim == 1 and t.shape[0] <= _LSE_MAX and self.xp is np):
            return lambda: self._run(t, t)
        full, finish, general = np.empty_like(t), self._finish, self._run

        def run() -> None:
            lse = _LSE(t)
            if abs(lse) < _LSE_LIMIT:
                full.fill(lse)
                _SUB(t, full, out=t)
                self._axis, self._y = 0, finish(t)
            else:
                general(t, t)

        return run

    def _run(self, x: Any, y: Any) -> Any:
        if x.ndim == 1 and x.shape[0] <= _LSE_MAX and self.xp is np:
            lse = _LSE(x)
            if abs(lse) < _LSE_LIMIT:  # False for NaN and infinities too
                # subtracted as a full vector: a broadcast scalar costs more than the fill
                f = self._lse
                if x is not f.x or x.shape != f.shape:
                    f.keep(x, np.empty_like(x))
                f.data.fill(lse)
                _SUB(x, f.data, out=y)
                self._axis, self._y = 0, self._finish(y)
                return y
        axis, t = _shifted(self, x)
        self._axis, self._y = axis, self._shifted_out(t, axis, y)
        return y

    def backward(self, grad_output: Any) -> Any:
        raise NotImplementedError


@register
class Softmax(_Normalized):
    """Softmax: 1-D over all, 2-D per row, 3-D over dim 0 per pixel, 4-D over dim 1."""

    type_name = "Softmax"

    def _finish(self, y: Any) -> Any:
        return np.exp(y, out=y)

    def _shifted_out(self, t: Any, axis: int, y: Any) -> Any:
        xp = self.xp
        xp.exp(t, out=t)
        t /= t.sum(axis=axis, keepdims=True)
        xp.copyto(y, t)
        return y

    def backward(self, grad_output: Any) -> Any:
        y = self._y
        dot = (grad_output * y).sum(axis=self._axis, keepdims=True)
        return y * (grad_output - dot)


@register
class LogSoftmax(_Normalized):
    """log(softmax(x)), with the axis rules of Softmax."""

    type_name = "LogSoftmax"

    def _finish(self, y: Any) -> Any:
        return y

    def _shifted_out(self, t: Any, axis: int, y: Any) -> Any:
        xp = self.xp
        t -= xp.log(xp.exp(t).sum(axis=axis, keepdims=True))
        xp.copyto(y, t)
        return y

    def backward(self, grad_output: Any) -> Any:
        total = grad_output.sum(axis=self._axis, keepdims=True)
        return grad_output - self.xp.exp(self._y) * total


@register
class Threshold(Module):
    """y = x if x > thresh else val."""

    type_name = "Threshold"
    category = "Activation"
    props = (
        Prop("thresh", "float", required=True, doc="threshold"),
        Prop("val", "float", required=True, doc="replacement value at or below the threshold"),
    )
    example = {
        "props": {"thresh": 0.5, "val": -1.0},
        "inputs": [(6,)],
        "make_inputs": _away_from(0.5, (6,)),
    }

    def forward(self, x: Any) -> Any:
        self._keep = x > self.cfg["thresh"]
        return self.xp.where(self._keep, x, self.xp.asarray(self.cfg["val"], dtype=x.dtype))

    def backward(self, grad_output: Any) -> Any:
        return grad_output * self._keep
