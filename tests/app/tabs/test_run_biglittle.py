"""The Run tab on a Big-Little network across two real agents (announced on loopback): answers
say which network gave them, and once the server agent is killed (SIGKILL) the tab keeps
answering from the little network with the fallback marked in its status line."""

from __future__ import annotations

import uuid

import numpy as np

from app.deploy_view.state import network_folder, read_weights
from engine.biglittle import BigLittle, LocalRunner, split
from tests.app.tabs.conftest import spawn_agent, wait_agents
from tests.app.test_biglittle_cli import save
from tests.engine.test_biglittle import pair


def _answer(qtbot, tab, x):
    before = tab.answer
    assert tab.run(x)
    qtbot.waitUntil(lambda: tab.answer is not before and not tab.busy, timeout=10000)
    return tab.answer


def test_big_little_answers_and_fallback_status(qtbot, tabs_window, tmp_path):
    tag = uuid.uuid4().hex[:6]
    procs = {}
    try:
        for n in ("device", "server"):
            proc, info = spawn_agent(f"rbl-{n}-{tag}")
            procs[info["id"]] = proc
        win = tabs_window
        win.tabs_lifetime.start()
        wait_agents(qtbot, win, [f"rbl-device-{tag}", f"rbl-server-{tag}"])
        win.open_folder(save(pair(threshold=0.3), tmp_path / "bl", seed=5))
        win.workers.wait_idle()
        tab, state = win.run_tab, win.net_state
        win.tabs.setCurrentWidget(tab)
        assert tab.biglittle and tab.outputs.labels == [str(d) for d in range(10)]

        desc = win.editor.desc
        parts = split(desc)
        local = BigLittle(parts, LocalRunner(parts, read_weights(desc, network_folder(
            win.editor))))
        xs = np.random.default_rng(11).random((24, 1, 28, 28), dtype=np.float32)
        want = [local.classify(x) for x in xs]
        big = [i for i, w in enumerate(want) if w.answered_by == "big"]
        small = [i for i, w in enumerate(want) if w.answered_by == "little"]

        a = _answer(qtbot, tab, xs[big[0]])
        runner = state.biglittle.runner
        server = runner.server
        assert (a.label, a.answered_by, a.fallback) == (want[big[0]].label, "big", False)
        assert tab.outputs.top.text() == a.label and "answered by the big" in \
            tab.outputs.detail.text()
        assert tab.outputs.status.text() == f"big part on {server.name}: forwarding"

        procs[server.id].kill()
        procs[server.id].wait(5)
        a = _answer(qtbot, tab, xs[big[1]])
        assert a.fallback and a.answered_by == "little" and a.reason == "timeout"
        assert tab.outputs.top.text() == a.label
        status = tab.outputs.status.text()
        assert "fallback (timeout)" in status and "little network's verdict" in status
        assert "answered by the little" in tab.outputs.detail.text()

        a = _answer(qtbot, tab, xs[small[0]])  # a priority answer: as ever, not a fallback
        assert (a.label, a.answered_by, a.fallback) == (want[small[0]].label, "little", False)
        status = tab.outputs.status.text()
        assert "fallback" not in status and "unreachable (timeout" in status
        a = _answer(qtbot, tab, xs[big[2]])
        assert a.fallback and a.reason == "down" and a.latency_ms < 100.0
        assert "fallback (down)" in tab.outputs.status.text()
        state.close_biglittle()
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait(5)


def test_answer_with_the_little_part_moved_says_where_it_ran(qtbot):
    """An answer given while the device agent is gone (the little part moved to the server)
    says so on its detail line; an ordinary one does not."""
    from app.run_view.outputs import OutputPanel  # noqa: PLC0415
    from engine.biglittle import Answer  # noqa: PLC0415

    panel = OutputPanel()
    qtbot.addWidget(panel)
    panel.labels = ["cat", "dog"]
    moved = Answer("dog", "little", 0.9, 12.0, 12.0, None, 0, little_on="server-1")
    assert panel.display_answer(moved, "device d gone: little part on server-1") == "dog"
    assert "the little part on server-1: the device is gone" in panel.detail.text()
    assert "little network in 12.00 ms" in panel.detail.text()
    panel.display_answer(Answer("cat", "little", 0.8, 1.0, 1.0, None, 0), "ok")
    assert "little part on" not in panel.detail.text()
