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
    canvases = {win.build.canvas, getattr(win.tabs.currentWidget(), "canvas", None)} - {None}
    for _ in range(2):  # again once the layout has settled
        for canvas in canvases:  # the tab's own canvas too (Deploy tints the same network)
            canvas.fit()
        for _ in range(3):
            QtWidgets.QApplication.processEvents()
    target = Path(path)
    if not win.grab().save(str(target), "PNG"):
        raise OSError(f"cannot write the screenshot {target}")
    return target


AGENT_TABS = ("deploy", "learn", "run")  # tabs that show agents: a screenshot waits for one
AGENT_WAIT_S = 10.0


def _wait_for_agents(win) -> bool:
    """Start the local agent and discovery, and process events until an agent is listed (at
    most ``AGENT_WAIT_S``; the screenshot is taken either way). True when one was found."""
    import time  # noqa: PLC0415

    from PySide6 import QtWidgets  # noqa: PLC0415

    win.start_agents()
    state = getattr(win, "net_state", None)
    if state is None:
        return False
    deadline = time.monotonic() + AGENT_WAIT_S
    while not state.agents.alive() and time.monotonic() < deadline:
        QtWidgets.QApplication.processEvents()
        time.sleep(0.02)
    for _ in range(20):  # let the tab's table and status follow the agents model
        QtWidgets.QApplication.processEvents()
        time.sleep(0.01)
    return bool(state.agents.alive())


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
        if (args.tab.lower() in AGENT_TABS and os.environ.get("DIANNE_LOCAL_AGENT", "1") != "0"
                and not _wait_for_agents(win)):
            print(f"dianne: no agent listed within {AGENT_WAIT_S:.0f} s (screenshot taken "
                  f"anyway)", file=sys.stderr)
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
