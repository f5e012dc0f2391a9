"""Finding agents: zeroconf announce/browse of ``_dianne._tcp.local.`` plus heartbeat liveness.

An agent announces itself with TXT records (id, name, protocol version, backends, GPU, cores,
memory, control/data/events ports). Registration blocks for ~1.6 s (probing), so it runs on a
thread. Browsing yields :class:`AgentInfo` records; zeroconf's add/remove is only a hint — a
killed agent stays in mDNS caches for ~20 minutes — so :class:`Browser` also subscribes to each
agent's heartbeat and reports an agent gone when it has been silent for :data:`GONE_S`.
Restrict both sides to one interface (``127.0.0.1`` for tests) or use every interface (LAN).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

log = logging.getLogger(__name__)

SERVICE = "_dianne._tcp.local."
GONE_S = 1.4


@dataclass
class AgentInfo:
    """One agent as discovery (or ``hello``) describes it."""

    id: str
    name: str
    address: str
    events: str = ""
    backends: list[str] = field(default_factory=lambda: ["numpy"])
    gpu: str = ""
    cores: int = 0
    memory: int = 0
    protocol: int = 1
    secure: bool = False
    host: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_info(cls, info: dict[str, Any]) -> AgentInfo:
        """From an ``info`` reply's content."""
        devices = info.get("devices") or {}
        return cls(id=info["id"], name=info["name"], address=info["address"],
                   events=info.get("events", ""), backends=list(info.get("backends", [])),
                   gpu=str(devices.get("cupy", "")), cores=int(info.get("cores", 0)),
                   memory=int(info.get("memory", 0)), protocol=int(info.get("protocol", 1)),
                   secure=bool(info.get("secure")), host=info["address"][6:].rsplit(":", 1)[0])


def _interfaces(interface: str | None) -> Any:
    from zeroconf import InterfaceChoice  # noqa: PLC0415

    return [interface] if interface else InterfaceChoice.All


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


class Announcer:
    """Registers an agent's service on a background thread; :meth:`close` unregisters it."""

    def __init__(self, info: dict[str, Any], interface: str | None = None) -> None:
        self.info, self.interface = info, interface
        self._zc: Any = None
        self._service: Any = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._register, name="agent-announce",
                                        daemon=True)

    def start(self) -> Announcer:
        self._thread.start()
        return self

    def _register(self) -> None:
        from zeroconf import IPVersion, ServiceInfo, Zeroconf  # noqa: PLC0415

        info = self.info
        host = info["address"][6:].rsplit(":", 1)[0]
        props = {"id": info["id"], "name": info["name"], "protocol": str(info["protocol"]),
                 "backends": ",".join(info["backends"]),
                 "gpu": str(info["devices"].get("cupy", "")), "cores": str(info["cores"]),
                 "memory": str(info["memory"]), "control": str(_port(info["address"])),
                 "data": str(_port(info["address"])), "events": str(_port(info["events"])),
                 "secure": "1" if info.get("secure") else "0"}
        label = "".join(c if c.isalnum() or c == "-" else "-" for c in info["name"])[:40]
        try:
            self._zc = Zeroconf(interfaces=_interfaces(self.interface),
                                ip_version=IPVersion.V4Only)
            self._service = ServiceInfo(
                SERVICE, f"{label}-{info['id'][:8]}.{SERVICE}",
                addresses=[socket.inet_aton(host)], port=_port(info["address"]),
                properties=props, server=f"dianne-{info['id'][:8]}.local.")
            self._zc.register_service(self._service)
            log.info("announced %s on %s", self._service.name, self.interface or "all interfaces")
        except Exception as exc:  # discovery is optional: the agent still serves
            log.warning("zeroconf announce failed (%s); the agent is reachable by address only",
                        exc)
        finally:
            self._done.set()

    def close(self) -> None:
        self._done.wait(timeout=5)
        if self._zc is not None:
            try:
                if self._service is not None:
                    self._zc.unregister_service(self._service)
            finally:
                self._zc.close()


def _from_service(svc: Any) -> AgentInfo | None:
    props = {(k.decode() if isinstance(k, bytes) else k):
             (v.decode() if isinstance(v, bytes) else (v or "")) for k, v in
             (svc.properties or {}).items()}
    addresses = svc.parsed_addresses()
    if not addresses or "id" not in props:
        return None
    host = addresses[0]
    try:
        events = f"tcp://{host}:{int(props['events'])}" if props.get("events") else ""
        return AgentInfo(id=props["id"], name=props.get("name", props["id"]),
                         address=f"tcp://{host}:{svc.port}", events=events,
                         backends=[b for b in props.get("backends", "numpy").split(",") if b],
                         gpu=props.get("gpu", ""), cores=int(props.get("cores") or 0),
                         memory=int(props.get("memory") or 0),
                         protocol=int(props.get("protocol") or 1),
                         secure=props.get("secure") == "1", host=host)
    except ValueError:
        return None


class Browser:
    """Live view of the agents on the network: zeroconf for finding, heartbeats for liveness.

    ``on_change(kind, info)`` is called with ``"added"`` or ``"gone"`` from a background
    thread. :meth:`agents` returns those seen alive (a heartbeat within :data:`GONE_S`).
    Agents zeroconf cannot see are followed the same way after :meth:`add`.
    """

    def __init__(self, interface: str | None = None, keys: Any = None,
                 on_change: Callable[[str, AgentInfo], None] | None = None) -> None:
        import zmq  # noqa: PLC0415
        from zeroconf import IPVersion, ServiceBrowser, Zeroconf  # noqa: PLC0415

        from agent.keys import client_options  # noqa: PLC0415

        self.on_change = on_change
        self._lock = threading.Lock()
        self._found: dict[str, AgentInfo] = {}
        self._seen: dict[str, float] = {}
        self._alive: set[str] = set()
        self._ctx = zmq.Context()
        self._sub = self._ctx.socket(zmq.SUB)
        self._sub.setsockopt(zmq.LINGER, 0)
        client_options(self._sub, keys)
        self._sub.subscribe(b"hb")
        self._stop = threading.Event()
        self._connect: list[str] = []
        self._thread = threading.Thread(target=self._beats, name="agent-heartbeats",
                                        daemon=True)
        self._thread.start()
        self._zc = Zeroconf(interfaces=_interfaces(interface), ip_version=IPVersion.V4Only)
        self._browser = ServiceBrowser(self._zc, SERVICE, handlers=[self._service_changed])

    def _service_changed(self, zeroconf: Any, service_type: str, name: str,
                         state_change: Any) -> None:
        from zeroconf import ServiceStateChange  # noqa: PLC0415

        if state_change is ServiceStateChange.Removed:  # a clean shutdown: forget it now
            with self._lock:
                for aid in self._found:
                    if name.endswith(f"-{aid[:8]}.{SERVICE}"):
                        self._seen.pop(aid, None)  # gone at the next update unless it beats
            return
        svc = zeroconf.get_service_info(service_type, name, timeout=1500)
        info = _from_service(svc) if svc is not None else None
        if info is None or not info.events:
            return
        with self._lock:
            known = self._found.get(info.id)
            self._found[info.id] = info
            if known is None or known.events != info.events:
                self._connect.append(info.events)

    def add(self, info: AgentInfo) -> bool:
        """Follow an agent zeroconf does not announce (a loopback-only local agent, an
        ``--agent`` address): its heartbeats are subscribed to like a discovered one's, so it
        is reported ``"added"`` once it beats and ``"gone"`` when it falls silent. An agent
        already known (from zeroconf or an earlier call) is left as it is; returns whether
        ``info`` was new. It needs an events address: heartbeats are its only liveness."""
        if not info.events:
            raise ValueError(f"agent {info.name} ({info.id}) has no events address to hear "
                             f"its heartbeat on. Received: {info.events!r}")
        with self._lock:
            if info.id in self._found:
                return False
            self._found[info.id] = info
            self._connect.append(info.events)  # the heartbeat thread connects under the lock
        return True

    def _beats(self) -> None:
        import zmq  # noqa: PLC0415

        from agent import protocol as P  # noqa: PLC0415

        poller = zmq.Poller()
        poller.register(self._sub, zmq.POLLIN)
        while not self._stop.is_set():
            with self._lock:
                todo, self._connect = self._connect, []
            for address in todo:
                self._sub.connect(address)
            if poller.poll(100):
                try:
                    frames = self._sub.recv_multipart(zmq.NOBLOCK)
                    msg = P.decode(frames[1:])
                    aid = msg.content.get("id")
                    if isinstance(aid, str):
                        self._seen[aid] = time.monotonic()
                except (zmq.ZMQError, P.ProtocolError, IndexError):
                    pass
            self._update()

    def _update(self) -> None:
        now = time.monotonic()
        with self._lock:
            changes = []
            for aid, info in self._found.items():
                alive = now - self._seen.get(aid, -1e9) < GONE_S
                if alive and aid not in self._alive:
                    self._alive.add(aid)
                    changes.append(("added", info))
                elif not alive and aid in self._alive:
                    self._alive.discard(aid)
                    changes.append(("gone", info))
        for kind, info in changes:
            if self.on_change is not None:
                self.on_change(kind, info)

    def agents(self) -> list[AgentInfo]:
        with self._lock:
            return sorted((self._found[a] for a in self._alive), key=lambda i: (i.name, i.id))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._browser.cancel()
        self._zc.close()
        self._sub.close(0)
        self._ctx.term()


def discover(interface: str | None = None, timeout: float = 2.0, keys: Any = None,
             expect: int | None = None) -> list[AgentInfo]:
    """Agents alive on the network, browsing for ``timeout`` seconds (or until ``expect``
    agents answered)."""
    browser = Browser(interface, keys)
    try:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if expect is not None and len(browser.agents()) >= expect:
                break
            time.sleep(0.05)
        return browser.agents()
    finally:
        browser.close()
