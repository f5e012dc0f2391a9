"""The main window's file work: start, open (folder, repository, bundled example, recent), save,
export, and the unsaved-changes question.

A mixin of :class:`app.main_window.MainWindow` (it uses the window's ``editor``, ``settings``,
``workers``, ``build``, ``weights_origin``, ``repo()``, ``show_error`` and its ``loaded`` /
``saved`` signals). Reads and writes run in :class:`app.gui_workers.Workers`; the GUI thread only
swaps the editor's state when a read has finished and serialises before a write starts (so the
file holds the state the user saved). A failure is shown in a dialog naming the file and the
module, and the open network is kept.
"""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtWidgets

from app.editor import document
from engine.repository import Repository

FIRST_EXAMPLE = "mnist-mlp"
EXAMPLE_PREFIX = "example:"  # a bundled example in the recent list


class FileActions:
    """File menu work of the main window (see the module docstring for what it expects)."""

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

    # ---------------------------------------------------------------- unsaved changes ---
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


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False
