"""The main window: first start, the new user's minute, title mark, closing, open errors,
menus, and the ``dianne`` entry points (no subcommand, --screenshot, --help stays Qt-free)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from PySide6 import QtCore, QtGui, QtWidgets

from app.examples import examples_dir
from app.gui_settings import Settings
from app.main_window import MainWindow
from tests.app.gui.mouse import canvas_point, drag_wire, drop_from_palette
from tests.app.gui.test_build_tab import fill_dialog
from tests.conftest import ROOT

MLP = "d1a00e01-0000-4000-8000-00000000000"  # + 0..5: the example's module ids


def _answer_next_question(button: QtWidgets.QMessageBox.StandardButton) -> list[str]:
    """Click ``button`` on the next modal question box; returns the texts it showed."""
    seen: list[str] = []

    def click() -> None:
        box = QtWidgets.QApplication.activeModalWidget()
        if not isinstance(box, QtWidgets.QMessageBox):
            QtCore.QTimer.singleShot(20, click)
            return
        seen.append(box.text())
        box.button(button).click()

    QtCore.QTimer.singleShot(0, click)
    return seen


def test_a_new_user_builds_saves_quits_and_reopens(qtbot, tmp_path):
    win = MainWindow(Settings.load())
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.loaded, timeout=5000):
        win.start()  # first start: the bundled MNIST example
    ed, build = win.editor, win.build
    assert ed.desc.name == "mnist-mlp" and len(build.canvas.graph.all_nodes()) == 6
    assert ed.folder is None and not win.isWindowModified()
    assert "79,510 parameters" in win.totals_label.text()
    # quitting here and starting again shows the example again (remembered, still read-only)
    assert Settings.load().recent[0] == "example:mnist-mlp"
    peek = MainWindow(Settings.load())
    qtbot.addWidget(peek)
    with qtbot.waitSignal(peek.loaded, timeout=5000):
        peek.start()
    assert peek.editor.desc.name == "mnist-mlp" and peek.editor.folder is None
    assert peek.close()

    drop_from_palette(build, "Linear", canvas_point(build, 0.35, 0.8))
    drop_from_palette(build, "ReLU", canvas_point(build, 0.65, 0.8))
    lin, relu = list(ed.desc.modules)[-2:]
    drag_wire(build, lin, relu)
    assert ed.edges()[-1] == (lin, relu)
    assert win.isWindowModified() and "*" in win.windowTitle()
    fill_dialog(qtbot, build, lin, {"input": "10", "output": "5"})
    assert "not connected to any input" in build.canvas.node(lin).view.toolTip()
    inp = ed.add_module("Input", (0, 400), {"dims": "10"})
    drag_wire(build, inp, lin)
    assert "\u2192 5" in build.canvas.node(lin).view.info_text()
    assert "55 params" in build.canvas.node(lin).view.info_text()
    assert "\u2192 5" in build.canvas.node(relu).view.info_text()
    win.undo_action.trigger()  # Ctrl+Z: the wire from the new Input goes
    assert "\u2192 5" not in build.canvas.node(relu).view.info_text()
    win.redo_action.trigger()

    folder = tmp_path / "first-net"
    with qtbot.waitSignal(win.saved, timeout=5000):
        win.save_to(folder)
    assert not win.isWindowModified() and win.windowTitle().startswith("first-net")
    assert win.close()  # nothing unsaved: no question
    saved = ed.desc.copy()

    again = MainWindow(Settings.load())  # next start: the last network comes back
    qtbot.addWidget(again)
    with qtbot.waitSignal(again.loaded, timeout=5000):
        again.start()
    assert again.editor.folder == folder and again.editor.desc.modules == saved.modules
    assert "\u2192 5" in again.build.canvas.node(relu).view.info_text()


def test_closing_with_unsaved_changes_asks(qtbot, window):
    window.editor.add_module("ReLU")
    seen = _answer_next_question(QtWidgets.QMessageBox.StandardButton.Cancel)
    assert not window.close() and window.isVisible()
    assert "unsaved changes" in seen[0]
    _answer_next_question(QtWidgets.QMessageBox.StandardButton.Discard)
    assert window.close()


def test_open_error_names_file_and_module_and_keeps_the_network(qtbot, window, tmp_path):
    with qtbot.waitSignal(window.loaded, timeout=5000):
        window.open_folder(examples_dir() / "lenet")
    before = window.editor.desc.copy()
    broken = tmp_path / "broken"
    shutil.copytree(examples_dir() / "mnist-mlp", broken)
    text = (broken / "modules.txt").read_text()
    (broken / "modules.txt").write_text(text.replace(f'"{MLP}2"', '"not-a-uuid"', 1))
    window.open_folder(broken)
    qtbot.waitUntil(lambda: window.error_box is not None, timeout=5000)
    message = window.error_box.text()
    assert "modules.txt" in message and str(broken) in message and "not-a-uuid" in message
    assert window.editor.desc.modules == before.modules and window.editor.desc.name == "lenet"
    window.error_box.close()


def test_export_json_and_menus_have_the_usual_shortcuts(qtbot, window, tmp_path):
    shortcuts = {a.text().replace("&", ""): a.shortcut()
                 for m in window.menuBar().findChildren(QtWidgets.QMenu) for a in m.actions()}
    keys = QtGui.QKeySequence
    for name, std in (("New", keys.StandardKey.New), ("Open…", keys.StandardKey.Open),
                      ("Save", keys.StandardKey.Save), ("Undo", keys.StandardKey.Undo),
                      ("Redo", keys.StandardKey.Redo), ("Cut", keys.StandardKey.Cut),
                      ("Copy", keys.StandardKey.Copy), ("Paste", keys.StandardKey.Paste),
                      ("Delete", keys.StandardKey.Delete),
                      ("Select all", keys.StandardKey.SelectAll),
                      ("Quit", keys.StandardKey.Quit)):
        assert shortcuts[name] == keys(std), name
    window.editor.add_module("Input", (0, 0), {"dims": "4"})
    window.export_json(tmp_path / "net.json")
    assert window.workers.wait_idle()
    assert '"type": "Input"' in (tmp_path / "net.json").read_text()


def _dianne(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True,
                          timeout=120, env=env)


def test_screenshot_renders_a_png_of_the_requested_tab(tmp_path):
    from PySide6 import QtGui as _QtGui

    out = _dianne("--screenshot", str(tmp_path / "build.png"), str(examples_dir() / "lenet"),
                  env_extra={"DIANNE_CONFIG_DIR": str(tmp_path / "cfg")})
    assert out.returncode == 0, out.stderr
    img = _QtGui.QImage(str(tmp_path / "build.png"))
    assert (img.width(), img.height()) == (1280, 800)
    out = _dianne("--screenshot", str(tmp_path / "deploy.png"), "--tab", "deploy",
                  env_extra={"DIANNE_CONFIG_DIR": str(tmp_path / "cfg"),
                             "DIANNE_LOCAL_AGENT": "1", "DIANNE_INTERFACE": "127.0.0.1"})
    assert out.returncode == 0, out.stderr
    assert "no agent listed" not in out.stderr  # the local agent was up before the grab
    assert _QtGui.QImage(str(tmp_path / "deploy.png")) != img
    bad = _dianne("--screenshot", str(tmp_path / "x.png"), str(tmp_path / "missing"),
                  env_extra={"DIANNE_CONFIG_DIR": str(tmp_path / "cfg")})
    assert bad.returncode == 1 and "missing" in bad.stderr and "Traceback" not in bad.stderr


def _opened(qtbot, win):
    qtbot.addWidget(win, before_close_func=lambda w: w.editor.undo_stack.set_clean())
    assert win.workers.wait_idle()
    return win


def test_dianne_model_opens_a_bundled_example_by_name(qtbot, tmp_path, monkeypatch):
    """``dianne lenet``: no folder 'lenet' here and no such network in the repository, so the
    bundled example opens, with all its modules on the canvas, read-only (Save asks where)."""
    from app.gui_app import make_window
    from engine.description import read_network

    monkeypatch.chdir(tmp_path)
    win = _opened(qtbot, make_window("lenet", repository=str(tmp_path / "repo")))
    assert win.error_box is None
    ed, bundled = win.editor, read_network(examples_dir() / "lenet")
    assert ed.desc.name == "lenet" and ed.folder is None
    assert list(ed.desc.modules) == list(bundled.modules) and len(bundled.modules) > 5
    assert len(win.build.canvas.graph.all_nodes()) == len(bundled.modules)
    assert win.weights_origin == examples_dir() / "lenet"  # its trained weights go along


def test_dianne_model_prefers_the_repository_and_names_every_place_it_looked(qtbot, tmp_path,
                                                                             monkeypatch):
    from app.gui_app import make_window
    from engine.description import read_network
    from engine.repository import Repository

    monkeypatch.chdir(tmp_path)
    repo = Repository(tmp_path / "repo")
    own = read_network(examples_dir() / "mnist-mlp")
    own.name = "lenet"  # the user's own network of that name wins over the bundled example
    repo.store_network(own)
    win = _opened(qtbot, make_window("lenet", repository=str(repo.root)))
    assert win.editor.folder == repo.root / "lenet"
    assert list(win.editor.desc.modules) == list(own.modules)

    win.open_model("no-such-net")
    qtbot.waitUntil(lambda: win.error_box is not None, timeout=5000)
    text = win.error_box.text()
    assert "'no-such-net'" in text and str(tmp_path / "no-such-net") in text
    assert str(repo.root) in text and "lenet" in text and "mnist-mlp" in text
    assert win.editor.folder == repo.root / "lenet"  # the open network is kept
    win.error_box.close()

    out = _dianne("--repository", str(repo.root), "no-such-net",
                  env_extra={"DIANNE_CONFIG_DIR": str(tmp_path / "cfg"), "PYTHONPATH": str(ROOT)})
    assert out.returncode == 1 and out.stderr.count("\n") == 1, out.stderr
    assert out.stderr.startswith("dianne: error: no network 'no-such-net'")
    assert str(repo.root) in out.stderr and "mnist-mlp" in out.stderr


def test_help_does_not_load_qt():
    code = ("import sys\nfrom app import cli\ntry:\n    cli.main(['--help'])\nexcept SystemExit:"
            "\n    pass\nprint('QT' if 'PySide6' in sys.modules else 'NO-QT')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip().endswith("NO-QT") and "--screenshot" in out.stdout


def test_app_start_runs_a_local_agent_until_the_window_closes(qtbot, window, monkeypatch):
    assert [window.tabs.tabText(i) for i in range(4)] == ["Build", "Deploy", "Learn", "Run"]
    monkeypatch.setenv("DIANNE_INTERFACE", "127.0.0.1")
    monkeypatch.setenv("DIANNE_LOCAL_AGENT", "1")
    window.start_agents()
    qtbot.waitUntil(lambda: window.agents_label.text() == "agents: 1", timeout=15000)
    local = window.net_state.local_agent
    proc = local.proc
    assert proc is not None and proc.poll() is None
    assert local.info["address"].startswith("tcp://127.0.0.1:")
    assert window.close()
    assert proc.wait(5) is not None  # stopped with the window


_HOLDER = """
import sys, threading, time
from app.local_agent import LocalAgent
ready = threading.Event()
agent = LocalAgent("killed-app-agent")
agent.start(lambda info: ready.set(), lambda msg: sys.exit(msg))
ready.wait(30)
print(agent.proc.pid, flush=True)
time.sleep(60)
"""


def test_local_agent_stops_when_the_app_is_killed():
    """The app's local agent reads the app's end of a pipe on stdin (--exit-with-parent): a
    SIGKILLed app (no atexit, no close) does not leave it running."""
    import signal  # noqa: PLC0415
    import time  # noqa: PLC0415

    holder = subprocess.Popen([sys.executable, "-c", _HOLDER], stdout=subprocess.PIPE,
                              text=True, env=dict(os.environ, DIANNE_BACKEND="numpy"))
    try:
        pid = int(holder.stdout.readline())
        os.kill(pid, 0)  # the agent runs
        holder.send_signal(signal.SIGKILL)
        holder.wait(5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            try:  # reap it if it became our child's orphan zombie elsewhere
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
            raise AssertionError("the local agent outlived the killed app")
    finally:
        holder.kill()
