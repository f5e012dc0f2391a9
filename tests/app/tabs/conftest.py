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

from app.deploy_view import ensure_tabs
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


def _window(qtbot, monkeypatch, local: bool):
    from app.gui_settings import Settings
    from app.main_window import MainWindow

    monkeypatch.setenv("DIANNE_INTERFACE", "127.0.0.1")
    monkeypatch.setenv("DIANNE_LOCAL_AGENT", "1" if local else "0")
    win = MainWindow(Settings.load())
    ensure_tabs(win)
    qtbot.addWidget(win, before_close_func=_discard_changes)
    win.show()
    qtbot.waitExposed(win)
    win.open_example("mnist-mlp")
    win.workers.wait_idle()
    return win


def _close(win) -> None:
    win.workers.wait_idle()
    win.tabs_lifetime.stop()
    win.editor.undo_stack.set_clean()


@pytest.fixture
def tabs_window(qtbot, monkeypatch):
    """The main window with the tabs, no local agent (tests start their own agents)."""
    win = _window(qtbot, monkeypatch, local=False)
    yield win
    _close(win)


@pytest.fixture
def local_window(qtbot, monkeypatch):
    """The main window with the tabs and its own local agent, which is up when this returns
    (and stopped afterwards: the test checks the process ended)."""
    win = _window(qtbot, monkeypatch, local=True)
    win.tabs_lifetime.start()
    state = win.net_state
    qtbot.waitUntil(lambda: state.local_agent.info is not None and any(
        a.id == state.local_agent.info["id"] for a in state.agents.alive()), timeout=10000)
    proc = state.local_agent.proc
    yield win
    _close(win)
    assert proc.poll() is not None, "the local agent outlived the window"


def wait_agents(qtbot, win, names, timeout=8000):
    qtbot.waitUntil(lambda: {a.name for a in win.net_state.agents.alive()} >= set(names),
                    timeout=timeout)
