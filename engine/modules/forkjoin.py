"""Forks and joins: Duplicate, Split, Concat, Accumulate, Average, Multiply (spec 4.2, 4.3).

``Duplicate`` is a plain pass-through: the executor hands its one output to every successor and
sums the gradients coming back. ``Split`` is a real fork (one output per ``next``, in order) and
the joins take their inputs in ``prev`` order. ``dim`` of Split and Concat counts from the last
axis (axis ``ndim - 1 - dim``), so the same value works for a sample and for a batch. Split's
``split`` holds cumulative end offsets (``"4"`` with two successors: ``[0,4)`` and ``[4,end)``);
several values work as intended (the original threw on more than one). ``waitForAll`` (default
true) is read by the executor: fire once every predecessor delivered, else on every arrival.
Gradients a join returns may be one shared array; callers must not write into them.
"""

from __future__ import annotations

from typing import Any

from engine.modules.base import Module, Prop, register

WAIT = Prop("waitForAll", "bool", True, doc="wait for every predecessor before firing")


def _from_end(module: Module, ndim: int) -> int:
    dim = module.cfg["dim"]
    if not 0 <= dim < ndim:
        raise module.shape_fail(
            f"dim {dim} (counted from the last axis) needs more dimensions", f"{ndim}-D input"
        )
    return ndim - 1 - dim


@register
class Duplicate(Module):
    """Sends its input to every successor; the executor sums the gradients that come back."""

    type_name = "Duplicate"
    category = "Fork"
    props = (WAIT,)
    example = {"props": {}, "inputs": [(4,)]}

    def forward(self, x: Any) -> Any:
        return x

    def backward(self, grad_output: Any) -> Any:
        return grad_output


@register
class Split(Module):
    """Slices along dim (counted from the end) into one part per successor."""

    type_name = "Split"
    category = "Fork"
    fork = True
    props = (
        Prop("dim", "int", required=True, doc="dimension, counted from the last (0 = last)"),
        Prop("split", "ints", doc="cumulative end offsets, e.g. 4 or 2,5 (default: equal)"),
        WAIT,
    )
    example = {
        "props": {"dim": 0, "split": "2,5"},
        "inputs": [(2, 8)],
        "n_next": 3,
        "check_outputs": [0, 2],
    }

    def setup(self) -> None:
        if self.cfg["dim"] < 0:
            raise self.fail("dim must be >= 0", self.cfg["dim"])

    def _bounds(self, length: int) -> list[tuple[int, int]]:
        n = self.n_next
        split = self.cfg["split"]
        if split:
            ends = list(split)
            if len(ends) == n - 1:
                ends.append(length)
            if (
                len(ends) != n
                or ends[-1] != length
                or any(b <= a for a, b in zip([0] + ends[:-1], ends, strict=True))
            ):
                raise self.shape_fail(
                    f"split {tuple(split)} does not cut length {length} into {n} parts", length
                )
        else:
            if n < 1 or length % n:
                raise self.shape_fail(f"cannot split length {length} into {n} equal parts", length)
            ends = [(i + 1) * (length // n) for i in range(n)]
        return list(zip([0] + ends[:-1], ends, strict=True))

    def output_shape(self, in_shape: Any) -> Any:
        axis = _from_end(self, len(in_shape))
        shapes = []
        for start, stop in self._bounds(int(in_shape[axis])):
            shape = list(in_shape)
            shape[axis] = stop - start
            shapes.append(tuple(shape))
        return shapes

    def forward(self, x: Any) -> list[Any]:
        self._axis = axis = _from_end(self, x.ndim)
        self._in_shape, self._dtype = x.shape, x.dtype
        self._parts = self._bounds(x.shape[axis])
        lead = (slice(None),) * axis
        return [x[lead + (slice(a, b),)] for a, b in self._parts]

    def backward(self, grad_output: list[Any]) -> Any:
        if len(grad_output) != len(self._parts):
            raise self.fail(f"expects {len(self._parts)} output gradients", len(grad_output))
        grad_input = self.xp.empty(self._in_shape, dtype=self._dtype)
        lead = (slice(None),) * self._axis
        for (a, b), grad in zip(self._parts, grad_output, strict=True):
            window = grad_input[lead + (slice(a, b),)]
            if grad is None:  # that successor sent no gradient
                window.fill(0)
            else:
                window[...] = grad
        return grad_input


class _Join(Module):
    """Shared checks of the element-wise joins."""

    category = "Join"
    join = True
    props = (WAIT,)

    def _same(self, shapes: Any) -> tuple[int, ...]:
        shapes = [tuple(s) for s in shapes]
        if not shapes or any(s != shapes[0] for s in shapes):
            raise self.shape_fail("inputs must all have the same shape", shapes)
        return shapes[0]

    def output_shape(self, in_shape: Any) -> Any:
        return self._same(in_shape)


@register
class Accumulate(_Join):
    """Element-wise sum of the inputs."""

    type_name = "Accumulate"
    example = {"props": {}, "inputs": [(2, 3), (2, 3)]}

    def forward(self, xs: list[Any]) -> Any:
        self._n = len(xs)
        self._same([x.shape for x in xs])
        out = xs[0].copy()
        for x in xs[1:]:
            out += x
        return out

    def backward(self, grad_output: Any) -> list[Any]:
        return [grad_output] * self._n


@register
class Average(_Join):
    """Element-wise mean of the inputs."""

    type_name = "Average"
    example = {"props": {}, "inputs": [(5,), (5,), (5,)]}

    def forward(self, xs: list[Any]) -> Any:
        out = Accumulate.forward(self, xs)  # type: ignore[arg-type]
        out *= 1.0 / self._n
        return out

    def backward(self, grad_output: Any) -> list[Any]:
        return [grad_output * (1.0 / self._n)] * self._n


@register
class Multiply(_Join):
    """Element-wise product; grad_i = grad_output * prod_{j != i} x_j."""

    type_name = "Multiply"
    example = {"props": {}, "inputs": [(4,), (4,), (4,)]}

    def forward(self, xs: list[Any]) -> Any:
        self._same([x.shape for x in xs])
        self._xs = list(xs)
        out = xs[0].copy()
        for x in xs[1:]:
            out *= x
        return out

    def backward(self, grad_output: Any) -> list[Any]:
        grads = []
        for i in range(len(self._xs)):
            g = grad_output.copy()
            for j, x in enumerate(self._xs):
                if j != i:  # no division by x_i: exact where an input is zero
                    g *= x
            grads.append(g)
        return grads


@register
class Concat(_Join):
    """Concatenates the inputs in prev order along dim (counted from the last axis)."""

    type_name = "Concat"
    props = (
        Prop("dim", "int", required=True, doc="dimension, counted from the last (0 = last)"),
        WAIT,
    )
    example = {"props": {"dim": 0}, "inputs": [(2, 3), (2, 2)]}

    def setup(self) -> None:
        if self.cfg["dim"] < 0:
            raise self.fail("dim must be >= 0", self.cfg["dim"])

    def output_shape(self, in_shape: Any) -> Any:
        shapes = [tuple(int(d) for d in s) for s in in_shape]
        if not shapes:
            raise self.shape_fail("needs at least one input", shapes)
        axis = _from_end(self, len(shapes[0]))
        rest = [s[:axis] + s[axis + 1 :] for s in shapes]
        if any(len(s) != len(shapes[0]) or r != rest[0] for s, r in zip(shapes, rest, strict=True)):
            raise self.shape_fail(f"inputs must agree except along axis {axis}", shapes)
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        return tuple(out)

    def forward(self, xs: list[Any]) -> Any:
        self.output_shape([x.shape for x in xs])
        self._axis = axis = _from_end(self, xs[0].ndim)
        self._sizes = [x.shape[axis] for x in xs]
        return self.xp.concatenate(xs, axis=axis)

    def backward(self, grad_output: Any) -> list[Any]:
        lead = (slice(None),) * self._axis
        grads, start = [], 0
        for size in self._sizes:
            grads.append(grad_output[lead + (slice(start, start + size),)])
            start += size
        return grads
