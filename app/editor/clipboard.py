"""Clipboard text for copied modules (no Qt): plain JSON text only.

``{"format": "dianne-modules/1", "modules": [{"id", "type", "next", "prev", "properties"}],
"positions": {id: [x, y]}}``: the copied modules with the connections among them (references to
modules outside the selection are dropped) and their canvas positions. Pasting gives every
module a new UUID (see :meth:`app.editor.model.NetworkEditor.paste`).
"""

from __future__ import annotations

import json

from engine.description import ModuleDescription, NetworkDescription
from engine.errors import FormatError

FORMAT = "dianne-modules/1"


def dumps(desc: NetworkDescription, positions: dict[str, tuple[float, float]],
          ids: list[str]) -> str:
    chosen = [i for i in dict.fromkeys(ids) if i in desc.modules]
    keep = set(chosen)
    mods = []
    for mid in chosen:
        m = desc.modules[mid]
        mods.append({"id": m.id, "type": m.type,
                     "next": [x for x in m.next if x in keep],
                     "prev": [x for x in m.prev if x in keep],
                     "properties": dict(m.properties)})
    pos = {m: list(positions[m]) for m in chosen if m in positions}
    return json.dumps({"format": FORMAT, "modules": mods, "positions": pos})


def loads(text: str) -> tuple[list[ModuleDescription], dict[str, tuple[float, float]]]:
    """The modules and positions of clipboard ``text``; FormatError when it is not ours."""
    try:
        doc = json.loads(text)
    except (ValueError, TypeError):
        raise FormatError(f"the clipboard holds no DIANNE modules. Received: {text[:40]!r}") \
            from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise FormatError(f"the clipboard holds no DIANNE modules. Received: {text[:40]!r}")
    try:
        mods = [ModuleDescription(str(m["id"]), str(m["type"]), [str(x) for x in m["next"]],
                                  [str(x) for x in m["prev"]],
                                  {str(k): str(v) for k, v in m["properties"].items()})
                for m in doc["modules"]]
        pos = {str(k): (float(v[0]), float(v[1])) for k, v in doc.get("positions", {}).items()}
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        raise FormatError(f"the clipboard's DIANNE modules are damaged. Received: "
                          f"{text[:40]!r}") from None
    return mods, pos
