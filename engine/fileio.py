"""Crash-safe file writing (and JSON reading) shared by the network, layout, weight and
repository code.

Every file the engine writes goes through :func:`atomic_write`: the bytes go to a temporary file
in the destination folder, are flushed and fsynced, and the temporary file then replaces the
destination in one ``os.replace`` step. A crash or an error part-way leaves either the old file
or the new one, never a truncated mix, and never a stray temporary file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from engine.errors import FormatError

# The process umask, read once: mkstemp creates files with mode 0600, and a network folder
# written by us should get the same permissions as one written by any other program.
_UMASK = os.umask(0)
os.umask(_UMASK)


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
