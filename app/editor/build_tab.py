"""The Build tab: palette | canvas | properties panel, over one :class:`NetworkEditor`.

The main window's Edit menu calls the methods here (undo, redo, cut, copy, paste, duplicate,
delete, select all, auto layout, group into composite); ``message`` carries refusals and hints
to the status bar. The canvas's context menu offers the same edit commands.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from app.editor import grouping
from app.editor.canvas import Canvas
from app.editor.model import Change, NetworkEditor
from app.editor.palette import Palette
from app.editor.properties import PropertyDialog, SidePanel
from engine.errors import DianneError


class BuildTab(QtWidgets.QWidget):
    """``grouped(GroupResult)`` after a selection became a composite (the window moves the
    weights along); ``composites_root`` and ``current_weights`` are set by the window."""

    message = QtCore.Signal(str)
    grouped = QtCore.Signal(object)

    def __init__(self, editor: NetworkEditor, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.editor = editor
        self.palette = Palette()
        self.canvas = Canvas(editor, self)
        self.panel = SidePanel(editor)
        self.dialog: PropertyDialog | None = None
        self.group_input: QtWidgets.QInputDialog | None = None
        self.composites_root: Callable[[], Path] = _default_composites_root
        self.current_weights: Callable[[], dict[str, Any] | None] = lambda: None
        self._drops = 0
        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        split.addWidget(self.palette)
        split.addWidget(self.canvas.widget)
        split.addWidget(self.panel)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setStretchFactor(2, 0)
        split.setSizes([190, 800, 270])
        split.setCollapsible(1, False)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(split)
        self.palette.activated.connect(self.add_from_palette)
        self.canvas.refused.connect(self.message)
        self.canvas.module_activated.connect(self.open_properties)
        self.canvas.selection_changed.connect(self._on_selection)
        editor.subscribe(self._on_change)
        self._make_context_menu()

    def _make_context_menu(self) -> None:
        menu = self.canvas.graph.get_context_menu("graph")
        for name, slot in (("Group into composite…", self.group_dialog), ("Cut", self.cut),
                           ("Copy", self.copy), ("Paste", self.paste),
                           ("Duplicate", self.duplicate), ("Delete", self.delete),
                           ("Auto layout", self.auto_layout)):
            menu.add_command(name, lambda _graph, slot=slot: slot())
        self.context_menu = menu

    # ----------------------------------------------------------------------- reactions ---
    def _on_selection(self, ids: list[str]) -> None:
        self.panel.show_module(ids[0] if len(ids) == 1 else None)

    def _on_change(self, change: Change) -> None:
        if change.reset or (self.panel.mid in change.modules) or \
                (self.panel.mid is None and change.network):
            self.panel.show_module(self.panel.mid)

    def add_from_palette(self, type_name: str) -> str | None:
        """Double-click in the palette: add in the middle of the view, staggered."""
        x, y = self.canvas.view_center()
        step = 24 * (self._drops % 6)
        self._drops += 1
        return self.canvas.add_at(type_name, (x - 60 + step, y - 30 + step))

    def open_properties(self, mid: str) -> PropertyDialog:
        """The module's property dialog (window-modal, does not block the caller)."""
        if self.dialog is not None:
            self.dialog.close()
        self.dialog = PropertyDialog(self.editor, mid, self)
        self.dialog.open()
        return self.dialog

    # ----------------------------------------------------------------------- edit menu ---
    def _guard(self, action, *args):
        try:
            return action(*args)
        except DianneError as exc:
            self.message.emit(str(exc))
            return None

    def undo(self) -> None:
        if not self.editor.undo():
            self.message.emit("nothing to undo")

    def redo(self) -> None:
        if not self.editor.redo():
            self.message.emit("nothing to redo")

    def copy(self) -> bool:
        ids = self.canvas.selected()
        if not ids:
            self.message.emit("select modules to copy")
            return False
        # Plain text (JSON, see app.editor.clipboard): a QMimeData handed to the clipboard
        # crashes PySide6 6.12 at exit (it is freed twice).
        QtGui.QGuiApplication.clipboard().setText(self.editor.copy(ids))
        self.message.emit(f"copied {len(ids)} module{'s' * (len(ids) != 1)}")
        return True

    def cut(self) -> None:
        if self.copy():
            self._guard(self.editor.delete, self.canvas.selected())

    def paste(self) -> None:
        ids = self._guard(self.editor.paste, QtGui.QGuiApplication.clipboard().text())
        if ids:
            self.canvas.select(ids)

    def duplicate(self) -> None:
        ids = self.canvas.selected()
        if ids:
            new = self._guard(self.editor.duplicate, ids)
            if new:
                self.canvas.select(new)

    def delete(self) -> None:
        self._guard(self.editor.delete, self.canvas.selected())

    def select_all(self) -> None:
        self.canvas.select(list(self.editor.desc.modules))

    def auto_layout(self) -> None:
        self._guard(self.editor.auto_layout)
        self.canvas.fit()

    # ------------------------------------------------------------------------ grouping ---
    def group_dialog(self) -> QtWidgets.QInputDialog | None:
        """Ask the new composite type's name (window-modal, does not block the caller), then
        group the selection (:meth:`group_selection`)."""
        ids = self.canvas.selected()
        if not ids:
            self.message.emit("select the modules to group into a composite")
            return None
        box = QtWidgets.QInputDialog(self)
        box.setWindowTitle("Group into composite")
        box.setLabelText(f"Name of the new composite type ({len(ids)} modules):")
        box.setTextValue("")
        box.textValueSelected.connect(lambda name: self.group_selection(name, ids))
        self.group_input = box
        box.open()
        return box

    def group_selection(self, type_name: str, ids: list[str] | None = None) -> str | None:
        """Group ``ids`` (default: the selection) into ``type_name``; the new module's UUID,
        or None when refused (the reason goes to the status bar)."""
        ids = self.canvas.selected() if ids is None else ids
        res = self._guard(grouping.group, self.editor, ids, type_name,
                          self.composites_root(), self.current_weights())
        if res is None:
            return None
        self.palette.refresh()
        self.canvas.select([res.composite_id])
        self.message.emit(f"grouped {len(ids)} modules into a new {type_name} "
                          f"(saved in {res.folder})")
        self.grouped.emit(res)
        return res.composite_id


def _default_composites_root() -> Path:
    from engine.repository import Repository  # noqa: PLC0415

    return Repository().root / "composites"
