"""The adapter chain of a flat DIANNE configuration map (spec §5.3), in the original's order.

``apply_options(dataset, {"range": "0,9000", "hflip": "0.5", "frame": "3,32,32"})`` wraps the
dataset in ``range`` -> ``hflip``/``vflip`` -> ``rotationTheta`` (+``rotationCenter``) ->
``cropWidth``/``cropHeight`` (+``cropPadding``) -> ``frame`` -> ``binarize`` -> ``autoencode``
(+``encoder_noise``, ``encoder_drop``), exactly the order the original's dataset manager used;
keys that are absent add nothing and unknown keys are ignored (one map serves the learner, the
criterion and the dataset). Values may be strings as in the original (``"0,9000"``,
``"[3, 32, 32]"``), numbers or lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.datasets.adapters import RangeAdapter
from engine.datasets.augment import (
    AutoencoderAdapter,
    BinarizeAdapter,
    FrameAdapter,
    RandomAdapter,
    RandomCropAdapter,
    RandomFlipAdapter,
    RandomRotationAdapter,
)
from engine.datasets.base import Dataset
from engine.errors import DatasetError

ADAPTER_KEYS = ("range", "hflip", "vflip", "rotationTheta", "rotationCenter", "cropWidth",
                "cropHeight", "cropPadding", "frame", "binarize", "autoencode", "encoder_noise",
                "encoder_drop")


def split_values(value: Any) -> list[str]:
    """``"[1, 2]"`` / ``"1,2"`` / ``[1, 2]`` / ``3`` -> list of trimmed strings."""
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value if str(v).strip() != ""]
    text = str(value).strip().strip("[]")
    return [part.strip() for part in text.split(",") if part.strip() != ""]


def numbers(value: Any, key: str, kind: type = float) -> list[Any]:
    """The numbers of a value (see :func:`split_values`); DatasetError naming ``key``."""
    try:
        values = [float(v) for v in split_values(value)]
    except ValueError:
        raise DatasetError(f"option {key!r} takes numbers. Received: {value!r}") from None
    if kind is int:
        if not all(v.is_integer() for v in values):
            raise DatasetError(f"option {key!r} takes integers. Received: {value!r}")
        return [int(v) for v in values]
    return values


def number(value: Any, key: str, kind: type = float) -> Any:
    values = numbers(value, key, kind)
    if len(values) != 1:
        raise DatasetError(f"option {key!r} takes one number. Received: {value!r}")
    return values[0]


def flag(value: Any) -> bool:
    """DIANNE booleans: ``"true"`` (any case) is true, everything else false."""
    return value is True or str(value).strip().lower() == "true"


def apply_range(dataset: Dataset, value: Any) -> Dataset:
    """DIANNE's ``range``: ``max``, ``min,max`` (max exclusive) or >= 3 explicit indices."""
    values = numbers(value, "range", int)
    if not values:
        raise DatasetError(f"option 'range' needs at least one value. Received: {value!r}")
    if len(values) == 1:
        return RangeAdapter(dataset, 0, values[0])
    if len(values) == 2:
        return RangeAdapter(dataset, values[0], values[1])
    return RangeAdapter.from_indices(dataset, values)


def apply_options(dataset: Dataset, options: Mapping[str, Any],
                  seed: int | None = None) -> Dataset:
    """Wrap ``dataset`` in the adapters named by ``options`` (see the module docstring).

    Random adapters get the seeds ``seed``, ``seed + 1``, ... in chain order (fresh entropy
    when ``seed`` is None).
    """
    opts = {k: v for k, v in options.items() if v is not None}
    seeds = iter(range(seed, seed + 8)) if seed is not None else iter([None] * 8)
    if "range" in opts:
        dataset = apply_range(dataset, opts["range"])
    if "hflip" in opts or "vflip" in opts:
        dataset = RandomFlipAdapter(dataset, number(opts.get("hflip", 0), "hflip"),
                                    number(opts.get("vflip", 0), "vflip"), seed=next(seeds))
    if "rotationTheta" in opts:
        theta = numbers(opts["rotationTheta"], "rotationTheta")
        center: Any = None
        if "rotationCenter" in opts:
            raw = opts["rotationCenter"]
            center = flag(raw) if len(split_values(raw)) == 1 else numbers(raw, "rotationCenter")
        dataset = RandomRotationAdapter(dataset, theta[0] if len(theta) == 1 else theta, center,
                                        seed=next(seeds))
    if "cropWidth" in opts or "cropHeight" in opts:
        width = numbers(opts.get("cropWidth", opts.get("cropHeight")), "cropWidth", int)
        height = numbers(opts.get("cropHeight", opts.get("cropWidth")), "cropHeight", int)
        dataset = RandomCropAdapter(dataset, width, height,
                                    number(opts.get("cropPadding", 0), "cropPadding", int),
                                    seed=next(seeds))
    if "frame" in opts:
        dataset = FrameAdapter(dataset, numbers(opts["frame"], "frame", int))
    if "binarize" in opts:
        raw = opts["binarize"]
        threshold = 0.5 if str(raw).strip().lower() in ("", "true") else number(raw, "binarize")
        dataset = BinarizeAdapter(dataset, threshold)
    if "autoencode" in opts and flag(opts["autoencode"]):
        dataset = AutoencoderAdapter(dataset, number(opts.get("encoder_noise", 0), "encoder_noise"),
                                     number(opts.get("encoder_drop", 0), "encoder_drop"),
                                     seed=next(seeds))
    return dataset


def reseed(dataset: Dataset, seed: int | None) -> None:
    """Restart every random adapter in ``dataset``'s chain (seeds ``seed``, ``seed + 1``, ...
    from the outermost inwards)."""
    k = 0
    while dataset is not None:
        if isinstance(dataset, RandomAdapter):
            dataset.reseed(None if seed is None else seed + k)
            k += 1
        dataset = getattr(dataset, "base", None)
