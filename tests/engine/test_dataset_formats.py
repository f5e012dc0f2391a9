"""Dataset readers on files written here byte-exactly in the official formats: CIFAR-10/100
records, DIANNE's FileDataset, CSV, ImageNet-style folders, image folders and descriptor JSON
files (with adapters), plus splits and samplers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.datasets import (
    bundled_mnist_dir,
    cifar10,
    cifar100,
    open_dataset,
    open_descriptor,
    splits,
)
from engine.datasets.sampling import Sampler
from engine.errors import DatasetError


def cifar_records(n: int, labels: list[int], head: list[list[int]] | None = None,
                  seed: int = 0) -> tuple[bytes, np.ndarray]:
    """``n`` records: label byte(s) then 3072 image bytes (R plane, G plane, B plane)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    rows = []
    for k in range(n):
        prefix = bytes(head[k]) if head is not None else bytes([labels[k]])
        rows.append(prefix + images[k].tobytes())
    return b"".join(rows), images


@pytest.fixture
def cifar10_dir(tmp_path: Path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    data = {}
    for k, name in enumerate(["data_batch_1.bin", "data_batch_2.bin", "test_batch.bin"]):
        labels = [(3 * k + j) % 10 for j in range(4)]
        raw, images = cifar_records(4, labels, seed=k)
        (folder / name).write_bytes(raw)
        data[name] = (labels, images)
    names = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta.txt").write_text("\n".join(names) + "\n\n")
    return tmp_path, data, names


def test_cifar10_records_order_values_and_labels(cifar10_dir):
    root, data, names = cifar10_dir
    ds = cifar10(root)  # the unpacked tarball folder is found inside
    assert len(ds) == 12 and ds.labels == names and ds.input_shape == (3, 32, 32)
    # order: the train batches present, then the test batch
    expect = data["data_batch_1.bin"][0] + data["data_batch_2.bin"][0] + data["test_batch.bin"][0]
    assert ds.target_indices(range(12)).tolist() == expect
    img = data["data_batch_2.bin"][1][1].reshape(3, 32, 32).astype(np.float32) / 255
    np.testing.assert_array_equal(ds.input(5), img)
    np.testing.assert_array_equal(ds.inputs([11, 5])[1], img)
    assert ds.input(5)[1, 0, 0] == np.float32(data["data_batch_2.bin"][1][1][1024] / 255)
    np.testing.assert_array_equal(ds.targets([0])[0], np.eye(10)[expect[0]])
    assert open_dataset(f"cifar10:{root}", range_=(4, 8)).target_indices(range(4)).tolist() == (
        expect[4:8])


def test_cifar100_fine_label(tmp_path):
    head = [[c, f] for c, f in [(1, 42), (19, 99), (0, 0)]]
    raw, images = cifar_records(3, [], head=head)
    (tmp_path / "train.bin").write_bytes(raw[: 2 * 3074])
    (tmp_path / "test.bin").write_bytes(raw[2 * 3074:])
    ds = cifar100(tmp_path)
    assert len(ds) == 3 and len(ds.labels) == 100
    assert ds.target_indices([0, 1, 2]).tolist() == [42, 99, 0]
    np.testing.assert_array_equal(ds.input(1).ravel(), images[1] / np.float32(255))
    (tmp_path / "fine_label_names.txt").write_text("\n".join(f"c{k}" for k in range(100)))
    assert cifar100(tmp_path).labels[99] == "c99"


def test_record_errors_name_the_file(tmp_path):
    raw, _ = cifar_records(2, [1, 2])
    (tmp_path / "data_batch_1.bin").write_bytes(raw[:-5])
    with pytest.raises(DatasetError, match=r"data_batch_1\.bin.*truncated.*6141 bytes"):
        cifar10(tmp_path)
    raw, _ = cifar_records(2, [1, 12])
    (tmp_path / "data_batch_1.bin").write_bytes(raw)
    ds = cifar10(tmp_path)
    with pytest.raises(DatasetError, match=r"data_batch_1\.bin holds class 12"):
        ds.target_indices([0])
    with pytest.raises(DatasetError, match="holds none of"):
        cifar10(tmp_path / "..")


def test_file_dataset_both_layouts(tmp_path):
    samples = np.arange(12, dtype=np.uint8).reshape(3, 4)
    (tmp_path / "inputs.bin").write_bytes(samples.tobytes())
    (tmp_path / "targets.bin").write_bytes(bytes([2, 0, 1]))
    (tmp_path / "both.bin").write_bytes(b"".join(bytes([t]) + s.tobytes()
                                                 for t, s in zip([2, 0, 1], samples, strict=True)))
    for extra in ({"inputFiles": ["inputs.bin"], "targetFiles": ["targets.bin"]},
                  {"files": ["both.bin"]}):
        desc = {"name": "blob", "type": "FileDataset", "inputDims": [2, 2], "targetDims": [3],
                **extra}
        (tmp_path / "blob.json").write_text(json.dumps(desc))
        ds = open_dataset(str(tmp_path / "blob.json"))
        assert ds.name == "blob" and len(ds) == 3 and ds.labels == ["0", "1", "2"]
        assert ds.target_indices([0, 1, 2]).tolist() == [2, 0, 1]
        np.testing.assert_array_equal(ds.input(2), samples[2].reshape(2, 2) / np.float32(255))


def test_csv_classification_regression_and_offsets(tmp_path):
    rows = ["7,0.5,1.5,2", "8,-1,2.25,0", "", "9,3,4,1"]
    (tmp_path / "data.csv").write_text("\n".join(rows) + "\n")
    # inputOffset 1 skips the id column; targetOffset 1 = the column right after the input
    desc = {"name": "tab", "type": "CSVDataset", "file": "data.csv", "inputOffset": "1",
            "targetOffset": "1", "inputDims": [2], "targetDims": [3], "classification": True,
            "labels": ["a", "b", "c"]}
    (tmp_path / "tab.json").write_text(json.dumps(desc))
    ds = open_descriptor(tmp_path / "tab.json")
    assert len(ds) == 3 and ds.labels == ["a", "b", "c"]
    np.testing.assert_array_equal(ds.inputs(range(3)), [[0.5, 1.5], [-1, 2.25], [3, 4]])
    assert ds.target_indices(range(3)).tolist() == [2, 0, 1]
    # regression: two target columns; targetOffset 0 also means "right after the input"
    desc.update(classification="false", targetOffset="0", targetDims=[2], inputOffset="0")
    desc.pop("labels")
    (tmp_path / "tab.json").write_text(json.dumps(desc))
    reg = open_descriptor(tmp_path / "tab.json")
    assert not reg.classification and reg.target_size == 2
    np.testing.assert_array_equal(reg.inputs([1]), [[8, -1]])
    np.testing.assert_array_equal(reg.targets([0, 2]), [[1.5, 2], [4, 1]])
    bare = open_dataset(f"csv:{tmp_path / 'data.csv'}")  # last column = class
    assert bare.labels == ["0", "1", "2"] and bare.inputs([0]).shape == (1, 3)
    (tmp_path / "bad.csv").write_text("1,2,0\n1,x,1\n")
    with pytest.raises(DatasetError, match=r"bad\.csv line 2: not a number.*'x'"):
        open_dataset(f"csv:{tmp_path / 'bad.csv'}")


def _png(path: Path, value: int, size: tuple[int, int], mode: str = "RGB") -> np.ndarray:
    rng = np.random.default_rng(value)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    arr = rng.integers(0, 256, size=shape, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode).save(path, format="PNG")  # lossless, whatever the name says
    return arr


def test_imagenet_training_and_validation_layouts(tmp_path):
    train = tmp_path / "train"
    a = _png(train / "images" / "n02" / "1.JPEG", 1, (5, 4))
    _png(train / "images" / "n02" / "2.JPEG", 2, (6, 4))
    _png(train / "images" / "n01" / "1.JPEG", 3, (5, 4))
    (train / "classes.txt").write_text("n01\ttench, Tinca tinca\nn02,goldfish, Carassius\n")
    ds = open_dataset(f"imagenet:{train}")
    assert ds.name == "ImageNetTraining" and ds.labels == ["tench", "goldfish"]
    assert len(ds) == 3 and ds.target_indices(range(3)).tolist() == [0, 1, 1]
    assert ds.input_shape is None
    np.testing.assert_array_equal(ds.input(1), a.transpose(2, 0, 1) / np.float32(255))
    with pytest.raises(DatasetError, match="different shapes.*frame"):
        ds.inputs(range(3))
    framed = open_dataset(str(_descriptor(tmp_path, "framed", adapter="FrameAdapter",
                                          dataset="ImageNetTraining", frame=[3, 8, 8],
                                          source=train)))
    assert framed.inputs(range(3)).shape == (3, 3, 8, 8) and framed.name == "framed"
    val = tmp_path / "val"
    g = _png(val / "images" / "ILSVRC2012_val_00000002.JPEG", 4, (3, 2), mode="L")
    _png(val / "images" / "ILSVRC2012_val_00000001.JPEG", 5, (3, 2))
    (val / "classes.txt").write_text("tench, Tinca tinca\ngoldfish\n")
    (val / "outputs.txt").write_text("2\n1\n")
    ds = open_dataset(f"imagenet:{val}")
    assert ds.labels == ["tench", "goldfish"] and ds.target_indices([0, 1]).tolist() == [1, 0]
    np.testing.assert_array_equal(ds.input(1), g[None] / np.float32(255))  # grey: one channel


def _descriptor(root: Path, name: str, source: Path | None = None, **keys) -> Path:
    """Write ``root/<name>.json``; with ``source``, also a descriptor for the base dataset."""
    if source is not None:
        (source / "base.json").write_text(json.dumps({"name": keys["dataset"]}))
    path = root / f"{name}.json"
    path.write_text(json.dumps({"name": name, **keys}))
    return path


def test_image_folder(tmp_path):
    cat = _png(tmp_path / "pets" / "cat" / "b.png", 1, (4, 4))
    _png(tmp_path / "pets" / "cat" / "a.png", 2, (4, 4))
    _png(tmp_path / "pets" / "dog" / "x.png", 3, (4, 4))
    (tmp_path / "pets" / "dog" / "notes.txt").write_text("not an image")
    ds = open_dataset(f"images:{tmp_path / 'pets'}")
    assert ds.labels == ["cat", "dog"] and len(ds) == 3
    assert ds.target_indices(range(3)).tolist() == [0, 0, 1]
    np.testing.assert_array_equal(ds.inputs([1])[0], cat.transpose(2, 0, 1) / np.float32(255))
    (tmp_path / "pets" / "dog" / "x.png").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match=r"x\.png cannot be read"):
        ds.input(2)


def test_descriptors_mnist_by_name_and_adapters(tmp_path, monkeypatch):
    mnist_dir = tmp_path / "datasets" / "MNIST"
    mnist_dir.mkdir(parents=True)
    for f in bundled_mnist_dir().glob("*.gz"):
        shutil.copy(f, mnist_dir / f.name)
    (mnist_dir / "MNIST.json").write_text(json.dumps({"name": "MNIST"}))
    root = tmp_path / "datasets"
    _descriptor(root, "MNIST train", adapter="be.iminds.iot.dianne.dataset.adapters.RangeAdapter",
                dataset="MNIST", range=[0, 9000])
    _descriptor(root, "MNIST 1 vs other", adapter="LabelAdapter", dataset="MNIST train",
                labels=["1"], other=True)
    _descriptor(root, "MNIST binary", adapter="BinarizeAdapter", dataset="MNIST", binarize=0.3)
    monkeypatch.setenv("DIANNE_DATASETS", str(root))
    full = open_dataset("MNIST")  # the bundled opener wins for the bare scheme name
    assert len(full) == 10000
    train = open_dataset("MNIST train")
    assert train.name == "MNIST train" and len(train) == 9000
    little = open_dataset("MNIST 1 vs other")
    assert little.labels == ["1", "other"] and len(little) == 9000
    want = (full.target_indices(range(9000)) == 1).astype(int)
    assert (little.target_indices(range(9000)) == 1 - want).all()
    binary = open_dataset(str(root / "MNIST binary.json"))
    np.testing.assert_array_equal(binary.input(0), (full.input(0) > 0.3).astype(np.float32))
    (root / "broken.json").write_text(json.dumps({"name": "odd", "adapter": "Warp",
                                                  "dataset": "MNIST"}))
    with pytest.raises(DatasetError, match="unknown adapter.*Warp"):
        open_dataset("odd")
    with pytest.raises(DatasetError, match="STL-10"):
        open_descriptor(_descriptor(root, "STL-10"))
    with pytest.raises(DatasetError, match="Unknown dataset spec"):
        open_dataset("no such dataset")


def test_splits_default_and_fractions():
    s = splits(10000)
    assert (s.train, s.validation, s.test) == ((0, 9000), (9000, 9000), (9000, 10000))
    assert splits(70000).test == (63000, 70000)  # the builder's default for full MNIST
    s = splits(1000, split=0.8, validation=0.1)
    assert (s.train, s.validation, s.test) == ((0, 700), (700, 800), (800, 1000))
    assert splits(15).test == (13, 15)  # round(1.5) = 2 as Java's Math.round
    with pytest.raises(DatasetError, match="no samples left"):
        splits(10, split=0.5, validation=0.5)
    with pytest.raises(DatasetError, match="training fraction"):
        splits(10, split=1.5)
    train, val, test = splits(100).apply(open_dataset("mnist", range_=(0, 100)))
    assert (len(train), val, len(test)) == (90, None, 10)


def test_samplers():
    data = open_dataset("mnist", range_=(0, 10))
    rng = np.random.default_rng(0)
    perm = Sampler("permutation", data, rng)
    epoch = [perm.batch(4) for _ in range(3)]
    assert [len(b) for b in epoch] == [4, 4, 2]
    assert sorted(np.concatenate(epoch).tolist()) == list(range(10))
    seq = Sampler("SEQUENTIAL", data, rng)
    assert [seq.batch(4).tolist() for _ in range(4)][2:] == [[8, 9], [0, 1, 2, 3]]
    assert Sampler("UNIFORM", data, rng).batch(50).max() < 10
    weighted = Sampler("WEIGHTED", data, rng, {"weightedRanges": "0,2,5,10",
                                               "probabilities": "1,0"})
    assert weighted.batch(40).max() < 2
    per_class = Sampler("UNIFORMCLASS", data, rng).batch(20)
    classes = data.target_indices(per_class)
    assert len(set(classes[: len(set(data.target_indices(range(10))))])) == len(
        set(data.target_indices(range(10))))
    with pytest.raises(DatasetError, match="weightedRanges"):
        Sampler("WEIGHTED", data, rng, {"weightedRanges": "0,2", "probabilities": "1,1"})
