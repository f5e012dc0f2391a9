"""The palette: every registered module type, grouped by DIANNE category, with a filter box.

Generated from ``engine.modules.module_types()`` (one source of truth), after the composite
types found (bundled and the repository's, ``engine.composite.register_composites``) were
registered: they form the "Composite" group. Drag a type onto the canvas, or double-click it
(or press Enter) to add it in the middle of the view. :meth:`Palette.refresh` re-reads the
registry (a new composite type appears at once).
"""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from engine.modules import module_types

MIME_TYPE = "application/x-dianne-module-type"
TEXT_PREFIX = "dianne-module:"  # NodeGraphQt's viewer only accepts drags that carry text
TYPE_ROLE = QtCore.Qt.ItemDataRole.UserRole


class _Tree(QtWidgets.QTreeWidget):
    def mimeData(self, items) -> QtCore.QMimeData:  # noqa: N802 (Qt override)
        mime = QtCore.QMimeData()
        types = [i.data(0, TYPE_ROLE) for i in items if i.data(0, TYPE_ROLE)]
        if types:
            mime.setData(MIME_TYPE, types[0].encode())
            mime.setText(TEXT_PREFIX + types[0])
        return mime

    def mimeTypes(self) -> list[str]:  # noqa: N802
        return [MIME_TYPE, "text/plain"]


class Palette(QtWidgets.QWidget):
    """``activated(type_name)`` on double-click or Enter."""

    activated = QtCore.Signal(str)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.filter = QtWidgets.QLineEdit()
        self.filter.setPlaceholderText("Filter modules…")
        self.filter.setClearButtonEnabled(True)
        self.tree = _Tree()
        self.tree.setHeaderHidden(True)
        self.tree.setDragEnabled(True)
        self.tree.setDragDropMode(QtWidgets.QAbstractItemView.DragDropMode.DragOnly)
        self.tree.setRootIsDecorated(True)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.filter)
        lay.addWidget(self.tree)
        self._fill()
        self.filter.textChanged.connect(self.apply_filter)
        self.filter.returnPressed.connect(self._activate_first)
        self.tree.itemActivated.connect(self._on_activated)

    def refresh(self) -> None:
        """Rebuild from the registry, keeping the filter text."""
        self.tree.clear()
        self._fill()
        self.apply_filter(self.filter.text())

    def _fill(self) -> None:
        from engine.composite import register_composites  # noqa: PLC0415

        register_composites()
        cats: dict[str, QtWidgets.QTreeWidgetItem] = {}
        for info in module_types():
            parent = cats.get(info.category)
            if parent is None:
                parent = QtWidgets.QTreeWidgetItem(self.tree, [info.category])
                parent.setFlags(parent.flags() & ~QtCore.Qt.ItemFlag.ItemIsDragEnabled)
                cats[info.category] = parent
            item = QtWidgets.QTreeWidgetItem(parent, [info.type_name])
            item.setData(0, TYPE_ROLE, info.type_name)
            req = [p.name for p in info.props if p.required]
            tip = info.doc or info.type_name
            if req:
                tip += f"\nRequired: {', '.join(req)}"
            item.setToolTip(0, tip)
        self.tree.expandAll()

    def categories(self) -> list[str]:
        root = self.tree.invisibleRootItem()
        return [root.child(i).text(0) for i in range(root.childCount())]

    def visible_types(self) -> list[str]:
        out = []
        root = self.tree.invisibleRootItem()
        for i in range(root.childCount()):
            cat = root.child(i)
            for j in range(cat.childCount()):
                if not cat.child(j).isHidden():
                    out.append(cat.child(j).data(0, TYPE_ROLE))
        return out

    def item(self, type_name: str) -> QtWidgets.QTreeWidgetItem:
        found = self.tree.findItems(type_name, QtCore.Qt.MatchFlag.MatchExactly |
                                    QtCore.Qt.MatchFlag.MatchRecursive)
        return next(i for i in found if i.data(0, TYPE_ROLE) == type_name)

    def apply_filter(self, text: str) -> None:
        needle = text.strip().lower()
        root = self.tree.invisibleRootItem()
        for i in range(root.childCount()):
            cat = root.child(i)
            cat_match = needle in cat.text(0).lower()
            shown = 0
            for j in range(cat.childCount()):
                child = cat.child(j)
                hit = not needle or cat_match or needle in child.text(0).lower()
                child.setHidden(not hit)
                shown += hit
            cat.setHidden(shown == 0)

    def _activate_first(self) -> None:
        types = self.visible_types()
        if types:
            self.activated.emit(types[0])

    def _on_activated(self, item: QtWidgets.QTreeWidgetItem) -> None:
        type_name = item.data(0, TYPE_ROLE)
        if type_name:
            self.activated.emit(type_name)
