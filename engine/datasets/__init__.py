"""Datasets (spec §5): the :class:`Dataset` contract, MNIST, adapters and spec strings.

``open_dataset("mnist")`` gives the bundled MNIST test set, ``open_dataset("mnist:DIR")`` a
folder of IDX files; ``range_`` / ``labels`` wrap it in a :class:`RangeAdapter` /
:class:`LabelAdapter`. New sources register an :class:`Opener` in ``engine.datasets.spec``.
"""

from __future__ import annotations

from engine.datasets.adapters import Adapter, LabelAdapter, RangeAdapter
from engine.datasets.base import Dataset
from engine.datasets.mnist import MNIST, bundled_mnist_dir
from engine.datasets.spec import (
    OPENERS,
    Opener,
    accepted_forms,
    open_dataset,
    parse_labels,
    parse_range,
    register_opener,
)

__all__ = [
    "MNIST",
    "OPENERS",
    "Adapter",
    "Dataset",
    "LabelAdapter",
    "Opener",
    "RangeAdapter",
    "accepted_forms",
    "bundled_mnist_dir",
    "open_dataset",
    "parse_labels",
    "parse_range",
    "register_opener",
]
