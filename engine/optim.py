"""Gradient processors of DIANNE's learner (spec §6.1, key ``method`` and its decorators).

An :class:`Optimizer` turns the accumulated gradient ``g`` of every parameter into an update
``delta`` and applies ``param += delta``. The method comes first, then the decorators, each
seeing the previous one's delta, in the original's order:

==========  ==================================================  ================================
method      keys (defaults)                                     delta
==========  ==================================================  ================================
SGD         learningRate 0.01, decayRate 0, minLearningRate 0,  -lr_i * g; EXPONENTIAL:
            decayType EXPONENTIAL | LINEAR                      lr_i = min + (lr - min) e^(-i d);
                                                                LINEAR: max(min, lr - d i)
ADAM        learningRate 0.001, beta1 0.9, beta2 0.999,         -lr sqrt(1-b2^t)/(1-b1^t) *
            epsilon 1e-8                                        m / (sqrt(v) + eps), t = i + 1
RMSPROP     learningRate 0.001, decayRate 0.9, epsilon 1e-8     -lr g / sqrt(ms + eps)
ADAGRAD     learningRate 0.01, epsilon 1e-8                     -lr g / (sqrt(acc) + eps)
ADADELTA    decayRate 0.95, epsilon 1e-8, learningRate 1        -lr sqrt(Edx + eps) /
                                                                sqrt(Eg + eps) g  (Zeiler)
==========  ==================================================  ================================

Decorators, only when their key is present (an empty value takes the default): ``l2`` (0.0001)
``delta -= l2 * param`` (not scaled by the learning rate, as in the original); ``momentum``
(0.9) ``v = m v + delta; delta = v``; ``nesterov`` (0.9, only without ``momentum``)
``v' = m v + delta; delta = -m v + (1 + m) v'``. ``i`` is the iteration, 0 for the first step.

Deliberate differences: ADAGRAD divides by the *square root* of the accumulated squares (the
original forgot the root, which makes its steps vanish); ADADELTA accepts a ``learningRate``
multiplier (default 1, i.e. Zeiler's rule, which has none).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from engine.errors import DianneError

METHODS = ("SGD", "ADAM", "RMSPROP", "ADAGRAD", "ADADELTA")
_LR = {"SGD": 0.01, "ADAM": 0.001, "RMSPROP": 0.001, "ADAGRAD": 0.01, "ADADELTA": 1.0}


def option_float(options: Mapping[str, Any], key: str, default: float) -> float:
    """A float option (strings as in the original); an empty value gives ``default``."""
    raw = options.get(key)
    if raw is None or str(raw).strip() == "":
        return float(default)
    try:
        value = float(str(raw).strip())
    except ValueError:
        raise DianneError(f"option {key!r} takes a number. Received: {raw!r}") from None
    if math.isnan(value):
        raise DianneError(f"option {key!r} takes a number. Received: {raw!r}")
    return value


class Optimizer:
    """Applies the method + decorators of ``options`` to ``params`` (pairs of arrays).

    ``params`` is a sequence of ``(param, grad)`` arrays (any backend; updated in place).
    """

    def __init__(self, params: Sequence[tuple[Any, Any]], options: Mapping[str, Any]) -> None:
        self.params = list(params)
        self.method = str(options.get("method") or "SGD").strip().upper()
        if self.method not in METHODS:
            raise DianneError(f"unknown method (known: {', '.join(METHODS)}). "
                              f"Received: {options.get('method')!r}")
        opt = lambda key, default: option_float(options, key, default)  # noqa: E731
        self.lr = opt("learningRate", _LR[self.method])
        default_decay = {"RMSPROP": 0.9, "ADADELTA": 0.95}.get(self.method, 0.0)
        self.decay = opt("decayRate", default_decay)
        self.min_lr = opt("minLearningRate", 0.0)
        self.decay_type = str(options.get("decayType") or "EXPONENTIAL").strip().upper()
        if self.decay_type not in ("EXPONENTIAL", "LINEAR"):
            raise DianneError(f"decayType is EXPONENTIAL or LINEAR. "
                              f"Received: {options.get('decayType')!r}")
        self.beta1, self.beta2 = opt("beta1", 0.9), opt("beta2", 0.999)
        self.eps = opt("epsilon", 1e-8)
        self.l2 = opt("l2", 0.0001) if "l2" in options else None
        self.momentum = opt("momentum", 0.9) if "momentum" in options else None
        self.nesterov = (opt("nesterov", 0.9)
                         if "nesterov" in options and self.momentum is None else None)
        self.state: list[dict[str, Any]] = [{} for _ in self.params]

    def learning_rate(self, iteration: int) -> float:
        """The SGD learning rate at ``iteration`` (decayed); the base rate for other methods."""
        if self.method != "SGD" or self.decay == 0.0:
            return self.lr
        if self.decay_type == "LINEAR":
            return max(self.min_lr, self.lr - self.decay * iteration)
        return self.min_lr + (self.lr - self.min_lr) * math.exp(-iteration * self.decay)

    def step(self, iteration: int) -> None:
        """Update every parameter from its gradient (``iteration`` counts from 0)."""
        if self.method == "SGD" and self.l2 is None and self.momentum is None and (
                self.nesterov is None):
            lr = self.learning_rate(iteration)  # plain SGD: no temporaries beyond one buffer
            for (param, grad), state in zip(self.params, self.state, strict=True):
                buf = _slot(state, "buf", grad)
                buf[...] = grad
                buf *= lr
                param -= buf
            return
        for (param, grad), state in zip(self.params, self.state, strict=True):
            delta = self._method_delta(param, grad, state, iteration)
            if self.l2 is not None:
                delta -= self.l2 * param
            if self.momentum is not None:
                v = state.get("v")
                if v is None:
                    v = state["v"] = delta.copy()
                else:
                    v *= self.momentum
                    v += delta
                delta = v
            elif self.nesterov is not None:
                m = self.nesterov
                v_prev = state.get("v")
                if v_prev is None:
                    v_prev = state["v"] = delta * 0
                v_new = m * v_prev + delta
                delta = (1 + m) * v_new - m * v_prev
                state["v"] = v_new
            param += delta

    def _method_delta(self, param: Any, g: Any, state: dict[str, Any], i: int) -> Any:
        method = self.method
        if method == "SGD":
            return g * -self.learning_rate(i)
        if method == "ADAM":
            m, v = _slot(state, "m", g), _slot(state, "v2", g)
            m *= self.beta1
            m += (1 - self.beta1) * g
            v *= self.beta2
            v += (1 - self.beta2) * (g * g)
            t = i + 1
            step = self.lr * math.sqrt(1 - self.beta2**t) / (1 - self.beta1**t)
            return m / (v**0.5 + self.eps) * -step
        if method == "RMSPROP":
            ms = _slot(state, "ms", g)
            ms *= self.decay
            ms += (1 - self.decay) * (g * g)
            return g / (ms + self.eps) ** 0.5 * -self.lr
        if method == "ADAGRAD":
            acc = _slot(state, "acc", g)
            acc += g * g
            return g / (acc**0.5 + self.eps) * -self.lr
        eg, edx = _slot(state, "eg", g), _slot(state, "edx", g)  # ADADELTA
        eg *= self.decay
        eg += (1 - self.decay) * (g * g)
        dx = -((edx + self.eps) ** 0.5) / (eg + self.eps) ** 0.5 * g
        edx *= self.decay
        edx += (1 - self.decay) * (dx * dx)
        return dx * self.lr if self.lr != 1.0 else dx


def _slot(state: dict[str, Any], key: str, like: Any) -> Any:
    buf = state.get(key)
    if buf is None:
        buf = state[key] = like * 0
    return buf
