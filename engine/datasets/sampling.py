"""Mini-batch sampling strategies of DIANNE's learner (spec §6.1, key ``sampling``).

* ``UNIFORM`` (the original's default) — random samples with replacement;
* ``SEQUENTIAL`` — 0, 1, 2, ... cycling;
* ``PERMUTATION`` — every sample once per epoch, reshuffled each epoch;
* ``WEIGHTED`` — ``weightedRanges`` (``start,end`` pairs) chosen with ``probabilities``, then a
  uniform sample within the chosen range;
* ``UNIFORMCLASS`` — cycles over the classes, a random sample of each in turn.

``SEQUENTIAL`` and ``PERMUTATION`` end an epoch with a short batch, so that a run of N epochs
visits every sample exactly N times; the others always return full batches.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from engine.datasets.base import Dataset
from engine.datasets.chain import numbers
from engine.errors import DatasetError

KINDS = ("UNIFORM", "SEQUENTIAL", "PERMUTATION", "WEIGHTED", "UNIFORMCLASS")


class Sampler:
    """Draws index batches from ``[0, n)`` with one of :data:`KINDS`."""

    def __init__(self, kind: str, dataset: Dataset, rng: np.random.Generator,
                 options: Mapping[str, Any] | None = None) -> None:
        self.kind = str(kind).strip().upper()
        if self.kind not in KINDS:
            raise DatasetError(f"unknown sampling (known: {', '.join(KINDS)}). Received: {kind!r}")
        self.n = len(dataset)
        if self.n == 0:
            raise DatasetError(f"cannot sample from the empty dataset {dataset.name!r}. "
                               f"Received: 0 samples")
        self.rng = rng
        self._order = np.arange(self.n)
        self._pos = 0
        if self.kind == "PERMUTATION":
            self._order = rng.permutation(self.n)
        elif self.kind == "WEIGHTED":
            self._weighted(options or {})
        elif self.kind == "UNIFORMCLASS":
            targets = dataset.target_indices(range(self.n))
            self._by_class = [np.flatnonzero(targets == c) for c in np.unique(targets)]
            self._next_class = 0

    def _weighted(self, options: Mapping[str, Any]) -> None:
        bounds = numbers(options.get("weightedRanges", ""), "weightedRanges", int)
        probs = numbers(options.get("probabilities", ""), "probabilities")
        if not bounds or len(bounds) % 2 or len(probs) != len(bounds) // 2:
            raise DatasetError(f"WEIGHTED sampling needs weightedRanges (start,end pairs) and one "
                               f"probability per range. Received: {bounds}, {probs}")
        self._ranges = [(bounds[k], bounds[k + 1]) for k in range(0, len(bounds), 2)]
        if any(not 0 <= a < b <= self.n for a, b in self._ranges) or min(probs) < 0:
            raise DatasetError(f"weightedRanges must lie in [0, {self.n}) with positive "
                               f"probabilities. Received: {self._ranges}, {probs}")
        p = np.asarray(probs, dtype=np.float64)
        self._probs = p / p.sum()

    def batch(self, size: int) -> np.ndarray:
        """The next ``size`` indices (fewer at the end of an epoch, see the module doc)."""
        if self.kind == "UNIFORM":
            return self.rng.integers(0, self.n, size=size)
        if self.kind in ("SEQUENTIAL", "PERMUTATION"):
            if self._pos >= self.n:
                self._pos = 0
                if self.kind == "PERMUTATION":
                    self._order = self.rng.permutation(self.n)
            out = self._order[self._pos:self._pos + size]
            self._pos += len(out)
            return out
        if self.kind == "WEIGHTED":
            which = self.rng.choice(len(self._ranges), size=size, p=self._probs)
            lo = np.array([self._ranges[w][0] for w in which])
            hi = np.array([self._ranges[w][1] for w in which])
            return lo + (self.rng.random(size) * (hi - lo)).astype(np.int64)
        out = np.empty(size, dtype=np.int64)
        for k in range(size):
            members = self._by_class[self._next_class]
            out[k] = members[self.rng.integers(len(members))]
            self._next_class = (self._next_class + 1) % len(self._by_class)
        return out
