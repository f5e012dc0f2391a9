"""Dataset spec strings and the range / label options of the CLIs.

Forms: ``mnist`` (the bundled test set), ``mnist:DIR``, ``cifar10:DIR``, ``cifar100:DIR``,
``imagenet:DIR`` (training layout when ``images/`` has class folders, else validation),
``images:DIR`` (``<class>/<image>`` folders), ``csv:FILE`` (last column = class index),
``json:FILE`` or a path ending in ``.json`` (a DIANNE descriptor), or the ``name`` of a
descriptor under the datasets folder (``$DIANNE_DATASETS``, else ``./datasets``).

``open_dataset`` looks the scheme (before the first ``:``) up in a small table of openers, then
applies the adapters in DIANNE's fixed chain order (spec §5.3: ``range`` first, then the rest,
here the label subset). New sources (CIFAR, CSV, descriptor JSON, ...) register one opener with
:func:`register_opener`. The range text follows DIANNE's ``range`` key: ``"max"``, ``"min,max"``
(max exclusive) or an explicit index list of three or more values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from engine.datasets.adapters import LabelAdapter, RangeAdapter
from engine.datasets.base import Dataset
from engine.datasets.descriptor import open_descriptor, open_named
from engine.datasets.images import image_folder, imagenet_training, imagenet_validation
from engine.datasets.mnist import MNIST, bundled_mnist_dir
from engine.datasets.records import cifar10, cifar100
from engine.datasets.tabular import CSVDataset
from engine.errors import DatasetError


@dataclass(frozen=True)
class Opener:
    """One dataset source: ``open(arg)`` builds it from the text after ``scheme:`` (or None)."""

    scheme: str
    usage: tuple[str, ...]  # the accepted forms, shown in errors and help texts
    open: Callable[[str | None], Dataset]


OPENERS: dict[str, Opener] = {}


def register_opener(opener: Opener) -> None:
    """Add (or replace) the opener of ``opener.scheme`` (case-insensitive)."""
    OPENERS[opener.scheme.lower()] = opener


def accepted_forms() -> list[str]:
    """Return every accepted spec form, e.g. ``["mnist", "mnist:DIR"]``."""
    return [form for opener in OPENERS.values() for form in opener.usage]


@lru_cache(maxsize=4)
def _mnist_at(folder: Path) -> MNIST:
    # Datasets are read-only, so one decoded copy per folder serves every caller.
    return MNIST(folder)


def _open_mnist(arg: str | None) -> Dataset:
    folder = bundled_mnist_dir() if not arg else Path(arg).expanduser()
    return _mnist_at(folder.resolve())


def _need(arg: str | None, scheme: str) -> Path:
    if not arg:
        raise DatasetError(f"dataset spec {scheme}: needs a path, e.g. {scheme}:DIR. "
                           f"Received: {scheme!r}")
    return Path(arg).expanduser()


def _open_imagenet(arg: str | None) -> Dataset:
    root = _need(arg, "imagenet")
    images = root / "images"
    if images.is_dir() and any(p.is_dir() for p in images.iterdir()):
        return imagenet_training(root)
    return imagenet_validation(root)


def _open_csv(arg: str | None) -> Dataset:
    """A bare CSV file: every column but the last is the input, the last the class index."""
    path = _need(arg, "csv")
    if not path.is_file():
        raise DatasetError(f"CSV file does not exist. Received: {path}")
    with open(path, encoding="utf-8") as handle:
        first = next((line for line in handle if line.strip()), "")
    columns = len(first.split(","))
    if columns < 2:
        raise DatasetError(f"CSV file {path}: needs input columns and a class column. "
                           f"Received: {columns} column(s)")
    probe = CSVDataset(path, (columns - 1,), (1,), classification=False, target_offset=1)
    classes = int(probe._load()[1].max()) + 1  # the largest class index names the class count
    return CSVDataset(path, (columns - 1,), (classes,), classification=True, target_offset=1)


register_opener(Opener("mnist", ("mnist", "mnist:DIR"), _open_mnist))
register_opener(Opener("cifar10", ("cifar10:DIR",), lambda a: cifar10(_need(a, "cifar10"))))
register_opener(Opener("cifar100", ("cifar100:DIR",), lambda a: cifar100(_need(a, "cifar100"))))
register_opener(Opener("imagenet", ("imagenet:DIR",), _open_imagenet))
register_opener(Opener("images", ("images:DIR (DIR/<class>/<image>)",),
                       lambda a: image_folder(_need(a, "images"))))
register_opener(Opener("csv", ("csv:FILE",), _open_csv))
register_opener(Opener("json", ("json:FILE", "FILE.json", "NAME (a descriptor under "
                                "$DIANNE_DATASETS)"),
                       lambda a: open_descriptor(_need(a, "json"))))


def _fallback(text: str) -> Dataset | None:
    """A descriptor path, or the name of a descriptor in the datasets folder."""
    path = Path(text).expanduser()
    if path.suffix.lower() == ".json" and path.is_file():
        return open_descriptor(path)
    return open_named(text)


def open_dataset(
    spec: str,
    range_: tuple[int, int] | Sequence[int] | None = None,
    labels: Sequence[str] | None = None,
    other: bool = False,
) -> Dataset:
    """Open the dataset named by ``spec``, restricted to ``range_`` and then to ``labels``.

    ``range_`` is ``(start, end)`` with end exclusive, or an explicit index list (three or more
    values, as DIANNE's ``range``); ``labels`` keeps those classes in that order, ``other`` adds
    a last class "other" with the remaining samples. Raises DatasetError on an unknown spec, a
    range out of bounds or unknown labels.
    """
    text = str(spec).strip()
    scheme, sep, arg = text.partition(":")
    opener = OPENERS.get(scheme.strip().lower())
    dataset = None
    if opener is None:
        dataset = _fallback(text)
    if dataset is None and (opener is None or (sep and not arg.strip())):
        raise DatasetError(
            f"Unknown dataset spec; accepted forms: {', '.join(accepted_forms())}. "
            f"Received: {spec!r}"
        )
    if dataset is None:
        dataset = opener.open(arg.strip() if sep else None)
    if range_ is not None:
        values = [int(v) for v in range_]
        if len(values) == 2:
            dataset = RangeAdapter(dataset, values[0], values[1])
        elif len(values) == 1:
            dataset = RangeAdapter(dataset, 0, values[0])
        else:
            dataset = RangeAdapter.from_indices(dataset, values)
    if labels is not None:
        dataset = LabelAdapter(dataset, list(labels), other)
    elif other:
        raise DatasetError(f"'other' needs a label subset. Received: other={other}")
    return dataset


def _split(text: str) -> list[str]:
    body = str(text).strip().strip("[]")
    return [part.strip() for part in body.split(",") if part.strip() != ""]


def parse_range(text: str) -> tuple[int, int] | list[int]:
    """Parse DIANNE's range text: ``"max"`` -> (0, max), ``"a,b"`` -> (a, b), >= 3 -> list."""
    parts = _split(text)
    try:
        values = [int(part) for part in parts]
    except ValueError:
        raise DatasetError(
            f"A range is 'max', 'min,max' or a list of indices (integers). Received: {text!r}"
        ) from None
    if not values:
        raise DatasetError(f"A range needs at least one value. Received: {text!r}")
    if len(values) == 1:
        return (0, values[0])
    if len(values) == 2:
        return (values[0], values[1])
    return values


def parse_labels(text: str) -> list[str]:
    """Parse a comma-separated label list (``"0,1,2"`` -> ``["0", "1", "2"]``)."""
    labels = _split(text)
    if not labels:
        raise DatasetError(f"A label list needs at least one label. Received: {text!r}")
    return labels
