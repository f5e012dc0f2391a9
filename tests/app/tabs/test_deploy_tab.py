"""The Deploy tab over two real loopback agents: colours, placement file, agents' module lists."""

from __future__ import annotations

import json
import uuid

import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from agent.client import AgentClient
from app.deploy_view.dnd import MIME
from tests.app.tabs.conftest import spawn_agent, wait_agents


def _agent_modules(address: str) -> set[str]:
    with AgentClient(address) as c:
        return {m for d in c.hello()["deployments"] for m in d["modules"]}


def test_deploy_over_two_agents(qtbot, tabs_window, two_agents, tmp_path):
    win = tabs_window
    win.tabs.setCurrentWidget(win.deploy_tab)
    tab = win.deploy_tab
    a, b = two_agents
    wait_agents(qtbot, win, [a["name"], b["name"]])
    desc = win.editor.desc
    order = sorted(desc.modules, key=lambda m: win.editor.display_positions()[m][0])
    first, second = order[:2], order[2:]
    tab.canvas.select(first)
    tab.assign_selected(a["name"])
    tab.canvas.select(second)
    tab.assign_selected(b["name"])
    colors = win.net_state.agents
    assert colors.color_of(a["name"]) != colors.color_of(b["name"])
    for mids, agent in ((first, a), (second, b)):
        for m in mids:
            view = tab.canvas.node(m).view
            assert tuple(view.color)[:3] == colors.color_of(agent["name"])
    # undo / redo of an assignment
    tab.placement.stack.undo()
    assert all(m not in tab.placement.value for m in second)
    tab.placement.stack.redo()
    assert {tab.placement.value[m] for m in second} == {b["name"]}

    tab.deploy()
    qtbot.waitUntil(lambda: tab.status.text().startswith("Deployed"), timeout=10000)
    assert _agent_modules(a["address"]) == set(first)
    assert _agent_modules(b["address"]) == set(second)
    assert all(tab.canvas.state_text(m) == "deployed" for m in desc.modules)

    # saved with the network: placement.json next to modules.txt
    assert win.save_to(tmp_path / "mnist-mlp")
    win.workers.wait_idle()
    saved = json.loads((tmp_path / "mnist-mlp" / "placement.json").read_text())
    assert saved == {**{m: a["name"] for m in first}, **{m: b["name"] for m in second}}

    tab.undeploy()
    qtbot.waitUntil(lambda: tab.status.text() == "Undeployed", timeout=5000)
    assert _agent_modules(a["address"]) == set() and _agent_modules(b["address"]) == set()


def test_vanished_agent_turns_grey(qtbot, tabs_window):
    win = tabs_window
    win.tabs.setCurrentWidget(win.deploy_tab)
    tab = win.deploy_tab
    proc, info = spawn_agent(f"tabs-vanish-{uuid.uuid4().hex[:6]}")  # unique: other runs' agents
    try:
        wait_agents(qtbot, win, [info["name"]])
        tab.canvas.select(list(win.editor.desc.modules))
        tab.assign_selected(info["name"])
        tab.deploy()
        qtbot.waitUntil(lambda: tab.status.text().startswith("Deployed"), timeout=10000)
        proc.kill()
        qtbot.waitUntil(lambda: "is gone" in tab.status.text(), timeout=10000)
        mid = next(iter(win.editor.desc.modules))
        assert tuple(tab.canvas.node(mid).view.color)[:3] == (110, 110, 110)
        assert tab.canvas.state_text(mid).startswith(f"failed: agent {info['name']} is gone")
        rows = [r for r in range(tab.table.rowCount())
                if tab.table.item(r, 1).text() == info["name"]]
        assert [tab.table.item(r, 6).text() for r in rows] == ["gone"]
    finally:
        proc.kill()
        proc.wait(5)


def test_auto_place_fills_an_undoable_placement(qtbot, tabs_window, two_agents):
    win = tabs_window
    win.tabs.setCurrentWidget(win.deploy_tab)
    tab = win.deploy_tab
    assert tab.auto_button is not None  # the planner is installed: the button is real
    wait_agents(qtbot, win, [a["name"] for a in two_agents])
    # only our two agents: other loopback agents (other test runs) must not be planned on
    mine = {a["name"] for a in two_agents}
    agents = win.net_state.agents
    for row in agents.rows.values():
        row.alive = row.alive and row.info.name in mine
    tab.auto_place()
    qtbot.waitUntil(lambda: tab.status.text().startswith("Auto place"), timeout=30000)
    assert "predicted" in tab.status.text(), tab.status.text()
    assert set(tab.placement.value) == set(win.editor.desc.modules)
    assert set(tab.placement.value.values()) <= mine
    tab.placement.stack.undo()
    assert tab.placement.value == {}


def _drop(table, mime, row):
    """A drag entering the agents table and dropping ``mime`` on ``row`` (real Qt events)."""
    rect = table.visualItemRect(table.item(row, 1))
    pos = QtCore.QPointF(rect.center())
    copy = QtCore.Qt.DropAction.CopyAction
    buttons, mods = QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier
    viewport = table.viewport()
    for kind in (QtCore.QEvent.Type.DragEnter, QtCore.QEvent.Type.DragMove):
        cls = QtGui.QDragEnterEvent if kind == QtCore.QEvent.Type.DragEnter else \
            QtGui.QDragMoveEvent
        QtWidgets.QApplication.sendEvent(viewport, cls(pos.toPoint(), copy, mime, buttons, mods))
    drop = QtGui.QDropEvent(pos, copy, mime, buttons, mods)
    QtWidgets.QApplication.sendEvent(viewport, drop)
    return drop.isAccepted()


# Qt 6 has only the QPoint constructors for drag-enter/move events; PySide6 flags them deprecated
@pytest.mark.filterwarnings("ignore:Function.*QDrag.*deprecated:DeprecationWarning")
def test_drag_module_rows_onto_an_agent(qtbot, tabs_window, two_agents):
    """Rows of the module list dragged onto an agent's row: one undoable assignment; a drag of
    anything else is refused."""
    win = tabs_window
    win.tabs.setCurrentWidget(win.deploy_tab)
    tab = win.deploy_tab
    a, b = two_agents
    wait_agents(qtbot, win, [a["name"], b["name"]])
    qtbot.waitUntil(lambda: tab.table.rowCount() >= 2)
    row_of = {tab.table.item(r, 1).text(): r for r in range(tab.table.rowCount())}
    items = [tab.modules.topLevelItem(i) for i in range(tab.modules.topLevelItemCount())]
    for item in items[:2]:
        item.setSelected(True)
    chosen = tab.modules.selected_ids()
    assert len(chosen) == 2 and all(m in win.editor.desc.modules for m in chosen)
    mime = tab.modules.mimeData(tab.modules.selectedItems())
    assert _drop(tab.table, mime, row_of[b["name"]])
    assert {m: tab.placement.value.get(m) for m in chosen} == {m: b["name"] for m in chosen}
    for m in chosen:
        assert tuple(tab.canvas.node(m).view.color)[:3] == win.net_state.agents.color_of(
            b["name"])
    tab.placement.stack.undo()  # one step for the whole drop
    assert not any(m in tab.placement.value for m in chosen)
    other = QtCore.QMimeData()
    other.setText("not modules")
    bad = QtCore.QMimeData()
    bad.setData(MIME, QtCore.QByteArray(b"{not json"))
    assert not _drop(tab.table, other, row_of[a["name"]])
    assert not _drop(tab.table, bad, row_of[a["name"]])
    assert tab.placement.value == {}
