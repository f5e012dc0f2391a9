"""Input adapters of spec §5.3: random flips, rotation and crops, frame, binarize, autoencode.

Each adapter is a dataset over another one; the sample count and the targets are the wrapped
dataset's (the autoencoder replaces the targets by the inputs). Samples are 2-D ``(H, W)`` or
3-D ``(C, H, W)``; batches put the sample axis in front. The random adapters draw from their own
seeded ``numpy`` generator (``reseed`` resets it), so a training run with a seed is repeatable;
the original seeded them from the clock.

* :class:`RandomFlipAdapter` — ``hflip`` / ``vflip``: the probability of a horizontal /
  vertical flip of each sample.
* :class:`RandomRotationAdapter` — ``rotationTheta``: an angle range ``[min, max]`` in radians,
  or one value t for ``[-t, t]`` (default ``[-pi, pi]``); ``rotationCenter``: ``[x, y]``, or
  ``true`` for the image centre; without it every sample gets a random centre, as in the
  original. Bilinear sampling, zeros outside the image.
* :class:`RandomCropAdapter` — ``cropWidth`` / ``cropHeight`` (a size or a ``[min, max]`` range)
  and ``cropPadding`` (zeros around the image first); an image smaller than the crop is first
  scaled up by factors of two, as in the original. With ranges, one size is drawn per batch
  (the original drew one per sample, which cannot form a batch).
* :class:`FrameAdapter` — ``frame``: ``[C, H, W]`` or ``[H, W]``: aspect-preserving centre crop
  and bilinear resize (the ``Frame`` module), which makes variable-size images batchable.
* :class:`BinarizeAdapter` — ``binarize``: values above the threshold become 1, others 0.
* :class:`AutoencoderAdapter` — ``autoencode``: the target is the (clean) input, flattened;
  ``encoder_noise`` adds Gaussian noise of that standard deviation to the input and
  ``encoder_drop`` zeroes input values with that probability (a denoising autoencoder).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from engine.datasets.adapters import Adapter
from engine.datasets.base import Dataset
from engine.errors import DatasetError


class RandomAdapter(Adapter):
    """An adapter that draws random numbers from its own seeded generator."""

    def __init__(self, base: Dataset, seed: int | None = None, name: str | None = None) -> None:
        super().__init__(base, name)
        self.reseed(seed)

    def reseed(self, seed: int | None) -> None:
        """Restart the random stream (None: fresh entropy)."""
        self.rng = np.random.default_rng(seed)


def _hw(batch: np.ndarray, who: str) -> tuple[int, int]:
    if batch.ndim not in (3, 4):
        raise DatasetError(f"{who} works on (H, W) or (C, H, W) samples. "
                           f"Received: sample shape {batch.shape[1:]}")
    return batch.shape[-2], batch.shape[-1]


class RandomFlipAdapter(RandomAdapter):
    """Flip each sample horizontally with probability ``hflip``, vertically with ``vflip``."""

    def __init__(self, base: Dataset, hflip: float = 0.0, vflip: float = 0.0,
                 seed: int | None = None) -> None:
        super().__init__(base, seed)
        self.hflip, self.vflip = float(hflip), float(vflip)

    def adapt(self, inputs: np.ndarray) -> np.ndarray:
        _hw(inputs, "RandomFlipAdapter")
        out = np.array(inputs, dtype=np.float32, copy=True)
        vertical = self.rng.random(len(out)) < self.vflip
        horizontal = self.rng.random(len(out)) < self.hflip
        out[vertical] = out[vertical][..., ::-1, :]
        out[horizontal] = out[horizontal][..., ::-1]
        return out


def bilinear_sample(images: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Sample ``images`` (N, C, H, W) at float positions ``ys``/``xs`` (N, H', W'), zeros
    outside; returns (N, C, H', W')."""
    n, c, h, w = images.shape
    y0, x0 = np.floor(ys).astype(np.int64), np.floor(xs).astype(np.int64)
    wy, wx = (ys - y0).astype(np.float32), (xs - x0).astype(np.float32)
    out = np.zeros((n, c, *ys.shape[1:]), dtype=np.float32)
    batch = np.arange(n)[:, None, None]
    for dy, fy in ((0, 1 - wy), (1, wy)):
        for dx, fx in ((0, 1 - wx), (1, wx)):
            yy, xx = y0 + dy, x0 + dx
            inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            vals = images[batch, :, np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)]  # N,H',W',C
            out += np.moveaxis(vals * (fy * fx * inside)[..., None], -1, 1)
    return out


class RandomRotationAdapter(RandomAdapter):
    """Rotate each sample by a random angle in ``theta`` around ``center`` (see module doc)."""

    def __init__(self, base: Dataset, theta: Sequence[float] | float = math.pi,
                 center: Sequence[float] | bool | None = None, seed: int | None = None) -> None:
        super().__init__(base, seed)
        if isinstance(theta, int | float):
            self.theta = (-abs(float(theta)), abs(float(theta)))
        else:
            values = [float(t) for t in theta]
            if len(values) != 2 or values[0] > values[1]:
                raise DatasetError(f"rotationTheta is an angle or a range [min, max]. "
                                   f"Received: {list(theta)}")
            self.theta = (values[0], values[1])
        self.center = center

    def adapt(self, inputs: np.ndarray) -> np.ndarray:
        h, w = _hw(inputs, "RandomRotationAdapter")
        images = inputs if inputs.ndim == 4 else inputs[:, None]
        n = len(images)
        angles = self.rng.uniform(*self.theta, size=n)
        if self.center is True:
            cx, cy = np.full(n, w // 2, dtype=np.float64), np.full(n, h // 2, dtype=np.float64)
        elif self.center is None or self.center is False:
            cx = self.rng.integers(0, w, size=n).astype(np.float64)
            cy = self.rng.integers(0, h, size=n).astype(np.float64)
        else:
            cx, cy = (np.full(n, float(v)) for v in self.center)
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
        cos, sin = np.cos(angles)[:, None, None], np.sin(angles)[:, None, None]
        dx, dy = xs[None] - cx[:, None, None], ys[None] - cy[:, None, None]
        # Inverse map: the output pixel p comes from R(-theta) (p - c) + c.
        src_x = cos * dx + sin * dy + cx[:, None, None]
        src_y = -sin * dx + cos * dy + cy[:, None, None]
        out = bilinear_sample(np.asarray(images, dtype=np.float32), src_y, src_x)
        return out if inputs.ndim == 4 else out[:, 0]


def _size_range(value: Sequence[int] | int, key: str) -> tuple[int, int]:
    values = [int(value)] if isinstance(value, int | float | str) else [int(v) for v in value]
    lo, hi = (values[0], values[0]) if len(values) == 1 else (values[0], values[-1])
    if len(values) > 2 or lo < 1 or hi < lo:
        raise DatasetError(f"{key} is a size or a range [min, max] of sizes >= 1. "
                           f"Received: {value}")
    return lo, hi


class RandomCropAdapter(RandomAdapter):
    """Random crops of ``width`` x ``height`` (sizes or ranges), after ``padding`` zeros."""

    def __init__(self, base: Dataset, width: Sequence[int] | int, height: Sequence[int] | int,
                 padding: int = 0, seed: int | None = None) -> None:
        super().__init__(base, seed)
        self.width, self.height = _size_range(width, "cropWidth"), _size_range(height, "cropHeight")
        self.padding = int(padding)
        fixed = self.width[0] == self.width[1] and self.height[0] == self.height[1]
        shape = base.input_shape
        if not fixed:
            self.input_shape = None
        elif shape is None:
            self.input_shape = (3, self.height[0], self.width[0])  # as the original assumes
        else:
            self.input_shape = (*shape[:-2], self.height[0], self.width[0])

    def adapt(self, inputs: np.ndarray) -> np.ndarray:
        h, w = _hw(inputs, "RandomCropAdapter")
        width = int(self.rng.integers(self.width[0], self.width[1] + 1))
        height = int(self.rng.integers(self.height[0], self.height[1] + 1))
        scale = 1
        while h * scale < height or w * scale < width:
            scale *= 2
        if scale > 1:
            from engine.modules import create_module  # noqa: PLC0415

            inputs = create_module("Scale", dim0=h * scale, dim1=w * scale).forward(inputs)
            h, w = h * scale, w * scale
        p = self.padding
        if p:
            pads = [(0, 0)] * (inputs.ndim - 2) + [(p, p), (p, p)]
            inputs = np.pad(inputs, pads)
        oy = np.floor(self.rng.random(len(inputs)) * (h + 2 * p - height + 1)).astype(int)
        ox = np.floor(self.rng.random(len(inputs)) * (w + 2 * p - width + 1)).astype(int)
        out = np.empty((*inputs.shape[:-2], height, width), dtype=np.float32)
        for k in range(len(inputs)):
            out[k] = inputs[k, ..., oy[k]:oy[k] + height, ox[k]:ox[k] + width]
        return out


class FrameAdapter(Adapter):
    """Centre crop to the target aspect ratio, then resize to ``dims`` ((C,H,W) or (H,W))."""

    def __init__(self, base: Dataset, dims: Sequence[int]) -> None:
        super().__init__(base)
        dims = tuple(int(d) for d in dims)
        if len(dims) not in (2, 3) or min(dims) < 1:
            raise DatasetError(f"frame is [C, H, W] or [H, W] of positive sizes. "
                               f"Received: {list(dims)}")
        from engine.modules import create_module  # noqa: PLC0415

        props = {f"dim{k}": d for k, d in enumerate(dims)}
        self._frame = create_module("Frame", **props)
        self.input_shape = dims

    def adapt(self, inputs: np.ndarray) -> np.ndarray:
        return np.array(self._frame.forward(np.asarray(inputs, dtype=np.float32)), copy=True)


class BinarizeAdapter(Adapter):
    """Values above ``threshold`` become 1, the others 0."""

    def __init__(self, base: Dataset, threshold: float = 0.5) -> None:
        super().__init__(base)
        self.threshold = float(threshold)

    def adapt(self, inputs: np.ndarray) -> np.ndarray:
        return (inputs > self.threshold).astype(np.float32)


class AutoencoderAdapter(RandomAdapter):
    """Target := the input (flattened); the input optionally noisy (see module doc)."""

    def __init__(self, base: Dataset, noise: float = 0.0, drop: float = 0.0,
                 seed: int | None = None) -> None:
        super().__init__(base, seed)
        if base.input_shape is None:
            raise DatasetError(f"autoencode needs fixed-size inputs; add a frame adapter first. "
                               f"Received: {base.name!r} with variable-size samples")
        self.noise, self.drop = float(noise), float(drop)
        self.classification = False
        self.labels = []

    @property
    def target_size(self) -> int:
        return int(np.prod(self.input_shape))

    def adapt(self, inputs: np.ndarray) -> np.ndarray:
        out = np.array(inputs, dtype=np.float32, copy=True)
        if self.noise:
            out += self.rng.normal(0.0, self.noise, size=out.shape).astype(np.float32)
        if self.drop:
            out[self.rng.random(out.shape) < self.drop] = 0.0
        return out

    def _batch(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        clean = self.base._batch(idx)[0]
        return self.adapt(clean), clean.reshape(len(idx), -1).copy()

    def _target_vectors(self, idx: np.ndarray) -> np.ndarray:
        return self.base._inputs(idx).reshape(len(idx), -1)

    def _target_indices(self, idx: np.ndarray) -> np.ndarray:
        return self._target_vectors(idx).argmax(axis=1)
