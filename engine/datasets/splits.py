"""Train / validation / test splits as index ranges over one dataset (spec §5.4).

There are no split files in DIANNE: a split is three consecutive ranges ``[0, train)``,
``[train, train + validation)``, ``[train + validation, total)``. The default is the builder's:
test = round(total / 10) at the end, no validation, the rest for training — for the bundled
MNIST test set (10,000 samples) train 0-8999 and test 9000-9999.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from engine.datasets.adapters import RangeAdapter
from engine.datasets.base import Dataset
from engine.errors import DatasetError


def java_round(x: float) -> int:
    """``Math.round``: halves round up (Python's ``round`` rounds halves to even)."""
    return math.floor(x + 0.5)


@dataclass(frozen=True)
class Splits:
    """Three consecutive half-open ranges over ``total`` samples."""

    total: int
    train: tuple[int, int]
    validation: tuple[int, int]
    test: tuple[int, int]

    def apply(self, dataset: Dataset) -> tuple[Dataset, Dataset | None, Dataset | None]:
        """Return the train, validation and test subsets (None for an empty range)."""
        if len(dataset) != self.total:
            raise DatasetError(f"these splits cover {self.total} samples but dataset "
                               f"{dataset.name!r} has {len(dataset)}. Received: {len(dataset)}")

        def part(bounds: tuple[int, int], what: str) -> Dataset | None:
            if bounds[0] == bounds[1]:
                return None
            return RangeAdapter(dataset, *bounds, name=f"{dataset.name} ({what})")

        train = part(self.train, "train")
        if train is None:
            raise DatasetError(f"the training range of {dataset.name!r} is empty. "
                               f"Received: {self.train}")
        return train, part(self.validation, "validation"), part(self.test, "test")

    def to_json(self) -> dict[str, list[int]]:
        return {"train": list(self.train), "validation": list(self.validation),
                "test": list(self.test)}


def splits(total: int, split: float | None = None, validation: float = 0.0) -> Splits:
    """Cut ``total`` samples into train | validation | test.

    ``split`` is the fraction kept for training (+ validation), the rest is the test set; None
    means the builder default (test = round(total / 10)). ``validation`` is a fraction of
    ``total`` taken from the end of the training part. Raises DatasetError on fractions outside
    [0, 1] or a split that leaves no training sample.
    """
    total = int(total)
    if split is None:
        test = java_round(total / 10)
    else:
        if not 0.0 < float(split) <= 1.0:
            raise DatasetError(f"the split is the training fraction, in (0, 1]. Received: {split}")
        test = total - java_round(total * float(split))
    if not 0.0 <= float(validation) < 1.0:
        raise DatasetError(f"the validation fraction must be in [0, 1). Received: {validation}")
    val = java_round(total * float(validation))
    train = total - test - val
    if train <= 0:
        raise DatasetError(f"no samples left for training out of {total} (test {test}, "
                           f"validation {val}). Received: split={split}, validation={validation}")
    return Splits(total, (0, train), (train, train + val), (train + val, total))
