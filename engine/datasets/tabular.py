"""DIANNE's ``CSVDataset`` (spec §5.2): one sample per line of a delimited text file.

Keys (from a descriptor): ``file``, ``separator`` (default ``,``), ``inputOffset`` (columns
skipped before the input), ``targetOffset``, ``classification`` (the target column is a class
index, made one-hot), ``noSamples`` (default: the line count), ``inputDims`` (required) and
``targetDims`` (the class count, or the target vector's shape). The input is the
``prod(inputDims)`` columns from ``inputOffset``.

Target column: the original computes ``inputOffset + inputSize + targetOffset - 1``, so its
configurations use ``targetOffset`` 1 for "the column right after the input" — read here the
same way. With ``targetOffset`` 0 (its default) the original read the *last input column* as
the target, surely unintended; here 0 also means "right after the input". The file is parsed
on first access (numbers only; a bad line raises an error naming file and line).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from engine.datasets.base import Dataset
from engine.errors import DatasetError

log = logging.getLogger(__name__)


class CSVDataset(Dataset):
    """Rows of a delimited file: input columns, then a class index or a target vector."""

    def __init__(self, path: str | Path, input_dims: tuple[int, ...], target_dims: tuple[int, ...],
                 *, name: str | None = None, separator: str = ",", input_offset: int = 0,
                 target_offset: int = 0, classification: bool = False,
                 labels: list[str] | None = None, samples: int | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise DatasetError(f"CSV file does not exist. Received: {self.path}")
        if not input_dims or not target_dims:
            raise DatasetError(f"CSV dataset {self.path}: inputDims and targetDims are required. "
                               f"Received: inputDims={input_dims}, targetDims={target_dims}")
        self.name = name or self.path.stem
        self.input_shape = tuple(int(d) for d in input_dims)
        self.target_dims = tuple(int(d) for d in target_dims)
        self.classification = bool(classification)
        n_targets = int(np.prod(self.target_dims))
        self.labels = list(labels) if labels else [str(k) for k in range(n_targets)]
        if self.classification and len(self.labels) != n_targets:
            raise DatasetError(f"CSV dataset {self.path}: {len(self.labels)} labels for "
                               f"targetDims {list(self.target_dims)}. Received: {self.labels}")
        self._split = re.compile(re.escape(separator) if len(separator) == 1 else separator)
        self.input_offset = int(input_offset)
        self._input_size = int(np.prod(self.input_shape))
        self._target_col = self.input_offset + self._input_size + max(int(target_offset) - 1, 0)
        self._samples = samples
        self._count: int | None = None
        self._x: np.ndarray | None = None
        self._t: np.ndarray | None = None

    @property
    def target_size(self) -> int:
        return len(self.labels) if self.classification else int(np.prod(self.target_dims))

    def __len__(self) -> int:
        if self._x is not None:
            return len(self._x)
        if self._count is None:
            # Counting lines is cheap; parsing waits for the first sample access.
            with open(self.path, encoding="utf-8") as handle:
                lines = sum(1 for line in handle if line.strip())
            self._count = lines if self._samples is None else min(lines, self._samples)
        return self._count

    def _load(self) -> tuple[np.ndarray, np.ndarray]:
        if self._x is None or self._t is None:
            rows, targets = [], []
            width = 1 if self.classification else self.target_size
            with open(self.path, encoding="utf-8") as handle:
                for number, line in enumerate(handle, start=1):
                    if self._samples is not None and len(rows) >= self._samples:
                        break
                    if not line.strip():
                        continue
                    cells = self._split.split(line.rstrip("\r\n"))
                    values = self._parse(cells, number, width)
                    rows.append(values[: self._input_size])
                    targets.append(values[self._input_size:])
            if self._samples is not None and len(rows) < self._samples:
                log.warning("CSV dataset %s: %d samples read, noSamples says %d", self.path,
                            len(rows), self._samples)
            self._x = np.asarray(rows, dtype=np.float32).reshape(len(rows), *self.input_shape)
            t = np.asarray(targets, dtype=np.float32).reshape(len(rows), width)
            if self.classification:
                classes = t[:, 0].astype(np.int64)
                bad = np.flatnonzero((classes < 0) | (classes >= len(self.labels))
                                     | (classes != t[:, 0]))
                if bad.size:
                    raise DatasetError(f"CSV file {self.path}: sample {int(bad[0])} has class "
                                       f"{t[bad[0], 0]!r}, not one of 0..{len(self.labels) - 1}. "
                                       f"Received: {t[bad[0], 0]!r}")
                self._t = classes
            else:
                self._t = t
        return self._x, self._t

    def _parse(self, cells: list[str], number: int, width: int) -> list[float]:
        cols = list(range(self.input_offset, self.input_offset + self._input_size))
        cols += list(range(self._target_col, self._target_col + width))
        if len(cells) <= cols[-1]:
            raise DatasetError(f"CSV file {self.path} line {number}: needs {cols[-1] + 1} "
                               f"columns. Received: {len(cells)} columns")
        try:
            return [float(cells[c]) for c in cols]
        except ValueError:
            bad = next(cells[c] for c in cols if not _is_number(cells[c]))
            raise DatasetError(f"CSV file {self.path} line {number}: not a number. "
                               f"Received: {bad!r}") from None

    def _inputs(self, idx: np.ndarray) -> np.ndarray:
        return self._load()[0][idx]

    def _target_indices(self, idx: np.ndarray) -> np.ndarray:
        t = self._load()[1]
        return t[idx] if self.classification else t[idx].argmax(axis=1)

    def _target_vectors(self, idx: np.ndarray) -> np.ndarray:
        if self.classification:
            return super()._target_vectors(idx)
        return self._load()[1][idx].copy()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
