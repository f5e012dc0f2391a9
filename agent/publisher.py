"""The agent's PUB socket and the thread that owns it.

A heartbeat every :data:`HEARTBEAT_S` (clients take liveness from it, not from zeroconf) and the
events other threads queue with :meth:`Publisher.publish` (training progress), each sent as a
topic frame followed by the message's frames. Only this thread touches the PUB socket; a
message that cannot be sent is logged and dropped, never raised.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

import zmq

from agent import protocol as P

log = logging.getLogger(__name__)

HEARTBEAT_S = 0.25


class Publisher:
    """Heartbeats and queued events on ``pub`` until ``stop`` is set."""

    def __init__(self, pub: zmq.Socket, stop: threading.Event) -> None:
        self.pub = pub
        self._stop = stop
        self._events: queue.Queue = queue.Queue()
        self._beat: dict[str, Any] = {}
        self._thread = threading.Thread(target=self._loop, name="agent-pub", daemon=True)

    def start(self, beat: dict[str, Any]) -> None:
        """Start the thread; ``beat`` is the heartbeat's content (the agent's id and name)."""
        self._beat = beat
        self._thread.start()

    def publish(self, topic: str, content: dict[str, Any]) -> None:
        """Queue an event for the PUB socket (thread-safe)."""
        self._events.put((topic, P.Message("event", content)))

    def join(self, timeout: float) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)

    def _loop(self) -> None:
        beat = self._beat
        next_beat = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_beat:
                self.pub.send_multipart([b"hb"] + P.encode(P.Message("heartbeat", beat)))
                next_beat = now + HEARTBEAT_S
            try:
                topic, msg = self._events.get(timeout=max(0.0, next_beat - time.monotonic()))
            except queue.Empty:
                continue
            try:
                self.pub.send_multipart([topic.encode()] + P.encode(msg), copy=False)
            except (zmq.ZMQError, P.ProtocolError) as exc:
                log.warning("event %s not published: %s", topic, exc)
