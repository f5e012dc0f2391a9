"""Big-Little through agents when the DEVICE agent is lost: :class:`DeviceLoss`, mixed into
:class:`app.biglittle_agents.AgentRunner` (it provides the attributes named below).

The little part runs on the device agent. When that agent is gone (its heartbeat stopped, or a
forward to it fails with the agent-gone error), the deployment's own failover moves the little
part to the server agent with the weights the deployment kept (``Deployment.set_fallback`` +
``fail_over``; the record lands in ``Deployment.failovers``) and the current sample is sent again
there, so it and every later one is answered; :attr:`DeviceLoss.little_on` then names the server
(every :class:`engine.biglittle.Answer` carries it) and each sample crosses the emulated link,
since the server agent delays everything it sends. A probe asks the device's address for an
agent without waiting; once one answers there (``retry_s`` after the loss at the earliest), the
next sample first moves the little part back to it with the link set again: the agent is
connected again with ``Deployment.connect`` (the deployment forgets a failed-over agent, so
``rejoin`` cannot take it back) and the little part moved with ``Deployment.place`` (from the
server, or from the kept weights when the server is lost meanwhile).

When the server is lost as well (it is unreachable when the device goes, or it goes while it
holds the little part), ``little`` raises one :class:`DianneError` naming both agents, within
the heartbeat's ``gone_after`` plus at most :meth:`DeviceLoss._wait_s` for an answer from the
server's address; later samples raise the same way until one of the two answers again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from agent.session import AgentError, Probe
from engine.biglittle import Parts
from engine.errors import DianneError

log = logging.getLogger(__name__)


class DeviceLoss:
    """The device-loss half of an AgentRunner."""

    parts: Parts
    dep: Any
    device: Any
    server: Any
    down: str | None
    retry_s: float
    timeout_s: float
    link: Any
    _x: np.ndarray | None
    _little: list[str]
    _lost: Callable[[str, Exception], None]
    _take_back: Callable[..., bool]
    _link_request: Callable[..., None]

    def _watch(self, address: str) -> Probe:
        """A probe that asks ``address`` for an agent (again every ``retry_s``, 0.2-1 s)."""
        return Probe(self.dep.session, address, every=max(0.2, min(self.retry_s, 1.0)))

    def _init_device_loss(self) -> None:
        self.device_gone: str | None = None  # why the device agent is lost (None: it answers)
        self.device_since = 0.0
        self.device_returns: list[dict[str, Any]] = []  # the little part moved back
        self._moved = False  # the little part runs on the server
        self._device_probe: Probe | None = None
        self._device_back: dict | None = None

    @property
    def little_on(self) -> str | None:
        """The agent that runs the little part when it is not the device (None: the device)."""
        return self.server.name if self._moved else None

    def _wait_s(self) -> float:
        """How long an address may take to answer when nothing else can run the little part."""
        return max(0.5, self.timeout_s)

    # ------------------------------------------------------------------ the little part
    def little(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._x = np.asarray(x, dtype=np.float32)
        if self.device_gone is not None:
            self._device_elsewhere()
        try:
            out = self.dep.forward(self._x, outputs=self._little)
        except AgentError as exc:
            if self._device_fault(exc):
                self._device_lost(exc)
            elif self._moved and exc.code in ("gone", "timeout"):
                self._lost(exc.code, exc)  # the server held the little part: nothing is left
                raise self._both_gone(str(exc)) from exc
            else:
                raise
            try:
                out = self.dep.forward(self._x, outputs=self._little)
            except AgentError as again:
                if again.code not in ("gone", "timeout"):
                    raise
                self._lost(again.code, again)
                raise self._both_gone(str(again)) from again
        payload = out[self._little[1]] if len(self._little) > 1 else self._x
        return np.asarray(out[self._little[0]]), np.asarray(payload, dtype=np.float32)

    def _device_fault(self, exc: AgentError) -> bool:
        """Whether ``exc`` says the device agent, holding the little part, is gone."""
        return (exc.code == "gone" and not self._moved and self.device_gone is None
                and exc.agent == self.device.id)

    def _device_elsewhere(self) -> None:
        """The device is lost: the little part back on it when it answers again, else on the
        server (moved there now if that failed before); raises when neither can run it."""
        info = self._device_probe.poll() if self._device_probe is not None else None
        self._device_back = info or self._device_back
        back = (self._device_back is not None
                and time.monotonic() - self.device_since >= self.retry_s)
        if back and self._device_return():
            return
        if not self._moved:  # both were lost: the server may answer again
            self._device_lost(None)
        elif not self._server_back():
            raise self._both_gone(self._silent_server())

    # ------------------------------------------------------------------ losing the device
    def _device_lost(self, exc: AgentError | None) -> None:
        """Move the little part to the server (failover with the kept weights), or raise the
        one-line error naming both agents when the server cannot take it."""
        if self.device_gone is None:
            log.warning("the device agent %s is gone: the little part moves to %s. %s",
                        self.device.name, self.server.name, exc)
            self.device_gone, self.device_since = "gone", time.monotonic()
            self.dep.disconnect(self.device.id)  # nothing waits on it, nothing is sent to it
            self._device_probe = self._watch(self.device.address)
        if not self._server_back():
            raise self._both_gone(self._silent_server())
        self.dep.set_fallback(self.server.id)
        try:
            record = self.dep.fail_over(self.device.id)
        except AgentError as err:
            if err.code not in ("gone", "timeout"):
                raise
            why = str(err) if err.agent != self.device.id else (  # no live fallback: silent
                f"no heartbeat from the server agent for "
                f"{time.monotonic() - self.dep.all_conns[self.server.id].last_seen:.1f} s")
            self._lost(err.code, AgentError(why, err.code))
            raise self._both_gone(why) from err
        finally:
            self.dep.set_fallback()  # only this move: a lost server must not take the device's
        self._moved = True
        log.warning("the little part runs on %s (moved in %.1f ms)", self.server.name,
                    record["redeploy_s"] * 1e3)

    def _device_return(self) -> bool:
        """Move the little part back to the agent that answers at the device's address (or take
        the device back when the little part never left it); False when that fails."""
        self._device_back = None
        wait, t0 = self._wait_s(), time.monotonic()
        was, old = self.device, dict(self.dep.placement)
        try:
            if not self._moved:  # it still holds its share unless it restarted
                new = self.dep.all_conns[self.dep.rejoin(was.id, was.address, wait)["agent"]]
                self.device = new.info
            else:
                self.device = self.dep.connect(was.address)  # known (and live) again
                mine = set(self.parts.device.modules)
                self.dep.place({m: (self.device.id if m in mine else a) for m, a in old.items()},
                               timeout=wait)
            if self.link is not None:
                self._link_request(self.link, "device", wait)
        except DianneError as exc:
            log.info("an agent answers at %s but the little part is not back on it: %s",
                     was.address, exc)
            if self._moved and self.device is not was:
                try:  # the little part stays on the server
                    self.dep.place(old, gone={self.device.id}, timeout=wait)
                except DianneError as undo:
                    log.info("keeping the little part on %s: %s", self.server.name, undo)
                conn = self.dep.all_conns.pop(self.device.id, None)
                if conn is not None:
                    self.dep.session.drop(conn)
            self.device = was
            return False
        self.device_returns.append({"agent": self.device.id, "was": was.id,
                                    "down_s": time.monotonic() - self.device_since,
                                    "seconds": time.monotonic() - t0})
        log.warning("the little part is back on the device agent %s after %.1f s",
                    self.device.name, self.device_returns[-1]["down_s"])
        self.device_gone, self._moved = None, False
        if self._device_probe is not None:
            self._device_probe.close()
            self._device_probe = None
        return True

    def _server_back(self) -> bool:
        """Whether the server answers (asked now, for :meth:`_wait_s` at most, when it was
        lost: a device that died while a sample waited for the big part may have been taken
        for the server, which then answers at once)."""
        return self.down is None or self._take_back(time.monotonic() + self._wait_s(), True)

    def _silent_server(self) -> str:
        return f"no agent answers at {self.server.address} within {self._wait_s():.1f} s"

    def _both_gone(self, why: str) -> DianneError:
        d, s = self.device, self.server
        why = (why.splitlines() or ["no answer"])[0]
        return DianneError(f"both agents are gone: the device agent {d.name} ({d.id}) at "
                           f"{d.address} and the server agent {s.name} ({s.id}) at {s.address}; "
                           f"no agent can run the little part. Received: {why}")

    def _device_status(self) -> str | None:
        """The device's part of the status line (None while the device runs the little part;
        the whole line once the server is lost too)."""
        if self.device_gone is None:
            return None
        if self.down is not None:
            return f"device {self.device.name} and server {self.server.name} gone: no answers"
        return f"device {self.device.name} gone: little part on {self.server.name}"

    def _close_device(self) -> None:
        if self._device_probe is not None:
            self._device_probe.close()
            self._device_probe = None
