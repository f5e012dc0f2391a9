"""The agent's sockets and its serving loop.

One ROUTER socket takes every request: from clients (hello, deploy, forward, ...) and from
other agents (tensors for a module whose predecessor lives there). Requests are handled one at a
time on the serving thread, in arrival order, by the handler registered for their type
(:mod:`agent.handlers`); replies go back through the ROUTER to the sender's routing id, and
results of a distributed forward go to the client's routing id carried with the sample. A
DEALER per peer agent sends tensors on. A publisher thread owns the PUB socket
(:mod:`agent.publisher`: heartbeats and the events other threads queue); with keys, CURVE
authentication guards the ROUTER (:mod:`agent.auth`). Malformed input of any kind gets an
``error`` reply and never stops the loop.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
import uuid
from typing import Any

import zmq

from agent import protocol as P
from agent.auth import CurveGuard
from agent.handlers import load_all
from agent.host import Fragment
from agent.keys import Keys, client_options, server_options
from agent.publisher import Publisher
from engine.backends import Backend, available, get_backend
from engine.errors import DianneError, ModuleError

log = logging.getLogger(__name__)

SEND_TIMEOUT_MS = 2000
MAX_WORKERS = 4  # requests (evaluate) running off the serving thread at once


class Agent:
    """A running agent: identity, sockets, deployments, and the serving loop."""

    def __init__(self, *, name: str | None = None, bind: str = "tcp://127.0.0.1:0",
                 backend: str | None = None, repository: str | None = None,
                 keys: Keys | None = None, limits: P.Limits = P.DEFAULT_LIMITS,
                 agent_id: str | None = None, max_deployments: int = 64) -> None:
        self.id = agent_id or str(uuid.uuid4())
        self.name = name or f"{socket.gethostname()}-{self.id[:8]}"
        self.backend: Backend = get_backend(backend)
        self.repository = repository
        self.keys = keys
        self.limits = limits
        self.max_deployments = max_deployments
        self.handlers = load_all()
        self.deployments: dict[str, Fragment] = {}
        self.addresses: dict[str, str] = {}  # peer agent id -> address
        self.jobs: dict[str, Any] = {}
        self.ctx = zmq.Context()
        self._guard = CurveGuard(self.ctx, keys) if keys is not None else None
        self.router = self._socket(zmq.ROUTER)
        self.router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.router.setsockopt(zmq.SNDTIMEO, SEND_TIMEOUT_MS)
        # A hard guard per frame (zmq drops the connection beyond it); below it, oversized
        # messages get an error reply from the protocol's own limits.
        self.router.setsockopt(zmq.MAXMSGSIZE, 2 * limits.max_message_bytes + (1 << 20))
        self._monitor = None
        if self._guard is not None:  # a client without CURVE fails in the ZMTP handshake,
            self._monitor = self._guard.watch(self.router)  # unseen by the ZAP callback
        self.address = _bind(self.router, bind)
        host = self.address.rsplit(":", 1)[0]
        self.pub = self._socket(zmq.PUB)
        self.events_address = _bind(self.pub, f"{host}:0")
        self.peers: dict[str, zmq.Socket] = {}
        self._later: queue.Queue = queue.Queue()  # (sender, message) from worker threads
        self._wake_address = f"inproc://agent-wake-{self.id}"
        self._wake = self.ctx.socket(zmq.PULL)
        self._wake.bind(self._wake_address)
        self.workers: dict[str, threading.Thread] = {}  # request id -> running worker
        self._stop = threading.Event()
        self._publisher = Publisher(self.pub, self._stop)
        self.started = time.time()

    def _socket(self, kind: int) -> zmq.Socket:
        sock = self.ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        server_options(sock, self.keys)
        return sock

    # ------------------------------------------------------------------ identity
    def info(self) -> dict[str, Any]:
        """What ``hello``/``info`` answer and zeroconf announces (JSON-ready)."""
        backends = available()
        return {
            "id": self.id, "name": self.name, "address": self.address,
            "events": self.events_address, "protocol": P.VERSION,
            "backends": sorted(backends), "devices": backends,
            "backend": self.backend.name, "cores": os.cpu_count() or 1,
            "memory": _memory_bytes(), "pid": os.getpid(), "started": self.started,
            "secure": self.keys is not None,
            "deployments": [{"id": d, "name": f.desc.name, "modules": sorted(f.modules)}
                            for d, f in self.deployments.items()],
            "jobs": sorted(self.jobs),
        }

    # ------------------------------------------------------------------ sending
    def send_frames(self, sock: zmq.Socket, frames: list, prefix: list | None = None) -> None:
        sock.send_multipart((prefix or []) + frames, copy=False)

    def reply(self, sender: bytes, msg: P.Message) -> None:
        """Send ``msg`` to a client or agent by routing id; log (never raise) on failure."""
        try:
            self.send_frames(self.router, P.encode(msg), [sender])
        except zmq.ZMQError as exc:
            log.warning("cannot reach %r for %s: %s", sender[:16], msg.type, exc)
        except P.ProtocolError as exc:
            self.reply(sender, msg.error(exc.code, str(exc)))

    def send_agent(self, agent_id: str, msg: P.Message) -> None:
        """Send ``msg`` to another agent's ROUTER (a DEALER per peer, opened on first use)."""
        sock = self.peers.get(agent_id)
        if sock is None:
            address = self.addresses.get(agent_id)
            if address is None:
                raise DianneError(f"agent {agent_id} is not known here (not in any deployment)."
                                  f" Received: {agent_id}")
            sock = self.ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.SNDTIMEO, SEND_TIMEOUT_MS)
            client_options(sock, self.keys)
            sock.connect(address)
            self.peers[agent_id] = sock
        try:
            self.send_frames(sock, P.encode(msg))
        except zmq.Again:
            raise DianneError(f"agent {agent_id} at {self.addresses.get(agent_id)} does not "
                              f"take messages (queue full for {SEND_TIMEOUT_MS} ms)") from None

    def reply_later(self, sender: bytes, msg: P.Message) -> None:
        """Queue a reply from any thread; the serving thread sends it (sockets stay on it)."""
        self._later.put((sender, msg))
        try:
            sock = self.ctx.socket(zmq.PUSH)
        except zmq.ZMQError:  # the agent is closing
            return
        sock.setsockopt(zmq.LINGER, 1000)
        sock.connect(self._wake_address)
        sock.send(b"")
        sock.close()

    def run_worker(self, msg: P.Message, sender: bytes, work: Any,
                   limit: int = MAX_WORKERS) -> None:
        """Run ``work() -> reply`` on a thread and send its reply (or its error) to ``sender``
        then; the serving loop goes on meanwhile. At most ``limit`` run at once."""
        for rid in [r for r, t in self.workers.items() if not t.is_alive()]:
            del self.workers[rid]
        if len(self.workers) >= limit:
            raise P.ProtocolError(P.E_REFUSED, f"agent {self.name} is busy: {limit} "
                                               f"{msg.type} requests run already. Received: "
                                               f"{msg.type}")

        def body() -> None:
            try:
                reply = work()
            except Exception as exc:  # noqa: BLE001  (every failure becomes an error reply)
                reply = self._error_reply(msg, exc)
            self.reply_later(sender, reply)

        thread = threading.Thread(target=body, name=f"agent-{msg.type}", daemon=True)
        self.workers[msg.id] = thread
        thread.start()

    def publish(self, topic: str, content: dict[str, Any]) -> None:
        """Queue an event for the PUB socket (thread-safe)."""
        self._publisher.publish(topic, content)

    # ------------------------------------------------------------------ serving
    def handle(self, sender: bytes, frames: list) -> P.Message | None:
        """Decode and dispatch one request; returns the reply (an ``error`` on any failure)."""
        try:
            msg = P.decode(frames, self.limits)
        except P.ProtocolError as exc:
            parent = _header_id(frames)
            return P.Message("error", {"code": exc.code, "message": str(exc)}, parent=parent)
        except Exception as exc:  # a decoder bug must not stop the serving loop
            log.exception("undecodable message")
            return P.Message("error", {"code": P.E_PROTOCOL, "message": f"undecodable message: "
                                       f"{type(exc).__name__}: {exc}"}, parent=_header_id(frames))
        fn = self.handlers.get(msg.type)
        if fn is None:
            return msg.error(P.E_UNKNOWN_TYPE, f"unknown message type (known: "
                                               f"{', '.join(sorted(self.handlers))}). "
                                               f"Received: {msg.type[:60]!r}")
        try:
            return fn(self, msg, sender)
        except Exception as exc:  # a bug must not stop the agent
            return self._error_reply(msg, exc)

    def _error_reply(self, msg: P.Message, exc: Exception) -> P.Message:
        if isinstance(exc, P.ProtocolError):
            return msg.error(exc.code, str(exc))
        if isinstance(exc, ModuleError):
            return msg.error(P.E_MODULE, f"agent {self.name}: {exc}")
        if isinstance(exc, DianneError):
            return msg.error(P.E_BAD_REQUEST, f"agent {self.name}: {exc}")
        log.error("handler for %s failed", msg.type, exc_info=exc)
        return msg.error(P.E_INTERNAL, f"agent {self.name}: {msg.type} failed: "
                                       f"{type(exc).__name__}: {exc}")

    def serve(self, stop: threading.Event | None = None) -> None:
        """Serve until ``stop`` is set (or :meth:`close` is called from another thread)."""
        stop = stop or self._stop
        self._publisher.start({"id": self.id, "name": self.name})
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        if self._monitor is not None:
            poller.register(self._monitor, zmq.POLLIN)
        poller.register(self._wake, zmq.POLLIN)
        log.info("agent %s (%s) serving on %s, events on %s", self.name, self.id,
                 self.address, self.events_address)
        while not stop.is_set() and not self._stop.is_set():
            if self._guard is not None:
                self._guard.reload()
            ready = dict(poller.poll(200))
            if not ready:
                continue
            if self._monitor is not None and self._monitor in ready:
                self._guard.log_handshakes()
            if self._wake in ready:
                self._send_later()
            while True:
                try:
                    parts = self.router.recv_multipart(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                sender, frames = parts[0].bytes, parts[1:]
                reply = self.handle(sender, frames)
                if reply is not None:
                    self.reply(sender, reply)

    def _send_later(self) -> None:
        while True:
            try:
                self._wake.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
        while True:
            try:
                sender, msg = self._later.get_nowait()
            except queue.Empty:
                return
            self.reply(sender, msg)

    def close(self) -> None:
        self._stop.set()
        for job in list(self.jobs.values()):
            stop = getattr(job, "stop", None)
            if stop is not None:
                stop()
        self._publisher.join(timeout=2)
        if self._guard is not None:
            self._guard.unwatch(self.router)
        for sock in [self.router, self.pub, self._wake, *self.peers.values()]:
            sock.close(0)
        if self._guard is not None:
            self._guard.stop()
        self.ctx.term()


def _bind(sock: zmq.Socket, address: str) -> str:
    """Bind to ``tcp://HOST:PORT`` (port 0: any free port); returns the address to connect to."""
    if not address.startswith("tcp://") or ":" not in address[6:]:
        raise DianneError(f"--bind takes tcp://HOST:PORT. Received: {address!r}")
    host, port = address[6:].rsplit(":", 1)
    try:
        if port in ("0", "*"):
            port = str(sock.bind_to_random_port(f"tcp://{host}"))
        else:
            sock.bind(address)
    except zmq.ZMQError as exc:
        raise DianneError(f"cannot bind {address}: {exc}") from None
    if host in ("*", "0.0.0.0"):
        host = _primary_ip()
    return f"tcp://{host}:{port}"


def _primary_ip() -> str:
    """The address others reach this host by (the interface of the default route)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET address: no packet is sent for UDP connect
            return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def _header_id(frames: list) -> str | None:
    """The id of a message whose header parses, so even a rejected one gets a matching reply."""
    import json  # noqa: PLC0415

    try:
        raw = frames[0].bytes if hasattr(frames[0], "bytes") else bytes(frames[0])
        if len(raw) > 1 << 20:
            return None
        head = json.loads(raw)
        return head.get("id") if isinstance(head, dict) and isinstance(head.get("id"), str) \
            else None
    except (ValueError, UnicodeDecodeError, IndexError, RecursionError):
        return None
