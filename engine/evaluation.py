"""Classification evaluation (spec §6.2): accuracy, top-N, confusion matrix, forward time.

:func:`evaluate` runs a forward function over a dataset, one sample at a time (DIANNE's default
``batchSize`` 1) or in batches, and tallies the DIANNE ClassificationEvaluationStrategy results:
accuracy = 1 - error, the confusion matrix ``[target][predicted]`` (predicted = argmax of the
output, first maximum on ties as numpy's argmax), top-N accuracy from the rank of the true class,
and the mean forward time per sample in ms. Only the forward calls are timed
(``time.perf_counter_ns``; a batch's time is spread over its samples); ``total_ms`` is the wall
time of the whole loop, data access included.

Rank of the true class ``t`` in an output ``y``: the number of classes with ``y[c] > y[t]``
plus the number with ``y[c] == y[t]`` and ``c < t`` — the position of ``t`` in a *stable*
descending sort. So a tie is won by the lower class index, exactly as argmax picks, and top-1
always equals accuracy. NaN outputs are ranked as -inf (a NaN never wins).

For a network, :func:`evaluate_network` runs an Output in evaluation mode, :func:`per_class`
adds precision / recall / F1 per class, and :func:`evaluate_loss` gives the original's
CriterionEvaluationStrategy metric (the mean loss of a criterion).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.datasets.base import Dataset
from engine.errors import DianneError

Forward = Callable[[np.ndarray], np.ndarray]

_CHUNK = 1024  # single-sample outputs are tallied in blocks of this many rows


@dataclass
class Evaluation:
    """The result of :func:`evaluate`; ``to_json`` gives the wire/CLI form."""

    samples: int
    accuracy: float
    confusion: list[list[int]]
    forward_ms: float
    total_ms: float
    labels: list[str]
    topn: dict[int, float] = field(default_factory=dict)

    @property
    def error(self) -> float:
        """Return the error rate (DIANNE's classification ``metric``): 1 - accuracy."""
        return 1.0 - self.accuracy

    @property
    def top3(self) -> float | None:
        """Return the top-3 accuracy (None if it was not computed)."""
        return self.topn.get(3)

    @property
    def top5(self) -> float | None:
        """Return the top-5 accuracy (None if it was not computed)."""
        return self.topn.get(5)

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict: accuracy, top3, samples, confusion, forward_ms + extras."""
        out: dict[str, Any] = {
            "accuracy": self.accuracy,
            "top3": self.top3,
            "samples": self.samples,
            "confusion": [list(row) for row in self.confusion],
            "forward_ms": self.forward_ms,
        }
        for n in sorted(self.topn):
            if n not in (1, 3):
                out[f"top{n}"] = self.topn[n]
        out.update(error=self.error, total_ms=self.total_ms, labels=list(self.labels))
        return out


class _Tally:
    """Running confusion matrix and top-N hit counts, updated from blocks of outputs."""

    def __init__(self, labels: Sequence[str], top_n: Sequence[int], dataset_name: str) -> None:
        self.n_classes = len(labels)
        self.dataset_name = dataset_name
        self.top_n = sorted(set(top_n))
        self.confusion = np.zeros(self.n_classes * self.n_classes, dtype=np.int64)
        self.hits = dict.fromkeys(self.top_n, 0)
        self._buf = np.empty((_CHUNK, self.n_classes), dtype=np.float64)
        self._buf_targets = np.empty(_CHUNK, dtype=np.int64)
        self._k = 0

    def check(self, output: Any, rows: int) -> np.ndarray:
        """Return ``output`` as ``(rows, n_classes)``; DianneError naming both class counts."""
        out = np.asarray(output)
        if out.size != rows * self.n_classes or (out.ndim > 1 and out.shape[-1] != self.n_classes):
            found = out.shape[-1] if out.ndim else out.size
            raise DianneError(
                f"The network outputs {found} classes but dataset {self.dataset_name!r} has "
                f"{self.n_classes} labels. Received: output shape {out.shape}"
            )
        return out.reshape(rows, self.n_classes)

    def add_one(self, output: np.ndarray, target: int) -> None:
        self._buf[self._k] = output[0]
        self._buf_targets[self._k] = target
        self._k += 1
        if self._k == _CHUNK:
            self.flush()

    def flush(self) -> None:
        if self._k:
            self.add(self._buf[: self._k], self._buf_targets[: self._k])
            self._k = 0

    def add(self, outputs: np.ndarray, targets: np.ndarray) -> None:
        """Tally a block ``outputs`` (N, C) against class indices ``targets`` (N,)."""
        if np.isnan(outputs).any():
            outputs = np.where(np.isnan(outputs), -np.inf, outputs)
        rows = np.arange(len(targets))
        predicted = outputs.argmax(axis=1)
        self.confusion += np.bincount(
            targets * self.n_classes + predicted, minlength=self.n_classes**2
        )
        true_score = outputs[rows, targets][:, None]
        before = np.arange(self.n_classes)[None, :] < targets[:, None]
        rank = (outputs > true_score).sum(axis=1) + ((outputs == true_score) & before).sum(axis=1)
        for n in self.top_n:
            self.hits[n] += int((rank < n).sum())


def evaluate(
    forward: Forward,
    dataset: Dataset,
    batch_size: int = 1,
    progress: Callable[[int, int], None] | None = None,
    top_n: Sequence[int] = (1, 3),
) -> Evaluation:
    """Evaluate a classifier ``forward`` on every sample of ``dataset``.

    ``forward`` maps one input (shape ``dataset.input_shape``, when ``batch_size`` is 1) or a
    batch ``(N, *input_shape)`` to scores ``(n_classes,)`` or ``(N, n_classes)`` as a host
    (numpy) array — a device backend should copy to the host inside ``forward`` so that the
    timing includes finishing the computation. ``progress(done, total)`` is called after each
    batch. Top-1 and top-3 are always computed, plus any N in ``top_n``. Raises DianneError on
    an empty dataset, a bad batch size, or outputs whose class count differs from the labels.
    """
    total = len(dataset)
    if total == 0:
        raise DianneError(
            f"Nothing to evaluate: dataset {dataset.name!r} has no samples. Received: 0 samples"
        )
    if int(batch_size) < 1:
        raise DianneError(f"The batch size must be at least 1. Received: {batch_size}")
    batch_size = int(batch_size)
    ns = sorted({int(n) for n in top_n} | {1, 3})
    if ns[0] < 1:
        raise DianneError(f"Top-N needs N >= 1. Received: {list(top_n)}")
    tally = _Tally(dataset.labels, ns, dataset.name)
    targets = dataset.target_indices(range(total))
    forward_ns = 0
    clock = time.perf_counter_ns
    start = clock()
    if batch_size == 1:
        for i in range(total):
            x = dataset.input(i)
            t0 = clock()
            y = forward(x)
            forward_ns += clock() - t0
            tally.add_one(tally.check(y, 1), int(targets[i]))
            if progress is not None:
                progress(i + 1, total)
        tally.flush()
    else:
        for lo in range(0, total, batch_size):
            hi = min(lo + batch_size, total)
            x = dataset.inputs(range(lo, hi))
            t0 = clock()
            y = forward(x)
            forward_ns += clock() - t0
            tally.add(tally.check(y, hi - lo).astype(np.float64, copy=False), targets[lo:hi])
            if progress is not None:
                progress(hi, total)
    total_ns = clock() - start
    confusion = tally.confusion.reshape(tally.n_classes, tally.n_classes)
    correct = int(np.trace(confusion))
    return Evaluation(
        samples=total,
        accuracy=correct / total,
        confusion=confusion.tolist(),
        forward_ms=forward_ns / total / 1e6,
        total_ms=total_ns / 1e6,
        labels=list(dataset.labels),
        topn={n: tally.hits[n] / total for n in ns},
    )


def per_class(confusion: Sequence[Sequence[int]], labels: Sequence[str]) -> dict[str, dict]:
    """Precision, recall and F1 of every class from a confusion matrix [target][predicted]
    (the original's per-class helpers); a class never predicted / never present gets 0."""
    m = np.asarray(confusion, dtype=np.int64)
    tp = np.diag(m)
    predicted, actual = m.sum(axis=0), m.sum(axis=1)
    out = {}
    for k, label in enumerate(labels):
        p = tp[k] / predicted[k] if predicted[k] else 0.0
        r = tp[k] / actual[k] if actual[k] else 0.0
        out[str(label)] = {"precision": float(p), "recall": float(r),
                           "f1": float(2 * p * r / (p + r)) if p + r else 0.0,
                           "support": int(actual[k])}
    return out


def evaluate_network(net: Any, dataset: Dataset, output: str | None = None,
                     batch_size: int = 256, top_n: Sequence[int] = (1, 3),
                     progress: Callable[[int, int], None] | None = None) -> Evaluation:
    """:func:`evaluate` of an ``engine.graph.Network`` Output (the only one when None) in
    evaluation mode (Dropout off, BatchNormalization on running statistics); the network's
    training mode is restored afterwards."""
    oid = net._resolve(output, "Output") if output else net.single_output()
    modes = {mid: mod.training for mid, mod in net.modules.items()}
    net.eval()
    try:
        return evaluate(lambda x: net.backend.to_host(net.forward(x, outputs=oid)), dataset,
                        batch_size=batch_size, progress=progress, top_n=top_n)
    finally:
        for mid, mod in net.modules.items():
            mod.train(modes[mid])


def evaluate_loss(net: Any, dataset: Dataset, criterion: Any, output: str | None = None,
                  batch_size: int = 256) -> float:
    """The original's CriterionEvaluationStrategy metric: the mean per-sample loss of
    ``criterion`` (an ``engine.losses.Criterion``) over ``dataset``, in evaluation mode."""
    oid = net._resolve(output, "Output") if output else net.single_output()
    if len(dataset) == 0:
        raise DianneError(f"Nothing to evaluate: dataset {dataset.name!r} has no samples. "
                          f"Received: 0 samples")
    modes = {mid: mod.training for mid, mod in net.modules.items()}
    net.eval()
    total = 0.0
    try:
        for lo in range(0, len(dataset), batch_size):
            x, t = dataset.batch(range(lo, min(lo + batch_size, len(dataset))))
            y = net.forward(net.backend.asarray(x), outputs=oid)
            total += float(criterion.losses(y, net.backend.asarray(t)).sum())
    finally:
        for mid, mod in net.modules.items():
            mod.train(modes[mid])
    return total / len(dataset)
