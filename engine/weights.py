"""DIANNE binary weight files and their names (spec sections 3.2 and 3.3).

A weight file is a big-endian int32 count N followed by N big-endian float32 values, nothing
else (Java ``DataOutputStream``). It is named after the module UUID, followed by ``-<tag>`` for
each tag in the order given. Reading checks the declared count against the real file size
before allocating anything, so a corrupt header cannot ask for gigabytes.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from engine.errors import FormatError
from engine.fileio import atomic_write

_UUID = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
MAX_COUNT = 2**31 - 1


def weights_from_bytes(raw: bytes, source: str, expected: int | None = None) -> np.ndarray:
    """Decode the bytes of a weight file (``source`` names it in errors) into float32."""
    if len(raw) < 4:
        raise FormatError(f"{source}: a weight file needs at least 4 bytes (the count). "
                          f"Received: {len(raw)} bytes")
    (count,) = struct.unpack(">i", raw[:4])
    _check(count, len(raw), source, expected)
    return np.frombuffer(raw, dtype=">f4", count=count, offset=4).astype(np.float32)


def _check(count: int, size: int, source: str, expected: int | None) -> None:
    if count < 0:
        raise FormatError(f"{source}: negative value count in the header. Received: {count}")
    if size != 4 + 4 * count:
        raise FormatError(f"{source}: the header declares {count} values ({4 + 4 * count} bytes) "
                          f"but the file has {size} bytes. Received: {size}")
    if expected is not None and count != expected:
        raise FormatError(f"{source}: expected {expected} values for this module, the file holds "
                          f"{count}. Received: {count}")


def read_weights(path: str | os.PathLike[str], expected: int | None = None) -> np.ndarray:
    """Read a weight file into a native float32 vector; ``expected`` checks the count."""
    p = Path(path)
    try:
        with open(p, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            head = handle.read(4)
            if len(head) < 4:
                raise FormatError(f"{p}: a weight file needs at least 4 bytes (the count). "
                                  f"Received: {len(head)} bytes")
            (count,) = struct.unpack(">i", head)
            _check(count, size, str(p), expected)  # before allocating count floats
            data = handle.read(4 * count)
    except OSError as exc:
        raise FormatError(f"{p}: cannot read the weight file: {exc.strerror}. "
                          f"Received: {p}") from None
    if len(data) != 4 * count:
        raise FormatError(f"{p}: the file shrank while being read. Received: {len(data)} bytes")
    return np.frombuffer(data, dtype=">f4").astype(np.float32)


def weights_to_bytes(flat: object) -> bytes:
    """The bytes of a weight file holding ``flat`` (any array, flattened in C order)."""
    if hasattr(flat, "get") and not isinstance(flat, np.ndarray):
        flat = flat.get()  # a cupy array: bring it to the host first
    arr = np.ascontiguousarray(np.asarray(flat).ravel(), dtype=">f4")
    if arr.size > MAX_COUNT:
        raise FormatError(f"a weight file holds at most {MAX_COUNT} values. Received: {arr.size}")
    return struct.pack(">i", arr.size) + arr.tobytes()


def write_weights(path: str | os.PathLike[str], flat: object) -> None:
    """Write ``flat`` as a DIANNE weight file, atomically."""
    atomic_write(path, weights_to_bytes(flat))


def weight_filename(module_id: str, tags: Iterable[object] = ()) -> str:
    """``<uuid>-<tag1>-<tag2>``: tags in the given order, ``None`` and empty tags skipped."""
    if not isinstance(module_id, str) or not _UUID.fullmatch(module_id):
        raise FormatError(f"a weight file name starts with a module UUID. Received: {module_id!r}")
    if isinstance(tags, str):
        tags = (tags,)
    parts = [module_id.lower()]
    for tag in tags:
        if tag is None or str(tag) == "":
            continue
        text = str(tag)
        if any(c in text for c in "/\\\0") or text in (".", ".."):
            raise FormatError(f"a weight tag cannot contain '/', '\\' or NUL. Received: {text!r}")
        parts.append(text)
    return "-".join(parts)


def parse_weight_filename(name: str) -> tuple[str, list[str]] | None:
    """Split a weight file name into (module UUID, tags); ``None`` if it is not one.

    As in the original's tag listing (spec 3.2), a 36-character UUID after a ``-`` is one tag
    (a job UUID); other text is split at ``-``. Repeated, so ``<id>-<job>-100`` gives
    ``[job, "100"]``.
    """
    if len(name) < 36 or not _UUID.fullmatch(name[:36]):
        return None
    if len(name) == 36:
        return name[:36].lower(), []
    if name[36] != "-":
        return None
    tags: list[str] = []
    rest = name[37:]
    while True:
        if _UUID.fullmatch(rest[:36]) and (len(rest) == 36 or rest[36] == "-"):
            tags.append(rest[:36])
            if len(rest) == 36:
                break
            rest = rest[37:]
        else:
            head, sep, rest = rest.partition("-")
            tags.append(head)
            if not sep:
                break
    return name[:36].lower(), tags
