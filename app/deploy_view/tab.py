"""The Deploy tab: live agents, the network tinted by agent, Deploy / Undeploy / Auto place.

Left: the agents discovery finds (colour, name, address, backends, cores, memory, heartbeat,
round-trip time); double-click an agent, or use "Assign selected to", to put the modules
selected on the canvas there, or drag rows of the module list onto an agent (``dnd``).
Middle: the read-only canvas tinted per agent, each module with its state (pending, deployed,
failed: reason). Bottom: one row per module. Assignments are undoable and saved as
``placement.json`` next to ``modules.txt``. Deploying, undeploying and planning run on
workers; an agent that goes away greys its modules and says so.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from app.agents_model import GONE_COLOR
from app.deploy_view.canvas import UNASSIGNED, PlacementCanvas
from app.deploy_view.dnd import ID_ROLE, AgentTable, ModuleList
from app.deploy_view.placement import Placement, read_placement, write_placement
from app.deploy_view.state import NetState, network_folder, weight_tags
from app.editor.model import Change
from app.layouts import side_by_side
from engine.errors import DianneError

COLUMNS = ("", "Name", "Address", "Backends", "Cores", "Memory", "Heartbeat", "RTT")
HAS_PLANNER = importlib.util.find_spec("app.autoplace") is not None


def _memory(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n else "?"


class DeployTab(QtWidgets.QWidget):
    message = QtCore.Signal(str)

    def __init__(self, state: NetState, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.state, self.agents = state, state.agents
        self.editor = state.editor
        self.module_state: dict[str, tuple[str, str]] = {}  # uuid -> (state, reason)
        self._colors: dict[str, tuple[bool, tuple[int, int, int]]] = {}
        self.placement = Placement(self._on_placement)
        self.canvas = PlacementCanvas(self.editor, self)
        self._build()
        self.agents.changed.connect(self._refresh_agents)
        self.agents.gone.connect(self._on_gone)
        self.canvas.refused.connect(self.message)
        self.editor.subscribe(self._on_editor)
        self._on_editor(Change(reset=True))

    # ------------------------------------------------------------------------- layout ---
    def _build(self) -> None:
        self.table = AgentTable(0, len(COLUMNS))
        self.table.dropped.connect(self.assign)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setWordWrap(False)
        self.table.cellDoubleClicked.connect(lambda r, _c: self.assign_selected(
            self.table.item(r, 1).text()))
        self.assign_button = QtWidgets.QToolButton(text="Assign selected to \u25be")
        self.assign_button.setPopupMode(QtWidgets.QToolButton.ToolButtonPopupMode.InstantPopup)
        self.assign_menu = QtWidgets.QMenu(self)
        self.assign_menu.aboutToShow.connect(self._fill_assign_menu)
        self.assign_button.setMenu(self.assign_menu)
        self.tag_box = QtWidgets.QComboBox(editable=True)
        self.tag_box.setToolTip("weights tag ('' = untagged weights)")
        self.deploy_button = QtWidgets.QPushButton("Deploy")
        self.undeploy_button = QtWidgets.QPushButton("Undeploy")
        self.undo_button = QtWidgets.QPushButton("Undo")
        self.redo_button = QtWidgets.QPushButton("Redo")
        self.deploy_button.clicked.connect(self.deploy)
        self.undeploy_button.clicked.connect(self.undeploy)
        self.undo_button.clicked.connect(self.placement.stack.undo)
        self.redo_button.clicked.connect(self.placement.stack.redo)
        self.placement.stack.canUndoChanged.connect(self.undo_button.setEnabled)
        self.placement.stack.canRedoChanged.connect(self.redo_button.setEnabled)
        self.undo_button.setEnabled(False)
        self.redo_button.setEnabled(False)
        self.auto_button = None
        if HAS_PLANNER:  # absent, not fake, when the planner is not installed
            self.auto_button = QtWidgets.QPushButton("Auto place")
            self.auto_button.setToolTip("profile the network on every agent, measure the "
                                        "links and pick the fastest placement")
            self.auto_button.clicked.connect(self.auto_place)
        self.status = QtWidgets.QLabel("Looking for agents\u2026")
        self.status.setWordWrap(True)
        self.modules = ModuleList()
        self.modules.setHeaderLabels(["Module", "Type", "Agent", "State"])
        self.modules.setRootIsDecorated(False)

        bar = QtWidgets.QHBoxLayout()
        bar.addWidget(self.assign_button)
        bar.addWidget(QtWidgets.QLabel("weights tag:"))
        bar.addWidget(self.tag_box, 1)
        buttons = QtWidgets.QHBoxLayout()
        for b in (self.deploy_button, self.undeploy_button, self.auto_button,
                  self.undo_button, self.redo_button):
            if b is not None:
                buttons.addWidget(b)
        left = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(left)
        lay.addWidget(QtWidgets.QLabel("<b>Agents</b> (double-click: assign the modules "
                                       "selected on the canvas; or drag rows of the module "
                                       "list onto an agent)"))
        lay.addWidget(self.table, 1)
        lay.addLayout(bar)
        lay.addLayout(buttons)
        lay.addWidget(self.status)
        side_by_side(self, left, [self.canvas.widget, self.modules], [640, 760], [560, 200])

    # ---------------------------------------------------------------------- reactions ---
    def _on_editor(self, change: Change) -> None:
        if change.reset:
            self.module_state = {}
            try:
                saved = read_placement(network_folder(self.editor))
            except DianneError as exc:
                saved = {}
                self.message.emit(str(exc))
            self.placement.reset({m: a for m, a in saved.items()
                                  if m in self.editor.desc.modules})
            folder = network_folder(self.editor)
            self.state.workers.start(weight_tags, folder, on_done=self._set_tags,
                                     on_error=self.message.emit, label="reading weight tags")
        elif change.modules:
            self._redraw()

    def _set_tags(self, tags: list[str]) -> None:
        current = self.tag_box.currentText()
        self.tag_box.clear()
        self.tag_box.addItems(tags)
        self.tag_box.setCurrentText(current if current in tags else "")

    def _on_placement(self, value: dict[str, str]) -> None:
        if self.editor.folder is not None:
            folder = Path(self.editor.folder)
            self.state.workers.start(write_placement, folder, dict(value), on_done=lambda _p: None,
                                     on_error=self.message.emit, label="saving placement.json")
        self._redraw()

    def save_to(self, folder: str | Path) -> None:
        """The network was saved into ``folder``: the placement goes with it."""
        self.state.workers.start(write_placement, Path(folder), dict(self.placement.value),
                                 on_done=lambda _p: None, on_error=self.message.emit,
                                 label="saving placement.json")

    def _refresh_agents(self) -> None:
        rows = list(self.agents.rows.values())
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            i = row.info
            backends = ", ".join(i.backends) + (f" (GPU {i.gpu})" if i.gpu else "")
            rtt = f"{row.rtt_ms:.2f} ms" if row.rtt_ms is not None else "\u2014"
            values = ("", i.name, i.address, backends, str(i.cores or "?"), _memory(i.memory),
                      "alive" if row.alive else "gone", rtt)
            for c, text in enumerate(values):
                item = QtWidgets.QTableWidgetItem(text)
                if c == 0:
                    item.setBackground(row.qcolor)
                if not row.alive:
                    item.setForeground(QtGui.QColor(*GONE_COLOR))
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        self.table.setColumnWidth(0, 18)
        alive = self.agents.alive()
        if alive and self.status.text().startswith("Looking"):
            self.status.setText(f"{len(alive)} agent{'s' * (len(alive) != 1)} found")
        colors = {r.info.name: (r.alive, r.color) for r in rows}
        if colors != self._colors:  # an RTT update alone does not redraw the canvas
            self._colors = colors
            self._redraw()

    def _on_gone(self, aid: str) -> None:
        row = self.agents.rows[aid]
        name = row.info.name
        hit = [m for m, a in self.state.deployed_names.items() if a == name]
        for m in hit:
            self.module_state[m] = ("failed", f"agent {name} is gone")
        text = f"Agent {name} is gone" + (f": its {len(hit)} modules no longer run; assign "
                                          f"them elsewhere and deploy again" if hit else "")
        self.status.setText(text)
        self.message.emit(text)
        if hit:
            with_lock = self.state
            with_lock.call(with_lock.undeploy_now, on_done=lambda _r: self._after_undeploy(
                keep_failed=True), on_error=self.message.emit, label="dropping the deployment")
        self._redraw()

    # ------------------------------------------------------------------------ drawing ---
    def agent_of(self, mid: str) -> str | None:
        return self.placement.value.get(mid) or self.state.deployed_names.get(mid)

    def _redraw(self) -> None:
        tint, desc = {}, self.editor.desc
        self.modules.clear()
        pos = self.editor.display_positions()
        for mid, md in sorted(desc.modules.items(), key=lambda kv: tuple(pos.get(kv[0], (0, 0)))):
            name = self.agent_of(mid)
            rgb = self.agents.color_of(name) if name else None
            st, reason = self.module_state.get(mid, ("", ""))
            label = f"{st}: {reason}" if reason else st
            tint[mid] = (rgb or (GONE_COLOR if name else UNASSIGNED), label)
            item = QtWidgets.QTreeWidgetItem([md.name, md.type, name or "(follows input)",
                                              label or "not deployed"])
            item.setData(0, ID_ROLE, mid)
            if rgb:
                item.setBackground(2, QtGui.QColor(*rgb))
            self.modules.addTopLevelItem(item)
        self.canvas.set_tint(tint)

    def _fill_assign_menu(self) -> None:
        self.assign_menu.clear()
        for info in self.agents.alive():
            act = self.assign_menu.addAction(info.name)
            pix = QtGui.QPixmap(12, 12)
            pix.fill(QtGui.QColor(*self.agents.color_of(info.name)))
            act.setIcon(QtGui.QIcon(pix))
            act.triggered.connect(lambda _c=False, n=info.name: self.assign_selected(n))
        self.assign_menu.addSeparator()
        self.assign_menu.addAction("no agent (follow the input)",
                                   lambda: self.assign_selected(None))

    def assign_selected(self, agent: str | None) -> None:
        ids = self.canvas.selected()
        if not ids:
            self.message.emit("select modules on the canvas first")
            return
        self.placement.assign(ids, agent)

    def assign(self, ids: list[str], agent: str | None) -> None:
        """Put the modules ``ids`` on ``agent`` (None: follow the input) as one undoable step;
        what a drop of module rows on an agent does. Unknown ids are ignored."""
        known = [m for m in ids if m in self.editor.desc.modules]
        if known:
            self.placement.assign(known, agent)

    # ------------------------------------------------------------------------ actions ---
    def _placement_ids(self) -> tuple[dict[str, str], list]:
        alive = {i.name: i for i in self.agents.alive()}
        missing = sorted({a for a in self.placement.value.values() if a not in alive})
        if missing:
            raise DianneError(f"agents not running: {', '.join(missing)}")
        if not self.placement.value:
            agent = self.state.default_agent()
            if agent is None:
                raise DianneError("no agent is running")
            return dict.fromkeys(self.editor.desc.modules, agent.id), [agent]
        used = sorted(set(self.placement.value.values()))
        return ({m: alive[a].id for m, a in self.placement.value.items()},
                [alive[a] for a in used])

    def deploy(self) -> None:
        try:
            placement, infos = self._placement_ids()
        except DianneError as exc:
            self.status.setText(f"Cannot deploy: {exc}")
            return
        self.state.tag = self.tag_box.currentText().strip()
        self.module_state = dict.fromkeys(self.editor.desc.modules, ("pending", ""))
        self._redraw()
        self.status.setText(f"Deploying on {', '.join(i.name for i in infos)}\u2026")
        self.state.call(self.state.deploy_now, placement, infos, on_done=self._deployed,
                        on_error=self._deploy_failed, label="deploying")

    def _deployed(self, _dep) -> None:
        self.module_state = {m: ("deployed", "") for m in self.state.deployed_names}
        agents = sorted(set(self.state.deployed_names.values()))
        self.status.setText(f"Deployed on {', '.join(agents)}")
        self.state.deployment_changed.emit()
        self._redraw()

    def _deploy_failed(self, msg: str) -> None:
        mids = [m for m in self.editor.desc.modules if m in msg or
                self.editor.desc.modules[m].name in msg]
        for m in self.editor.desc.modules:
            self.module_state[m] = ("failed", msg if (m in mids or not mids) else "not deployed")
        self.status.setText(f"Deploy failed: {msg}")
        self._redraw()

    def undeploy(self) -> None:
        self.state.call(self.state.undeploy_now, on_done=lambda _r: self._after_undeploy(),
                        on_error=self.message.emit, label="undeploying")

    def _after_undeploy(self, keep_failed: bool = False) -> None:
        self.module_state = {m: s for m, s in self.module_state.items()
                             if keep_failed and s[0] == "failed"}
        if not keep_failed:
            self.status.setText("Undeployed")
        self.state.deployment_changed.emit()
        self._redraw()

    def auto_place(self) -> None:
        from app.autoplace import plan_for_agents  # noqa: PLC0415

        agents = self.agents.alive()
        if not agents:
            self.status.setText("Auto place needs at least one running agent")
            return
        names = {a.id: a.name for a in agents}
        self.status.setText(f"Profiling on {len(agents)} agents and measuring links\u2026")

        def done(auto) -> None:
            value = {m: names[a] for m, a in auto.placement.items()}
            self.placement.replace(value, "auto place")
            p = auto.plan.prediction
            self.status.setText(f"Auto place ({auto.plan.method}): predicted "
                                f"{p.latency_s * 1e3:.2f} ms per sample; press Deploy")
        self.state.workers.start(lambda: plan_for_agents(self.editor.desc, agents, repeat=5),
                                 on_done=done, on_error=lambda m: self.status.setText(
                                     f"Auto place failed: {m}"), label="planning placement")
