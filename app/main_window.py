"""The DIANNE desktop app's main window: tabs Build / Deploy / Learn / Run, menus, status bar.

The window owns one :class:`NetworkEditor` (the open network) and its Build tab; Deploy, Learn
and Run are placeholders until their own work lands. File work (open, save, export) runs in
:class:`app.gui_workers.Workers`; the GUI thread only swaps the editor's state when a read has
finished and serialises before a write starts (so the file holds the state the user saved).
Errors are shown in a dialog naming the file and the module, and the open network is kept.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from app.editor import document, grouping, qt_compat
from app.editor.build_tab import BuildTab
from app.editor.model import Change, NetworkEditor
from app.gui_settings import Settings
from app.gui_workers import Workers
from engine.repository import Repository

log = logging.getLogger(__name__)
qt_compat.ensure()  # NodeGraphQt enum aliases, and None's reference count (app.gui_pyside)
FIRST_EXAMPLE = "mnist-mlp"
EXAMPLE_PREFIX = "example:"  # a bundled example in the recent list
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


class MainWindow(QtWidgets.QMainWindow):
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
        shapes = ed.shapes
        errors = len(shapes.errors)
        text = (f"{len(ed.desc.modules)} modules · {shapes.params:,} parameters · "
                f"{shapes.macs:,} MACs")
        if errors:
            text += f" · <span style='color:#e05050'>{errors} with errors</span>"
        self.totals_label.setText(text)

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

    # ---------------------------------------------------------------- open and start ---
    def start(self) -> None:
        """First start: the bundled MNIST example; later: the last network (a folder, or a
        bundled example remembered as ``example:NAME``), if still there."""
        if not self.settings.first_start_done:
            self.settings.first_start_done = True
            self.settings.save()
            self.open_example(FIRST_EXAMPLE)
        elif self.settings.recent:
            self._open_recent(self.settings.recent[0], quiet=True)

    def _open_recent(self, entry: str, quiet: bool = False) -> None:
        """Open an entry of the recent list; ``quiet``: skip one that is gone (app start)."""
        if entry.startswith(EXAMPLE_PREFIX):
            from app.examples import example_names  # noqa: PLC0415

            name = entry[len(EXAMPLE_PREFIX):]
            if not quiet or name in example_names():
                self.open_example(name)
        elif not quiet or Path(entry, "modules.txt").is_file():
            self.open_folder(entry)

    def open_example(self, name: str) -> None:
        """A bundled example, read-only: Save asks where to write it."""
        from app.examples import find_example  # noqa: PLC0415

        def read(n: str) -> document.Opened:
            opened = document.open_folder(find_example(n).folder)
            opened.folder = None  # bundled files are read-only: Save asks where (origin kept)
            return opened
        self._open(read, name, recent=EXAMPLE_PREFIX + name)

    def open_folder(self, path: str | Path) -> None:
        self._open(document.open_folder, str(path))

    def open_model(self, spec: str) -> None:
        """A MODEL argument, found as every ``dianne`` command finds it
        (:func:`app.examples.locate_model`): a folder or ``modules.txt``, a network of the
        repository, or a bundled example's name. Found nowhere: the error names the places."""
        from app.examples import locate_model  # noqa: PLC0415
        from engine.errors import DianneError  # noqa: PLC0415

        repo = self.repo()
        try:
            where = locate_model(spec, repo)
        except DianneError as exc:
            self.show_error("Cannot open network", str(exc))
            return
        if where.kind == "example":
            self.open_example(spec)
        elif where.kind == "repository":
            self._open(lambda n: document.open_from_repository(repo, n), spec)
        else:
            self.open_folder(where.target)

    def _open(self, reader, arg: str, recent: str | None = None) -> None:
        """Read on a worker, then show; remembered in the recent list as the opened folder,
        or as ``recent`` (a bundled example has no folder of its own)."""
        if not self.confirm_discard():
            return

        def done(opened: document.Opened) -> None:
            self.editor.replace(opened.desc, opened.layout, opened.folder)
            self.weights_origin = opened.origin
            if recent is not None or opened.folder is not None:
                self.settings.add_recent(recent or opened.folder)
            self.build.canvas.fit()
            self.statusBar().showMessage(f"opened {opened.desc.name}", 5000)
            self.loaded.emit(opened.desc.name)

        self.workers.start(reader, arg, on_done=done, label=f"opening {arg}",
                           on_error=lambda msg: self.show_error("Cannot open network", msg))

    def new_network(self) -> None:
        if self.confirm_discard():
            self.editor.replace(None)
            self.weights_origin = None

    def open_dialog(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Open network folder")
        if path:
            self.open_folder(path)

    def open_repository_dialog(self) -> None:
        repo = self.repository or Repository()
        names = repo.list_networks()
        if not names:
            self.show_error("Open from repository", f"no networks in {repo.root}")
            return
        name, ok = QtWidgets.QInputDialog.getItem(self, "Open from repository",
                                                  f"Network in {repo.root}:", names, 0, False)
        if ok and name:
            self._open(lambda n: document.open_from_repository(repo, n), name)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for entry in self.settings.recent:
            label = (f"{entry[len(EXAMPLE_PREFIX):]} (bundled example)"
                     if entry.startswith(EXAMPLE_PREFIX) else entry)
            act = self.recent_menu.addAction(label)
            act.triggered.connect(lambda _c=False, e=entry: self._open_recent(e))
        if not self.settings.recent:
            self.recent_menu.addAction("(none yet)").setEnabled(False)

    # ------------------------------------------------------------------------- saving ---
    def save(self) -> bool:
        if self.editor.folder is None:
            return self.save_as()
        return self.save_to(self.editor.folder)

    def save_as(self) -> bool:
        start = str(self.editor.folder.parent if self.editor.folder else Path.home())
        path, _ = QtWidgets.QFileDialog.getSaveFileName(
            self, "Save network as folder", str(Path(start, self.editor.desc.name)))
        return bool(path) and self.save_to(path)

    def save_to(self, folder: str | Path) -> bool:
        """Write the network into ``folder`` (its name becomes the folder's name, as in a
        DIANNE repository). The texts are made now; the disk work runs in a worker."""
        folder = Path(folder)
        if folder.exists() and not folder.is_dir():
            self.show_error("Cannot save", f"{folder} is a file, not a folder")
            return False
        ed = self.editor
        if folder.name and folder.name != ed.desc.name and "." not in folder.name:
            ed.rename(folder.name)
        try:
            texts = document.serialize(ed.desc, ed.layout, ed.display_positions(), ed.known_ids)
        except Exception as exc:  # noqa: BLE001 - any failure here must reach the user
            self.show_error("Cannot save", str(exc))
            return False
        at = ed.undo_stack.index
        origin = self.weights_origin
        same = origin is None or _same_folder(origin, folder)

        def done(path: Path) -> None:
            if not same:
                self.weights_origin = path  # the copies are the network's weights now
            ed.mark_saved(path, at)
            self.settings.add_recent(path)
            self.statusBar().showMessage(f"saved {path}", 5000)
            self.saved.emit(str(path))

        self.workers.start(document.write_folder, folder, *texts, None if same else origin,
                           on_done=done,
                           label=f"saving {folder}",
                           on_error=lambda msg: self.show_error("Cannot save", msg))
        return True

    def export_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(
            self, "Export single JSON", f"{self.editor.desc.name}.json", "JSON (*.json)")
        if path:
            self.export_json(path)

    def export_json(self, path: str | Path) -> None:
        ed = self.editor
        text, _ = document.serialize(ed.desc, ed.layout, ed.display_positions(), ed.known_ids)
        self.workers.start(document.export_json, path, text, label=f"exporting {path}",
                           on_done=lambda p: self.statusBar().showMessage(f"exported {p}", 5000),
                           on_error=lambda msg: self.show_error("Cannot export", msg))

    # -------------------------------------------------------------------------- close ---
    def confirm_discard(self) -> bool:
        """Unsaved changes: ask Save / Discard / Cancel. True when it is fine to go on."""
        if not self.editor.dirty:
            return True
        box = QtWidgets.QMessageBox(
            QtWidgets.QMessageBox.Icon.Warning, "Unsaved changes",
            f"The network '{self.editor.desc.name}' has unsaved changes. Save them?",
            QtWidgets.QMessageBox.StandardButton.Save |
            QtWidgets.QMessageBox.StandardButton.Discard |
            QtWidgets.QMessageBox.StandardButton.Cancel, self)
        self.ask_box = box
        answer = box.exec()
        if answer == QtWidgets.QMessageBox.StandardButton.Save:
            if not self.save():
                return False
            return self.workers.wait_idle() and not self.editor.dirty
        return answer == QtWidgets.QMessageBox.StandardButton.Discard

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


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False
