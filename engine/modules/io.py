"""Input and Output: where tensors enter and leave a network.

``Input`` copies what it is given (the gradient stops here); it has an optional ``dims``
property (e.g. ``"1,28,28"``), ignored by the original's reader, used for shape inference.
``Output`` passes its input through and carries the class ``labels`` as one string formatted
like Java's ``Arrays.toString`` (``"[0, 1, 2]"``).
"""

from __future__ import annotations

from typing import Any

from engine.modules.base import MAX_TENSOR_VALUES, Module, Prop, register
from engine.modules.buffers import raw, tailed


@register
class Input(Module):
    """Entry point of a network; copies the given tensor."""

    type_name = "Input"
    category = "Input-Output"
    props = (Prop("dims", "ints", doc="sample shape, e.g. 1,28,28 (optional)"),)
    example = {"props": {"dims": "3,4"}, "inputs": [(3, 4)]}

    def setup(self) -> None:
        dims = self.cfg["dims"]
        if dims and min(dims) <= 0:
            raise self.fail("dims must be positive", dims)
        if dims and _prod(dims) > MAX_TENSOR_VALUES:
            raise self.fail(f"dims declare a sample of more than {MAX_TENSOR_VALUES} values",
                            dims)
        self._buf: Any = None
        self._copyto = raw(self.xp.copyto)

    def forward(self, x: Any) -> Any:
        # The copy lands in one reused buffer: successors then see the same array on every
        # pass and keep what they derived from it (views, scratch). Shapes are checked once.
        buf = self._buf
        if buf is None or buf.shape != x.shape or buf.dtype != x.dtype:
            buf = self._new_buffer(x)
        self._copyto(buf, x)
        return buf

    def _new_buffer(self, x: Any) -> Any:
        dims, shape = self.cfg["dims"], tuple(x.shape)
        if dims and shape[-len(dims):] != tuple(dims) and x.size != _prod(dims):
            raise self.shape_fail(f"input must have shape {tuple(dims)}", shape)
        self._buf = tailed(self.xp, shape, x.dtype)
        return self._buf

    def backward(self, grad_output: Any) -> Any:
        return grad_output

    def output_shape(self, in_shape: Any) -> Any:
        dims = self.cfg["dims"]
        if dims and in_shape is not None and tuple(in_shape) != tuple(dims):
            if _prod(in_shape) != _prod(dims):
                raise self.shape_fail(f"input must have shape {tuple(dims)}", tuple(in_shape))
            return tuple(dims)
        return tuple(dims) if in_shape is None and dims else in_shape


@register
class Output(Module):
    """Exit point of a network; passes its input through, gradients are injected here."""

    type_name = "Output"
    category = "Input-Output"
    props = (Prop("labels", "str", doc="class labels, e.g. [0, 1, 2]"),)
    example = {"props": {"labels": "[a, b, c]"}, "inputs": [(3,)]}

    @property
    def labels(self) -> list[str]:
        return parse_labels(self.cfg["labels"])

    def forward(self, x: Any) -> Any:
        return x

    def backward(self, grad_output: Any) -> Any:
        return grad_output


def parse_labels(text: str | None) -> list[str]:
    """``"[0, 1, other]"`` -> ``["0", "1", "other"]`` (DIANNE strips brackets, splits on ", ")."""
    if not text:
        return []
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if not text:
        return []
    return [part.strip() for part in text.split(",")]


def format_labels(labels: list[str]) -> str:
    """The inverse of :func:`parse_labels`: Java ``Arrays.toString`` form."""
    return "[" + ", ".join(str(label) for label in labels) + "]"


def _prod(shape: Any) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n
