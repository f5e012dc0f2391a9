"""Fixtures for the desktop app tests (pytest-qt, offscreen): an isolated settings folder and a
main window that never stops on an "unsaved changes" question at teardown."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent
# NodeGraphQt calls Qt functions PySide6 marks deprecated (QMouseEvent.pos, distutils): noise.
_QUIET = pytest.mark.filterwarnings("ignore::DeprecationWarning:NodeGraphQt")


def pytest_collection_modifyitems(items):
    for item in items:
        if HERE in Path(item.fspath).parents:
            item.add_marker(_QUIET)


@pytest.fixture(autouse=True)
def _config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DIANNE_CONFIG_DIR", str(tmp_path / "config"))
    # The default repository (composites made by grouping go there): never the user's own.
    monkeypatch.setenv("DIANNE_REPOSITORY", str(tmp_path / "repo"))


def _discard_changes(win) -> None:
    win.workers.wait_idle()
    win.editor.undo_stack.set_clean()


@pytest.fixture
def window(qtbot):
    from app.gui_settings import Settings
    from app.main_window import MainWindow

    win = MainWindow(Settings.load())
    # pytest-qt closes the window before fixture teardown runs: mark it clean first so the
    # "unsaved changes" question never blocks the test run.
    qtbot.addWidget(win, before_close_func=_discard_changes)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.workers.wait_idle()
    win.editor.undo_stack.set_clean()  # teardown closes the window: nothing to ask


@pytest.fixture
def build(window):
    return window.build
