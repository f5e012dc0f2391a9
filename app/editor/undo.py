"""Undo and redo for the network editor, without Qt.

Every edit runs inside a :class:`Transaction`. The transaction remembers, the first time an edit
touches a module description, a canvas position or the network's own name/properties, the value
it had before (``None`` when it did not exist), and when modules or positions are added or
removed, the key order of that map. When the edit ends it records the values after. Undo puts
the "before" values back, redo the "after" ones, key order included, so that undoing every edit
gives back a description that writes the very same bytes (``modules.txt`` module order feeds the
Java HashMap order, ``layout.txt`` appends new nodes in insertion order). Only what an edit
touches is copied, so an edit on a 200-module network costs a few small copies, not a snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.description import ModuleDescription

if TYPE_CHECKING:
    from app.editor.model import NetworkEditor

Position = tuple[float, float]


def copy_module(md: ModuleDescription) -> ModuleDescription:
    return ModuleDescription(md.id, md.type, list(md.next), list(md.prev), dict(md.properties))


@dataclass
class Snapshot:
    """The values of the touched entries at one moment (``None``: absent)."""

    modules: dict[str, ModuleDescription | None] = field(default_factory=dict)
    module_order: list[str] | None = None
    positions: dict[str, Position | None] = field(default_factory=dict)
    position_order: list[str] | None = None
    network: tuple[str, dict[str, str] | None] | None = None


@dataclass
class Edit:
    """One undoable step: a label for the menu and the touched values before and after."""

    label: str
    before: Snapshot
    after: Snapshot

    @property
    def module_ids(self) -> set[str]:
        return set(self.before.modules) | set(self.before.positions)


class Transaction:
    """Collects what one edit changes; see the module docstring."""

    def __init__(self, editor: NetworkEditor) -> None:
        self.editor = editor
        self.before = Snapshot()
        self._module_order = list(editor.desc.modules)
        self._position_order = list(editor.positions)

    # -- recording ---------------------------------------------------------------------------
    def module(self, mid: str) -> ModuleDescription:
        """The live description of ``mid``, recorded first so that it may be changed in place."""
        modules = self.editor.desc.modules
        if mid not in self.before.modules:
            md = modules.get(mid)
            self.before.modules[mid] = copy_module(md) if md is not None else None
        return modules[mid]

    def put_module(self, md: ModuleDescription) -> None:
        if md.id not in self.before.modules:
            old = self.editor.desc.modules.get(md.id)
            self.before.modules[md.id] = copy_module(old) if old is not None else None
        self.editor.desc.modules[md.id] = md

    def remove_module(self, mid: str) -> None:
        self.module(mid)
        del self.editor.desc.modules[mid]

    def set_position(self, mid: str, pos: Position | None) -> None:
        positions = self.editor.positions
        if mid not in self.before.positions:
            self.before.positions[mid] = positions.get(mid)
        if pos is None:
            positions.pop(mid, None)
        else:
            positions[mid] = (pos[0], pos[1])

    def set_network(self, name: str, properties: dict[str, str] | None) -> None:
        desc = self.editor.desc
        if self.before.network is None:
            self.before.network = (desc.name, _copy_props(desc.properties))
        desc.name, desc.properties = name, _copy_props(properties)

    # -- ending ------------------------------------------------------------------------------
    def finish(self, label: str) -> Edit | None:
        """The recorded edit, or ``None`` when nothing actually changed."""
        desc, positions = self.editor.desc, self.editor.positions
        after = Snapshot()
        for mid, old in list(self.before.modules.items()):
            now = desc.modules.get(mid)
            if now == old:
                del self.before.modules[mid]
            else:
                after.modules[mid] = copy_module(now) if now is not None else None
        for mid, old_pos in list(self.before.positions.items()):
            if positions.get(mid) == old_pos:
                del self.before.positions[mid]
            else:
                after.positions[mid] = positions.get(mid)
        if list(desc.modules) != self._module_order:
            self.before.module_order, after.module_order = self._module_order, list(desc.modules)
        if list(positions) != self._position_order:
            self.before.position_order = self._position_order
            after.position_order = list(positions)
        if self.before.network is not None:
            now_net = (desc.name, _copy_props(desc.properties))
            if now_net == self.before.network:
                self.before.network = None
            else:
                after.network = now_net
        if after == Snapshot() and self.before == Snapshot():
            return None
        return Edit(label, self.before, after)

    def rollback(self) -> None:
        apply_snapshot(self.editor, self.before, self._module_order, self._position_order)


def _copy_props(props: dict[str, str] | None) -> dict[str, str] | None:
    return dict(props) if props is not None else None


def apply_snapshot(editor: NetworkEditor, snap: Snapshot, module_order: list[str] | None = None,
                   position_order: list[str] | None = None) -> None:
    """Put the values of ``snap`` into the editor (then restore the key orders)."""
    desc, positions = editor.desc, editor.positions
    for mid, md in snap.modules.items():
        if md is None:
            desc.modules.pop(mid, None)
        else:
            desc.modules[mid] = copy_module(md)
    for mid, pos in snap.positions.items():
        if pos is None:
            positions.pop(mid, None)
        else:
            positions[mid] = pos
    morder = snap.module_order or module_order
    if morder is not None and list(desc.modules) != morder:
        desc.modules = {k: desc.modules[k] for k in morder}
    porder = snap.position_order or position_order
    if porder is not None and list(positions) != porder:
        reordered = {k: positions[k] for k in porder}
        positions.clear()
        positions.update(reordered)
    if snap.network is not None:
        desc.name, desc.properties = snap.network[0], _copy_props(snap.network[1])


class UndoStack:
    """A list of edits and a cursor; ``clean`` marks the edit count of the last save."""

    def __init__(self) -> None:
        self.edits: list[Edit] = []
        self.index = 0
        self.clean_index: int | None = 0

    def push(self, edit: Edit) -> None:
        if self.clean_index is not None and self.clean_index > self.index:
            self.clean_index = None  # the saved state can no longer be reached
        del self.edits[self.index:]
        self.edits.append(edit)
        self.index += 1

    def can_undo(self) -> bool:
        return self.index > 0

    def can_redo(self) -> bool:
        return self.index < len(self.edits)

    def undo_label(self) -> str:
        return self.edits[self.index - 1].label if self.can_undo() else ""

    def redo_label(self) -> str:
        return self.edits[self.index].label if self.can_redo() else ""

    def step_back(self) -> Edit:
        self.index -= 1
        return self.edits[self.index]

    def step_forward(self) -> Edit:
        self.index += 1
        return self.edits[self.index - 1]

    def is_clean(self) -> bool:
        return self.clean_index == self.index

    def set_clean(self) -> None:
        self.clean_index = self.index

    def clear(self) -> None:
        self.edits.clear()
        self.index = 0
        self.clean_index = 0
