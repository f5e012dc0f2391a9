"""CURVE authentication on the agent's side: who may connect, and word of who was refused.

:class:`CurveGuard` runs pyzmq's ZAP authenticator thread over :class:`AuthorizedKeys` (the
public keys in the key folder's ``authorized/``), picks up keys added to or removed from that
folder while the agent runs, and logs clients whose CURVE handshake failed (a client without
keys never reaches the ZAP callback, so a monitor socket on the ROUTER catches it). Every socket
call here is made on the agent's serving thread, as zmq sockets require.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import zmq

from agent.keys import Keys

# The refusals keep the logger name they had when this lived in agent.server: the operator's
# guide (docs/hardening.md) quotes "WARNING agent.server: refused a client: …".
log = logging.getLogger("agent.server")

HANDSHAKE_FAILED = zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL


class CurveGuard:
    """The authenticator of one agent's context; started before any socket binds."""

    def __init__(self, ctx: zmq.Context, keys: Keys) -> None:
        from zmq.auth.thread import ThreadAuthenticator  # noqa: PLC0415

        self.keys = keys
        self.monitor: zmq.Socket | None = None
        self._auth = ThreadAuthenticator(ctx, log=logging.getLogger("agent.auth"))
        self._auth.start()
        self.authorized = AuthorizedKeys(keys.authorized)
        self._auth.configure_curve_callback(domain="*", credentials_provider=self.authorized)
        self._checked, self._stamp = time.monotonic(), self._authorized_stamp()

    def watch(self, router: zmq.Socket) -> zmq.Socket:
        """A monitor socket for failed handshakes on ``router`` (to poll with it)."""
        self.monitor = router.get_monitor_socket(HANDSHAKE_FAILED)
        return self.monitor

    def log_handshakes(self) -> None:
        from zmq.utils.monitor import recv_monitor_message  # noqa: PLC0415

        while True:
            try:
                event = recv_monitor_message(self.monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                why = zmq.Event(event["value"]).name
            except ValueError:
                why = str(event["value"])
            log.warning("refused a client on %s: its handshake failed (%s; a client without "
                        "CURVE keys, or not speaking ZMTP, when --keys is on)",
                        event["endpoint"].decode(errors="replace"), why)

    def reload(self) -> None:
        """Pick up public keys added to (or removed from) the authorized folder, once a
        second at most."""
        if time.monotonic() < self._checked + 1.0:
            return
        self._checked = time.monotonic()
        folder = self.keys.authorized
        stamp = self._authorized_stamp()
        if stamp is not None and stamp != self._stamp:
            self._stamp = stamp
            self.authorized.load()
            log.info("authorized keys reloaded from %s", folder)

    def _authorized_stamp(self) -> tuple | None:
        try:
            folder = self.keys.authorized
            return folder.stat().st_mtime_ns, sorted(p.name for p in folder.iterdir())
        except (OSError, AttributeError):
            return None

    def unwatch(self, router: zmq.Socket) -> None:
        """Close the monitor (before ``router`` itself closes)."""
        if self.monitor is not None:
            router.disable_monitor()
            self.monitor.close(0)

    def stop(self) -> None:
        """Stop the authenticator thread (after the sockets closed, before the context ends)."""
        self._auth.stop()


class AuthorizedKeys:
    """CURVE credentials: the public keys in the authorized folder. A refused client is logged
    as a warning naming its key (pyzmq's own authenticator logs refusals at debug level)."""

    def __init__(self, folder: Any) -> None:
        self.folder = folder
        self.keys: set[bytes] = set()
        self.load()

    def load(self) -> None:
        import zmq.auth  # noqa: PLC0415

        try:
            self.keys = set(zmq.auth.load_certificates(str(self.folder)))
        except (OSError, ValueError) as exc:  # keep the keys we had
            log.error("cannot load the authorized keys from %s: %s", self.folder, exc)

    def callback(self, domain: str, key: bytes) -> bool:
        if key in self.keys:
            return True
        log.warning("refused a client: its CURVE public key %s is not in %s",
                    key.decode("ascii", "replace"), self.folder)
        return False
