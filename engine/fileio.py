"""Crash-safe file writing and bounded file reading shared by the network, layout, weight and
repository code.

Every file the engine writes goes through :func:`atomic_write`: the bytes go to a temporary file
in the destination folder, are flushed and fsynced, and the temporary file then replaces the
destination in one ``os.replace`` step. A crash or an error part-way leaves either the old file
or the new one, never a truncated mix, and never a stray temporary file.

Reading is bounded: a text file (``modules.txt``, ``layout.txt``, on disk or in a zip) larger than
:data:`MAX_TEXT_BYTES` is refused before it is read, a zip entry is checked against the size its
directory declares and never inflated beyond the limit, and JSON nested deeper than Python can
parse is a :class:`FormatError`, not a ``RecursionError``.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any

from engine.errors import FormatError

# The process umask, read once: mkstemp creates files with mode 0600, and a network folder
# written by us should get the same permissions as one written by any other program.
_UMASK = os.umask(0)
os.umask(_UMASK)

# The largest text file we read. Real modules.txt files are kilobytes (a 1000-module network is
# about 1 MiB); the bound keeps a mistaken or hostile path from filling memory.
MAX_TEXT_BYTES = 64 << 20


def atomic_write(path: str | os.PathLike[str], data: bytes | str) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder + ``os.replace``).

    A ``str`` is written UTF-8 without newline translation. The folder must exist. On any error
    the temporary file is removed and the previous content of ``path`` (if any) is untouched.
    """
    target = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    folder = target.parent
    try:
        mode = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o666 & ~_UMASK
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, target)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable where the platform allows it (best effort)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_json(text: str, source: str, **hooks: Any) -> Any:
    """``json.loads`` of a file's text (a leading BOM tolerated); a syntax error becomes a
    :class:`FormatError` naming ``source`` with the line and column."""
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        return json.loads(text, **hooks)
    except json.JSONDecodeError as exc:
        raise FormatError(f"{source}: not valid JSON at line {exc.lineno} column {exc.colno}: "
                          f"{exc.msg}") from None
    except RecursionError:
        raise FormatError(f"{source}: JSON nested too deeply to read. Received: "
                          f"{len(text)} characters") from None


def decode_text(raw: bytes, source: str) -> str:
    """UTF-8 text of a file's bytes; anything else is a :class:`FormatError` naming the byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{source}: not UTF-8 text (byte {exc.start}). "
                          f"Received: {raw[exc.start:exc.start + 4]!r}") from None


def read_text(path: str | os.PathLike[str], what: str, limit: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of a file of at most ``limit`` bytes (checked before reading)."""
    p = Path(path)
    try:
        with open(p, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > limit:
                raise FormatError(f"{p}: too large for {what} (at most {limit} bytes). "
                                  f"Received: {size} bytes")
            raw = handle.read(limit + 1)
    except OSError as exc:
        raise FormatError(f"{p}: cannot read {what}: {exc.strerror}. Received: {p}") from None
    if len(raw) > limit:
        raise FormatError(f"{p}: grew beyond {limit} bytes while being read. "
                          f"Received: {len(raw)} bytes")
    return decode_text(raw, str(p))


def read_zip_entry(path: str | os.PathLike[str], entry: str, limit: int) -> bytes:
    """The bytes of one zip entry of at most ``limit`` bytes: the size the zip directory
    declares is checked before inflating, and inflation stops past the limit (a lying
    directory or a zip bomb gets no further)."""
    source = f"{path}!{entry}"
    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo(entry)
            if info.file_size > limit:
                raise FormatError(f"{source}: the zip entry declares {info.file_size} bytes, "
                                  f"more than the {limit} it may hold. Received: "
                                  f"{info.file_size} bytes")
            with zf.open(info) as handle:
                raw = handle.read(limit + 1)
    except (OSError, zipfile.BadZipFile, zlib.error, KeyError, EOFError, ValueError,
            NotImplementedError) as exc:  # a damaged archive or an unsupported compression
        raise FormatError(f"{source}: cannot read the zip entry: {exc}. "
                          f"Received: {entry}") from None
    if len(raw) > limit:
        raise FormatError(f"{source}: the zip entry inflates beyond {limit} bytes. "
                          f"Received: more than {limit} bytes")
    return raw
