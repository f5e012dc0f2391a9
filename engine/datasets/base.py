"""The dataset contract: indexed samples with a channels-first input and a class target.

A :class:`Dataset` is a read-only, indexable collection (spec §5): sample ``i`` has an input of
shape ``input_shape`` (float32, images in [0,1] as bytes/255) and a target that is one of
``labels`` (one-hot float32 when asked as a vector, spec §4.1). Index order is the split
convention of the original (for MNIST: official train first, then test), so splits are plain
index ranges (spec §5.4). Subclasses implement the two batch hooks ``_inputs`` and
``_target_indices`` (vectorised where the storage allows) and may override the single-sample
hooks ``_input`` / ``_target_index`` for speed; the public methods check indices once and raise
:class:`~engine.errors.DatasetError` naming the dataset.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from engine.errors import DatasetError

Indices = Sequence[int] | np.ndarray | range | slice


class Dataset:
    """Base class of every dataset and adapter. Attributes are set by the subclass.

    ``input_shape`` is None for a dataset of variable-size images (ImageNet before a ``frame``
    adapter): single samples then work, a batch only when its samples agree. ``classification``
    is False for a dataset whose targets are real vectors (CSV regression, autoencoder); its
    ``target_indices`` are then the argmax of the vectors.
    """

    name: str = "dataset"
    labels: list[str]
    input_shape: tuple[int, ...] | None
    classification: bool = True

    @property
    def target_size(self) -> int:
        """Return the length of one target vector (the class count for classification)."""
        return len(self.labels)

    # ---- what a subclass provides -------------------------------------------------------------

    def __len__(self) -> int:
        raise NotImplementedError

    def _inputs(self, idx: np.ndarray) -> np.ndarray:
        """Return inputs for checked int64 indices ``idx`` as ``(N, *input_shape)`` float32."""
        if self.input_shape is None:
            return stack_samples(self.name, [self._input(i) for i in idx.tolist()])
        out = np.empty((len(idx), *self.input_shape), dtype=np.float32)
        for k, i in enumerate(idx.tolist()):
            out[k] = self._input(i)
        return out

    def _target_indices(self, idx: np.ndarray) -> np.ndarray:
        """Return the class indices (int64) of checked indices ``idx``."""
        return np.fromiter((self._target_index(i) for i in idx.tolist()), np.int64, len(idx))

    def _target_vectors(self, idx: np.ndarray) -> np.ndarray:
        """Return the target vectors ``(N, target_size)`` float32 (default: one-hot)."""
        targets = self._target_indices(idx)
        out = np.zeros((len(idx), self.target_size), dtype=np.float32)
        out[np.arange(len(idx)), targets] = 1.0
        return out

    def _batch(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return inputs and target vectors of checked indices together (one draw of any
        random adapter serves both, which the autoencoder adapter needs)."""
        return self._inputs(idx), self._target_vectors(idx)

    def _input(self, i: int) -> np.ndarray:
        """Return the input of one checked index (default: a batch of one)."""
        return self._inputs(np.array([i], dtype=np.int64))[0]

    def _target_index(self, i: int) -> int:
        """Return the class index of one checked index (default: a batch of one)."""
        return int(self._target_indices(np.array([i], dtype=np.int64))[0])

    # ---- public API ---------------------------------------------------------------------------

    def input(self, i: int) -> np.ndarray:
        """Return sample ``i``'s input, float32 of shape ``input_shape``."""
        return self._input(self._check_index(i))

    def target_index(self, i: int) -> int:
        """Return sample ``i``'s class index into ``labels``."""
        return self._target_index(self._check_index(i))

    def target(self, i: int) -> np.ndarray:
        """Return sample ``i``'s target vector (one-hot float32 of ``len(labels)`` classes)."""
        return self._target_vectors(np.array([self._check_index(i)], dtype=np.int64))[0]

    def inputs(self, indices: Indices) -> np.ndarray:
        """Return the inputs of ``indices`` as one float32 batch ``(N, *input_shape)``."""
        return self._inputs(self._check_indices(indices))

    def target_indices(self, indices: Indices) -> np.ndarray:
        """Return the class indices of ``indices`` as an int64 array."""
        return self._target_indices(self._check_indices(indices))

    def targets(self, indices: Indices) -> np.ndarray:
        """Return the target vectors of ``indices`` as float32 ``(N, target_size)`` (one-hot
        for classification)."""
        return self._target_vectors(self._check_indices(indices))

    def batch(self, indices: Indices) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(inputs, targets)`` of ``indices``: float32 ``(N, *input_shape)`` and
        ``(N, target_size)`` — what a training step consumes."""
        return self._batch(self._check_indices(indices))

    def __iter__(self) -> Iterator[tuple[np.ndarray, int]]:
        """Yield ``(input, target_index)`` pairs in index order."""
        for i in range(len(self)):
            yield self._input(i), self._target_index(i)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: {len(self)} samples, {self.input_shape}>"

    # ---- index checks -------------------------------------------------------------------------

    def _check_index(self, i: int) -> int:
        # Negative indices are refused rather than wrapped: a wrong split bound must not silently
        # read from the other end of the dataset.
        try:
            j = int(i)
        except (TypeError, ValueError):
            raise DatasetError(
                f"Dataset {self.name!r}: a sample index must be an integer. Received: {i!r}"
            ) from None
        n = len(self)
        if not 0 <= j < n:
            raise DatasetError(
                f"Dataset {self.name!r}: sample index out of range [0, {n}). Received: {j}"
            )
        return j

    def _check_indices(self, indices: Indices) -> np.ndarray:
        n = len(self)
        if isinstance(indices, slice):
            indices = range(*indices.indices(n))
        if isinstance(indices, range):
            if len(indices) and not (
                0 <= min(indices[0], indices[-1]) and max(indices[0], indices[-1]) < n
            ):
                raise DatasetError(
                    f"Dataset {self.name!r}: indices out of range [0, {n}). Received: {indices}"
                )
            return np.arange(indices.start, indices.stop, indices.step, dtype=np.int64)
        idx = np.asarray(indices)
        if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
            raise DatasetError(
                f"Dataset {self.name!r}: indices must be a 1-D sequence of integers. "
                f"Received: {_short(indices)}"
            )
        idx = idx.astype(np.int64, copy=False)
        if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= n):
            bad = idx[(idx < 0) | (idx >= n)][0]
            raise DatasetError(
                f"Dataset {self.name!r}: sample index out of range [0, {n}). Received: {int(bad)}"
            )
        return idx


def stack_samples(name: str, samples: Sequence[np.ndarray]) -> np.ndarray:
    """Stack single inputs into a batch; DatasetError when their shapes differ (variable-size
    images need a ``frame`` adapter before they can be batched)."""
    shapes = {tuple(s.shape) for s in samples}
    if len(shapes) > 1:
        raise DatasetError(
            f"Dataset {name!r}: samples of different shapes cannot form one batch; add a frame "
            f"adapter (e.g. frame=3,224,224). Received: {sorted(shapes)[:3]}"
        )
    if not samples:
        return np.zeros((0,), dtype=np.float32)
    return np.stack(samples).astype(np.float32, copy=False)


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
