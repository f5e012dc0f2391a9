"""Element-wise activations: Sigmoid, Tanh, ReLU, LeakyReLU, PReLU, ELU, SELU, SoftPlus, Softmax,
LogSoftmax and Threshold.

Each keeps what its backward needs (its input or its output) and works on one sample or a batch.
"""

from __future__ import annotations

from typing import Any

from engine.modules.base import Module, register


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
