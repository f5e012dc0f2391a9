"""DIANNE dataset descriptor files (spec §5.1) and the datasets folder they live in.

A descriptor is a JSON object; every key becomes a property (scalars as trimmed strings, arrays
as lists of strings) and ``dir`` is set to the descriptor's folder, against which data file
names are resolved. Dispatch, as in the original: ``adapter`` wraps the dataset named by
``dataset``; else ``type`` names an implementation (``CSVDataset``, ``FileDataset``,
``ImageClassificationDataset``, or a built-in); else the ``name`` decides — starts with
``MNIST``, ``CIFAR-100`` or ``CIFAR-10``, or equals ``ImageNetTraining`` / ``ImageNetValidation``
(case-insensitive). ``labels`` / ``labelsFile`` in a descriptor override a built-in's labels.

The datasets folder is ``$DIANNE_DATASETS``, else ``./datasets``; every ``*.json`` below it, at
any depth, is a descriptor (as in the original, whose one-level comment the code never obeyed).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from engine.datasets.adapters import LabelAdapter
from engine.datasets.base import Dataset
from engine.datasets.chain import apply_options, apply_range, flag, numbers, split_values
from engine.datasets.images import (
    image_classification,
    image_folder,
    imagenet_training,
    imagenet_validation,
)
from engine.datasets.mnist import MNIST
from engine.datasets.records import RecordDataset, cifar10, cifar100, read_label_names
from engine.datasets.tabular import CSVDataset
from engine.errors import DatasetError

log = logging.getLogger(__name__)

Props = dict[str, Any]


def dataset_root() -> Path:
    """The datasets folder: ``$DIANNE_DATASETS``, else ``datasets`` in the working folder."""
    return Path(os.environ.get("DIANNE_DATASETS") or "datasets").expanduser()


def read_descriptor(path: str | Path) -> Props:
    """Read a descriptor into DIANNE's property form (strings, lists of strings, ``dir``)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise DatasetError(f"cannot read the dataset descriptor {path}: {exc.strerror}. "
                           f"Received: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"dataset descriptor {path} is not valid JSON ({exc}). "
                           f"Received: {path}") from None
    if not isinstance(data, dict) or not str(data.get("name", "")).strip():
        raise DatasetError(f"dataset descriptor {path} must be a JSON object with a 'name'. "
                           f"Received: {type(data).__name__}")
    props: Props = {}
    for key, value in data.items():
        if isinstance(value, list):
            props[key] = [str(v).strip() for v in value]
        elif isinstance(value, dict):
            raise DatasetError(f"dataset descriptor {path}: key {key!r} holds an object; values "
                               f"are strings, numbers or arrays. Received: {value!r}")
        elif isinstance(value, bool):
            props[key] = "true" if value else "false"
        else:
            props[key] = str(value).strip()
    props["dir"] = str(path.parent.resolve())
    props["_file"] = str(path)
    return props


def find_descriptors(roots: Iterable[Path]) -> dict[str, Path]:
    """Map dataset name -> descriptor file for every readable ``*.json`` under ``roots``
    (first root first; within a root, sorted paths; the first file of a name wins)."""
    found: dict[str, Path] = {}
    for root in roots:
        if not Path(root).is_dir():
            continue
        for path in sorted(Path(root).rglob("*.json")):
            try:
                name = read_descriptor(path)["name"]
            except DatasetError as exc:
                log.warning("skipping %s", exc)
                continue
            found.setdefault(name, path)
    return found


def open_descriptor(path: str | Path) -> Dataset:
    """Open the dataset a descriptor file describes. Datasets it names (an adapter's
    ``dataset``) are looked up under its own folder, then under the datasets root."""
    path = Path(path)
    props = read_descriptor(path)
    search = [path.parent, dataset_root()]
    return from_properties(props, search)


def open_named(name: str, roots: Iterable[Path] | None = None) -> Dataset | None:
    """The dataset called ``name`` in the datasets folder (or ``roots``); None if absent."""
    roots = list(roots) if roots is not None else [dataset_root()]
    path = find_descriptors(roots).get(name)
    return None if path is None else from_properties(read_descriptor(path), roots)


def from_properties(props: Props, search: list[Path], depth: int = 0) -> Dataset:
    """Build a dataset from descriptor properties (see the module docstring)."""
    where = props.get("_file", props.get("name"))
    if depth > 8:
        raise DatasetError(f"dataset descriptor {where}: adapters nest too deep (a cycle?). "
                           f"Received: {props.get('dataset')!r}")
    if "adapter" in props:
        return _adapter(props, search, depth, where)
    dataset = _implementation(props, where)
    dataset.name = props["name"]
    if "labels" in props or "labelsFile" in props:
        labels = (split_values(props["labels"]) if "labels" in props
                  else read_label_names(Path(props["dir"]) / props["labelsFile"]))
        if dataset.classification and len(labels) != len(dataset.labels):
            raise DatasetError(f"dataset descriptor {where}: {len(labels)} labels for a dataset "
                               f"of {len(dataset.labels)} classes. Received: {labels[:12]}")
        dataset.labels = labels
    return dataset


def _adapter(props: Props, search: list[Path], depth: int, where: str) -> Dataset:
    kind = str(props["adapter"]).rsplit(".", 1)[-1]
    base_name = props.get("dataset")
    if not base_name:
        raise DatasetError(f"dataset descriptor {where}: an adapter needs 'dataset' (the name of "
                           f"the dataset it wraps). Received: {sorted(props)}")
    path = find_descriptors(search).get(base_name)
    if path is None:
        raise DatasetError(f"dataset descriptor {where}: no descriptor named {base_name!r} under "
                           f"{', '.join(map(str, search))}. Received: {base_name!r}")
    base = from_properties(read_descriptor(path), search, depth + 1)
    if kind in ("LabelAdapter", "DatasetLabelAdapter"):
        dataset: Dataset = LabelAdapter(base, split_values(props.get("labels", "")),
                                        flag(props.get("other", "false")))
    elif kind in ("RangeAdapter", "DatasetRangeAdapter"):
        dataset = apply_range(base, props.get("range", ""))
    elif kind in ADAPTER_KEYS_BY_KIND:
        keys = ADAPTER_KEYS_BY_KIND[kind]
        dataset = apply_options(base, {k: v for k, v in props.items() if k in keys})
        if dataset is base:
            raise DatasetError(f"dataset descriptor {where}: {kind} needs one of "
                               f"{', '.join(keys)}. Received: {sorted(props)}")
    else:
        known = ["RangeAdapter", "LabelAdapter", *ADAPTER_KEYS_BY_KIND]
        raise DatasetError(f"dataset descriptor {where}: unknown adapter (known: "
                           f"{', '.join(known)}). Received: {props['adapter']!r}")
    dataset.name = props["name"]
    return dataset


ADAPTER_KEYS_BY_KIND = {
    "RandomFlipAdapter": ("hflip", "vflip"),
    "RandomRotationAdapter": ("rotationTheta", "rotationCenter"),
    "RandomCropAdapter": ("cropWidth", "cropHeight", "cropPadding"),
    "FrameAdapter": ("frame",),
    "BinarizeAdapter": ("binarize",),
    "AutoencoderAdapter": ("autoencode", "encoder_noise", "encoder_drop"),
}


def _dims(props: Props, key: str, where: str) -> tuple[int, ...]:
    if key not in props:
        raise DatasetError(f"dataset descriptor {where}: {key!r} is required for this type. "
                           f"Received: {sorted(k for k in props if not k.startswith('_'))}")
    return tuple(numbers(props[key], key, int))


def _implementation(props: Props, where: str) -> Dataset:
    folder = Path(props["dir"])
    name = props["name"]
    kind = str(props.get("type", "")).rsplit(".", 1)[-1] if "type" in props else ""
    kind = kind.lower().removesuffix("dataset")
    lowered = name.lower()
    if kind in ("csv",):
        return CSVDataset(
            folder / props.get("file", ""), _dims(props, "inputDims", where),
            _dims(props, "targetDims", where), name=name, separator=props.get("separator", ","),
            input_offset=int(props.get("inputOffset", 0)),
            target_offset=int(props.get("targetOffset", 0)),
            classification=flag(props.get("classification", "false")),
            samples=int(props["noSamples"]) if "noSamples" in props else None)
    if kind == "file":
        return _file_dataset(props, folder, where)
    if kind in ("imageclassification", "genericimageclassification"):
        labels = (split_values(props["labels"]) if "labels" in props
                  else read_label_names(folder / props.get("labelsFile", "labels.txt")))
        return image_classification(folder, name, props.get("targetsFile", "targets.txt"),
                                    labels)
    if kind == "imagefolder":
        return image_folder(folder / props.get("images", "."), name)
    if kind == "mnist" or (not kind and lowered.startswith("mnist")):
        return MNIST(folder, name)
    if kind in ("cifar100", "cifar-100") or (not kind and lowered.startswith("cifar-100")):
        return cifar100(folder, name)
    if kind in ("cifar10", "cifar-10") or (not kind and lowered.startswith("cifar-10")):
        return cifar10(folder, name)
    if kind in ("training", "imagenettraining") or (not kind and lowered == "imagenettraining"):
        return imagenet_training(folder, name)
    if kind in ("validation", "imagenetvalidation") or (
            not kind and lowered == "imagenetvalidation"):
        return imagenet_validation(folder, name)
    raise DatasetError(
        f"dataset descriptor {where}: cannot tell which dataset this is (supported: type "
        f"CSVDataset, FileDataset, ImageClassificationDataset, ImageFolder, or a name starting "
        f"with MNIST, CIFAR-10, CIFAR-100, or ImageNetTraining/ImageNetValidation; STL-10 and "
        f"SVHN are not supported). Received: type={props.get('type')!r}, name={name!r}")


def _file_dataset(props: Props, folder: Path, where: str) -> RecordDataset:
    """DIANNE's generic ``FileDataset``: raw bytes per sample, a class byte per sample."""
    shape = _dims(props, "inputDims", where)
    targets = _dims(props, "targetDims", where) if "targetDims" in props else None
    if "inputFiles" in props:
        inputs = split_values(props["inputFiles"])
        target_files = split_values(props.get("targetFiles", props.get("outputFiles", "")))
        if len(target_files) != len(inputs):
            raise DatasetError(f"dataset descriptor {where}: inputFiles and targetFiles must "
                               f"pair up. Received: {len(inputs)} and {len(target_files)} files")
        parts = [(folder / i, folder / t) for i, t in zip(inputs, target_files, strict=True)]
    else:
        parts = [(folder / f, None) for f in split_values(props.get("files", ""))]
    classes = targets[0] if targets else 0
    labels = [str(k) for k in range(classes)] if classes else []
    if "labels" in props:
        labels = split_values(props["labels"])
    if not labels:
        raise DatasetError(f"dataset descriptor {where}: FileDataset needs targetDims (the class "
                           f"count) or labels. Received: {sorted(props)}")
    return RecordDataset(props["name"], parts, shape, labels, head=1, label_byte=0)
