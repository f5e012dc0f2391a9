"""Datasets (spec §5): the :class:`Dataset` contract, the readers, adapters, splits and samplers.

``open_dataset("mnist")`` gives the bundled MNIST test set; other spec strings open MNIST/CIFAR
folders, ImageNet-style and ``<class>/<image>`` folders, CSV files and DIANNE descriptor files
(see ``engine.datasets.spec``). ``apply_options`` wraps a dataset in the adapter chain of a flat
DIANNE configuration map, ``splits`` cuts train / validation / test index ranges, and
``engine.datasets.sampling`` draws mini-batches. New sources register an :class:`Opener`.
"""

from __future__ import annotations

from engine.datasets.adapters import Adapter, LabelAdapter, RangeAdapter
from engine.datasets.augment import (
    AutoencoderAdapter,
    BinarizeAdapter,
    FrameAdapter,
    RandomCropAdapter,
    RandomFlipAdapter,
    RandomRotationAdapter,
)
from engine.datasets.base import Dataset
from engine.datasets.chain import apply_options, reseed
from engine.datasets.descriptor import dataset_root, open_descriptor, read_descriptor
from engine.datasets.images import ImageFiles, image_folder, imagenet_training, imagenet_validation
from engine.datasets.mnist import MNIST, bundled_mnist_dir
from engine.datasets.records import RecordDataset, cifar10, cifar100
from engine.datasets.spec import (
    OPENERS,
    Opener,
    accepted_forms,
    open_dataset,
    parse_labels,
    parse_range,
    register_opener,
)
from engine.datasets.splits import Splits, splits
from engine.datasets.tabular import CSVDataset

__all__ = [
    "MNIST",
    "OPENERS",
    "Adapter",
    "AutoencoderAdapter",
    "BinarizeAdapter",
    "CSVDataset",
    "Dataset",
    "FrameAdapter",
    "ImageFiles",
    "LabelAdapter",
    "Opener",
    "RandomCropAdapter",
    "RandomFlipAdapter",
    "RandomRotationAdapter",
    "RangeAdapter",
    "RecordDataset",
    "Splits",
    "accepted_forms",
    "apply_options",
    "bundled_mnist_dir",
    "cifar10",
    "cifar100",
    "dataset_root",
    "image_folder",
    "imagenet_training",
    "imagenet_validation",
    "open_dataset",
    "open_descriptor",
    "parse_labels",
    "parse_range",
    "read_descriptor",
    "register_opener",
    "reseed",
    "splits",
]
