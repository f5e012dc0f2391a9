"""Starting the desktop app: ``dianne [MODEL]`` and ``dianne --screenshot FILE.png``.

``run(args)`` creates the QApplication and the main window, opens MODEL (a folder, a network of
the repository or a bundled example's name; on first start, the bundled MNIST example), and
either enters the event loop or, with ``--screenshot``, waits until the network is loaded,
renders the window into a PNG and exits. Without a display the screenshot path switches Qt to
the offscreen platform by itself.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def _application():
    from app.gui_pyside import pin_none  # noqa: PLC0415

    pin_none()  # before the first Qt call: see app.gui_pyside
    from PySide6 import QtWidgets  # noqa: PLC0415

    app = QtWidgets.QApplication.instance()
    if app is None:
        app = QtWidgets.QApplication([sys.argv[0] if sys.argv else "dianne"])
        app.setApplicationName("DIANNE")
        app.setOrganizationName("DIANNE")
    return app


def make_window(model: str | None = None, repository: str | None = None,
                backend: str | None = None, start: bool = True):
    """The main window, with MODEL (or the first-start example) being opened."""
    from app.gui_settings import Settings  # noqa: PLC0415
    from app.main_window import MainWindow  # noqa: PLC0415
    from engine.repository import Repository  # noqa: PLC0415

    repo = Repository(repository) if repository else None
    win = MainWindow(Settings.load(), repository=repo, backend=backend)
    if model:
        win.open_model(model)
    elif start:
        win.start()
    return win


def screenshot(win, path: str | Path, tab: str = "build") -> Path:
    """Render ``win`` (after pending loads) with ``tab`` shown into a PNG file."""
    from PySide6 import QtWidgets  # noqa: PLC0415

    win.workers.wait_idle()
    index = win.tab_index(tab)
    if index < 0:
        raise OSError(f"the window has no {tab!r} tab")
    win.tabs.setCurrentIndex(index)
    win.show()
    for _ in range(5):
        QtWidgets.QApplication.processEvents()
    win.build.canvas.fit()
    QtWidgets.QApplication.processEvents()
    target = Path(path)
    if not win.grab().save(str(target), "PNG"):
        raise OSError(f"cannot write the screenshot {target}")
    return target


def run(args) -> int:
    """Entry point for the no-subcommand path of ``dianne`` (see app.cli). A MODEL found
    nowhere is a one-line error (a DianneError for app.cli) before any window opens."""
    if args.model:
        from app.examples import locate_model  # noqa: PLC0415
        from engine.repository import Repository  # noqa: PLC0415

        locate_model(args.model, Repository(args.repository) if args.repository else None)
    if args.screenshot and not os.environ.get("DISPLAY") and not os.environ.get(
            "WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = _application()
    backend = _backend_name(args.backend)
    win = make_window(args.model, args.repository, backend)
    if args.screenshot:
        ok = win.workers.wait_idle()
        if win.error_box is not None:
            print(f"dianne: error: {win.error_box.text()}", file=sys.stderr)
            return 1
        if not ok:
            print("dianne: error: the network did not load within 10 s", file=sys.stderr)
            return 1
        path = screenshot(win, args.screenshot, args.tab)
        print(path)
        win.editor.undo_stack.set_clean()  # nothing to ask about on the way out
        win.close()
        return 0
    win.show()
    win.start_agents()  # the local agent on loopback: everything works on one laptop
    return app.exec()


def _backend_name(choice: str | None) -> str:
    from engine.backends import get_backend  # noqa: PLC0415
    from engine.errors import BackendError  # noqa: PLC0415

    try:
        return get_backend(choice).name
    except BackendError as exc:
        log.warning("%s; using numpy", exc)
        return "numpy"
