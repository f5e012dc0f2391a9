"""The Deploy tab, and :func:`install_tabs`, which adds Deploy / Learn / Run to the main window.

The three tabs share one :class:`app.deploy_view.state.NetState` (agents, weights, deployment).
The agents model and this computer's local agent start the first time one of these tabs is
shown (the Build tab alone never starts a process) and stop when the window closes.
Environment: ``DIANNE_INTERFACE`` limits discovery to one interface (``127.0.0.1`` in tests);
``DIANNE_LOCAL_AGENT=0`` starts no local agent.
"""

from __future__ import annotations

import os
from typing import Any

from PySide6 import QtCore


class _Lifetime(QtCore.QObject):
    """Starts the agents on the first show of a tab, stops them when the window closes."""

    failed = QtCore.Signal(str)  # from the local agent's start thread to the status bar

    def __init__(self, window: Any, state: Any, tabs: list[Any]) -> None:
        super().__init__(window)
        self.window, self.state, self.tabs = window, state, tabs
        self.started = False
        self.failed.connect(lambda msg: window.statusBar().showMessage(msg, 10000))
        window.tabs.currentChanged.connect(self._on_tab)
        window.installEventFilter(self)

    def _on_tab(self, _index: int) -> None:
        if self.window.tabs.currentWidget() in self.tabs:
            self.start()

    def start(self) -> None:
        if self.started:
            return
        self.started = True
        agents = self.state.agents
        agents.start()
        if os.environ.get("DIANNE_LOCAL_AGENT", "1") != "0":
            from app.local_agent import LocalAgent  # noqa: PLC0415

            local = LocalAgent()
            self.state.local_agent = local
            local.start(on_ready=lambda info: agents.watch(info["address"]),
                        on_failed=self.failed.emit)

    def stop(self) -> None:
        self.state.close_biglittle()  # while its agents still answer
        if self.state.local_agent is not None:
            self.state.local_agent.stop()
        self.state.agents.close()

    def eventFilter(self, obj: QtCore.QObject, event: QtCore.QEvent) -> bool:  # noqa: N802
        if obj is self.window and event.type() == QtCore.QEvent.Type.Close:
            QtCore.QTimer.singleShot(0, self._closed_check)
        return False

    def _closed_check(self) -> None:
        if not self.window.isVisible():
            self.stop()


def install_tabs(window: Any) -> Any:
    """Add the Deploy, Learn and Run tabs to ``window`` (a MainWindow); returns the state."""
    from app.agents_model import AgentsModel  # noqa: PLC0415
    from app.deploy_view.state import NetState  # noqa: PLC0415
    from app.deploy_view.tab import DeployTab  # noqa: PLC0415

    agents = AgentsModel(os.environ.get("DIANNE_INTERFACE") or None, window)
    state = NetState(window.editor, agents, window.workers, window)
    window.deploy_tab = DeployTab(state)
    tabs = [window.deploy_tab]
    window.tabs.addTab(window.deploy_tab, "Deploy")
    for attr, module, cls, title in (("learn_tab", "app.learn_view.tab", "LearnTab", "Learn"),
                                     ("run_tab", "app.run_view.tab", "RunTab", "Run")):
        import importlib.util  # noqa: PLC0415

        if importlib.util.find_spec(module) is None:
            continue
        tab = getattr(importlib.import_module(module), cls)(state)
        setattr(window, attr, tab)
        window.tabs.addTab(tab, title)
        tabs.append(tab)
    for tab in tabs:
        tab.message.connect(lambda text: window.statusBar().showMessage(text, 8000))
    agents.changed.connect(lambda: window.agents_label.setText(
        f"agents: {len(agents.alive()) or 'none'}"))
    window.saved.connect(window.deploy_tab.save_to)
    if hasattr(window, "run_tab"):
        window.saved.connect(window.run_tab.save_to)
    window.net_state = state
    window.tabs_lifetime = _Lifetime(window, state, tabs)
    return state


def ensure_tabs(window: Any) -> Any:
    """The window's tab state, installing the tabs over placeholders if the window has none."""
    if not hasattr(window, "net_state"):
        while window.tabs.count() > 1:
            window.tabs.removeTab(1)
        install_tabs(window)
    return window.net_state
