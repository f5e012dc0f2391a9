"""A client's connections to agents, with one receive loop and heartbeat watching.

Each agent gets a DEALER (requests; replies and ``result`` messages come back on it, addressed
to this session's routing id, whichever agent sends them) and a SUB on its events socket
(heartbeats, progress). :meth:`Session.wait` polls everything and raises :class:`AgentError`
naming the agent as soon as a watched agent has been silent for ``gone_after`` seconds, so a
killed agent never leaves the caller hanging. :class:`Probe` asks an address for an agent
without waiting (to notice one coming back).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import zmq

from agent import protocol as P
from agent.discovery import GONE_S, AgentInfo
from agent.keys import Keys, client_options
from engine.errors import DianneError

log = logging.getLogger(__name__)

HELLO_TIMEOUT_S = 2.0


class AgentError(DianneError):
    """An agent answered with an error, or stopped answering; the message names it."""

    def __init__(self, message: str, code: str = "agent", agent: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.agent = agent  # the id of the agent at fault, when known (always for "gone")


@dataclass
class Conn:
    """One agent as seen from a session."""

    address: str
    dealer: zmq.Socket
    sub: zmq.Socket | None = None
    info: AgentInfo | None = None
    last_seen: float = field(default_factory=time.monotonic)

    @property
    def label(self) -> str:
        if self.info is None:
            return f"agent at {self.address}"
        return f"agent {self.info.name} ({self.info.id}) at {self.address}"


class Session:
    """Connections to any number of agents; not thread-safe (use it from one thread)."""

    def __init__(self, keys: Keys | None = None, gone_after: float = GONE_S,
                 topics: Iterable[str] = ()) -> None:
        self.keys = keys
        self.gone_after = gone_after
        self.topics = [t.encode() for t in topics]
        self.ctx = zmq.Context()
        self.identity = uuid.uuid4().hex.encode()
        self.conns: dict[str, Conn] = {}
        self.poller = zmq.Poller()
        self._owner: dict[zmq.Socket, Conn] = {}
        self.replies: dict[str, P.Message] = {}
        self.results: dict[str, list[P.Message]] = {}
        self.errors: dict[str, P.Message] = {}
        self.samples: set[str] = set()  # sample ids being waited for
        self.on_event: Callable[[Conn, str, P.Message], None] | None = None
        self.events: list[tuple[Conn, str, P.Message]] = []

    # ------------------------------------------------------------------ connections
    def connect(self, address: str, timeout: float = HELLO_TIMEOUT_S) -> Conn:
        """Connect to the agent at ``address`` and say hello (its info fills ``conn.info``)."""
        conn = self.conns.get(address)
        if conn is not None and conn.info is not None:
            return conn
        if not isinstance(address, str) or not address.startswith("tcp://"):
            raise AgentError(f"an agent address looks like tcp://HOST:PORT. "
                             f"Received: {address!r}")
        same = self._same_agent(address, timeout)
        if same is not None:  # one agent, two addresses: one connection serves both
            log.info("%s is %s: one connection for both", address, same.label)
            self.conns[address] = same
            return same
        dealer = self.ctx.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.setsockopt(zmq.IDENTITY, self.identity)
        dealer.setsockopt(zmq.SNDTIMEO, 2000)
        client_options(dealer, self.keys)
        dealer.connect(address)
        conn = Conn(address, dealer)
        self.conns[address] = conn
        self._owner[dealer] = conn
        self.poller.register(dealer, zmq.POLLIN)
        msg = P.Message("hello")
        self.send(conn, msg)
        try:
            reply = self.wait_reply(conn, msg, timeout=timeout)
        except AgentError:
            self.drop(conn)
            hint = " (with --keys: is this client's key authorized there?)" if self.keys else ""
            raise AgentError(f"no agent answers at {address} within {timeout:.1f} s{hint}") \
                from None
        conn.info = AgentInfo.from_info(reply.content)
        if conn.info.address != address:  # the agent may know itself by another name
            log.debug("agent at %s calls itself %s", address, conn.info.address)
        sub = self.ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        client_options(sub, self.keys)
        sub.subscribe(b"hb")
        for topic in self.topics:
            sub.subscribe(topic)
        events = conn.info.events
        host = address[6:].rsplit(":", 1)[0]
        sub.connect(f"tcp://{host}:{events.rsplit(':', 1)[1]}")
        conn.sub = sub
        self._owner[sub] = conn
        self.poller.register(sub, zmq.POLLIN)
        conn.last_seen = time.monotonic()
        return conn

    def _same_agent(self, address: str, timeout: float) -> Conn | None:
        """The connection of this session to the agent that answers at ``address``, when it is
        one already connected under another address (``localhost`` and ``127.0.0.1``, or two
        interfaces of its host); else None.

        A session speaks with one routing id (results find the client by it), and an agent's
        ROUTER refuses a second connection carrying a routing id it already has: connecting
        again would wait out the hello and report an agent that answers as silent. So when the
        port is one this session already uses, a throwaway socket with its own routing id asks
        the agent who it is first."""
        port = address.rsplit(":", 1)[-1]
        known = {c.info.id: c for c in self.conns.values()
                 if c.info is not None and c.address.rsplit(":", 1)[-1] == port}
        if not known:
            return None
        probe = self.ctx.socket(zmq.DEALER)
        try:
            probe.setsockopt(zmq.LINGER, 0)
            probe.setsockopt(zmq.SNDTIMEO, 2000)
            client_options(probe, self.keys)
            probe.connect(address)
            msg = P.Message("hello")
            probe.send_multipart(P.encode(msg), copy=False)
            end = time.monotonic() + timeout
            while (left := end - time.monotonic()) > 0:
                if not probe.poll(int(left * 1000) + 1):
                    break
                try:
                    reply = P.decode(probe.recv_multipart(copy=False))
                except P.ProtocolError:
                    continue
                if reply.parent == msg.id and reply.type != "error":
                    return known.get(str(reply.content.get("id")))
        except zmq.ZMQError as exc:
            log.debug("probing %s: %s", address, exc)
        finally:
            probe.close(0)
        return None  # nobody, or another agent: the ordinary connect says which

    def drop(self, conn: Conn) -> None:
        for sock in (conn.dealer, conn.sub):
            if sock is not None and sock in self._owner:
                self.poller.unregister(sock)
                self._owner.pop(sock, None)
                sock.close(0)
        for address in [a for a, c in self.conns.items() if c is conn]:  # aliases too
            del self.conns[address]

    def close(self) -> None:
        for conn in {id(c): c for c in self.conns.values()}.values():
            self.drop(conn)
        self.ctx.term()

    # ------------------------------------------------------------------ traffic
    def send(self, conn: Conn, msg: P.Message) -> None:
        try:
            conn.dealer.send_multipart(P.encode(msg), copy=False)
        except zmq.Again:
            raise AgentError(f"{conn.label} does not take messages (queue full)") from None

    def request(self, conn: Conn, msg: P.Message, timeout: float | None = None) -> P.Message:
        """Send ``msg`` and return its reply; an ``error`` reply raises :class:`AgentError`."""
        self.send(conn, msg)
        return self.wait_reply(conn, msg, timeout)

    def wait_reply(self, conn: Conn, msg: P.Message, timeout: float | None = None
                   ) -> P.Message:
        self.wait(lambda: msg.id in self.replies, [conn], timeout)
        reply = self.replies.pop(msg.id)
        if reply.type == "error":
            raise AgentError(str(reply.content.get("message", reply.content)),
                             str(reply.content.get("code", "error")))
        return reply

    def wait(self, done: Callable[[], bool], watch: Iterable[Conn],
             timeout: float | None = None) -> None:
        """Receive until ``done()``; raise if a watched agent goes silent or on ``timeout``."""
        watch = list(watch)
        end = None if timeout is None else time.monotonic() + timeout
        self.pump(0)  # heartbeats queued while the session sat idle count before judging
        while not done():
            now = time.monotonic()
            for conn in watch:
                if now - conn.last_seen > self.gone_after:
                    raise AgentError(f"{conn.label} is gone: no heartbeat for "
                                     f"{now - conn.last_seen:.1f} s", "gone",
                                     conn.info.id if conn.info else conn.address)
            if end is not None and now >= end:
                raise AgentError(f"no answer from {', '.join(c.label for c in watch)} within "
                                 f"{timeout:.1f} s", "timeout")
            self.pump(0.1 if end is None else max(0.0, min(0.1, end - now)))

    def pump(self, timeout: float) -> None:
        """Receive whatever arrives within ``timeout`` seconds and file it."""
        for sock, _ in self.poller.poll(int(timeout * 1000)):
            conn = self._owner.get(sock)
            while True:
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                if conn is not None:
                    conn.last_seen = time.monotonic()
                self._file(conn, sock, frames)

    def _file(self, conn: Conn | None, sock: zmq.Socket, frames: list) -> None:
        topic = ""
        if conn is not None and sock is conn.sub:
            topic, frames = frames[0].bytes.decode(errors="replace"), frames[1:]
        try:
            msg = P.decode(frames)
        except P.ProtocolError as exc:
            log.warning("undecodable message from %s: %s", conn.label if conn else "?", exc)
            return
        if topic:
            if topic != "hb":
                self.events.append((conn, topic, msg))
                if self.on_event is not None:
                    self.on_event(conn, topic, msg)
            return
        sample = msg.content.get("sample")
        if msg.type == "result" and isinstance(sample, str):
            if sample in self.samples:  # a late result of a forgotten sample is dropped
                self.results.setdefault(sample, []).append(msg)
        elif msg.type == "error" and (isinstance(sample, str) or msg.parent in self.samples):
            # forward/backward messages carry their sample as message id
            self.errors.setdefault(sample if isinstance(sample, str) else msg.parent, msg)
        elif msg.parent is not None:
            self.replies[msg.parent] = msg
        else:
            log.debug("unsolicited %s from %s", msg.type, conn.label if conn else "?")

    def forget(self, sample: str) -> None:
        """Stop waiting for ``sample``: what arrives for it later is dropped."""
        self.samples.discard(sample)
        self.results.pop(sample, None)
        self.errors.pop(sample, None)

    def raise_sample_error(self, sample: str) -> None:
        self.samples.discard(sample)
        err = self.errors.pop(sample, None)
        if err is not None:
            self.results.pop(sample, None)
            raise AgentError(str(err.content.get("message")), str(err.content.get("code")))


class Probe:
    """Asks the agent at ``address`` for its info without waiting: :meth:`poll` reads what
    arrived and sends a ``hello`` (again every ``every`` seconds), and returns the ``info``
    content once an agent answers there. Its socket has an identity of its own, so it never
    stands in for a session's connection to that agent; a hello sent while nobody listens
    waits in the socket and reaches an agent that starts at that address later."""

    def __init__(self, session: Session, address: str, every: float = 1.0) -> None:
        self.address, self.every = address, every
        self.sock = session.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SNDHWM, 4)  # a few hellos queued for an absent agent suffice
        client_options(self.sock, session.keys)
        self.sock.connect(address)
        self._sent = -float("inf")

    def poll(self) -> dict | None:
        """The agent's ``info`` if one answered since the last call, else None (never waits)."""
        found = None
        while True:
            try:
                frames = self.sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            try:
                msg = P.decode(frames)
            except P.ProtocolError:
                continue
            if msg.type == "info":
                found = msg.content
        now = time.monotonic()
        if found is None and now - self._sent >= self.every:
            try:
                self.sock.send_multipart(P.encode(P.Message("hello")), zmq.NOBLOCK, copy=False)
            except zmq.Again:
                pass
            self._sent = now
        return found

    def close(self) -> None:
        self.sock.close(0)
