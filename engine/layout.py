"""The builder canvas layout (``layout.txt``, spec section 2): node positions, kept verbatim.

The file is cosmetic and written by the browser's ``JSON.stringify`` (compact, one line, no
trailing newline). We keep the parsed document whole: positions are read from ``"nodes"`` and
written back into it, everything else (jsPlumb ``"connections"``, including ones to ids that are
not modules, unknown keys) is carried along untouched, and a layout whose positions did not
change is written back as the exact text it was read from. ``positions`` is the authority for
the node list: a node whose id was removed from it is dropped, a new id is appended.
"""

from __future__ import annotations

import copy
import math
import os
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from engine.errors import FormatError
from engine.fileio import atomic_write, load_json, read_text


@dataclass
class Layout:
    """Canvas positions ``{module_id: (x, y)}`` plus the parsed document and its source text."""

    positions: dict[str, tuple[float, float]] = field(default_factory=dict)
    document: dict | None = None
    text: str | None = None
    source: str | None = None

    @property
    def connections(self) -> list:
        """The jsPlumb connections as stored (may reference Learn/Run blocks, not modules)."""
        conns = (self.document or {}).get("connections")
        return conns if isinstance(conns, list) else []


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_layout(text: str, source: str = "<string>") -> Layout:
    """Parse ``layout.txt`` text; nodes without a usable id or position are kept, not read."""
    doc = load_json(text, source)
    if not isinstance(doc, dict):
        raise FormatError(f"{source}: the layout must be a JSON object. "
                          f"Received: {type(doc).__name__}")
    positions: dict[str, tuple[float, float]] = {}
    nodes = doc.get("nodes")
    for node in nodes if isinstance(nodes, list) else ():
        if (isinstance(node, dict) and isinstance(node.get("id"), str)
                and _number(node.get("positionX")) and _number(node.get("positionY"))):
            positions[node["id"]] = (node["positionX"], node["positionY"])
    return Layout(positions, doc, text, source)


def read_layout(path: str | os.PathLike[str]) -> Layout | None:
    """Read ``layout.txt`` (or the one in a folder); ``None`` when there is none."""
    p = Path(path)
    if p.is_dir():
        p = p / "layout.txt"
    if not p.is_file():
        return None
    return parse_layout(read_text(p, "the layout"), str(p))


def _updated_document(layout: Layout) -> dict:
    doc = copy.deepcopy(layout.document) if layout.document is not None else {}
    nodes = doc.get("nodes")
    new_nodes: list = []
    seen: set[str] = set()
    for node in nodes if isinstance(nodes, list) else ():
        nid = node.get("id") if isinstance(node, dict) else None
        if not isinstance(nid, str):
            new_nodes.append(node)  # not ours to judge: keep it
        elif nid in layout.positions:
            x, y = layout.positions[nid]
            if node.get("positionX") != x or node.get("positionY") != y:
                node["positionX"], node["positionY"] = x, y
            new_nodes.append(node)
            seen.add(nid)
        elif not (_number(node.get("positionX")) and _number(node.get("positionY"))):
            new_nodes.append(node)  # never was a position: keep it
    for nid, (x, y) in layout.positions.items():
        if nid not in seen:
            new_nodes.append({"id": nid, "positionX": x, "positionY": y})
    if layout.document is None:
        return {"nodes": new_nodes, "connections": []}
    if isinstance(nodes, list) or new_nodes:
        doc["nodes"] = new_nodes
    return doc


def dumps_layout(layout: Layout) -> str:
    """The compact ``JSON.stringify`` text; the original text when nothing changed."""
    doc = _updated_document(layout)
    if layout.text is not None and doc == layout.document:
        return layout.text
    return js_stringify(doc)


def write_layout(layout: Layout, folder: str | os.PathLike[str]) -> Path:
    """Write ``folder/layout.txt`` atomically; returns the file path."""
    text = dumps_layout(layout)
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    atomic_write(target / "layout.txt", text)
    return target / "layout.txt"


# ----------------------------------------------------------- JSON.stringify, in Python ---

_JS_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
               "\t": "\\t"}
_JS_SPECIAL = re.compile('[\x00-\x1f"\\\\\ud800-\udfff]')
_INDEX_KEY = re.compile(r"0|[1-9][0-9]*")


def _js_string(text: str) -> str:
    def esc(m: re.Match[str]) -> str:
        return _JS_ESCAPES.get(m.group(), f"\\u{ord(m.group()):04x}")

    # Only lone surrogates can appear in a Python str, and JSON.stringify escapes those.
    return '"' + _JS_SPECIAL.sub(esc, text) + '"'


def _js_number(x: int | float) -> str:
    """ECMAScript Number::toString (shortest round-trip digits, JS exponent rules)."""
    if isinstance(x, int):
        return str(x)
    if not math.isfinite(x):
        return "null"
    if x == 0:
        return "0"
    sign, digits, exp = Decimal(repr(abs(x))).normalize().as_tuple()
    ds = "".join(map(str, digits))
    k, n = len(ds), len(ds) + int(exp)  # value = 0.ds * 10**n
    neg = "-" if x < 0 else ""
    if k <= n <= 21:
        return neg + ds + "0" * (n - k)
    if 0 < n <= 21:
        return neg + ds[:n] + "." + ds[n:]
    if -6 < n <= 0:
        return neg + "0." + "0" * (-n) + ds
    e = n - 1
    mant = ds[0] + ("." + ds[1:] if k > 1 else "")
    return f"{neg}{mant}e{'+' if e > 0 else '-'}{abs(e)}"


def js_stringify(value: object) -> str:
    """``JSON.stringify(value)`` for JSON-shaped Python data (key order as JS would keep it)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _js_number(value)
    if isinstance(value, str):
        return _js_string(value)
    if isinstance(value, dict):
        # JS objects list array-index keys first, ascending, then the others in insertion order.
        index = sorted((k for k in value if _INDEX_KEY.fullmatch(k) and int(k) < 2**32 - 1),
                       key=int)
        keys = index + [k for k in value if k not in set(index)]
        return "{" + ",".join(f"{_js_string(k)}:{js_stringify(value[k])}" for k in keys) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(js_stringify(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} into a layout. Received: {value!r}")
