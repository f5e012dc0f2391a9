"""Training criteria of DIANNE's learner (spec §6.1, key ``criterion``).

A criterion compares a batch of outputs ``(N, ...)`` with target vectors of the same size and
gives the loss — the **mean of the per-sample losses** — and its gradient with respect to the
outputs. With ``batchAverage`` true (the default) the gradient is that of the mean, otherwise of
the sum of the per-sample losses (the original's switch). A 1-D output is one sample.

Per-sample losses, D = elements per sample:

* ``MSE`` — ``mean((y - t)^2)``. The original took the *sum* instead when the batch size was 1,
  so the loss scale depended on the batch size; here it is always the mean (a deliberate fix).
* ``ABS`` — ``mean(|y - t|)``.
* ``NLL`` — ``-sum(t * log p)``. As in the original, a sample whose first output value is <= 0
  is taken as log-probabilities (LogSoftmax), otherwise as probabilities whose log is taken
  first (Softmax), clamped at 1e-12. The original looked at the first value of the whole batch;
  here each sample is judged on its own.
* ``BCE`` — ``-mean(t log(y + eps) + (1 - t) log(1 - y + eps))`` with eps = 1e-12.
* ``CE`` (alias ``CROSSENTROPY``; not in the original) — cross-entropy on logits:
  ``-sum(t * log_softmax(y))``, numerically stable, gradient ``softmax(y) * sum(t) - t``.

``AUTO`` is resolved by the trainer from the module feeding the Output (see
``engine.training``). GKL, HUB and GAU of the original are not provided.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.errors import DianneError

EPS = 1e-12
_TINY = 1e-12


class Criterion:
    """Base class: ``loss_and_grad(output, target) -> (float, gradient)``."""

    name = ""

    def __init__(self, batch_average: bool = True, xp: Any = np) -> None:
        self.batch_average = bool(batch_average)
        self.xp = xp

    def per_sample(self, y: Any, t: Any) -> Any:
        """Per-sample losses of 2-D ``y``/``t`` ``(N, D)``."""
        raise NotImplementedError

    def sample_grad(self, y: Any, t: Any) -> Any:
        """Gradient of the *sum* of per-sample losses w.r.t. 2-D ``y``."""
        raise NotImplementedError

    def _flat(self, output: Any, target: Any) -> tuple[Any, Any, int]:
        xp = self.xp
        y = output.reshape(1, -1) if output.ndim == 1 else output.reshape(output.shape[0], -1)
        t = xp.asarray(target, dtype=y.dtype).reshape(y.shape[0], -1)
        if t.shape != y.shape:
            raise DianneError(f"criterion {self.name}: outputs {tuple(output.shape)} and targets "
                              f"{tuple(target.shape)} differ in size. Received: target shape "
                              f"{tuple(target.shape)}")
        return y, t, y.shape[0]

    def losses(self, output: Any, target: Any) -> Any:
        """Per-sample losses ``(N,)``."""
        y, t, _ = self._flat(output, target)
        return self.per_sample(y, t)

    def loss(self, output: Any, target: Any) -> float:
        """The mean per-sample loss."""
        return float(self.losses(output, target).mean())

    def grad(self, output: Any, target: Any) -> Any:
        """The gradient w.r.t. ``output`` (same shape), of the mean or of the sum."""
        y, t, n = self._flat(output, target)
        g = self.sample_grad(y, t)
        if self.batch_average:
            g = g / n
        return g.reshape(output.shape).astype(output.dtype, copy=False)

    def loss_and_grad(self, output: Any, target: Any) -> tuple[float, Any]:
        """The mean per-sample loss and the gradient, sharing the flattening."""
        y, t, n = self._flat(output, target)
        loss = float(self.per_sample(y, t).mean())
        g = self.sample_grad(y, t)
        if self.batch_average:
            g = g / n
        return loss, g.reshape(output.shape).astype(output.dtype, copy=False)


class MSE(Criterion):
    name = "MSE"

    def per_sample(self, y: Any, t: Any) -> Any:
        d = y - t
        return (d * d).mean(axis=1)

    def sample_grad(self, y: Any, t: Any) -> Any:
        return (y - t) * (2.0 / y.shape[1])


class ABS(Criterion):
    name = "ABS"

    def per_sample(self, y: Any, t: Any) -> Any:
        return self.xp.abs(y - t).mean(axis=1)

    def sample_grad(self, y: Any, t: Any) -> Any:
        return self.xp.sign(y - t) / y.shape[1]


class NLL(Criterion):
    name = "NLL"

    def _log_mode(self, y: Any) -> Any:
        return (y[:, :1] <= 0)  # (N, 1): the sample's output already holds log-probabilities

    def per_sample(self, y: Any, t: Any) -> Any:
        xp = self.xp
        mode = self._log_mode(y)
        logp = y if bool(mode.all()) else xp.where(mode, y, xp.log(xp.maximum(y, _TINY)))
        return -(t * logp).sum(axis=1)

    def sample_grad(self, y: Any, t: Any) -> Any:
        xp = self.xp
        mode = self._log_mode(y)
        if bool(mode.all()):  # the usual case, LogSoftmax outputs
            return -t
        prob_grad = -t / xp.maximum(y, _TINY) * (y > _TINY)
        return xp.where(mode, -t, prob_grad)


class BCE(Criterion):
    name = "BCE"

    def per_sample(self, y: Any, t: Any) -> Any:
        xp = self.xp
        return -(t * xp.log(y + EPS) + (1 - t) * xp.log(1 - y + EPS)).mean(axis=1)

    def sample_grad(self, y: Any, t: Any) -> Any:
        return (-t / (y + EPS) + (1 - t) / (1 - y + EPS)) / y.shape[1]


class CE(Criterion):
    name = "CE"

    def _log_softmax(self, y: Any) -> Any:
        shifted = y - y.max(axis=1, keepdims=True)
        return shifted - self.xp.log(self.xp.exp(shifted).sum(axis=1, keepdims=True))

    def per_sample(self, y: Any, t: Any) -> Any:
        return -(t * self._log_softmax(y)).sum(axis=1)

    def sample_grad(self, y: Any, t: Any) -> Any:
        return self.xp.exp(self._log_softmax(y)) * t.sum(axis=1, keepdims=True) - t


CRITERIA: dict[str, type[Criterion]] = {"MSE": MSE, "ABS": ABS, "NLL": NLL, "BCE": BCE, "CE": CE}
ALIASES = {"CROSSENTROPY": "CE", "CROSS_ENTROPY": "CE"}


def criterion_name(name: str) -> str:
    """The canonical name of ``name`` (case-insensitive, aliases resolved); DianneError if
    unknown."""
    key = str(name).strip().upper()
    key = ALIASES.get(key, key)
    if key not in CRITERIA and key != "AUTO":
        raise DianneError(f"unknown criterion (known: {', '.join(CRITERIA)}, AUTO). "
                          f"Received: {name!r}")
    return key


def make_criterion(name: str, batch_average: bool = True, xp: Any = np) -> Criterion:
    """Instantiate the criterion called ``name`` (not ``AUTO``: resolve that first)."""
    key = criterion_name(name)
    if key == "AUTO":
        raise DianneError("criterion AUTO must be resolved against a network first. "
                          "Received: 'AUTO'")
    return CRITERIA[key](batch_average, xp)
