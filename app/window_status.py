"""The main window's status bar and error dialog: totals of the open network, a busy indicator
while a worker runs, the agents and backend labels, and the non-blocking error box.

A mixin of :class:`app.main_window.MainWindow` (it uses the window's ``editor``); the Deploy tab
sets ``agents_label``'s text as agents come and go.
"""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets


class StatusBar:
    """Status bar widgets and messages of the main window."""

    def _make_status_bar(self, backend: str | None) -> None:
        bar = self.statusBar()
        self.totals_label = QtWidgets.QLabel()
        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setMaximumWidth(120)
        self.progress.hide()
        self.agents_label = QtWidgets.QLabel("agents: none")
        self.backend_label = QtWidgets.QLabel(f"backend: {backend or 'numpy'}")
        for w in (self.totals_label, self.progress, self.agents_label, self.backend_label):
            bar.addPermanentWidget(w)

    def _show_totals(self) -> None:
        """Modules, parameters and MACs of the open network, and how many have errors."""
        ed = self.editor
        shapes = ed.shapes
        errors = len(shapes.errors)
        text = (f"{len(ed.desc.modules)} modules · {shapes.params:,} parameters · "
                f"{shapes.macs:,} MACs")
        if errors:
            text += f" · <span style='color:#e05050'>{errors} with errors</span>"
        self.totals_label.setText(text)

    def _on_busy(self, count: int, label: str) -> None:
        self.progress.setVisible(count > 0)
        if count and label:
            self.statusBar().showMessage(label + "…")
        elif not count:
            self.statusBar().clearMessage()

    def show_error(self, title: str, message: str) -> None:
        """A non-blocking error dialog (the message names file and module)."""
        box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Icon.Critical, title, message,
                                    QtWidgets.QMessageBox.StandardButton.Ok, self)
        box.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_box = box
        box.open()
        self.statusBar().showMessage(f"{title}: {message}", 10000)
