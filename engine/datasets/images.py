"""Datasets of image files (spec §5.2), decoded lazily one file per sample with Pillow.

* :func:`imagenet_training` — ``images/<wnid>/<k>.JPEG`` (k from 1 within each class folder)
  with ``classes.txt`` lines ``wnid<TAB or ,>label`` (first comma-separated synonym used); the
  classes are the folders in sorted order (the original took the file-system listing order,
  which is not stable across machines), samples concatenated class by class.
* :func:`imagenet_validation` — ``images/ILSVRC2012_val_%08d.JPEG`` (index + 1), ``outputs.txt``
  (class 1..N per line) and ``classes.txt`` (one label per line, first synonym used).
* :func:`image_folder` — the plain ``<root>/<class>/*.jpg`` layout (any Pillow-readable image),
  classes and files in sorted order.
* :func:`image_classification` — DIANNE's ``ImageClassificationDataset``: ``images/<index>.jpg``
  (0-based), a ``targetsFile`` with one class index per line and a ``labelsFile``.

Images are decoded to planar float32 ``(C, H, W)`` in [0, 1]: grey stays one channel, anything
else becomes RGB. Sizes vary, so ``input_shape`` is None until a ``frame`` adapter fixes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from engine.datasets.base import Dataset
from engine.datasets.records import read_label_names
from engine.errors import DatasetError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff",
                  ".webp")


def load_image(path: Path) -> np.ndarray:
    """Decode one image file to float32 ``(C, H, W)`` in [0, 1] (grey 1 channel, else RGB)."""
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415  (only when images are read)

    try:
        with Image.open(path) as img:
            img.load()
            grey = img.mode in ("L", "1", "I", "I;16", "F")
            arr = np.asarray(img.convert("L" if grey else "RGB"), dtype=np.float32)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DatasetError(f"image file {path} cannot be read ({exc}). Received: {path}") from None
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    return np.ascontiguousarray(arr) / np.float32(255.0)


class ImageFiles(Dataset):
    """One image file per sample with a known class index per sample."""

    def __init__(self, name: str, files: Sequence[Path], targets: Sequence[int],
                 labels: list[str], input_shape: tuple[int, ...] | None = None) -> None:
        if len(files) != len(targets):
            raise DatasetError(f"Dataset {name!r}: {len(files)} images but {len(targets)} "
                               f"targets. Received: {len(targets)} targets")
        self.name = name
        self.labels = list(labels)
        self.input_shape = input_shape
        self._files = [Path(f) for f in files]
        self._targets = np.asarray(targets, dtype=np.int64)
        bad = np.flatnonzero((self._targets < 0) | (self._targets >= len(self.labels)))
        if bad.size:
            raise DatasetError(f"Dataset {name!r}: sample {int(bad[0])} has class "
                               f"{int(self._targets[bad[0]])} outside the {len(self.labels)} "
                               f"labels. Received: {int(self._targets[bad[0]])}")

    def __len__(self) -> int:
        return len(self._files)

    def file(self, i: int) -> Path:
        """Return the image file of sample ``i``."""
        return self._files[self._check_index(i)]

    def _input(self, i: int) -> np.ndarray:
        path = self._files[i]
        if not path.is_file():
            raise DatasetError(f"Dataset {self.name!r}: image file of sample {i} is missing. "
                               f"Received: {path}")
        return load_image(path)

    def _target_indices(self, idx: np.ndarray) -> np.ndarray:
        return self._targets[idx]


def _visible(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DatasetError(f"image folder does not exist. Received: {folder}")
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _first_synonym(text: str) -> str:
    return text.split(",")[0].strip()


def imagenet_training(root: str | Path, name: str = "ImageNetTraining") -> ImageFiles:
    """ImageNet training layout ``images/<wnid>/<k>.JPEG`` + ``classes.txt``."""
    root = Path(root)
    class_dirs = [p for p in _visible(root / "images") if p.is_dir()]
    if not class_dirs:
        raise DatasetError(f"{name}: {root / 'images'} has no class folders. Received: none")
    names: dict[str, str] = {}
    classes = root / "classes.txt"
    if classes.is_file():
        for line in read_label_names(classes):
            wnid, _, label = line.replace("\t", ",", 1).partition(",")
            names[wnid.strip()] = _first_synonym(label) or wnid.strip()
    files: list[Path] = []
    targets: list[int] = []
    for k, folder in enumerate(class_dirs):
        count = sum(1 for p in _visible(folder) if p.is_file())
        files.extend(folder / f"{j}.JPEG" for j in range(1, count + 1))
        targets.extend([k] * count)
    labels = [names.get(p.name, p.name) for p in class_dirs]
    return ImageFiles(name, files, targets, labels)


def imagenet_validation(root: str | Path, name: str = "ImageNetValidation") -> ImageFiles:
    """ImageNet validation layout ``images/ILSVRC2012_val_%08d.JPEG`` + ``outputs.txt``."""
    root = Path(root)
    count = sum(1 for p in _visible(root / "images") if p.is_file())
    labels = [_first_synonym(s) for s in read_label_names(root / "classes.txt")]
    outputs = read_label_names(root / "outputs.txt")
    if len(outputs) < count:
        raise DatasetError(f"{name}: {root / 'outputs.txt'} has {len(outputs)} classes for "
                           f"{count} images. Received: {len(outputs)} lines")
    try:
        targets = [int(v) - 1 for v in outputs[:count]]  # the file counts classes from 1
    except ValueError:
        raise DatasetError(f"{name}: {root / 'outputs.txt'} must hold one class number per "
                           f"line. Received: {outputs[:3]}") from None
    files = [root / "images" / f"ILSVRC2012_val_{i + 1:08d}.JPEG" for i in range(count)]
    return ImageFiles(name, files, targets, labels)


def image_folder(root: str | Path, name: str | None = None) -> ImageFiles:
    """The plain ``<root>/<class>/<image>`` layout: one folder per class, sorted."""
    root = Path(root)
    class_dirs = [p for p in _visible(root) if p.is_dir()]
    files: list[Path] = []
    targets: list[int] = []
    for k, folder in enumerate(class_dirs):
        images = [p for p in _visible(folder) if p.suffix.lower() in IMAGE_SUFFIXES]
        files.extend(images)
        targets.extend([k] * len(images))
    if not files:
        raise DatasetError(f"image folder {root} has no <class>/<image> files "
                           f"({', '.join(IMAGE_SUFFIXES)}). Received: {len(class_dirs)} folders")
    return ImageFiles(name or root.name, files, targets, [p.name for p in class_dirs])


def image_classification(root: str | Path, name: str, targets_file: str,
                         labels: list[str]) -> ImageFiles:
    """DIANNE's ``ImageClassificationDataset``: ``images/<index>.jpg`` + a targets file."""
    root = Path(root)
    count = sum(1 for p in _visible(root / "images") if p.is_file())
    lines = read_label_names(root / targets_file)
    try:
        targets = [int(v) for v in lines[:count]]
    except ValueError:
        raise DatasetError(f"{name}: {root / targets_file} must hold one class index per line. "
                           f"Received: {lines[:3]}") from None
    if len(targets) < count:
        raise DatasetError(f"{name}: {root / targets_file} has {len(targets)} targets for "
                           f"{count} images. Received: {len(targets)} lines")
    files = [root / "images" / f"{i}.jpg" for i in range(count)]
    return ImageFiles(name, files, targets, labels)
