"""Shape layers: Reshape, Zeropad, Narrow and Invert (spec section 4.2).

``Reshape`` takes ``dim0``, ``dim1``, ... (consecutive keys until one is missing or empty); an
input holding ``batch * target`` values becomes ``(N, dim0, ...)``. ``Zeropad`` pads both sides;
its ``dim0, dim1, ...`` are aligned to the *trailing* dimensions with ``dim0`` first (two values
on ``(C,H,W)`` pad H and W, three pad C, H and W), which is what the original's code does and
``Residual_b`` relies on (its documentation says otherwise). ``Narrow`` crops
``[index, index+size)`` per leading dimension; one extra leading dimension is a batch.
Outputs of Reshape and Narrow are views of the input (no copy on the single-sample hot path).
"""

from __future__ import annotations

from typing import Any

from engine.modules.base import Module, Prop, register

MAX_DIMS = 6  # declared dimN keys; further consecutive ones are read from the extra properties


def _dim_props(prefix: str, what: str, count: int = MAX_DIMS) -> tuple[Prop, ...]:
    return tuple(Prop(f"{prefix}{i}", "int", doc=f"{what} {i}") for i in range(count))


def consecutive(module: Module, prefix: str) -> tuple[int, ...]:
    """``prefix0``, ``prefix1``, ... up to the first missing or empty key (DIANNE's loop)."""
    values: list[int] = []
    i = 0
    while True:
        key = f"{prefix}{i}"
        if key in module.cfg:
            value = module.cfg[key]
        else:
            raw = module.extra.get(key)
            value = None if raw is None or str(raw).strip() == "" else raw
            if value is not None:
                try:
                    value = Prop(key, "int").parse(value)
                except ValueError as exc:
                    raise module.fail(f"property '{key}' is not a valid int: {exc}", raw) from None
        if value is None:
            return tuple(values)
        values.append(int(value))
        i += 1


def _prod(shape: Any) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


@register
class Reshape(Module):
    """Reshape to (dim0, dim1, ...); a batch of such samples becomes (N, dim0, ...)."""

    type_name = "Reshape"
    category = "Layer"
    props = _dim_props("dim", "target dimension")
    example = {"props": {"dim0": 2, "dim1": 3}, "inputs": [(6,)]}

    def setup(self) -> None:
        self.dims = consecutive(self, "dim")
        if not self.dims or any(d <= 0 for d in self.dims):
            raise self.fail("needs positive dim0, dim1, ...", self.dims)
        self.size = _prod(self.dims)

    def output_shape(self, in_shape: Any) -> Any:
        n = _prod(in_shape)
        if n == self.size:
            return self.dims
        if (
            len(in_shape) > 0
            and in_shape[0] > 0
            and n // in_shape[0] == self.size
            and n % in_shape[0] == 0
        ):
            return (int(in_shape[0]),) + self.dims
        raise self.shape_fail(f"cannot reshape to {self.dims} (or a batch of it)", tuple(in_shape))

    def forward(self, x: Any) -> Any:
        self._in_shape = x.shape
        return x.reshape(self.output_shape(x.shape))

    def backward(self, grad_output: Any) -> Any:
        return grad_output.reshape(self._in_shape)


@register
class Zeropad(Module):
    """Zero padding on both sides of the trailing dimensions (dim0 = first of them)."""

    type_name = "Zeropad"
    category = "Layer"
    props = _dim_props("dim", "padding of trailing dimension", 5)
    example = {"props": {"dim0": 1, "dim1": 0, "dim2": 2}, "inputs": [(2, 3, 2)]}

    def setup(self) -> None:
        self.pads = consecutive(self, "dim")
        if not self.pads or any(p < 0 for p in self.pads):
            raise self.fail("needs non-negative dim0, dim1, ...", self.pads)

    def _window(self, shape: Any) -> tuple[slice, ...]:
        k = len(self.pads)
        if len(shape) < k:
            raise self.shape_fail(f"input needs at least {k} dimensions", tuple(shape))
        lead = (slice(None),) * (len(shape) - k)
        return lead + tuple(
            slice(p, p + int(n)) for p, n in zip(self.pads, shape[-k:], strict=True)
        )

    def output_shape(self, in_shape: Any) -> Any:
        k = len(self.pads)
        if len(in_shape) < k:
            raise self.shape_fail(f"input needs at least {k} dimensions", tuple(in_shape))
        head = tuple(in_shape[: len(in_shape) - k])
        return head + tuple(int(n) + 2 * p for n, p in zip(in_shape[-k:], self.pads, strict=True))

    def forward(self, x: Any) -> Any:
        out = self.xp.zeros(self.output_shape(x.shape), dtype=x.dtype)
        self._win = self._window(x.shape)
        out[self._win] = x
        return out

    def backward(self, grad_output: Any) -> Any:
        return grad_output[self._win]


@register
class Narrow(Module):
    """Crop [index, index+size) per leading dimension; one extra leading dimension = batch."""

    type_name = "Narrow"
    category = "Layer"
    props = (
        Prop("index0", "int", required=True, doc="start in dimension 0"),
        Prop("size0", "int", required=True, doc="length in dimension 0"),
        Prop("index1", "int", doc="start in dimension 1"),
        Prop("size1", "int", doc="length in dimension 1"),
        Prop("index2", "int", doc="start in dimension 2"),
        Prop("size2", "int", doc="length in dimension 2"),
    )
    example = {
        "props": {"index0": 1, "size0": 2, "index1": 0, "size1": 2, "index2": 1, "size2": 3},
        "inputs": [(3, 3, 4)],
    }

    def setup(self) -> None:
        ranges = []
        for i in range(3):
            start, size = self.cfg[f"index{i}"], self.cfg[f"size{i}"]
            if start is None and size is None:
                break
            if start is None or size is None or start < 0 or size <= 0:
                raise self.fail(
                    f"index{i} and size{i} must be set together, >= 0 and > 0", (start, size)
                )
            ranges.append((start, size))
        self.ranges = tuple(ranges)

    def _window(self, shape: Any) -> tuple[slice, ...]:
        batched = 1 if len(shape) == len(self.ranges) + 1 else 0
        if len(shape) < len(self.ranges):
            raise self.shape_fail(
                f"input needs at least {len(self.ranges)} dimensions", tuple(shape)
            )
        window = [slice(None)] * batched
        for axis, (start, size) in enumerate(self.ranges, start=batched):
            if start + size > shape[axis]:
                raise self.shape_fail(
                    f"range [{start}, {start + size}) exceeds dimension {axis - batched}",
                    tuple(shape),
                )
            window.append(slice(start, start + size))
        return tuple(window)

    def output_shape(self, in_shape: Any) -> Any:
        window = self._window(in_shape)
        out = [int(n) for n in in_shape]
        for axis, sl in enumerate(window):
            if sl.start is not None:
                out[axis] = sl.stop - sl.start
        return tuple(out)

    def forward(self, x: Any) -> Any:
        self._in_shape = x.shape
        self._win = self._window(x.shape)
        return x[self._win]

    def backward(self, grad_output: Any) -> Any:
        grad_input = self.xp.zeros(self._in_shape, dtype=grad_output.dtype)
        grad_input[self._win] = grad_output
        return grad_input


@register
class Invert(Module):
    """y = 1 - x."""

    type_name = "Invert"
    category = "Layer"
    example = {"props": {}, "inputs": [(5,)]}

    def forward(self, x: Any) -> Any:
        return 1.0 - x

    def backward(self, grad_output: Any) -> Any:
        return -grad_output
