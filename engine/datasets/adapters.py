"""Adapters: datasets that wrap a dataset (spec §5.3). Here the range and the label subset.

:class:`RangeAdapter` is DIANNE's ``range`` key: ``[start, end)`` with the end **exclusive** (as
the original code does, although its docs say inclusive), or an explicit list of indices.
:class:`LabelAdapter` is DIANNE's ``labels`` + ``other`` keys, with one deliberate difference:
the original keeps every sample and gives the ones outside ``labels`` an all-zero target when
``other`` is false (an argmax then reads them as the first class); here those samples are
dropped, so every sample has exactly one class. With ``other`` true both agree: every sample is
kept, the ones outside ``labels`` go to an extra last class named ``"other"``. Adapters are
datasets, so they stack; batch access stays vectorised through the wrapped dataset.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.datasets.base import Dataset, stack_samples
from engine.errors import DatasetError


class Adapter(Dataset):
    """A dataset over ``base``: same samples, same targets, inputs passed through
    :meth:`adapt` (identity here). Subclasses change the index mapping (range, labels) or the
    inputs (the augmentations of ``engine.datasets.augment``)."""

    def __init__(self, base: Dataset, name: str | None = None) -> None:
        self.base = base
        self.name = name or base.name
        self.labels = list(base.labels)
        self.input_shape = None if base.input_shape is None else tuple(base.input_shape)
        self.classification = base.classification

    @property
    def target_size(self) -> int:
        return self.base.target_size if self.labels == self.base.labels else len(self.labels)

    def adapt(self, inputs: np.ndarray) -> np.ndarray:
        """Return the adapted batch ``inputs`` (N, ...); identity unless overridden."""
        return inputs

    def __len__(self) -> int:
        return len(self.base)

    def _inputs(self, idx: np.ndarray) -> np.ndarray:
        if self.base.input_shape is None:  # variable-size samples: adapt one by one
            return stack_samples(self.name, [self._input(i) for i in idx.tolist()])
        return self.adapt(self.base._inputs(idx))

    def _input(self, i: int) -> np.ndarray:
        return self.adapt(self.base._input(i)[None])[0]

    def _target_indices(self, idx: np.ndarray) -> np.ndarray:
        return self.base._target_indices(idx)

    def _target_vectors(self, idx: np.ndarray) -> np.ndarray:
        return self.base._target_vectors(idx)

    def _batch(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.base.input_shape is None:
            return self._inputs(idx), self._target_vectors(idx)
        inputs, targets = self.base._batch(idx)
        return self.adapt(inputs), targets


class RangeAdapter(Adapter):
    """The samples ``[start, end)`` of ``base``, or the samples at an explicit index list."""

    def __init__(
        self,
        base: Dataset,
        start: int | None = None,
        end: int | None = None,
        indices: Sequence[int] | np.ndarray | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(base, name)
        n = len(base)
        if indices is not None:
            if start is not None or end is not None:
                raise DatasetError(
                    f"RangeAdapter over {base.name!r}: give start/end or indices, not both. "
                    f"Received: start={start}, end={end}, indices"
                )
            idx = np.asarray(indices)
            if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
                raise DatasetError(
                    f"RangeAdapter over {base.name!r}: indices must be a list of integers. "
                    f"Received: {indices!r}"
                )
            idx = idx.astype(np.int64)
            bad = idx[(idx < 0) | (idx >= n)]
            if bad.size:
                raise DatasetError(
                    f"RangeAdapter over {base.name!r}: index out of range [0, {n}). "
                    f"Received: {int(bad[0])}"
                )
            self.start: int | None = None
            self.end: int | None = None
            self._idx = idx
        else:
            start = 0 if start is None else int(start)
            end = n if end is None else int(end)
            if not 0 <= start <= end <= n:
                raise DatasetError(
                    f"RangeAdapter over {base.name!r}: range must satisfy 0 <= start <= end <= "
                    f"{n} (end exclusive). Received: [{start}, {end})"
                )
            self.start, self.end = start, end
            self._idx = np.arange(start, end, dtype=np.int64)

    @classmethod
    def from_indices(cls, base: Dataset, indices: Sequence[int] | np.ndarray) -> RangeAdapter:
        """Return the adapter over an explicit index list (DIANNE: a range of >= 3 values)."""
        return cls(base, indices=indices)

    @property
    def indices(self) -> np.ndarray:
        """Return the indices into ``base``, in this dataset's order (int64, read-only copy)."""
        return self._idx.copy()

    def __len__(self) -> int:
        return len(self._idx)

    def _input(self, i: int) -> np.ndarray:
        return self.base._input(int(self._idx[i]))

    def _inputs(self, idx: np.ndarray) -> np.ndarray:
        return self.base._inputs(self._idx[idx])

    def _target_index(self, i: int) -> int:
        return self.base._target_index(int(self._idx[i]))

    def _target_indices(self, idx: np.ndarray) -> np.ndarray:
        return self.base._target_indices(self._idx[idx])

    def _target_vectors(self, idx: np.ndarray) -> np.ndarray:
        return self.base._target_vectors(self._idx[idx])

    def _batch(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.base._batch(self._idx[idx])


class LabelAdapter(Adapter):
    """Keep the classes ``labels`` (renumbered in that order), plus optionally ``"other"``."""

    def __init__(
        self, base: Dataset, labels: Sequence[str], other: bool = False, name: str | None = None
    ) -> None:
        super().__init__(base, name)
        if not base.classification:
            raise DatasetError(
                f"LabelAdapter over {base.name!r}: a label subset needs a classification "
                f"dataset. Received: labels={list(labels)}"
            )
        labels = [str(label) for label in labels]
        unknown = [label for label in labels if label not in base.labels]
        if not labels or unknown:
            raise DatasetError(
                f"LabelAdapter over {base.name!r}: labels must be a non-empty subset of "
                f"{base.labels}. Received: {unknown or labels}"
            )
        if len(set(labels)) != len(labels):
            raise DatasetError(
                f"LabelAdapter over {base.name!r}: labels must not repeat. Received: {labels}"
            )
        self.other = bool(other)
        self.labels = labels + (["other"] if self.other else [])
        # remap[base class] -> new class, -1 for a dropped class.
        fill = len(labels) if self.other else -1
        self._remap = np.full(len(base.labels), fill, dtype=np.int64)
        for k, label in enumerate(labels):
            self._remap[base.labels.index(label)] = k
        self._idx: np.ndarray | None = None
        self._targets: np.ndarray | None = None

    def _selection(self) -> tuple[np.ndarray, np.ndarray]:
        # Computed on first access (it reads every target of the base), not at construction.
        if self._idx is None or self._targets is None:
            base_targets = self.base._target_indices(np.arange(len(self.base), dtype=np.int64))
            mapped = self._remap[base_targets]
            self._idx = np.flatnonzero(mapped >= 0).astype(np.int64)
            self._targets = mapped[self._idx]
        return self._idx, self._targets

    @property
    def indices(self) -> np.ndarray:
        """Return the indices into ``base`` of the kept samples, in order (int64 copy)."""
        return self._selection()[0].copy()

    def __len__(self) -> int:
        if self.other:
            return len(self.base)  # every sample is kept; no need to read the targets
        return len(self._selection()[0])

    def _input(self, i: int) -> np.ndarray:
        return self.base._input(int(self._selection()[0][i]))

    def _inputs(self, idx: np.ndarray) -> np.ndarray:
        return self.base._inputs(self._selection()[0][idx])

    def _target_index(self, i: int) -> int:
        return int(self._selection()[1][i])

    def _target_indices(self, idx: np.ndarray) -> np.ndarray:
        return self._selection()[1][idx]

    def _target_vectors(self, idx: np.ndarray) -> np.ndarray:
        return Dataset._target_vectors(self, idx)

    def _batch(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return Dataset._batch(self, idx)
