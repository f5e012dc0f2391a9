"""Big-Little measured: both parts on every sample once (:func:`measure`), then the outcome of
any threshold from those measurements (:func:`sweep`): the trade-off curve behind
``dianne biglittle sweep`` (keys :data:`ROW_KEYS`, see ``docs/biglittle.md``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.biglittle import PartRunner, Parts, decide
from engine.link import Link
from engine.subnet import probabilities

DEFAULT_THRESHOLDS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999,
                      0.9999)
ROW_KEYS = ("threshold", "forwarded", "accuracy", "priority_recall", "priority_precision",
            "big_accuracy", "latency_ms_mean", "latency_ms_p99", "always_big_latency_ms_mean",
            "bytes_sent")


@dataclass
class Measurements:
    """Both parts run on every sample once: what any threshold's outcome is computed from."""

    parts: Parts
    targets: np.ndarray  # (N,) index into big_labels
    little_probs: np.ndarray  # (N, C_little)
    big_pred: np.ndarray  # (N,) index into big_labels
    little_ms: np.ndarray  # (N,) device part
    forward_ms: np.ndarray  # (N,) round trip device -> big part -> device, link included
    payload_bytes: np.ndarray  # (N,) bytes sent when the sample is forwarded


def measure(runner: PartRunner, parts: Parts, inputs: Sequence[np.ndarray] | np.ndarray,
            targets: Sequence[int] | np.ndarray, link: Link | None = None,
            progress: Callable[[int, int], None] | None = None) -> Measurements:
    """Run the little and the big part on every sample, one sample at a time, timing each.

    ``link`` is a *modelled* link added to the measured round trip (for an in-process runner
    without emulation); a runner that emulates its link (agents, a LocalRunner with ``link``)
    is timed as is and takes ``link=None``.
    """
    n = len(targets)
    little_probs = np.zeros((n, len(parts.little_labels)))
    big_pred = np.zeros(n, dtype=np.int64)
    little_ms, forward_ms, nbytes = np.zeros(n), np.zeros(n), np.zeros(n, dtype=np.int64)
    for i in range(n):
        t0 = time.perf_counter()
        little, payload = runner.little(inputs[i])
        t1 = time.perf_counter()
        big = runner.big(payload)
        t2 = time.perf_counter()
        little_probs[i] = probabilities(np.ravel(little), parts.little_kind)
        big_pred[i] = int(np.argmax(np.ravel(big)))
        little_ms[i], forward_ms[i] = (t1 - t0) * 1e3, (t2 - t1) * 1e3
        nbytes[i] = payload.nbytes
        if link is not None:
            forward_ms[i] += link.transfer_ms(payload.nbytes) + link.transfer_ms(big.nbytes)
        if progress is not None:
            progress(i + 1, n)
    return Measurements(parts, np.asarray(targets, dtype=np.int64), little_probs, big_pred,
                        little_ms, forward_ms, nbytes)


def sweep(m: Measurements, thresholds: Sequence[float] = DEFAULT_THRESHOLDS
          ) -> list[dict[str, Any]]:
    """One row per threshold, keys :data:`ROW_KEYS` (see ``docs/biglittle.md``)."""
    parts = m.parts
    prio_big = np.array([c in parts.policy.priority for c in parts.big_labels])
    is_prio = prio_big[m.targets]
    always_big = m.forward_ms + (m.little_ms if parts.policy.features else 0.0)
    rows = []
    for t in thresholds:
        local, top = decide(m.little_probs, parts, t)
        pred = np.where(local, parts.local_class[top], m.big_pred)
        right = pred == m.targets
        said_prio = (pred >= 0) & prio_big[np.maximum(pred, 0)]
        latency = m.little_ms + np.where(local, 0.0, m.forward_ms)
        rows.append({
            "threshold": float(t),
            "forwarded": float(np.mean(~local)),
            "accuracy": float(np.mean(right)),
            "priority_recall": _ratio(np.sum(right & is_prio), np.sum(is_prio)),
            "priority_precision": _ratio(np.sum(right & said_prio), np.sum(said_prio)),
            "big_accuracy": float(np.mean(m.big_pred == m.targets)),
            "latency_ms_mean": float(np.mean(latency)),
            "latency_ms_p99": float(np.percentile(latency, 99)),
            "always_big_latency_ms_mean": float(np.mean(always_big)),
            "bytes_sent": int(np.sum(m.payload_bytes[~local])),
        })
    return rows


def _ratio(num: Any, den: Any) -> float | None:
    return float(num) / float(den) if den else None
