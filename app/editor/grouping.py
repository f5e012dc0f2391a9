"""Composite types in the editor: the ones the palette lists, and "Group into composite…".

:func:`group` turns the selected modules into a new composite type with
:func:`engine.composite_group.group_into_composite` (the type's folder is written under
``<repository>/composites``, the type registered), and puts the rewritten network into the
editor as ONE undoable edit (undo gives back the original description and positions, byte for
byte on save). A refusal (a selection with more than one input or output, a name already taken,
Input/Output modules selected) raises :class:`EditRefused` and changes nothing, on disk neither.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from app.editor.model import EditRefused, NetworkEditor
from engine.composite_group import GroupResult, group_into_composite
from engine.errors import DianneError
from engine.layout import Layout


def use_repository(root: str | Path) -> list[str]:
    """Make the repository's composites (``<root>/composites``) and the bundled ones known to
    the registry (what the palette lists); returns the composite type names."""
    from engine import composite  # noqa: PLC0415

    composite.add_repository(root)
    return composite.register_composites()


def group(editor: NetworkEditor, selection: Iterable[str], type_name: str,
          root: str | Path, weights: Mapping[str, Any] | None = None) -> GroupResult:
    """Group ``selection`` into composite type ``type_name`` written under ``root``."""
    ids = [m for m in dict.fromkeys(selection) if m in editor.desc.modules]
    if not ids:
        raise EditRefused("select the modules to group into a composite")
    type_name = type_name.strip()
    shown = Layout(editor.display_positions())
    try:
        res = group_into_composite(editor.desc, ids, type_name, Path(root),
                                   weights=dict(weights) if weights else None, layout=shown)
    except EditRefused:
        raise
    except DianneError as exc:
        raise EditRefused(str(exc)) from None
    centre = res.layout.positions[res.composite_id] if res.layout is not None else (0, 0)
    editor.replace_network(res.network, {res.composite_id: centre},
                           f"Group {len(ids)} modules into {type_name}")
    return res
