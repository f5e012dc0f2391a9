"""Normalization and Denormalization: one scalar mean and standard deviation (spec 3.3, 4.2).

Both persist ``mean`` and ``std`` (shape ``(1,)`` each, no gradients) as their 2-float DIANNE
weight file ``[mean, std]``; they start from the ``mean`` and ``stdev`` properties, and a weight
file, when one is loaded, overrides them. ``Normalization`` computes ``(x - mean) / std``,
``Denormalization`` ``x * std + mean`` with the correct backward (multiply by ``std``; the
original divided, spec section 10).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.modules.base import Module, Prop, register


class _Statistics(Module):
    """Shared parameters and checks of Normalization and Denormalization."""

    category = "Preprocessing"
    trainable = True  # DIANNE's type flag: it has a weight file, though nothing is learned
    props = (
        Prop("mean", "float", 0.0, doc="mean of the data"),
        Prop("stdev", "float", 1.0, doc="standard deviation of the data"),
    )

    def setup(self) -> None:
        if self.cfg["stdev"] == 0.0:
            raise self.fail("stdev must not be zero", self.cfg["stdev"])
        self.add_param("mean", (1,), learn=False)
        self.add_param("std", (1,), learn=False)
        self.reset()  # usable at once with the values of the properties

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {
            "mean": np.full((1,), self.cfg["mean"], dtype=np.float64),
            "std": np.full((1,), self.cfg["stdev"], dtype=np.float64),
        }

    def macs(self, in_shape: Any) -> int:
        return int(np.prod(in_shape))


@register
class Normalization(_Statistics):
    """y = (x - mean) / std."""

    type_name = "Normalization"
    example = {"props": {"mean": 0.5, "stdev": 2.0}, "inputs": [(5,)]}

    def forward(self, x: Any) -> Any:
        return (x - self.params["mean"]) / self.params["std"]

    def backward(self, grad_output: Any) -> Any:
        return grad_output / self.params["std"]


@register
class Denormalization(_Statistics):
    """y = x * std + mean."""

    type_name = "Denormalization"
    example = {"props": {"mean": 0.5, "stdev": 2.0}, "inputs": [(5,)]}

    def forward(self, x: Any) -> Any:
        return x * self.params["std"] + self.params["mean"]

    def backward(self, grad_output: Any) -> Any:
        return grad_output * self.params["std"]
