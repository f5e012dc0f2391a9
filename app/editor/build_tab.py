"""The Build tab: palette | canvas | properties panel, over one :class:`NetworkEditor`.

The main window's Edit menu calls the methods here (undo, redo, cut, copy, paste, duplicate,
delete, select all, auto layout); ``message`` carries refusals and hints to the status bar.
"""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from app.editor.canvas import Canvas
from app.editor.model import Change, NetworkEditor
from app.editor.palette import Palette
from app.editor.properties import PropertyDialog, SidePanel
from engine.errors import DianneError


class BuildTab(QtWidgets.QWidget):
    message = QtCore.Signal(str)

    def __init__(self, editor: NetworkEditor, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.editor = editor
        self.palette = Palette()
        self.canvas = Canvas(editor, self)
        self.panel = SidePanel(editor)
        self.dialog: PropertyDialog | None = None
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
