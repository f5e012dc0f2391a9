"""The one wire module: DIANNE messages <-> ZeroMQ frames (stdlib + numpy only, no sockets).

A message is one JSON header frame followed by one raw frame per tensor (jupyter_client style)::

    {"v": 1, "id": "<hex>", "parent": "<hex>|null", "type": "forward", "content": {...},
     "tensors": [{"dtype": "float32", "shape": [1, 28, 28]}, ...]}

Tensor frames hold the C-order little-endian bytes of the array described at the same index.
Content refers to tensors by their index. Nothing is ever pickled: only the dtypes in
:data:`DTYPES` travel, and :func:`decode` checks the version, the header's structure, the number
of frames, each frame's size against its descriptor and the :class:`Limits` before it builds a
single array, raising :class:`ProtocolError` (with an error ``code``) on anything malformed.
Received arrays are zero-copy, read-only views on the frames.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.errors import DianneError

VERSION = 1

# Little-endian on the wire whatever the host; bool and complex are left out on purpose.
DTYPES: dict[str, np.dtype] = {name: np.dtype(name).newbyteorder("<") for name in (
    "float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16")}

# Error codes of an ``error`` reply.
E_PROTOCOL = "protocol"      # undecodable frames, bad header, wrong sizes
E_VERSION = "version"        # another protocol version
E_UNKNOWN_TYPE = "unknown-type"
E_TOO_LARGE = "too-large"    # over the message or tensor limits
E_BAD_REQUEST = "bad-request"  # well-formed but wrong content (missing key, unknown deployment)
E_MODULE = "module"          # a module failed; the message names it
E_INTERNAL = "internal"      # an unexpected exception (the agent keeps serving)
E_REFUSED = "refused"


class ProtocolError(DianneError):
    """A message that cannot be decoded or is not allowed; ``code`` is one of the ``E_*``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Limits:
    """Bounds a receiver enforces before allocating anything (options of ``dianne-agent``)."""

    max_message_bytes: int = 1 << 30
    max_tensor_elements: int = 1 << 28
    max_tensors: int = 4096
    max_header_bytes: int = 16 << 20


DEFAULT_LIMITS = Limits()


@dataclass
class Message:
    """One protocol message: ``type``, JSON ``content`` and a list of host arrays."""

    type: str
    content: dict[str, Any] = field(default_factory=dict)
    tensors: list[np.ndarray] = field(default_factory=list)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    parent: str | None = None

    def reply(self, type: str, content: dict[str, Any] | None = None,
              tensors: Sequence[np.ndarray] = ()) -> Message:
        """A message answering this one (its ``parent`` is this message's id)."""
        return Message(type, content or {}, list(tensors), parent=self.id)

    def error(self, code: str, text: str) -> Message:
        return self.reply("error", {"code": code, "message": text})

    def add(self, array: Any) -> int:
        """Append a tensor and return its index (for references from the content)."""
        self.tensors.append(array)
        return len(self.tensors) - 1


# dtype -> wire name (dtype.name is slow on the hot path; a dict lookup is not)
# (keys are the little-endian dtypes, which native ones equal on a little-endian host)
_NAMES: dict[np.dtype, str] = {d: n for n, d in DTYPES.items()}


def wire_array(array: Any) -> np.ndarray:
    """A host array in a wire dtype, C-contiguous, little-endian (no copy when it already is)."""
    arr = array if isinstance(array, np.ndarray) else np.asarray(array)
    name = _NAMES.get(arr.dtype)  # native little-endian wire dtypes hit here
    if name is not None and arr.flags.c_contiguous:
        return arr
    name = name or arr.dtype.name
    if name not in DTYPES:
        if arr.dtype.kind != "b":
            raise ProtocolError(E_BAD_REQUEST, f"dtype {arr.dtype} cannot travel on the wire "
                                               f"(allowed: {', '.join(DTYPES)}). "
                                               f"Received: {arr.dtype}")
        arr, name = arr.astype(np.uint8), "uint8"
    return np.ascontiguousarray(arr, dtype=DTYPES[name])


def encode(msg: Message) -> list[Any]:
    """Frames for ``msg``: the header bytes then one buffer per tensor (send with copy=False)."""
    arrays = [wire_array(t) for t in msg.tensors]
    header = {"v": VERSION, "id": msg.id, "parent": msg.parent, "type": msg.type,
              "content": msg.content,
              "tensors": [{"dtype": _NAMES[a.dtype], "shape": list(a.shape)} for a in arrays]}
    return [json.dumps(header, separators=(",", ":"), allow_nan=False).encode()] + arrays


def _buffer(frame: Any) -> memoryview:
    if isinstance(frame, bytes | bytearray | memoryview):
        return memoryview(frame)
    return frame.buffer  # zmq.Frame: zero-copy view


def _check_shape(shape: Any, i: int, limits: Limits) -> tuple[int, ...]:
    if not isinstance(shape, list) or len(shape) > 32 or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 <= d for d in shape):
        raise ProtocolError(E_PROTOCOL, f"tensor {i}: shape must be a list of at most 32 "
                                        f"non-negative integers. Received: {str(shape)[:80]}")
    n = math.prod(shape)
    if n > limits.max_tensor_elements:
        raise ProtocolError(E_TOO_LARGE, f"tensor {i} has {n} elements, over the limit of "
                                         f"{limits.max_tensor_elements}. Received: {shape}")
    return tuple(shape)


def parse_header(raw: Any, limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """Decode and check the header frame (version, id, type, content, tensor descriptors)."""
    buf = _buffer(raw)
    if buf.nbytes > limits.max_header_bytes:
        raise ProtocolError(E_TOO_LARGE, f"header of {buf.nbytes} bytes is over the limit of "
                                         f"{limits.max_header_bytes}. Received: {buf.nbytes}")
    try:
        head = json.loads(bytes(buf).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError(E_PROTOCOL, f"header is not JSON: {str(exc)[:80]}. "
                                        f"Received: {bytes(buf[:40])!r}") from None
    if not isinstance(head, dict):
        raise ProtocolError(E_PROTOCOL, f"header must be a JSON object. "
                                        f"Received: {type(head).__name__}")
    if head.get("v") != VERSION:
        raise ProtocolError(E_VERSION, f"protocol version {VERSION} expected. "
                                       f"Received: {str(head.get('v'))[:20]}")
    for key, kinds in (("id", str), ("type", str), ("content", dict), ("tensors", list)):
        if not isinstance(head.get(key), kinds):
            raise ProtocolError(E_PROTOCOL, f"header key '{key}' must be a "
                                            f"{kinds.__name__}. Received: "
                                            f"{str(head.get(key))[:40]}")
    if head.get("parent") is not None and not isinstance(head["parent"], str):
        raise ProtocolError(E_PROTOCOL, f"header key 'parent' must be a string or null. "
                                        f"Received: {str(head['parent'])[:40]}")
    if len(head["tensors"]) > limits.max_tensors:
        raise ProtocolError(E_TOO_LARGE, f"{len(head['tensors'])} tensors is over the limit of "
                                         f"{limits.max_tensors}. Received: "
                                         f"{len(head['tensors'])}")
    return head


def decode(frames: Sequence[Any], limits: Limits = DEFAULT_LIMITS) -> Message:
    """Frames (bytes or zmq.Frame) -> :class:`Message`; :class:`ProtocolError` if malformed."""
    if not frames:
        raise ProtocolError(E_PROTOCOL, "empty message. Received: 0 frames")
    total = sum(_buffer(f).nbytes for f in frames)
    if total > limits.max_message_bytes:
        raise ProtocolError(E_TOO_LARGE, f"message of {total} bytes is over the limit of "
                                         f"{limits.max_message_bytes}. Received: {total}")
    head = parse_header(frames[0], limits)
    descs = head["tensors"]
    if len(frames) - 1 != len(descs):
        raise ProtocolError(E_PROTOCOL, f"header describes {len(descs)} tensors but "
                                        f"{len(frames) - 1} tensor frames came. "
                                        f"Received: {len(frames)} frames")
    tensors = []
    for i, (desc, frame) in enumerate(zip(descs, frames[1:], strict=True)):
        if not isinstance(desc, dict) or not isinstance(desc.get("dtype"), str) \
                or desc["dtype"] not in DTYPES:  # a list here would be unhashable
            got = desc.get("dtype") if isinstance(desc, dict) else desc
            raise ProtocolError(E_PROTOCOL, f"tensor {i}: dtype must be one of "
                                            f"{', '.join(DTYPES)}. Received: {str(got)[:40]}")
        dtype = DTYPES[desc["dtype"]]
        shape = _check_shape(desc.get("shape"), i, limits)
        buf = _buffer(frame)
        expected = math.prod(shape) * dtype.itemsize
        if buf.nbytes != expected:
            raise ProtocolError(E_PROTOCOL, f"tensor {i}: {desc['dtype']} {list(shape)} needs "
                                            f"{expected} bytes. Received: {buf.nbytes} bytes")
        arr = np.frombuffer(buf, dtype=dtype).reshape(shape)
        tensors.append(arr)
    return Message(head["type"], head["content"], tensors, head["id"], head.get("parent"))


def tensor_ref(msg: Message, ref: Any, what: str) -> np.ndarray:
    """The tensor a content entry refers to by index, with an error naming ``what``."""
    if isinstance(ref, bool) or not isinstance(ref, int) or not 0 <= ref < len(msg.tensors):
        raise ProtocolError(E_BAD_REQUEST, f"{what}: tensor index out of range (message has "
                                           f"{len(msg.tensors)} tensors). Received: {ref!r}")
    return msg.tensors[ref]


def need(content: dict[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    """``content[key]`` checked for presence and type (error reply ``bad-request`` otherwise)."""
    value = content.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise ProtocolError(E_BAD_REQUEST, f"{what}: content key '{key}' must be a {names}. "
                                           f"Received: {str(value)[:60]}")
    return value
