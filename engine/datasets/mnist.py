"""MNIST from IDX files (spec §5.2): official train (0-59999) then test (60000-69999).

A folder may hold any of the four standard files, gzipped (``.gz``) or not, under either naming
(``train-images-idx3-ubyte`` as distributed by LeCun, ``train-images.idx3-ubyte`` as the
original DIANNE expects). Where only the test pair is present (the bundled copy), the dataset is
its 10,000 samples. Files are decompressed and parsed once, on first access, with the IDX headers
validated (big-endian magic 0x00000803 for images, 0x00000801 for labels, one int32 per
dimension, data size matching the header, as many labels as images); the decoded bytes are kept
as uint8 and scaled to float32 /255 per access, so no float copy of the set exists unless asked.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from importlib import resources
from pathlib import Path

import numpy as np

from engine.datasets.base import Dataset
from engine.errors import DatasetError

ROWS = COLS = 28
IMAGES_MAGIC = 0x00000803  # unsigned byte data, 3 dimensions
LABELS_MAGIC = 0x00000801  # unsigned byte data, 1 dimension
PARTS = ("train", "t10k")  # index order: official train set first, then the test set
LABELS = [str(d) for d in range(10)]


def bundled_mnist_dir() -> Path:
    """Return the folder of the MNIST test set shipped in the ``resources`` package."""
    return Path(str(resources.files("resources").joinpath("mnist")))


def find_idx_file(folder: Path, part: str, kind: str) -> Path | None:
    """Return the file of ``part`` (train/t10k) and ``kind`` (images/labels), or None.

    Both namings are accepted, each plain or gzipped; the first existing one wins (plain before
    gzipped, so an unpacked copy is preferred to decompressing).
    """
    dims = 3 if kind == "images" else 1
    for stem in (f"{part}-{kind}-idx{dims}-ubyte", f"{part}-{kind}.idx{dims}-ubyte"):
        for suffix in ("", ".gz"):
            path = folder / (stem + suffix)
            if path.is_file():
                return path
    return None


def read_idx(path: Path, magic: int, count_only: bool = False) -> tuple[tuple[int, ...], bytes]:
    """Read an unsigned-byte IDX file: return its dimensions and (unless ``count_only``) data.

    Raises DatasetError naming the file on a bad magic number, a truncated header or body, a
    size that does not match the header, or an unreadable gzip stream.
    """
    n_dims = magic & 0xFF
    header_len = 4 + 4 * n_dims
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read(header_len) if count_only else f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"MNIST file {path} cannot be read ({exc}). Received: {path}") from None
    if len(raw) < header_len:
        raise DatasetError(
            f"MNIST file {path} is truncated: the IDX header needs {header_len} bytes. "
            f"Received: {len(raw)} bytes"
        )
    (found,) = struct.unpack(">i", raw[:4])
    if found != magic:
        raise DatasetError(
            f"MNIST file {path} has the wrong IDX magic number (expected 0x{magic:08x}). "
            f"Received: 0x{found & 0xFFFFFFFF:08x}"
        )
    dims = struct.unpack(f">{n_dims}i", raw[4:header_len])
    if any(d < 0 for d in dims) or (n_dims == 3 and dims[1:] != (ROWS, COLS)):
        raise DatasetError(
            f"MNIST file {path} has bad dimensions (expected N x {ROWS} x {COLS} images or N "
            f"labels). Received: {list(dims)}"
        )
    if count_only:
        return dims, b""
    expected = header_len + int(np.prod(dims))
    if len(raw) != expected:
        raise DatasetError(
            f"MNIST file {path} holds {len(raw)} bytes but its header {list(dims)} needs "
            f"{expected}. Received: {len(raw)} bytes"
        )
    return dims, raw[header_len:]


class MNIST(Dataset):
    """MNIST read from a folder of IDX files; see the module docstring for names and order."""

    labels = LABELS
    input_shape = (1, ROWS, COLS)

    def __init__(self, folder: str | Path, name: str = "MNIST") -> None:
        self.folder = Path(folder)
        self.name = name
        self.labels = list(LABELS)
        if not self.folder.is_dir():
            raise DatasetError(f"MNIST folder does not exist. Received: {self.folder}")
        self._files: list[tuple[Path, Path]] = []
        for part in PARTS:
            images = find_idx_file(self.folder, part, "images")
            labels = find_idx_file(self.folder, part, "labels")
            if images is None and labels is None:
                continue
            if images is None or labels is None:
                present = images or labels
                raise DatasetError(
                    f"MNIST folder {self.folder} has {present.name} but not its "
                    f"{'labels' if labels is None else 'images'} file. Received: {present}"
                )
            self._files.append((images, labels))
        if not self._files:
            raise DatasetError(
                f"MNIST folder {self.folder} holds none of train-images-idx3-ubyte, "
                "t10k-images-idx3-ubyte (or the .idx3-ubyte naming, plain or .gz). "
                f"Received: {sorted(p.name for p in self.folder.iterdir())}"
            )
        self._size: int | None = None
        self._images: np.ndarray | None = None  # (N, 28, 28) uint8, read-only
        self._targets: np.ndarray | None = None  # (N,) uint8

    @property
    def parts(self) -> list[tuple[str, int]]:
        """Return ``[(images file name, samples), ...]`` in index order (reads headers only)."""
        return [(img.name, read_idx(img, IMAGES_MAGIC, True)[0][0]) for img, _ in self._files]

    def __len__(self) -> int:
        if self._size is None:
            # Headers only: asking the size must not decompress 50 MB.
            self._size = sum(count for _, count in self.parts)
        return self._size

    def _load(self) -> tuple[np.ndarray, np.ndarray]:
        if self._images is None or self._targets is None:
            images, targets = [], []
            for img_path, lbl_path in self._files:
                dims, img = read_idx(img_path, IMAGES_MAGIC)
                (n_labels,), lbl = read_idx(lbl_path, LABELS_MAGIC)
                if dims[0] != n_labels:
                    raise DatasetError(
                        f"MNIST files {img_path} and {lbl_path} disagree: {dims[0]} images but "
                        f"{n_labels} labels. Received: {n_labels}"
                    )
                lbl_arr = np.frombuffer(lbl, dtype=np.uint8)
                if lbl_arr.size and int(lbl_arr.max()) > 9:
                    raise DatasetError(
                        f"MNIST file {lbl_path} holds a label outside 0..9. "
                        f"Received: {int(lbl_arr.max())}"
                    )
                images.append(np.frombuffer(img, dtype=np.uint8).reshape(dims))
                targets.append(lbl_arr)
            # One part: keep the read-only buffer view (no copy); two: one concatenated copy.
            self._images = images[0] if len(images) == 1 else np.concatenate(images)
            self._targets = targets[0] if len(targets) == 1 else np.concatenate(targets)
            self._size = len(self._targets)
        return self._images, self._targets

    def raw_images(self) -> np.ndarray:
        """Return all images as the decoded read-only uint8 array ``(N, 28, 28)``."""
        return self._load()[0]

    def raw_targets(self) -> np.ndarray:
        """Return all labels as the decoded read-only uint8 array ``(N,)``."""
        return self._load()[1]

    def _input(self, i: int) -> np.ndarray:
        out = self._load()[0][i].astype(np.float32).reshape(self.input_shape)
        out /= 255.0
        return out

    def _inputs(self, idx: np.ndarray) -> np.ndarray:
        out = self._load()[0][idx].astype(np.float32).reshape(len(idx), *self.input_shape)
        out /= 255.0
        return out

    def _target_index(self, i: int) -> int:
        return int(self._load()[1][i])

    def _target_indices(self, idx: np.ndarray) -> np.ndarray:
        return self._load()[1][idx].astype(np.int64)
