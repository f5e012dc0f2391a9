"""The DIANNE desktop app's main window: tabs Build / Deploy / Learn / Run, menus, status bar.

The window owns one :class:`NetworkEditor` (the open network) and its Build tab; the Deploy,
Learn and Run tabs are installed over placeholder pages by ``app.deploy_view.install_tabs``
(they need the agents model and the workers). This module builds the window, its menus
and help dialogs, and follows the editor's changes (title, undo labels, grouped weights); the
file work (open, save, export, recent) is :class:`app.window_files.FileActions`, the status bar
and error dialog :class:`app.window_status.StatusBar`, both mixed in here.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from app.editor import grouping, qt_compat
from app.editor.build_tab import BuildTab
from app.editor.model import Change, NetworkEditor
from app.gui_settings import Settings
from app.gui_workers import Workers
from app.window_files import FileActions
from app.window_status import StatusBar
from engine.repository import Repository

log = logging.getLogger(__name__)
qt_compat.ensure()  # NodeGraphQt enum aliases, and None's reference count (app.gui_pyside)
_PLACEHOLDERS = {
    "Deploy": "Place the network's modules on agents (this laptop's local agent or others "
              "found on the network), each agent in its own colour.",
    "Learn": "Connect a dataset, pick a trainer and watch the loss while an agent trains.",
    "Run": "Feed a sample, a drawing or an image and see the output probabilities.",
}


def _placeholder(title: str) -> QtWidgets.QWidget:
    label = QtWidgets.QLabel(
        f"<h2>{title}</h2><p>{_PLACEHOLDERS[title]}</p><p><i>Not in this version yet: the "
        f"{title} tab is being built.</i> Until then the command line does it: "
        f"<code>dianne eval</code>, <code>dianne run</code> (with <code>--agent</code>).</p>")
    label.setWordWrap(True)
    label.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
    label.setMargin(60)
    return label


class MainWindow(FileActions, StatusBar, QtWidgets.QMainWindow):
    """``loaded`` after a network was opened, ``saved`` after a save finished."""

    loaded = QtCore.Signal(str)
    saved = QtCore.Signal(str)

    def __init__(self, settings: Settings | None = None, repository: Repository | None = None,
                 backend: str | None = None) -> None:
        super().__init__()
        self.settings = settings or Settings()
        self.repository = repository
        self.workers = Workers(self)
        self.editor = NetworkEditor()
        self.weights_origin: Path | None = None  # folder the open network's weights lie in
        self._weight_pool: dict | None = None  # vectors before and after a grouping (undo)
        grouping.use_repository(self.repo().root)  # the palette's Composite group
        self.build = BuildTab(self.editor)
        self.build.composites_root = lambda: self.repo().root / "composites"
        self.build.current_weights = self._current_weights
        self.build.grouped.connect(self._on_grouped)
        self.error_box: QtWidgets.QMessageBox | None = None
        self.tabs = QtWidgets.QTabWidget()
        self.tabs.addTab(self.build, "Build")
        self.setCentralWidget(self.tabs)
        self._make_status_bar(backend)
        if not self._install_views():
            for title in ("Deploy", "Learn", "Run"):
                self.tabs.addTab(_placeholder(title), title)
        self._make_menus()
        self.build.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.workers.busy_changed.connect(self._on_busy)
        self.editor.subscribe(self._on_change)
        self._on_change(Change(network=True))
        self.resize(1280, 800)

    # ------------------------------------------------------------------------ building ---
    def _install_views(self) -> bool:
        """Deploy / Learn / Run from app.deploy_view when that work is present; a failure there
        must not keep the Build tab from opening (placeholders are shown instead)."""
        try:
            from app.deploy_view import install_tabs  # noqa: PLC0415
        except ImportError:
            return False
        try:
            install_tabs(self)
        except Exception:  # noqa: BLE001 - log it, keep the editor usable
            log.exception("the Deploy/Learn/Run tabs could not be built")
            while self.tabs.count() > 1:
                self.tabs.removeTab(1)
            return False
        return True

    def start_agents(self) -> None:
        """Agents discovery and this computer's local agent, in the background (app start);
        they stop when the window closes."""
        lifetime = getattr(self, "tabs_lifetime", None)
        if lifetime is not None:
            lifetime.start()

    def stop_agents(self) -> None:
        """Stop what :meth:`start_agents` started (the local agent process included)."""
        lifetime = getattr(self, "tabs_lifetime", None)
        if lifetime is not None and lifetime.started:
            lifetime.stop()

    def repo(self) -> Repository:
        """The repository in use (the default one when none was given)."""
        return self.repository or Repository()

    def tab_index(self, name: str) -> int:
        """Index of the tab titled ``name`` (case-insensitive); -1 when there is none."""
        titles = [self.tabs.tabText(i).lower() for i in range(self.tabs.count())]
        return titles.index(name.lower()) if name.lower() in titles else -1

    def _action(self, menu: QtWidgets.QMenu, text: str, slot, shortcut=None,
                tip: str = "") -> QtGui.QAction:
        act = QtGui.QAction(text, self)
        if shortcut is not None:
            act.setShortcut(QtGui.QKeySequence(shortcut))
        act.setStatusTip(tip)
        act.triggered.connect(lambda _checked=False: slot())
        menu.addAction(act)
        return act

    def _make_menus(self) -> None:
        keys = QtGui.QKeySequence.StandardKey
        b = self.build
        m = self.menuBar().addMenu("&File")
        self._action(m, "&New", self.new_network, keys.New, "start an empty network")
        self._action(m, "&Open…", self.open_dialog, keys.Open, "open a network folder")
        self._action(m, "Open from &repository…", self.open_repository_dialog, "Ctrl+Shift+O")
        self.recent_menu = m.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        m.addSeparator()
        self._action(m, "&Save", self.save, keys.Save, "save modules.txt and layout.txt")
        self._action(m, "Save &as…", self.save_as, keys.SaveAs)
        self._action(m, "&Export single JSON…", self.export_dialog, "Ctrl+E")
        m.addSeparator()
        self._action(m, "&Quit", self.close, keys.Quit)
        m = self.menuBar().addMenu("&Edit")
        self.undo_action = self._action(m, "&Undo", b.undo, keys.Undo)
        self.redo_action = self._action(m, "&Redo", b.redo, keys.Redo)
        m.addSeparator()
        self._action(m, "Cu&t", b.cut, keys.Cut)
        self._action(m, "&Copy", b.copy, keys.Copy)
        self._action(m, "&Paste", b.paste, keys.Paste)
        self._action(m, "D&uplicate", b.duplicate, "Ctrl+D")
        self._action(m, "&Delete", b.delete, keys.Delete)
        self._action(m, "Select &all", b.select_all, keys.SelectAll)
        m.addSeparator()
        self.group_action = self._action(m, "&Group into composite…", b.group_dialog,
                                         "Ctrl+G", "make the selected modules a new composite "
                                         "module type")
        self._action(m, "Auto &layout", b.auto_layout, "Ctrl+L", "left to right by depth")
        self._action(m, "&Fit to window", b.canvas.fit, "F")
        m = self.menuBar().addMenu("&Help")
        self._action(m, "&Keyboard shortcuts", self.show_shortcuts, keys.HelpContents)
        self._action(m, "&About DIANNE", self.show_about)

    # --------------------------------------------------------------------- reactions ---
    def _on_change(self, change: Change) -> None:
        ed = self.editor
        self._follow_weights(change)
        where = str(ed.folder) if ed.folder else "not saved yet"
        self.setWindowTitle(f"{ed.desc.name}[*] — {where} — DIANNE")
        self.setWindowModified(ed.dirty)
        self.undo_action.setEnabled(ed.undo_stack.can_undo())
        self.redo_action.setEnabled(ed.undo_stack.can_redo())
        self.undo_action.setText(f"&Undo {ed.undo_stack.undo_label()}".strip())
        self.redo_action.setText(f"&Redo {ed.undo_stack.redo_label()}".strip())
        self._show_totals()

    # ------------------------------------------------------------ weights of grouping ---
    def _current_weights(self) -> dict | None:
        state = getattr(self, "net_state", None)
        if state is None:
            return None
        try:
            weights = state.weights()
        except Exception as exc:  # noqa: BLE001 - grouping goes on without weights
            log.warning("no weights for grouping: %s", exc)
            return None
        self._weights_in = weights
        return weights or None

    def _on_grouped(self, res) -> None:
        """The composite's vector joins the parts' ones: the network gets the regrouped
        weights, and undo (parts back) finds the parts' vectors again."""
        state = getattr(self, "net_state", None)
        if state is None or not res.weights:
            return
        self._weight_pool = {**getattr(self, "_weights_in", {}), **res.weights}
        self._follow_weights(Change(network=True))

    def _follow_weights(self, change: Change) -> None:
        state = getattr(self, "net_state", None)
        if change.reset or state is None:
            self._weight_pool = None
        if self._weight_pool is None:
            return
        if state.trained is not None:
            self._weight_pool.update(state.trained)
        mods = self.editor.desc.modules
        want = {m: v for m, v in self._weight_pool.items() if m in mods}
        if state.trained is None or set(want) != set(state.trained):
            state.set_trained(want)

    # -------------------------------------------------------------------------- close ---
    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 (Qt override)
        if self.confirm_discard():
            self.workers.wait_idle()
            self.stop_agents()
            event.accept()
        else:
            event.ignore()

    # --------------------------------------------------------------------------- help ---
    def show_shortcuts(self) -> None:
        rows = []
        for menu in self.menuBar().findChildren(QtWidgets.QMenu):
            for act in menu.actions():
                if not act.shortcut().isEmpty():
                    name = act.text().replace("&", "")
                    rows.append(f"<tr><td>{name}</td><td><b>{act.shortcut().toString()}</b>"
                                f"</td></tr>")
        rows.append("<tr><td>Add a module</td><td>drag from the palette, or double-click"
                    "</td></tr><tr><td>Connect</td><td>drag from an output port (right) to "
                    "an input port (left)</td></tr><tr><td>Disconnect</td><td>drag a wire's "
                    "end away</td></tr><tr><td>Properties</td><td>double-click a module"
                    "</td></tr><tr><td>Search a module type</td><td><b>Tab</b> on the canvas"
                    "</td></tr>")
        box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Icon.NoIcon, "Keyboard shortcuts",
                                    "<table cellspacing=6>" + "".join(rows) + "</table>",
                                    QtWidgets.QMessageBox.StandardButton.Ok, self)
        box.open()

    def show_about(self) -> None:
        QtWidgets.QMessageBox(
            QtWidgets.QMessageBox.Icon.Information, "About DIANNE",
            "<b>DIANNE</b> — modular, distributed neural networks.<br/>A Python re-creation of "
            "the DIANNE middleware (Ghent University, 2015): the same network files, module "
            "types and repository layout.", QtWidgets.QMessageBox.StandardButton.Ok,
            self).open()
