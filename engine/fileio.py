"""Crash-safe file writing and bounded file reading shared by the network, layout, weight and
repository code.

Every file the engine writes goes through :func:`atomic_write`: the bytes go to a temporary file
in the destination folder, are flushed and fsynced, and the temporary file then replaces the
destination in one ``os.replace`` step. A crash or an error part-way leaves either the old file
or the new one, never a truncated mix. An error removes its temporary file; a process killed
part-way cannot, so the next write into that folder (and opening a network folder) removes the
temporaries whose writer is gone (:func:`remove_stale_temps` says exactly which).

Reading is bounded: a text file (``modules.txt``, ``layout.txt``, on disk or in a zip) larger than
:data:`MAX_TEXT_BYTES` is refused before it is read, a zip entry is checked against the size its
directory declares and never inflated beyond the limit, and JSON nested deeper than Python can
parse is a :class:`FormatError`, not a ``RecursionError``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import tempfile
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any

from engine.errors import FormatError

log = logging.getLogger(__name__)

# The process umask, read once: mkstemp creates files with mode 0600, and a network folder
# written by us should get the same permissions as one written by any other program.
_UMASK = os.umask(0)
os.umask(_UMASK)

# The largest text file we read. Real modules.txt files are kilobytes (a 1000-module network is
# about 1 MiB); the bound keeps a mistaken or hostile path from filling memory.
MAX_TEXT_BYTES = 64 << 20

# Temporary files are named ``.<name>.dianne-<pid>-<host>.<random>.tmp``: the writer's pid and
# a tag of its host name tell a later writer whether the file can still be in use. Names from
# before the tag (``.<name>.<random>.tmp``) are recognised too. ``<random>`` is mkstemp's.
_HOST_TAG = f"{zlib.crc32(socket.gethostname().encode('utf-8', 'replace')):08x}"
_TEMP = re.compile(r"\.(?P<name>.+)\.dianne-(?P<pid>[0-9]{1,10})-(?P<host>[0-9a-f]{8})\."
                   r"[a-z0-9_]{8}\.tmp")
_OLD_TEMP = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp")
# A temporary file not known to be dead by its pid is left alone until it is this old: far
# longer than any save takes (mtime moves with every write), with room for clock skew between
# machines sharing a folder.
STALE_AFTER_S = 600.0


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
    remove_stale_temps(folder)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.dianne-{os.getpid()}-{_HOST_TAG}.",
                                    suffix=".tmp", dir=folder)
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


def remove_stale_temps(folder: str | os.PathLike[str],
                       max_age_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove the temporary files killed writes left in ``folder``; returns those removed.

    Only regular files whose whole name is an :func:`atomic_write` temporary name are
    considered (``.<name>.dianne-<pid>-<host>.<random>.tmp``, or the older
    ``.<name>.<random>.tmp``), never anything else, and one is removed when

    - its name carries this host's tag and a pid that is no running process here (the writer
      was killed: a live writer, this process's own threads included, keeps its file), or
    - it was last modified more than ``max_age_s`` seconds ago (a writer on another machine
      sharing the folder, or a name without a pid).

    A reused pid only keeps a file longer. Best effort: a folder that cannot be listed or a
    file that cannot be removed (read-only, already gone) is skipped, never an error.
    """
    where = Path(folder)
    removed: list[Path] = []
    now = time.time()
    try:
        entries = list(os.scandir(where))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not (name.startswith(".") and name.endswith(".tmp")):
            continue
        match = _TEMP.fullmatch(name)
        if match is None and _OLD_TEMP.fullmatch(name) is None:
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        dead = (match is not None and match["host"] == _HOST_TAG
                and not _pid_alive(int(match["pid"])))
        if not dead and age <= max_age_s:
            continue
        try:
            os.unlink(entry.path)
        except OSError:
            continue
        log.info("removed %s, left by an interrupted save (%s)", entry.path,
                 "its writer is gone" if dead else f"{age:.0f} s old")
        removed.append(Path(entry.path))
    return removed


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a process on this machine (True when that cannot be told)."""
    if os.name != "posix" or pid <= 0:  # os.kill(pid, 0) is no probe on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, owned by someone else
        return True
    return True


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
