"""Reading and writing the network being edited (no Qt; safe to call from a worker thread).

A network is a DIANNE folder: ``modules.txt`` (engine.description, Java-exact) and
``layout.txt`` (engine.layout, positions of the canvas boxes plus the jsPlumb connection list
the original builder keeps). Weight files in the folder are never touched; Save As into another
folder copies the source folder's weight files (every tag) along (:func:`write_folder`).

:func:`serialize` turns the editor's state into the two texts; it does not change the editor.
Modules without a stored position get the position they are drawn at. The layout's
``connections`` list follows the network: entries between two modules that are no longer
connected, or touching a module deleted in this session, are dropped; new connections are
appended as the builder writes them; entries to anything else (Learn/Run blocks, stale ids from
the original) stay as they were. When nothing changed, both texts are the ones that were read,
byte for byte.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path

from engine.description import NetworkDescription, dumps_network, read_network
from engine.errors import FormatError
from engine.fileio import atomic_write, remove_stale_temps
from engine.layout import Layout, dumps_layout, read_layout
from engine.repository import Repository

ANCHORS = [[1, 0.5, 1, 0, 0, 0], [0, 0.5, -1, 0, 0, 0]]  # the builder's right -> left anchors
_CON_ID = re.compile(r"con_(\d+)")


@dataclass
class Opened:
    """A network read from disk: description, layout (or None) and the folder (None: read-only
    source such as a zip or a bundled example, saved elsewhere with Save As); ``origin`` is the
    folder it was read from even then (its weight files go along on Save As)."""

    desc: NetworkDescription
    layout: Layout | None
    folder: Path | None
    origin: Path | None = None


def open_folder(path: str | Path) -> Opened:
    """Read a network folder (or its ``modules.txt``); errors name the file and module.
    Temporary files that killed saves left there are removed (engine.fileio's rule)."""
    p = Path(path)
    folder = p.parent if p.is_file() else p
    if not (folder / "modules.txt").is_file():
        raise FormatError(f"{folder}: not a DIANNE network folder (no modules.txt). "
                          f"Received: {str(p)!r}")
    remove_stale_temps(folder)
    return Opened(read_network(folder), read_layout(folder), folder, folder)


def open_from_repository(repo: Repository, name: str) -> Opened:
    desc = repo.load_network(name)
    folder = repo.network_dir(name)
    where = folder if folder.is_dir() else None
    return Opened(desc, repo.load_layout(name), where, where)


def layout_for_save(desc: NetworkDescription, layout: Layout,
                    shown: dict[str, tuple[float, float]], known_ids: set[str]) -> Layout:
    """The Layout to write: every module placed, connections following the network."""
    positions = dict(layout.positions)
    for mid in desc.modules:
        if mid not in positions:
            positions[mid] = shown[mid]
    document = layout.document
    if document is not None or desc.modules:
        synced = _synced_document(document, desc, known_ids)
        if synced != document:
            return Layout(positions, synced, None, layout.source)
    return Layout(positions, document, layout.text, layout.source)


def _synced_document(document: dict | None, desc: NetworkDescription,
                     known_ids: set[str]) -> dict:
    doc = copy.deepcopy(document) if document is not None else {"nodes": [], "connections": []}
    conns = doc.get("connections")
    if not isinstance(conns, list):
        return doc  # not a list we understand: leave it alone
    modules = desc.modules
    edges = [(m.id, n) for m in modules.values() for n in dict.fromkeys(m.next) if n in modules]
    edge_set = set(edges)
    kept, drawn, top = [], set(), 0
    for c in conns:
        src = c.get("sourceId") if isinstance(c, dict) else None
        dst = c.get("targetId") if isinstance(c, dict) else None
        if isinstance(c, dict) and isinstance(c.get("connectionId"), str):
            m = _CON_ID.fullmatch(c["connectionId"])
            top = max(top, int(m.group(1)) if m else 0)
        both = src in modules and dst in modules
        gone = (src in known_ids and src not in modules) or (dst in known_ids and
                                                             dst not in modules)
        if (both and (src, dst) not in edge_set) or gone:
            continue
        kept.append(c)
        if both:
            drawn.add((src, dst))
    for src, dst in edges:
        if (src, dst) not in drawn:
            top += 1
            kept.append({"connectionId": f"con_{top}", "sourceId": src, "targetId": dst,
                         "anchors": copy.deepcopy(ANCHORS)})
    doc["connections"] = kept
    return doc


def serialize(desc: NetworkDescription, layout: Layout, shown: dict[str, tuple[float, float]],
              known_ids: set[str]) -> tuple[str, str]:
    """``(modules.txt text, layout.txt text)`` for the current state."""
    desc.validate()
    return dumps_network(desc), dumps_layout(layout_for_save(desc, layout, shown, known_ids))


def write_folder(folder: str | Path, modules_text: str, layout_text: str,
                 weights_from: str | Path | None = None) -> Path:
    """Write both files atomically into ``folder`` (created); weights there are left alone.
    With ``weights_from`` (Save As from another folder), its weight files are copied too."""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    if weights_from is not None:
        copy_weight_files(weights_from, target)
    atomic_write(target / "modules.txt", modules_text)
    atomic_write(target / "layout.txt", layout_text)
    return target


def copy_weight_files(source: str | Path, target: str | Path) -> list[Path]:
    """Copy every weight file (``<uuid>[-tag…]``, any tag) of folder ``source`` into
    ``target``, atomically each; returns the files written."""
    from engine.weights import parse_weight_filename  # noqa: PLC0415

    src, out = Path(source), []
    if not src.is_dir():
        return out
    for f in sorted(src.iterdir()):
        if f.is_file() and parse_weight_filename(f.name) is not None:
            dst = Path(target) / f.name
            atomic_write(dst, f.read_bytes())
            out.append(dst)
    return out


def export_json(path: str | Path, modules_text: str) -> Path:
    """Export the description alone as one JSON file (the ``modules.txt`` text)."""
    target = Path(path)
    atomic_write(target, modules_text)
    return target
