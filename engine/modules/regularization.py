"""Regularization: BatchNormalization, Dropout, DropPath and LRN (spec sections 3.3, 4.2).

BatchNormalization follows THNN: momentum 0.1, eps 1e-5; while training it normalises with the
batch mean and the *biased* batch variance and folds the *unbiased* variance into the running
average (``running = (1 - momentum) * running + momentum * stat``); in eval mode it uses the
running statistics. Its parameters, in weight-file order: ``weight`` (gamma) and ``bias``
(beta), learnable, then ``running_mean`` and ``running_var``, persisted without gradients.
Dropout is inverted dropout in training mode only; DropPath zeroes the whole output with
probability ``rate`` (no rescale, in eval too, as the original). Both draw from ``self.rng``.
LRN is ONNX's across-channel LRN, given a backward (the original has none).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.modules.base import Module, Prop, register


@register
class BatchNormalization(Module):
    """THNN batch normalisation over features (2-D) or channels (3-D to 5-D)."""

    type_name = "BatchNormalization"
    category = "Regularization"
    trainable = True
    props = (Prop("size", "int", required=True, doc="number of features or channels"),)
    # The example input is itself a batch (N,C,H,W): stacking it makes a volumetric batch with
    # other channels, so the batch-equals-samples check does not apply.
    example = {"props": {"size": 3}, "inputs": [(2, 3, 2, 2)], "training": True, "batch": False}
    MOMENTUM = 0.1
    EPS = 1e-5

    def setup(self) -> None:
        size = self.cfg["size"]
        if size <= 0:
            raise self.fail("size must be positive", size)
        self.size = size
        self.add_param("weight", (size,))
        self.add_param("bias", (size,))
        self.add_param("running_mean", (size,), learn=False)
        self.add_param("running_var", (size,), learn=False)
        self.params["running_var"].fill(1)

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        s = self.size
        return {
            "weight": rng.uniform(0.0, 1.0, size=s).astype(np.float32),
            "bias": np.zeros(s, np.float32),
            "running_mean": np.zeros(s, np.float32),
            "running_var": np.ones(s, np.float32),
        }

    def _layout(self, shape: Any) -> tuple[int, tuple[int, ...]]:
        """(feature axis, reduction axes) for an input shape (spec 4.2 input handling)."""
        n = len(shape)
        if n == 4:
            axis = 1 if shape[1] == self.size else 0  # batch (N,C,H,W) else one (C,D,H,W)
        elif n in (1, 3):
            axis = 0
        elif n in (2, 5):
            axis = 1
        else:
            raise self.shape_fail("input must have 1 to 5 dimensions", tuple(shape))
        if shape[axis] != self.size:
            raise self.shape_fail(f"expects {self.size} features/channels", tuple(shape))
        return axis, tuple(i for i in range(n) if i != axis)

    def forward(self, x: Any) -> Any:
        xp = self.xp
        axis, red = self._layout(x.shape)
        bshape = [1] * x.ndim
        bshape[axis] = self.size
        bshape = tuple(bshape)
        p = self.params
        if self.training:
            count = x.size // self.size
            mean = x.mean(axis=red, keepdims=True) if red else x.reshape(bshape)
            centred = x - mean
            var = (centred * centred).mean(axis=red, keepdims=True) if red else centred * 0.0
            invstd = 1.0 / xp.sqrt(var + self.EPS)
            m = self.MOMENTUM
            p["running_mean"] *= 1.0 - m
            p["running_mean"] += m * mean.reshape(-1)
            if count > 1:  # THNN: unbiased variance for the running average
                p["running_var"] *= 1.0 - m
                p["running_var"] += (m * count / (count - 1)) * var.reshape(-1)
        else:
            centred = x - p["running_mean"].reshape(bshape)
            invstd = 1.0 / xp.sqrt(p["running_var"].reshape(bshape) + self.EPS)
        self._xhat = centred * invstd
        self._invstd, self._red, self._bshape = invstd, red, bshape
        self._batch_stats = self.training
        return self._xhat * p["weight"].reshape(bshape) + p["bias"].reshape(bshape)

    def backward(self, grad_output: Any) -> Any:
        xhat, red, bshape = self._xhat, self._red, self._bshape
        g = grad_output
        sum_g = g.sum(axis=red, keepdims=True) if red else g
        sum_gx = (g * xhat).sum(axis=red, keepdims=True) if red else g * xhat
        self.grads["weight"] += sum_gx.reshape(-1)
        self.grads["bias"] += sum_g.reshape(-1)
        scale = self.params["weight"].reshape(bshape) * self._invstd
        if not self._batch_stats:  # fixed statistics: a per-channel affine map
            return g * scale
        count = g.size // self.size
        return (g - sum_g * (1.0 / count) - xhat * (sum_gx * (1.0 / count))) * scale

    def macs(self, in_shape: Any) -> int:
        return 2 * int(np.prod(in_shape))


@register
class Dropout(Module):
    """Inverted dropout in training mode (keep 1 - rate, scale 1/(1 - rate)); identity in eval."""

    type_name = "Dropout"
    category = "Regularization"
    props = (Prop("rate", "float", required=True, doc="drop probability"),)
    example = {"props": {"rate": 0.5}, "inputs": [(10,)], "training": True}

    def setup(self) -> None:
        if not 0.0 <= self.cfg["rate"] < 1.0:
            raise self.fail("rate must be in [0, 1)", self.cfg["rate"])

    def forward(self, x: Any) -> Any:
        rate = self.cfg["rate"]
        if not self.training or rate == 0.0:
            self._mask = None
            return x
        keep = self.rng.random(x.shape) >= rate
        self._mask = self.xp.asarray(keep.astype(x.dtype) * (1.0 / (1.0 - rate)))
        return x * self._mask

    def backward(self, grad_output: Any) -> Any:
        return grad_output if self._mask is None else grad_output * self._mask


@register
class DropPath(Module):
    """With probability rate the whole output is zero, else the input (train and eval)."""

    type_name = "DropPath"
    category = "Regularization"
    props = (Prop("rate", "float", required=True, doc="probability of dropping the path"),)
    example = {"props": {"rate": 0.3}, "inputs": [(6,)]}

    def setup(self) -> None:
        if not 0.0 <= self.cfg["rate"] <= 1.0:
            raise self.fail("rate must be in [0, 1]", self.cfg["rate"])

    def forward(self, x: Any) -> Any:
        self._drop = bool(self.rng.random() < self.cfg["rate"])
        return self.xp.zeros_like(x) if self._drop else x

    def backward(self, grad_output: Any) -> Any:
        return self.xp.zeros_like(grad_output) if self._drop else grad_output


@register
class LRN(Module):
    """Across-channel local response normalisation: x / (k + alpha * mean_window(x^2))^beta."""

    type_name = "LRN"
    category = "Regularization"
    props = (
        Prop("size", "int", required=True, doc="channels in the window"),
        Prop("alpha", "float", 1e-4, doc="scale"),
        Prop("beta", "float", 0.75, doc="exponent"),
        Prop("k", "float", 1.0, doc="bias"),
    )
    example = {"props": {"size": 3, "alpha": 0.5, "beta": 0.75, "k": 1.0}, "inputs": [(4, 2, 3)]}

    def setup(self) -> None:
        if self.cfg["size"] <= 0:
            raise self.fail("size must be positive", self.cfg["size"])
        # ONNX window around channel c: [c - floor((size-1)/2), c + ceil((size-1)/2)]
        self._lo = (self.cfg["size"] - 1) // 2
        self._hi = self.cfg["size"] - 1 - self._lo

    def _window_sum(self, t: Any, axis: int, before: int, after: int) -> Any:
        """s[c] = sum of t[c - before .. c + after] along axis (clipped at the ends)."""
        out = t.copy()
        n = t.shape[axis]
        lead = (slice(None),) * axis
        for d in range(1, before + 1):
            if d < n:
                out[lead + (slice(d, None),)] += t[lead + (slice(0, n - d),)]
        for d in range(1, after + 1):
            if d < n:
                out[lead + (slice(0, n - d),)] += t[lead + (slice(d, None),)]
        return out

    def forward(self, x: Any) -> Any:
        self.need_rank(x, (1, 2, 3, 4))
        self._axis = axis = 0 if x.ndim in (1, 3) else 1
        c = self.cfg
        den = self._window_sum(x * x, axis, self._lo, self._hi)
        den *= c["alpha"] / c["size"]
        den += c["k"]
        self._x, self._den = x, den
        self._y = x * den ** (-c["beta"])
        return self._y

    def backward(self, grad_output: Any) -> Any:
        c = self.cfg
        x, den, y = self._x, self._den, self._y
        direct = grad_output * den ** (-c["beta"])
        # through the denominators of the channels whose window holds this one
        t = grad_output * y / den
        back = self._window_sum(t, self._axis, self._hi, self._lo)
        return direct - back * x * (2.0 * c["alpha"] * c["beta"] / c["size"])

    def macs(self, in_shape: Any) -> int:
        return int(np.prod(in_shape)) * (self.cfg["size"] + 2)
