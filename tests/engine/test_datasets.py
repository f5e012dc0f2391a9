"""Datasets: the bundled MNIST checked against facts read independently from the gz bytes, both
file namings, gz vs plain, train-then-test order, broken files, adapters and spec strings."""

from __future__ import annotations

import gzip
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from engine.datasets import (
    MNIST,
    LabelAdapter,
    RangeAdapter,
    bundled_mnist_dir,
    open_dataset,
    parse_labels,
    parse_range,
)
from engine.errors import DatasetError

BUNDLED = Path(__file__).resolve().parents[2] / "resources" / "mnist"
IMAGES_GZ = BUNDLED / "t10k-images-idx3-ubyte.gz"
LABELS_GZ = BUNDLED / "t10k-labels-idx1-ubyte.gz"


@pytest.fixture(scope="module")
def raw() -> dict:
    """Independent decode of the bundled files with gzip + struct (no engine code)."""
    img = gzip.decompress(IMAGES_GZ.read_bytes())
    lbl = gzip.decompress(LABELS_GZ.read_bytes())
    magic, n, rows, cols = struct.unpack(">4i", img[:16])
    lmagic, ln = struct.unpack(">2i", lbl[:8])
    return {"img": img, "lbl": lbl, "header": (magic, n, rows, cols), "lheader": (lmagic, ln)}


@pytest.fixture(scope="module")
def mnist() -> MNIST:
    return MNIST(BUNDLED)


def _idx_images(images: np.ndarray) -> bytes:
    return struct.pack(">4i", 0x803, *images.shape) + images.astype(np.uint8).tobytes()


def _idx_labels(labels: list[int]) -> bytes:
    return struct.pack(">2i", 0x801, len(labels)) + bytes(labels)


def _write_pair(
    folder: Path, part: str, images: np.ndarray, labels: list[int], dotted=False, gz=False
) -> tuple[Path, Path]:
    sep = "." if dotted else "-"
    suffix = ".gz" if gz else ""
    pack = gzip.compress if gz else (lambda b: b)
    img = folder / f"{part}-images{sep}idx3-ubyte{suffix}"
    lbl = folder / f"{part}-labels{sep}idx1-ubyte{suffix}"
    img.write_bytes(pack(_idx_images(images)))
    lbl.write_bytes(pack(_idx_labels(labels)))
    return img, lbl


def _tiny(n: int, first: int) -> np.ndarray:
    """n images of 28x28 whose pixel [0, 0] is first, first+1, ... (to identify them)."""
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = np.arange(first, first + n)
    images[:, 27, 27] = 255
    return images


# ---- the bundled MNIST test set ---------------------------------------------------------------


def test_bundled_dir_and_headers(raw):
    assert bundled_mnist_dir().resolve() == BUNDLED
    assert raw["header"] == (0x803, 10000, 28, 28)
    assert raw["lheader"] == (0x801, 10000)


def test_bundled_shapes_values_and_labels(mnist, raw):
    assert len(mnist) == 10000
    assert mnist.labels == [str(d) for d in range(10)]
    assert mnist.input_shape == (1, 28, 28)
    x0 = mnist.input(0)
    assert x0.shape == (1, 28, 28) and x0.dtype == np.float32
    assert 0.0 <= x0.min() and x0.max() <= 1.0
    # Pixel sums of samples 0 and 9999 from the raw bytes (exact: sum of bytes / 255).
    for i in (0, 9999):
        pixels = raw["img"][16 + 784 * i : 16 + 784 * (i + 1)]
        np.testing.assert_allclose(
            mnist.input(i).sum(dtype=np.float64), sum(pixels) / 255, rtol=1e-6
        )
        expected = np.frombuffer(pixels, np.uint8).reshape(1, 28, 28).astype(np.float32) / 255
        np.testing.assert_array_equal(mnist.input(i), expected)  # bit-exact bytes/255
        assert mnist.target_index(i) == raw["lbl"][8 + i]
    assert mnist.target_index(0) == 7  # the well-known first test digit
    # Label counts per class, counted on the raw label bytes.
    counts = [raw["lbl"][8:].count(bytes([d])) for d in range(10)]
    assert counts == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    all_targets = mnist.target_indices(range(10000))
    assert all_targets.dtype == np.int64
    assert np.bincount(all_targets, minlength=10).tolist() == counts


def test_batch_access_matches_single_access(mnist):
    idx = [5, 0, 9999, 5, 1234]
    batch = mnist.inputs(idx)
    assert batch.shape == (5, 1, 28, 28) and batch.dtype == np.float32
    for k, i in enumerate(idx):
        np.testing.assert_array_equal(batch[k], mnist.input(i))
    np.testing.assert_array_equal(mnist.target_indices(idx), [mnist.target_index(i) for i in idx])
    onehot = mnist.targets(idx)
    assert onehot.shape == (5, 10) and onehot.dtype == np.float32
    np.testing.assert_array_equal(onehot.argmax(1), mnist.target_indices(idx))
    np.testing.assert_array_equal(onehot.sum(1), 1.0)
    t = mnist.target(0)
    assert t.dtype == np.float32 and t.tolist() == [0.0] * 7 + [1.0] + [0.0] * 2
    np.testing.assert_array_equal(mnist.inputs(slice(0, 3)), mnist.inputs(np.arange(3)))


def test_lazy_load_and_uint8_storage():
    ds = MNIST(BUNDLED)
    assert len(ds) == 10000  # headers only
    assert ds._images is None
    ds.input(3)
    raw_images = ds.raw_images()
    assert raw_images.dtype == np.uint8 and raw_images.shape == (10000, 28, 28)
    assert ds.raw_images() is raw_images  # parsed once


def test_bad_indices(mnist):
    for bad in (-1, 10000):
        with pytest.raises(DatasetError, match=f"Received: {bad}"):
            mnist.input(bad)
    with pytest.raises(DatasetError, match="10000"):
        mnist.inputs([0, 10000])
    with pytest.raises(DatasetError):
        mnist.inputs([0.5])


# ---- files: compression, naming, order, errors ------------------------------------------------


@pytest.mark.parametrize("dotted", [False, True])
@pytest.mark.parametrize("gz", [False, True])
def test_plain_gz_and_both_namings_agree(tmp_path, mnist, dotted, gz):
    sep = "." if dotted else "-"
    for src, kind, dims in ((IMAGES_GZ, "images", 3), (LABELS_GZ, "labels", 1)):
        dst = tmp_path / f"t10k-{kind}{sep}idx{dims}-ubyte"
        if gz:
            shutil.copy(src, dst.with_name(dst.name + ".gz"))
        else:
            dst.write_bytes(gzip.decompress(src.read_bytes()))
    ds = MNIST(tmp_path)
    assert len(ds) == 10000
    np.testing.assert_array_equal(ds.raw_images(), mnist.raw_images())
    np.testing.assert_array_equal(ds.raw_targets(), mnist.raw_targets())


def test_train_then_test_order(tmp_path):
    _write_pair(tmp_path, "train", _tiny(3, 10), [4, 5, 6])
    _write_pair(tmp_path, "t10k", _tiny(2, 20), [1, 2], dotted=True, gz=True)
    ds = MNIST(tmp_path)
    assert len(ds) == 5
    assert ds.target_indices(range(5)).tolist() == [4, 5, 6, 1, 2]
    np.testing.assert_allclose(
        ds.inputs(range(5))[:, 0, 0, 0] * 255, [10, 11, 12, 20, 21], atol=1e-4
    )
    assert ds.input(4)[0, 27, 27] == 1.0
    only_train = tmp_path / "train_only"
    only_train.mkdir()
    _write_pair(only_train, "train", _tiny(3, 10), [4, 5, 6])
    assert MNIST(only_train).target_indices([0, 1, 2]).tolist() == [4, 5, 6]


def _broken(tmp_path: Path, which: str, data: bytes, gz: bool = False) -> Path:
    img, lbl = _write_pair(tmp_path, "t10k", _tiny(3, 0), [0, 1, 2])
    target = img if which == "images" else lbl
    target.write_bytes(data)
    if gz:
        target.rename(target.with_name(target.name + ".gz"))
        target = target.with_name(target.name + ".gz")
    return target


@pytest.mark.parametrize(
    "which, make, gz",
    [
        ("images", lambda b: b[:-1], False),  # body truncated
        ("images", lambda b: b[:10], False),  # header truncated
        ("images", lambda b: struct.pack(">i", 0x801) + b[4:], False),  # wrong magic
        ("labels", lambda b: struct.pack(">i", 0x803) + b[4:], False),
        ("labels", lambda b: b + b"\0", False),  # too long for its header
        ("images", lambda b: gzip.compress(b)[:-12], True),  # truncated gzip stream
        ("labels", lambda b: b"not a gzip stream", True),
    ],
)
def test_broken_file_names_the_file(tmp_path, which, make, gz):
    good = _idx_images(_tiny(3, 0)) if which == "images" else _idx_labels([0, 1, 2])
    path = _broken(tmp_path, which, make(good), gz)
    with pytest.raises(DatasetError, match=path.name):
        MNIST(tmp_path).input(0)


def test_inconsistent_files(tmp_path):
    img, lbl = _write_pair(tmp_path, "t10k", _tiny(3, 0), [0, 1])
    with pytest.raises(DatasetError, match="3 images but 2 labels"):
        MNIST(tmp_path).input(0)
    lbl.write_bytes(_idx_labels([0, 1, 10]))
    with pytest.raises(DatasetError, match="outside 0..9"):
        MNIST(tmp_path).input(0)
    img.write_bytes(struct.pack(">4i", 0x803, 1, 14, 14) + bytes(196))
    with pytest.raises(DatasetError, match=img.name):
        MNIST(tmp_path).input(0)
    lbl.unlink()
    with pytest.raises(DatasetError, match="labels"):
        MNIST(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="holds none"):
        MNIST(empty)
    with pytest.raises(DatasetError, match="does not exist"):
        MNIST(tmp_path / "missing")


# ---- adapters ---------------------------------------------------------------------------------


def test_range_adapter_bounds_and_order(mnist):
    r = RangeAdapter(mnist, 9990, 10000)  # end exclusive
    assert len(r) == 10 and r.labels == mnist.labels and r.input_shape == (1, 28, 28)
    np.testing.assert_array_equal(r.input(9), mnist.input(9999))
    np.testing.assert_array_equal(r.inputs([0, 9]), mnist.inputs([9990, 9999]))
    assert r.target_indices(range(10)).tolist() == mnist.target_indices(range(9990, 10000)).tolist()
    with pytest.raises(DatasetError):
        r.input(10)
    assert len(RangeAdapter(mnist, 5, 5)) == 0
    for start, end in ((0, 10001), (-1, 5), (6, 5)):
        with pytest.raises(DatasetError, match=rf"\[{start}, {end}\)"):
            RangeAdapter(mnist, start, end)
    explicit = RangeAdapter.from_indices(mnist, [7, 3, 7])
    assert len(explicit) == 3
    assert explicit.target_indices([0, 1, 2]).tolist() == mnist.target_indices([7, 3, 7]).tolist()
    with pytest.raises(DatasetError, match="10000"):
        RangeAdapter.from_indices(mnist, [1, 10000])
    nested = RangeAdapter(r, 2, 4)
    np.testing.assert_array_equal(nested.inputs([0, 1]), mnist.inputs([9992, 9993]))


def test_label_adapter_subset_and_order(mnist):
    targets = mnist.target_indices(range(len(mnist)))
    keep = np.flatnonzero((targets == 3) | (targets == 1))
    sub = LabelAdapter(mnist, ["3", "1"])
    assert sub.labels == ["3", "1"]
    assert len(sub) == len(keep) == 1010 + 1135
    np.testing.assert_array_equal(sub.indices, keep)
    expected = np.where(targets[keep] == 3, 0, 1)
    np.testing.assert_array_equal(sub.target_indices(range(len(sub))), expected)
    np.testing.assert_array_equal(sub.inputs([0, 1]), mnist.inputs(keep[:2]))
    assert sub.target(0).tolist() == ([1.0, 0.0] if targets[keep[0]] == 3 else [0.0, 1.0])


def test_label_adapter_other(mnist):
    targets = mnist.target_indices(range(len(mnist)))
    oth = LabelAdapter(mnist, ["7"], other=True)
    assert oth.labels == ["7", "other"]
    assert len(oth) == 10000
    got = oth.target_indices(range(10000))
    np.testing.assert_array_equal(got, np.where(targets == 7, 0, 1))
    assert oth.target(0).tolist() == [1.0, 0.0]  # sample 0 is a 7
    for bad in (["x"], [], ["1", "1"]):
        with pytest.raises(DatasetError):
            LabelAdapter(mnist, bad)


# ---- spec strings -----------------------------------------------------------------------------


def test_open_dataset_specs(tmp_path):
    ds = open_dataset("mnist")
    assert isinstance(ds, MNIST) and len(ds) == 10000
    assert open_dataset("MNIST") is ds  # one decoded copy per folder
    _write_pair(tmp_path, "t10k", _tiny(3, 0), [0, 1, 2])
    assert len(open_dataset(f"mnist:{tmp_path}")) == 3
    for bad in ("cifar", "mnist:", "", "foo:bar"):
        with pytest.raises(DatasetError, match="mnist:DIR"):
            open_dataset(bad)
    with pytest.raises(DatasetError, match="does not exist"):
        open_dataset(f"mnist:{tmp_path / 'nope'}")


def test_open_dataset_range_then_labels():
    base = open_dataset("mnist")
    r = open_dataset("mnist", range_=(9000, 10000))
    assert len(r) == 1000
    np.testing.assert_array_equal(r.input(0), base.input(9000))
    sub = open_dataset("mnist", range_=(0, 100), labels=["0", "1"])
    t = base.target_indices(range(100))
    assert len(sub) == int(((t == 0) | (t == 1)).sum())
    oth = open_dataset("mnist", range_=(0, 100), labels=["0"], other=True)
    assert len(oth) == 100 and oth.labels == ["0", "other"]
    assert len(open_dataset("mnist", range_=[1, 2, 3])) == 3
    with pytest.raises(DatasetError, match="10001"):
        open_dataset("mnist", range_=(0, 10001))
    with pytest.raises(DatasetError, match="'ten'"):
        open_dataset("mnist", labels=["ten"])
    with pytest.raises(DatasetError):
        open_dataset("mnist", other=True)


def test_parse_helpers():
    assert parse_range("60000,70000") == (60000, 70000)
    assert parse_range(" 5 , 9 ") == (5, 9)
    assert parse_range("100") == (0, 100)
    assert parse_range("[1,5,9]") == [1, 5, 9]
    for bad in ("", "a,b", "1.5,2"):
        with pytest.raises(DatasetError):
            parse_range(bad)
    assert parse_labels("0,1,2") == ["0", "1", "2"]
    assert parse_labels(" cat , dog ") == ["cat", "dog"]
    with pytest.raises(DatasetError):
        parse_labels(" , ")
