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

# SELU constants of Klambauer et al. (the values THNN/PyTorch use).
SELU_LAMBDA = 1.0507009873554805
SELU_ALPHA = 1.6732632423543772


def _away_from(point: float, shape: tuple[int, ...]):
    """make_inputs for kinked activations: normal values pushed >= 0.1 away from ``point``."""

    def make(rng: np.random.Generator) -> list[np.ndarray]:
        x = rng.standard_normal(shape)
        return [point + np.sign(x) * (np.abs(x) + 0.1)]

    return make


@register
class Sigmoid(Module):
    """y = 1 / (1 + e^-x)."""

    type_name = "Sigmoid"
    category = "Activation"
    example = {"props": {}, "inputs": [(5,)]}

    def forward(self, x: Any) -> Any:
        xp = self.xp
        y = xp.negative(x)
        xp.exp(y, out=y)
        y += 1.0
        xp.reciprocal(y, out=y)
        self._y = y
        return y

    def backward(self, grad_output: Any) -> Any:
        y = self._y
        return grad_output * y * (1.0 - y)


@register
class Tanh(Module):
    """y = tanh(x)."""

    type_name = "Tanh"
    category = "Activation"
    example = {"props": {}, "inputs": [(5,)]}

    def forward(self, x: Any) -> Any:
        self._y = self.xp.tanh(x)
        return self._y

    def backward(self, grad_output: Any) -> Any:
        y = self._y
        return grad_output * (1.0 - y * y)


@register
class ReLU(Module):
    """y = max(0, x) (THNN Threshold 0 -> 0: x > 0 keeps x)."""

    type_name = "ReLU"
    category = "Activation"
    example = {"props": {}, "inputs": [(6,)], "make_inputs": _away_from(0.0, (6,))}

    def forward(self, x: Any) -> Any:
        self._x = x
        return self.xp.maximum(x, 0.0)

    def backward(self, grad_output: Any) -> Any:
        return grad_output * (self._x > 0)


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


@register
class Softmax(Module):
    """Softmax: 1-D over all, 2-D per row, 3-D over dim 0 per pixel, 4-D over dim 1."""

    type_name = "Softmax"
    category = "Activation"
    example = {"props": {}, "inputs": [(5,)]}

    def forward(self, x: Any) -> Any:
        xp = self.xp
        axis, y = _shifted(self, x)
        self._axis = axis
        xp.exp(y, out=y)
        y /= y.sum(axis=axis, keepdims=True)
        self._y = y
        return y

    def backward(self, grad_output: Any) -> Any:
        y = self._y
        dot = (grad_output * y).sum(axis=self._axis, keepdims=True)
        return y * (grad_output - dot)


@register
class LogSoftmax(Module):
    """log(softmax(x)), with the axis rules of Softmax."""

    type_name = "LogSoftmax"
    category = "Activation"
    example = {"props": {}, "inputs": [(5,)]}

    def forward(self, x: Any) -> Any:
        xp = self.xp
        axis, y = _shifted(self, x)
        self._axis = axis
        y -= xp.log(xp.exp(y).sum(axis=axis, keepdims=True))
        self._y = y
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
