"""ONNX import and export (spec 8.2) — the ``onnx`` package is imported lazily.

``to_onnx(net, input_shape)`` turns a runnable :class:`engine.graph.Network` into an
``onnx.ModelProto`` (batch axis first, a symbolic ``N``); ``from_onnx(model_or_path)`` turns an
ONNX model into a DIANNE :class:`~engine.description.NetworkDescription` plus its weights
(module UUID -> flat vector in the DIANNE weight-file layout). The op <-> module mapping is in
``docs/composites-onnx.md``; anything outside it is an error naming the node or module.
"""

from __future__ import annotations

from typing import Any


def to_onnx(net: Any, input_shape: Any = None, **kwargs: Any) -> Any:
    from engine.onnx.export import to_onnx as _to_onnx

    return _to_onnx(net, input_shape, **kwargs)


def from_onnx(model_or_path: Any, **kwargs: Any) -> Any:
    from engine.onnx.importer import from_onnx as _from_onnx

    return _from_onnx(model_or_path, **kwargs)


__all__ = ["from_onnx", "to_onnx"]
