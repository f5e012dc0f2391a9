"""The agents as the desktop app sees them: a live, Qt-side list fed by discovery.

:class:`AgentsModel` runs an :class:`agent.discovery.Browser` (zeroconf + heartbeats, its own
threads) and a round-trip-time probe thread, and turns what they find into Qt signals on the GUI
thread: ``changed`` whenever anything in the list moved, ``added(id)`` and ``gone(id)``. Every
agent keeps one colour for the whole session (the Deploy tab tints modules with it). Agents that
zeroconf cannot see (the loopback-only local agent, ``--agent`` addresses) are added with
:meth:`AgentsModel.watch`. Nothing here blocks the GUI thread.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from PySide6 import QtCore, QtGui

from agent.discovery import AgentInfo, Browser

log = logging.getLogger(__name__)

PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (23, 190, 207), (188, 189, 34), (227, 119, 194), (140, 86, 75))
GONE_COLOR = (110, 110, 110)
RTT_EVERY_S = 2.0


@dataclass
class AgentRow:
    info: AgentInfo
    alive: bool
    color: tuple[int, int, int]
    rtt_ms: float | None = None
    beat: float = 0.0  # monotonic time of the last change seen alive

    @property
    def qcolor(self) -> QtGui.QColor:
        return QtGui.QColor(*(self.color if self.alive else GONE_COLOR))


class AgentsModel(QtCore.QObject):
    changed = QtCore.Signal()
    added = QtCore.Signal(str)
    gone = QtCore.Signal(str)
    _event = QtCore.Signal(str, object)  # from the browser's thread to the GUI thread
    _rtt = QtCore.Signal(str, object)

    def __init__(self, interface: str | None = None,
                 parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.interface = interface
        self.rows: dict[str, AgentRow] = {}
        self._colors = 0
        self.browser: Browser | None = None
        self._pending: list[AgentInfo] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._event.connect(self._on_event)
        self._rtt.connect(self._on_rtt)

    # ------------------------------------------------------------------------ lifetime ---
    def start(self) -> None:
        """Start browsing (on a thread: zeroconf's start-up is not instant)."""
        if self._threads:
            return
        for target, name in ((self._open_browser, "agents-browser"), (self._probe, "agents-rtt")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def _open_browser(self) -> None:
        try:
            browser = Browser(self.interface, on_change=lambda k, i: self._event.emit(k, i))
        except Exception as exc:  # noqa: BLE001 - no network: say so, keep the app running
            log.warning("agent discovery is off: %s", exc)
            return
        with self._lock:
            self.browser = browser
            pending, self._pending = self._pending, []
        for info in pending:
            self._inject(info)
        if self._stop.is_set():
            browser.close()

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=3)
        with self._lock:
            browser, self.browser = self.browser, None
        if browser is not None:
            browser.close()

    # ------------------------------------------------------------------- known agents ---
    def watch(self, address: str) -> None:
        """Follow an agent zeroconf may not see (asks it who it is on a thread)."""
        def ask() -> None:
            from agent.client import AgentClient  # noqa: PLC0415

            try:
                with AgentClient(address) as client:
                    info = client.info
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                log.warning("no agent at %s: %s", address, exc)
                return
            with self._lock:
                if self.browser is None:
                    self._pending.append(info)
                    return
            self._inject(info)
        threading.Thread(target=ask, name="agents-watch", daemon=True).start()

    def _inject(self, info: AgentInfo) -> None:
        with self._lock:
            browser = self.browser
        if browser is None:  # closed meanwhile: nothing to follow it with
            return
        try:
            browser.add(info)
        except ValueError as exc:  # no events address: it could never be seen alive
            log.warning("cannot follow agent %s: %s", info.address, exc)

    # --------------------------------------------------------------------- GUI thread ---
    def _on_event(self, kind: str, info: AgentInfo) -> None:
        row = self.rows.get(info.id)
        if row is None:
            row = AgentRow(info, False, PALETTE[self._colors % len(PALETTE)])
            self._colors += 1
            self.rows[info.id] = row
        row.info, row.alive, row.beat = info, kind == "added", time.monotonic()
        if not row.alive:
            row.rtt_ms = None
        (self.added if row.alive else self.gone).emit(info.id)
        self.changed.emit()

    def _on_rtt(self, aid: str, ms: float | None) -> None:
        row = self.rows.get(aid)
        if row is not None and row.alive:
            row.rtt_ms = ms
            self.changed.emit()

    def alive(self) -> list[AgentInfo]:
        return [r.info for r in self.rows.values() if r.alive]

    def by_name(self, name: str) -> AgentRow | None:
        for row in self.rows.values():
            if row.info.name == name:
                return row
        return None

    def color_of(self, name: str) -> tuple[int, int, int] | None:
        row = self.by_name(name)
        return None if row is None else (row.color if row.alive else GONE_COLOR)

    # -------------------------------------------------------------- round-trip times ---
    def _probe(self) -> None:
        """Ping each live agent every RTT_EVERY_S on this thread's own session."""
        from agent import protocol as P  # noqa: PLC0415
        from agent.session import Session  # noqa: PLC0415

        session, conns = Session(), {}
        try:
            while not self._stop.wait(RTT_EVERY_S if conns else 0.3):
                with self._lock:
                    browser = self.browser
                infos = browser.agents() if browser is not None else []
                for info in infos:
                    try:
                        conn = conns.get(info.id) or session.connect(info.address, 1.0)
                        conns[info.id] = conn
                        t0 = time.perf_counter()
                        session.request(conn, P.Message("ping", {}), timeout=1.0)
                        self._rtt.emit(info.id, (time.perf_counter() - t0) * 1e3)
                    except Exception:  # noqa: BLE001 - gone or busy: no number this round
                        stale = conns.pop(info.id, None)
                        if stale is not None:
                            session.drop(stale)
                        self._rtt.emit(info.id, None)
        finally:
            session.close()
