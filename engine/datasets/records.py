"""Datasets of fixed-size binary records (spec §5.2): CIFAR-10, CIFAR-100 and ``FileDataset``.

A record file is a plain concatenation of samples, each ``head`` label bytes followed by the
input's raw unsigned bytes (scaled /255). CIFAR-10 records are 1 label byte + 3072 bytes
(3x32x32, channels first), files ``data_batch_1.bin`` ... ``data_batch_5.bin`` then
``test_batch.bin`` (indices 0-49999 train, 50000-59999 test), label names in
``batches.meta.txt``. CIFAR-100 records are coarse byte, fine byte, 3072 bytes, files
``train.bin`` then ``test.bin``; the target is the fine label, names in
``fine_label_names.txt``. DIANNE's generic ``FileDataset`` reads ``files`` (a label byte before
each sample) or ``inputFiles`` + ``targetFiles`` (pairwise: raw inputs, one class byte per
sample). Files are memory-mapped on first access, never read whole; a file whose size is not a
whole number of records is refused with an error naming it. Where only some of the CIFAR files
exist (the test batch alone, say), the dataset is the files present, in the official order.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from engine.datasets.base import Dataset
from engine.errors import DatasetError

CIFAR10_FILES = tuple(f"data_batch_{k}.bin" for k in range(1, 6)) + ("test_batch.bin",)
CIFAR100_FILES = ("train.bin", "test.bin")
CIFAR10_LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                  "ship", "truck"]
CIFAR_SHAPE = (3, 32, 32)


class RecordDataset(Dataset):
    """Samples stored as fixed-size records in one or more files, read through memory maps.

    ``parts`` lists ``(input_file, target_file)`` pairs; with ``target_file`` None the class is
    byte ``label_byte`` of the ``head`` bytes that precede every input, else the target file
    holds one class byte per sample.
    """

    def __init__(self, name: str, parts: Sequence[tuple[Path, Path | None]],
                 input_shape: tuple[int, ...], labels: list[str], head: int = 1,
                 label_byte: int = 0) -> None:
        if not parts:
            raise DatasetError(f"Dataset {name!r} has no data files. Received: no files")
        self.name = name
        self.input_shape = tuple(int(d) for d in input_shape)
        self.labels = list(labels)
        self.input_size = int(np.prod(self.input_shape))
        self.head = 0 if parts[0][1] is not None else int(head)
        self.label_byte = int(label_byte)
        self.record = self.head + self.input_size
        self._parts = [(Path(i), None if t is None else Path(t)) for i, t in parts]
        counts = [self._count(inp, tgt) for inp, tgt in self._parts]
        self._offsets = np.cumsum([0, *counts])
        self._maps: list[tuple[np.ndarray, np.ndarray]] | None = None
        self._targets: np.ndarray | None = None

    def _count(self, inp: Path, tgt: Path | None) -> int:
        size = _size(inp)
        if size % self.record:
            raise DatasetError(
                f"{self.name} file {inp} is truncated or not in the record format: {size} bytes "
                f"is not a whole number of {self.record}-byte records. Received: {size} bytes")
        n = size // self.record
        if tgt is not None and _size(tgt) != n:
            raise DatasetError(
                f"{self.name} target file {tgt} needs one byte for each of the {n} samples of "
                f"{inp.name}. Received: {_size(tgt)} bytes")
        return n

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def _load(self) -> list[tuple[np.ndarray, np.ndarray]]:
        if self._maps is None:
            maps = []
            for inp, tgt in self._parts:
                n = _size(inp) // self.record
                rec = np.memmap(inp, dtype=np.uint8, mode="r", shape=(n, self.record))
                if tgt is None:
                    labels = rec[:, self.label_byte]
                else:
                    labels = np.memmap(tgt, dtype=np.uint8, mode="r", shape=(n,))
                maps.append((rec, labels))
            self._maps = maps
        return self._maps

    def _locate(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        part = np.searchsorted(self._offsets, idx, side="right") - 1
        return part, idx - self._offsets[part]

    def _inputs(self, idx: np.ndarray) -> np.ndarray:
        maps = self._load()
        raw = np.empty((len(idx), self.input_size), dtype=np.uint8)
        part, local = self._locate(idx)
        for p in np.unique(part).tolist():
            sel = part == p
            raw[sel] = maps[p][0][local[sel], self.head:]
        out = raw.astype(np.float32).reshape(len(idx), *self.input_shape)
        out /= 255.0
        return out

    def _all_targets(self) -> np.ndarray:
        if self._targets is None:
            targets = np.concatenate([np.asarray(lbl, dtype=np.int64) for _, lbl in self._load()])
            bad = np.flatnonzero(targets >= len(self.labels))
            if bad.size:
                p, _ = self._locate(bad[:1])
                raise DatasetError(
                    f"{self.name} file {self._parts[int(p[0])][1] or self._parts[int(p[0])][0]} "
                    f"holds class {int(targets[bad[0]])} but the dataset has "
                    f"{len(self.labels)} labels. Received: {int(targets[bad[0]])}")
            self._targets = targets
        return self._targets

    def _target_indices(self, idx: np.ndarray) -> np.ndarray:
        return self._all_targets()[idx]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror}. Received: {path}") from None


def read_label_names(path: Path, count: int | None = None) -> list[str]:
    """Return the non-empty lines of a label file (the first ``count`` of them)."""
    try:
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read the label file {path}: {exc}. Received: {path}") from None
    names = [ln for ln in lines if ln]
    if count is not None:
        if len(names) < count:
            raise DatasetError(f"label file {path} names {len(names)} classes, {count} are "
                               f"needed. Received: {len(names)} names")
        names = names[:count]
    return names


def _cifar_folder(folder: Path, files: Sequence[str], unpacked: str) -> Path:
    folder = Path(folder).expanduser()
    if not any((folder / f).is_file() for f in files) and (folder / unpacked).is_dir():
        folder = folder / unpacked  # the directory the official tarball unpacks to
    if not folder.is_dir():
        raise DatasetError(f"CIFAR folder does not exist. Received: {folder}")
    return folder


def _present(folder: Path, files: Sequence[str], name: str) -> list[tuple[Path, None]]:
    parts: list[tuple[Path, None]] = [(folder / f, None) for f in files if (folder / f).is_file()]
    if not parts:
        raise DatasetError(f"{name} folder {folder} holds none of {', '.join(files)}. "
                           f"Received: {sorted(p.name for p in folder.iterdir())[:8]}")
    return parts


def cifar10(folder: str | Path, name: str = "CIFAR-10") -> RecordDataset:
    """CIFAR-10 from its binary version (``cifar-10-batches-bin``)."""
    root = _cifar_folder(Path(folder), CIFAR10_FILES, "cifar-10-batches-bin")
    meta = root / "batches.meta.txt"
    labels = read_label_names(meta, 10) if meta.is_file() else list(CIFAR10_LABELS)
    return RecordDataset(name, _present(root, CIFAR10_FILES, name), CIFAR_SHAPE, labels, 1, 0)


def cifar100(folder: str | Path, name: str = "CIFAR-100") -> RecordDataset:
    """CIFAR-100 from its binary version (``cifar-100-binary``); targets are the fine labels."""
    root = _cifar_folder(Path(folder), CIFAR100_FILES, "cifar-100-binary")
    names = root / "fine_label_names.txt"
    labels = read_label_names(names, 100) if names.is_file() else [str(k) for k in range(100)]
    return RecordDataset(name, _present(root, CIFAR100_FILES, name), CIFAR_SHAPE, labels, 2, 1)
