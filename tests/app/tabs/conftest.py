"""Fixtures for the Deploy / Learn / Run tab tests: real ``dianne-agent`` processes on loopback
(announced over zeroconf on 127.0.0.1, always killed) and a main window whose agents model
browses loopback only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from tests.app.gui.conftest import _config_dir, _discard_changes  # noqa: F401 (fixture)


def spawn_agent(name: str) -> tuple[subprocess.Popen, dict]:
    env = dict(os.environ, DIANNE_BACKEND="numpy")
    proc = subprocess.Popen([sys.executable, "-m", "agent", "--name", name, "--bind",
                             "tcp://127.0.0.1:0", "--advertise-interface", "127.0.0.1"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env)
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise RuntimeError(f"agent {name} did not start")
    return proc, json.loads(line)


@pytest.fixture
def two_agents():
    tag = uuid.uuid4().hex[:6]
    procs, infos = [], []
    try:
        for n in ("a", "b"):
            proc, info = spawn_agent(f"tabs-{n}-{tag}")
            procs.append(proc)
            infos.append(info)
        yield infos
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def tabs_window(qtbot, monkeypatch):
    """The main window with the tabs; no local agent unless a test sets DIANNE_LOCAL_AGENT."""
    from app.gui_settings import Settings
    from app.main_window import MainWindow

    monkeypatch.setenv("DIANNE_INTERFACE", "127.0.0.1")
    monkeypatch.setenv("DIANNE_LOCAL_AGENT", os.environ.get("TABS_LOCAL_AGENT", "0"))
    win = MainWindow(Settings.load())
    if not hasattr(win, "deploy_tab"):  # until main_window installs them itself
        from app.deploy_view import install_tabs

        while win.tabs.count() > 1:
            win.tabs.removeTab(1)
        install_tabs(win)
    qtbot.addWidget(win, before_close_func=_discard_changes)
    win.show()
    qtbot.waitExposed(win)
    win.open_example("mnist-mlp")
    win.workers.wait_idle()
    yield win
    win.workers.wait_idle()
    win.tabs_lifetime.stop()
    win.editor.undo_stack.set_clean()


def wait_agents(qtbot, win, names, timeout=8000):
    qtbot.waitUntil(lambda: {a.name for a in win.net_state.agents.alive()} >= set(names),
                    timeout=timeout)
