"""Dragging modules onto an agent in the Deploy tab.

The module list (one row per module) is a drag source: the selected rows travel as a JSON
list of module ids under :data:`MIME`. The agents table accepts that drop on a row and says
which agent it was (``dropped(ids, agent name)``); the tab turns it into one undoable
assignment, as the menu and a double-click do.
"""

from __future__ import annotations

import json

from PySide6 import QtCore, QtWidgets

MIME = "application/x-dianne-module-ids"
ID_ROLE = QtCore.Qt.ItemDataRole.UserRole


def module_ids(mime: QtCore.QMimeData) -> list[str]:
    """The module ids a drag carries (empty when it carries something else or is malformed)."""
    if not mime.hasFormat(MIME):
        return []
    try:
        ids = json.loads(bytes(mime.data(MIME)).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return []
    return [i for i in ids if isinstance(i, str)] if isinstance(ids, list) else []


class ModuleList(QtWidgets.QTreeWidget):
    """The Deploy tab's module rows; each row keeps its module id under :data:`ID_ROLE`."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setDragEnabled(True)
        self.setDragDropMode(QtWidgets.QAbstractItemView.DragDropMode.DragOnly)

    def selected_ids(self) -> list[str]:
        return [item.data(0, ID_ROLE) for item in self.selectedItems()]

    def mimeTypes(self) -> list[str]:  # noqa: N802 (Qt)
        return [MIME]

    def mimeData(self, items) -> QtCore.QMimeData:  # noqa: N802 (Qt)
        mime = QtCore.QMimeData()
        ids = [item.data(0, ID_ROLE) for item in items]
        mime.setData(MIME, QtCore.QByteArray(json.dumps(ids).encode("utf-8")))
        return mime


class AgentTable(QtWidgets.QTableWidget):
    """The agents table; a drop of modules on a row emits ``dropped(ids, agent name)``."""

    dropped = QtCore.Signal(list, str)
    NAME_COLUMN = 1

    def __init__(self, rows: int, columns: int, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(rows, columns, parent)
        self.setAcceptDrops(True)
        self.viewport().setAcceptDrops(True)
        self.setDragDropMode(QtWidgets.QAbstractItemView.DragDropMode.DropOnly)

    def agent_at(self, pos: QtCore.QPoint) -> str | None:
        row = self.rowAt(pos.y())
        item = self.item(row, self.NAME_COLUMN) if row >= 0 else None
        return item.text() if item is not None else None

    def _accept(self, event) -> bool:
        ok = bool(module_ids(event.mimeData())) and self.agent_at(event.position().toPoint())
        if ok:
            event.acceptProposedAction()
        else:
            event.ignore()
        return bool(ok)

    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt)
        if module_ids(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802 (Qt)
        self._accept(event)

    def dropEvent(self, event) -> None:  # noqa: N802 (Qt)
        if self._accept(event):
            self.dropped.emit(module_ids(event.mimeData()),
                              self.agent_at(event.position().toPoint()))
