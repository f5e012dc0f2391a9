"""Mini-batch training of a network on a dataset (spec §6.1), as pure engine code.

:class:`TrainConfig` reads the original's flat option map (values may be strings):
``method``, ``criterion`` (default MSE, as in the original; ``AUTO`` picks from the network),
``learningRate``, ``batchSize`` (1), ``batchAverage`` (true), ``momentum``, ``nesterov``, ``l2``,
``decayRate``/``decayType``/``minLearningRate``, ``beta1``/``beta2``/``epsilon``, ``sampling``
(UNIFORM), ``clean``, ``tag``, ``initTag``, ``storeInterval`` (0), ``traceInterval`` (progress
every N iterations; 10 here), ``validationInterval``, ``fixed`` (module UUIDs not trained),
``maxIterations``; other keys (dataset adapters, ``weightedRanges``, ...) are kept in
``options`` and ignored here, as in the original.

:class:`Trainer` runs iterations of the original's FeedForward strategy — zero gradients, fetch
a batch, forward (batch axis in front, through ``engine.graph.Network``), loss = mean of the
per-sample criterion, backward from the trained Output, ``param += delta`` — with no threads
and no I/O: progress, snapshots and the stop request go through callbacks. Snapshots are
handed to ``on_snapshot(tags, weights)``: every ``storeInterval`` iterations with tags
``[tag, "<iteration>"]``, on a better validation accuracy ``[tag, "best"]``, and once at the end
``[tag]`` (the final weights, also after a stop). A NaN/inf loss stops the run (as the
original) and puts back the last good weights: those of the start, the last epoch end or the
last validation whose next loss was finite. Only modules the trained Output depends on (minus
``fixed``) are updated, and ``clean`` re-initialises only those.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine import blas
from engine.datasets.base import Dataset
from engine.datasets.chain import reseed
from engine.datasets.sampling import KINDS, Sampler
from engine.errors import DianneError
from engine.evaluation import evaluate_network
from engine.graph import Network
from engine.losses import criterion_name, make_criterion
from engine.optim import METHODS, Optimizer

Progress = Callable[[dict[str, Any]], None]
Snapshot = Callable[[list[str], dict[str, np.ndarray]], None]

_TRUE = ("true", "1", "yes")


def _int(options: Mapping[str, Any], key: str, default: int | None) -> int | None:
    raw = options.get(key)
    if raw is None or str(raw).strip() == "":
        return default
    try:
        value = float(str(raw).strip())
    except ValueError:
        raise DianneError(f"option {key!r} takes an integer. Received: {raw!r}") from None
    if not value.is_integer():
        raise DianneError(f"option {key!r} takes an integer. Received: {raw!r}")
    return int(value)


def _text(options: Mapping[str, Any], key: str) -> str | None:
    raw = options.get(key)
    return None if raw is None or str(raw).strip() == "" else str(raw).strip()


@dataclass
class TrainConfig:
    """Learner settings; build with :meth:`from_options` from a flat DIANNE option map."""

    method: str = "SGD"
    criterion: str = "MSE"
    batch_size: int = 1
    batch_average: bool = True
    sampling: str = "UNIFORM"
    clean: bool = False
    tag: str | None = None
    init_tag: str | None = None
    store_interval: int = 0
    trace_interval: int = 10
    validation_interval: int | None = None
    fixed: tuple[str, ...] = ()
    max_iterations: int | None = None
    options: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_options(cls, opts: Mapping[str, Any]) -> TrainConfig:
        """Read the original's flat key map; unknown keys are kept in ``options``."""
        options = {str(k): ("" if v is None else str(v).strip()) for k, v in opts.items()
                   if v is not None}
        method = (_text(options, "method") or "SGD").upper()
        if method not in METHODS:
            raise DianneError(f"unknown method (known: {', '.join(METHODS)}). "
                              f"Received: {opts.get('method')!r}")
        sampling = (_text(options, "sampling") or "UNIFORM").upper()
        if sampling not in KINDS:
            raise DianneError(f"unknown sampling (known: {', '.join(KINDS)}). "
                              f"Received: {opts.get('sampling')!r}")
        batch = _int(options, "batchSize", 1)
        if batch is None or batch < 1:
            raise DianneError(f"batchSize must be at least 1. Received: {opts.get('batchSize')!r}")
        fixed = tuple(s.strip().lower() for s in (options.get("fixed") or "").split(",")
                      if s.strip())
        max_it = _int(options, "maxIterations", -1)
        return cls(
            method=method,
            criterion=criterion_name(_text(options, "criterion") or "MSE"),
            batch_size=batch,
            batch_average=(options.get("batchAverage") or "true").lower() in _TRUE,
            sampling=sampling,
            clean=(options.get("clean") or "false").lower() in _TRUE,
            tag=_text(options, "tag"),
            init_tag=_text(options, "initTag"),
            store_interval=max(0, _int(options, "storeInterval", 0) or 0),
            trace_interval=max(1, _int(options, "traceInterval", 10) or 10),
            validation_interval=_int(options, "validationInterval", None),
            fixed=fixed,
            max_iterations=None if max_it is None or max_it < 0 else max_it,
            options={**options, "method": method},
        )


def auto_criterion(net: Network, output: str, classification: bool = True) -> str:
    """The criterion that fits the module feeding ``output``: NLL after LogSoftmax/Softmax,
    BCE after Sigmoid, else CE on logits (MSE for a dataset without classes)."""
    feeding = [net.modules[p].type_name for p in net.pred[output]]
    if feeding and feeding[0] in ("LogSoftmax", "Softmax"):
        return "NLL"
    if feeding and feeding[0] == "Sigmoid":
        return "BCE"
    return "CE" if classification else "MSE"


def upstream(net: Network, output: str) -> set[str]:
    """The ids of ``output`` and every module it depends on."""
    needed, stack = set(), [output]
    while stack:
        m = stack.pop()
        if m not in needed:
            needed.add(m)
            stack.extend(net.pred[m])
    return needed


def trainable_params(net: Network, output: str, fixed: tuple[str, ...] = ()) -> list[tuple]:
    """``(param, grad)`` pairs of the modules ``output`` depends on, except ``fixed`` ones."""
    needed = upstream(net, output)
    return [(mod.params[name], grad) for mid, mod in net.modules.items()
            if mid in needed and mid.lower() not in fixed for name, grad in mod.grads.items()]


class Trainer:
    """Trains ``net`` in place on ``train_set`` with ``config`` (see the module docstring)."""

    def __init__(self, net: Network, train_set: Dataset, config: TrainConfig, *,
                 validation: Dataset | None = None, seed: int = 0,
                 output: str | None = None) -> None:
        self.net, self.train_set, self.config, self.validation = net, train_set, config, validation
        self.output = net._resolve(output, "Output") if output else net.single_output()
        labels = net.labels(self.output)
        if labels and train_set.classification and len(labels) != len(train_set.labels):
            raise DianneError(f"{net.description.name}: the Output has {len(labels)} labels "
                              f"{labels} but dataset {train_set.name!r} has "
                              f"{len(train_set.labels)} {train_set.labels}")
        name = config.criterion
        if name == "AUTO":
            name = auto_criterion(net, self.output, train_set.classification)
        self.criterion = make_criterion(name, config.batch_average, net.xp)
        if config.clean:  # only what this Output depends on: another branch keeps its weights
            rng, needed = np.random.default_rng(seed), upstream(net, self.output)
            for mid, mod in net.modules.items():
                if mid in needed:
                    mod.reset(rng)
        for k, mod in enumerate(net.modules.values()):
            mod.rng = np.random.default_rng([seed, k])  # Dropout & co.: repeatable too
        reseed(train_set, seed)
        self.optimizer = Optimizer(trainable_params(net, self.output, config.fixed),
                                   config.options)
        # zero_grad of every module that has gradients, without the per-module calls
        self._grads = [g for mod in net.modules.values() for g in mod.grads.values()]
        self.sampler = Sampler(config.sampling, train_set, np.random.default_rng(seed),
                               config.options)
        self.iteration = 0
        self.iterations_per_epoch = math.ceil(len(train_set) / config.batch_size)
        self.best_val_accuracy: float | None = None
        # Weights known to give a finite loss, and a copy waiting for that confirmation.
        self._good = net.get_weights()
        self._pending: dict[str, np.ndarray] | None = None

    # ------------------------------------------------------------------ helpers
    def validate(self) -> float | None:
        """Accuracy on the validation set (None without one, or without classes)."""
        if self.validation is None or not self.validation.classification:
            return None
        return evaluate_network(self.net, self.validation, self.output,
                                batch_size=max(256, self.config.batch_size)).accuracy

    def _tags(self, *extra: str) -> list[str]:
        return [t for t in (self.config.tag, *extra) if t]

    def _step(self) -> tuple[float, int, int]:
        """One iteration; returns (loss, correct, samples)."""
        net, crit = self.net, self.criterion
        x, t = self.train_set.batch(self.sampler.batch(self.config.batch_size))
        for grad in self._grads:
            grad.fill(0)
        y = net.forward(net.backend.asarray(x), outputs=self.output)
        t_dev = net.backend.asarray(t)
        loss, grad_out = crit.loss_and_grad(y, t_dev)
        if not math.isfinite(loss):
            return loss, 0, len(x)
        if self._pending is not None:  # the weights of the last checkpoint gave a finite loss
            self._good, self._pending = self._pending, None
        net.backward({self.output: grad_out}, input_grads=False)
        self.optimizer.step(self.iteration)
        self.iteration += 1
        correct = 0
        if self.train_set.classification:
            rows = y.reshape(len(x), -1)
            correct = int((rows.argmax(axis=1) == t_dev.argmax(axis=1)).sum())
        return loss, correct, len(x)

    # ------------------------------------------------------------------ the loop
    def run(self, *, epochs: float | None = None, iterations: int | None = None,
            on_progress: Progress | None = None, should_stop: Callable[[], bool] | None = None,
            on_snapshot: Snapshot | None = None) -> dict[str, Any]:
        """Train for ``epochs`` (passes over the training set) or ``iterations``; default
        ``maxIterations`` of the config, else one epoch. Returns a summary dict: iterations,
        epochs, train_loss (mean over the last epoch), train_accuracy, val_accuracy,
        best_val_accuracy, criterion, seconds, samples_per_s, stopped ("done", "stopped" or
        "nan")."""
        cfg, per_epoch = self.config, self.iterations_per_epoch
        if epochs is not None and iterations is not None:
            raise DianneError(f"give epochs or iterations, not both. Received: epochs={epochs}, "
                              f"iterations={iterations}")
        if epochs is not None:
            total = max(1, round(float(epochs) * per_epoch))
        else:
            total = iterations if iterations is not None else (cfg.max_iterations or per_epoch)
        if total < 1:
            raise DianneError(f"nothing to train: need at least one iteration. Received: {total}")
        state = _RunState(val_every=cfg.validation_interval or (
            None if epochs is not None else 1000), by_epoch=epochs is not None)
        self.net.train()
        # a NaN loss is handled in the loop; BLAS on one thread (see engine.blas.pinned)
        with np.errstate(over="ignore", invalid="ignore"), blas.pinned(1):
            for _ in range(total):
                if should_stop is not None and should_stop():
                    state.stopped = "stopped"
                    break
                loss, correct, n = self._step()
                if not math.isfinite(loss):
                    state.stopped = "nan"
                    self.net.set_weights(self._good)
                    break
                self._after_step(state, loss, correct, n, on_progress, on_snapshot)
        return self._finish(state, on_snapshot)

    def _after_step(self, st: _RunState, loss: float, correct: int, n: int,
                    on_progress: Progress | None, on_snapshot: Snapshot | None) -> None:
        """Bookkeeping after an iteration: statistics, validation, snapshots, progress."""
        cfg, it = self.config, self.iteration
        st.samples += n
        for acc in (st.window, st.epoch):
            acc[:] = [acc[0] + loss, acc[1] + correct, acc[2] + n, acc[3] + 1]
        epoch_end = it % self.iterations_per_epoch == 0
        if epoch_end:
            st.close_epoch()
        st.measured = None
        if self.validation is not None and (
                (st.val_every and it % st.val_every == 0) or (epoch_end and st.by_epoch)):
            t0 = time.perf_counter()
            st.measured = st.val_acc = self.validate()
            self._pending = self.net.get_weights()
            self._maybe_best(st.val_acc, self._pending, on_snapshot)
            st.spent_eval += time.perf_counter() - t0
        elif epoch_end:
            self._pending = self.net.get_weights()
        if cfg.store_interval and it % cfg.store_interval == 0 and on_snapshot is not None:
            on_snapshot(self._tags(str(it)), self.net.get_weights())
        if on_progress is not None and (it % cfg.trace_interval == 0 or epoch_end):
            w, elapsed = st.window, time.perf_counter() - st.start
            on_progress({
                "iteration": it, "epoch": round(it / self.iterations_per_epoch, 4),
                "loss": w[0] / w[3],
                "train_accuracy": w[1] / w[2] if self.train_set.classification else None,
                "val_accuracy": st.measured,
                "samples_per_s": st.rate(),
                "elapsed_s": elapsed,
            })
            st.window[:] = [0.0, 0, 0, 0]

    def _maybe_best(self, accuracy: float | None, weights: dict[str, np.ndarray],
                    on_snapshot: Snapshot | None) -> None:
        if accuracy is not None and (self.best_val_accuracy is None
                                     or accuracy > self.best_val_accuracy):
            self.best_val_accuracy = accuracy
            if on_snapshot is not None:
                on_snapshot(self._tags("best"), weights)

    def _finish(self, st: _RunState, on_snapshot: Snapshot | None) -> dict[str, Any]:
        if st.epoch[3] and st.last_loss is None:  # no full epoch in this run: the partial one
            st.close_epoch()
        rate = st.rate()
        if self.validation is not None and st.stopped != "nan" and st.measured is None:
            st.val_acc = self.validate()
            self._maybe_best(st.val_acc, self.net.get_weights(), on_snapshot)
        if on_snapshot is not None:
            on_snapshot(self._tags(), self.net.get_weights())
        classes = self.train_set.classification
        return {
            "iterations": self.iteration,
            "epochs": round(self.iteration / self.iterations_per_epoch, 4),
            "train_loss": st.last_loss,
            "train_accuracy": st.last_accuracy if classes else None,
            "val_accuracy": st.val_acc,
            "best_val_accuracy": self.best_val_accuracy,
            "criterion": self.criterion.name,
            "seconds": time.perf_counter() - st.start,
            "samples_per_s": rate,
            "stopped": st.stopped,
        }


@dataclass
class _RunState:
    """Counters of one :meth:`Trainer.run`: [loss sum, correct, samples, iterations] since the
    last progress report (``window``) and since the epoch began (``epoch``)."""

    val_every: int | None
    by_epoch: bool
    start: float = field(default_factory=time.perf_counter)
    window: list = field(default_factory=lambda: [0.0, 0, 0, 0])
    epoch: list = field(default_factory=lambda: [0.0, 0, 0, 0])
    last_loss: float | None = None
    last_accuracy: float | None = None
    val_acc: float | None = None
    measured: float | None = None
    stopped: str = "done"
    samples: int = 0
    spent_eval: float = 0.0

    def close_epoch(self) -> None:
        loss, correct, n, its = self.epoch
        self.last_loss, self.last_accuracy = loss / its, correct / n
        self.epoch[:] = [0.0, 0, 0, 0]

    def rate(self) -> float:
        """Training samples per second, validation time excluded."""
        return self.samples / max(time.perf_counter() - self.start - self.spent_eval, 1e-9)
