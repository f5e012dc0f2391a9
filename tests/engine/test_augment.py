"""Input adapters: exact flips, a quarter-turn rotation equal to ``np.rot90``, crops that are
windows of the padded image, frame, binarize, autoencoder targets, the chain order of a flat
option map and reseeding."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.datasets import (
    AutoencoderAdapter,
    BinarizeAdapter,
    Dataset,
    FrameAdapter,
    RandomCropAdapter,
    RandomFlipAdapter,
    RandomRotationAdapter,
    RangeAdapter,
    apply_options,
    reseed,
)
from engine.errors import DatasetError


class Images(Dataset):
    """``n`` distinct images of shape ``shape`` (values k*1000 + position, as float32)."""

    def __init__(self, n: int = 4, shape: tuple[int, ...] = (2, 5, 5)) -> None:
        self.name, self.labels, self.input_shape = "images", ["a", "b"], shape
        size = int(np.prod(shape))
        self._x = (np.arange(n)[:, None] * 1000 + np.arange(size)).reshape(n, *shape)
        self._x = self._x.astype(np.float32)

    def __len__(self) -> int:
        return len(self._x)

    def _inputs(self, idx):
        return self._x[idx].copy()

    def _target_indices(self, idx):
        return idx % 2


def test_flips_are_exact():
    base = Images()
    x = base.inputs(range(4))
    np.testing.assert_array_equal(RandomFlipAdapter(base, hflip=1).inputs(range(4)),
                                  x[..., ::-1])
    np.testing.assert_array_equal(RandomFlipAdapter(base, vflip=1).inputs(range(4)),
                                  x[..., ::-1, :])
    np.testing.assert_array_equal(RandomFlipAdapter(base).inputs(range(4)), x)
    half = RandomFlipAdapter(Images(200, (1, 2, 3)), hflip=0.5, seed=1).inputs(range(200))
    flipped = (half[:, 0, 0, 0] % 1000) == 2  # the first pixel now holds the last column
    assert 70 < flipped.sum() < 130
    np.testing.assert_array_equal(RandomFlipAdapter(base, hflip=1).targets(range(4)),
                                  base.targets(range(4)))


def test_quarter_turn_rotation_equals_rot90():
    base = Images(3, (2, 5, 5))
    rot = RandomRotationAdapter(base, theta=[math.pi / 2, math.pi / 2], center=True)
    out = rot.inputs(range(3))
    # Around the centre pixel (2, 2) a quarter turn maps the grid onto itself exactly.
    expect = np.rot90(base.inputs(range(3)), k=-1, axes=(2, 3))
    np.testing.assert_allclose(out, expect, atol=1e-3)
    half = RandomRotationAdapter(base, theta=[math.pi, math.pi], center=[0, 0]).input(0)
    assert half[0, 0, 0] == base.input(0)[0, 0, 0] and half[0, 1:, :].sum() == 0  # off-image


def test_crops_are_windows_of_the_padded_image():
    base = Images(6, (1, 5, 5))
    crop = RandomCropAdapter(base, 3, 4, padding=1, seed=2)
    assert crop.input_shape == (1, 4, 3)
    out = crop.inputs(range(6))
    assert out.shape == (6, 1, 4, 3)
    padded = np.pad(base.inputs(range(6)), ((0, 0), (0, 0), (1, 1), (1, 1)))
    for k in range(6):
        hits = [(y, x) for y in range(4) for x in range(5)
                if np.array_equal(padded[k, :, y:y + 4, x:x + 3], out[k])]
        assert hits, f"crop {k} is no window of the padded image"
    ranged = RandomCropAdapter(base, [2, 4], [2, 4], seed=0)
    assert ranged.input_shape is None
    sizes = {ranged.inputs(range(2)).shape[2:] for _ in range(20)}
    assert len(sizes) > 1  # one size per batch, drawn in [2, 4]
    up = RandomCropAdapter(Images(1, (1, 2, 2)), 3, 3, seed=0).inputs([0])
    assert up.shape == (1, 1, 3, 3)  # scaled up x2 (to 4x4) before cropping
    with pytest.raises(DatasetError, match="cropWidth"):
        RandomCropAdapter(base, [4, 2], 2)


def test_frame_binarize_and_autoencode():
    base = Images(2, (3, 4, 8))
    framed = FrameAdapter(base, [3, 2, 2])
    assert framed.inputs(range(2)).shape == (2, 3, 2, 2) and framed.input_shape == (3, 2, 2)
    # centre crop 4x4 of the 4x8 image (columns 2..5), then corner-aligned bilinear 2x2
    np.testing.assert_allclose(framed.input(0)[0], base.input(0)[0][np.ix_([0, 3], [2, 5])])
    binary = BinarizeAdapter(Images(1, (1, 2, 2)), threshold=1.5).input(0)
    np.testing.assert_array_equal(binary, [[[0, 0], [1, 1]]])
    auto = AutoencoderAdapter(Images(3, (1, 2, 2)), noise=0.5, seed=0)
    x, t = auto.batch(range(3))
    np.testing.assert_array_equal(t, Images(3, (1, 2, 2)).inputs(range(3)).reshape(3, 4))
    assert not np.array_equal(x.reshape(3, 4), t) and not auto.classification
    assert auto.target_size == 4


def test_option_chain_order_and_reseed():
    base = Images(10, (1, 4, 4))
    opts = {"range": "2,8", "hflip": "1", "cropWidth": "4", "cropHeight": "4",
            "cropPadding": "0", "frame": "[1, 2, 2]", "binarize": "0.5", "learningRate": "0.1"}
    chained = apply_options(base, opts, seed=3)
    kinds = []
    node = chained
    while node is not base:
        kinds.append(type(node).__name__)
        node = node.base
    assert kinds == ["BinarizeAdapter", "FrameAdapter", "RandomCropAdapter",
                     "RandomFlipAdapter", "RangeAdapter"]
    assert len(chained) == 6 and chained.input_shape == (1, 2, 2)
    flips = apply_options(base, {"hflip": "0.5"}, seed=1)
    first = flips.inputs(range(10))
    reseed(flips, 1)
    np.testing.assert_array_equal(flips.inputs(range(10)), first)
    assert isinstance(apply_options(base, {"range": "0,1,5"}), RangeAdapter)
    with pytest.raises(DatasetError, match="frame.*takes integers"):
        apply_options(base, {"frame": "1,2.5,2"})
