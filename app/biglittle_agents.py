"""Big-Little through agents: the little part on the device agent, the big part on the server.

:class:`AgentRunner` deploys the whole Big-Little network once with a placement — every module
the little Output needs on the device agent, the rest on the server agent — and implements the
:class:`engine.biglittle.PartRunner` calls with forwards through that deployment: ``little``
asks for the little Output (and, when features are sent, for an extra Output on the features),
``big`` asks for the big Output, so the device agent sends the sample (or the features) to the
server agent itself and the server sends the answer back to the client. The link between them is
emulated by the agents (``set_link``, agent/handlers/link.py): the device agent delays what it
sends to agents, the server agent everything it sends, so a forwarded sample crosses the link
twice, as on a real device. With features, ``big`` runs the device's trunk again (the deployment
keeps no state between forwards): a small pessimism of the latency figures.

Losing the server: ``big`` waits at most the link's own latency for the request and the reply
plus ``timeout_s`` (default :data:`TIMEOUT_S`), and not at all once the server's heartbeat has
stopped; then it raises :class:`engine.biglittle.BigUnreachable`, so ``classify`` answers from
the little network (marked fallback). The server is let go (``Deployment.disconnect``) and
every later forwarded sample falls back at once (reason ``down``) while a probe asks the
server's address for an agent without waiting. Once one answers there, ``retry_s`` after the
failure at the earliest, the next forwarded sample first takes it back (``Deployment.rejoin``:
the same agent resumed, or one restarted at that address with the same or another id, which gets
the big part deployed again with the kept weights and the emulated link set again) and is then
forwarded as usual; an agent that comes back elsewhere needs a new :meth:`AgentRunner.connect`.
:attr:`AgentRunner.status` says which state it is in, in a few words, for the Run tab.

Losing the device: :class:`app.biglittle_device.DeviceLoss` (mixed in) moves the little part to
the server and back, and :attr:`AgentRunner.little_on` says where it runs.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from agent.client import AgentClient, AgentError, deploy
from agent.session import Probe
from app.biglittle_device import DeviceLoss
from engine.biglittle import BigUnreachable, Parts
from engine.errors import DianneError
from engine.link import Link
from engine.subnet import extract

log = logging.getLogger(__name__)

TIMEOUT_S = 0.5  # what a forwarded sample may wait beyond the link's own latency
RETRY_S = 1.0  # after a failure, the server is taken back no sooner than this


def agent_addresses(args: argparse.Namespace) -> list[str]:
    """``--agent`` addresses, else ``$DIANNE_AGENTS``, else zeroconf discovery."""
    from app.cmds.agents import explicit_addresses, find_agents  # noqa: PLC0415

    given = explicit_addresses(args)
    if given:
        return given
    found = [a.address for a in find_agents(args)]
    if not found:
        raise DianneError("no agents found (start dianne-agent, or give --agent tcp://HOST:PORT)")
    return found


def _pick(key: str | None, infos: Sequence[Any], default: int, what: str) -> Any:
    if key is None:
        return infos[default]
    for info in infos:
        if key in (info.id, info.name, info.address) or info.id.startswith(key):
            return info
    known = ", ".join(f"{i.name} ({i.id}) at {i.address}" for i in infos)
    raise DianneError(f"--{what}: {key!r} is not one of the agents: {known}. Received: {key}")


class AgentRunner(DeviceLoss):
    """The two parts deployed on a device agent and a server agent."""

    def __init__(self, parts: Parts, deployment: Any, clients: list[AgentClient],
                 link: Link | None, timeout_s: float = TIMEOUT_S, retry_s: float = RETRY_S
                 ) -> None:
        self.parts, self.dep, self.clients, self.link = parts, deployment, clients, link
        self.timeout_s, self.retry_s = float(timeout_s), float(retry_s)
        self._x: np.ndarray | None = None
        policy = parts.policy
        self._little = [policy.little] + ([parts.features_out] if parts.features_out else [])
        self.device: Any = None  # AgentInfo of the device agent, of the server agent
        self.server: Any = None
        self.down: str | None = None  # why the big part is unreachable (None: it answers)
        self.down_since = 0.0
        self.fallbacks = 0  # samples the big part did not answer
        self.rejoins: list[dict[str, Any]] = []  # Deployment.rejoin records, with "down_s"
        self._probe: Probe | None = None
        self._back: dict | None = None  # the probe's answer, kept until retry_s has passed
        self._relink = False  # the server restarted: its emulated link is to be set again
        self._init_device_loss()

    @classmethod
    def open(cls, args: argparse.Namespace, parts: Parts, weights: dict, link: Link | None
             ) -> AgentRunner:
        """From the CLI options ``--agent``/``--interface``/``--device``/``--server`` (and
        ``--big-timeout`` where the command has it)."""
        from app.cmds.agents import load_keys  # noqa: PLC0415

        timeout = getattr(args, "big_timeout", None)
        return cls.connect(parts, weights, agent_addresses(args), args.device, args.server, link,
                           keys=load_keys(args),
                           timeout_s=TIMEOUT_S if timeout is None else timeout)

    @classmethod
    def connect(cls, parts: Parts, weights: dict, addresses: Sequence[str],
                device: str | None = None, server: str | None = None, link: Link | None = None,
                *, keys: Any = None, timeout_s: float = TIMEOUT_S, retry_s: float = RETRY_S
                ) -> AgentRunner:
        """Deploy on the agents at ``addresses``: the little part on ``device`` (id, name or
        address; default the first), the rest on ``server`` (default the last), and set the
        emulated ``link`` on both (none: no emulation). ``timeout_s``: how long a forwarded
        sample may wait beyond the link's latency before the little network answers it;
        ``retry_s``: how soon after a failure the server may be taken back. :meth:`close`
        undeploys."""
        clients = [AgentClient(a, keys=keys) for a in addresses]
        try:
            infos = [c.info for c in clients]
            dev = _pick(device, infos, 0, "device")
            srv = _pick(server, infos, len(infos) - 1, "server")
            desc = _deployable(parts)
            on_device = set(parts.device.modules)
            placement = {m: (dev.id if m in on_device else srv.id) for m in desc.modules}
            dep = deploy(desc, weights, placement, [dev.address, srv.address], keys=keys)
            runner = cls(parts, dep, clients, link, timeout_s, retry_s)
            runner.device, runner.server = dev, srv
            runner._link_request(link)
            return runner
        except BaseException:
            for c in clients:
                c.close()
            raise

    def _link_request(self, link: Link | None, which: str = "both",
                      timeout: float | None = None) -> None:
        """``set_link`` on the device agent (what it sends to agents) and the server agent
        (everything it sends); ``which``: "both", "device" or "server"."""
        content = {"delay_ms": link.delay_ms if link else 0.0,
                   "rate_bit_s": link.rate_bit_s if link else None}
        for info, to, part in ((self.device, "agents", "device"), (self.server, "all", "server")):
            if which in ("both", part):
                conn = self.dep.all_conns[info.id]
                self.dep.session.request(conn, _message("set_link", {**content, "to": to}),
                                         timeout)

    # ------------------------------------------------------------------ the two parts
    def bound_s(self, payload: np.ndarray) -> float:
        """How long ``big`` waits: the link both ways (sample out, answer back) + timeout_s."""
        link = self.link or Link()
        out_bytes = 4 * len(self.parts.big_labels)
        return (link.transfer_ms(payload.nbytes) + link.transfer_ms(out_bytes)) / 1e3 + \
            self.timeout_s

    def big(self, payload: np.ndarray) -> np.ndarray:
        """The big part's values, or :class:`BigUnreachable` within :meth:`bound_s`."""
        if self._x is None:
            raise DianneError("big() before little(): the device has no sample to send")
        end = time.monotonic() + self.bound_s(payload)
        if self.down is not None and not self._take_back(end):
            self.fallbacks += 1
            raise BigUnreachable(f"the big part on {self.server.name} is unreachable ("
                                 f"{self.down}) since {self._down_for():.1f} s", "down")
        for _ in range(2):
            try:
                return np.asarray(self.dep.forward(self._x, outputs=self.parts.policy.big,
                                                   timeout=max(0.0, end - time.monotonic())))
            except AgentError as exc:
                if self._device_fault(exc):  # the device went with the sample: once more
                    self._device_lost(exc)  # from the server (or both gone: raises)
                    end = time.monotonic() + self.bound_s(payload)  # a new request, a new bound
                    continue
                reason = exc.code if exc.code in ("timeout", "gone") else "error"
                self._lost(reason, exc)
                self.fallbacks += 1
                raise BigUnreachable(str(exc), reason, sent=True) from exc
        raise AssertionError("unreachable")  # the device fails at most once

    # ------------------------------------------------------------------ losing the server
    def _lost(self, reason: str, exc: Exception) -> None:
        log.warning("the big part on %s is unreachable (%s): the little network answers until "
                    "it is back. %s", self.server.name, reason, exc)
        self.down, self.down_since = reason, time.monotonic()
        self.dep.disconnect(self.server.id)
        if self._probe is None:
            self._probe = self._watch(self.server.address)
        self._back = None

    def _take_back(self, end: float, force: bool = False) -> bool:
        """Whether the server answers again and holds the big part (taken back, redeployed if
        it restarted), within ``end``; False without waiting while nobody answers (``force``:
        asks its address now, waiting until ``end`` at most)."""
        info = self._probe.poll() if self._probe is not None else None
        self._back = info or self._back
        if not force and (self._back is None or
                          time.monotonic() - self.down_since < self.retry_s):
            return False
        self._back = None
        try:
            record = self.dep.rejoin(self.server.id, self.server.address,
                                     timeout=max(0.05, end - time.monotonic()))
            self.server = self.dep.all_conns[record["agent"]].info
            self._relink = self._relink or record["redeployed"]  # a new process: no link set
            if self._relink and self.link is not None:
                try:
                    self._link_request(self.link, "server", max(0.05, end - time.monotonic()))
                except DianneError:
                    self.dep.disconnect(self.server.id)
                    raise
            self._relink = False
        except DianneError as exc:
            log.info("the agent at %s answers but the big part is not back yet: %s",
                     self.server.address, exc)
            return False
        record["down_s"] = time.monotonic() - self.down_since
        self.rejoins.append(record)
        log.warning("the big part is back on %s after %.1f s%s: forwarding again",
                    self.server.name, record["down_s"],
                    " (deployed again)" if record["redeployed"] else "")
        self.down = None
        self._probe.close()
        self._probe = None
        return True

    def _down_for(self) -> float:
        return time.monotonic() - self.down_since if self.down is not None else 0.0

    @property
    def status(self) -> str:
        """In a few words: where the big part is and whether it answers (and, once the device
        is lost, where the little part runs)."""
        if self.down is None:
            big = f"big part on {self.server.name}: forwarding"
        else:
            big = (f"big part on {self.server.name} unreachable ({self.down}, "
                   f"{self._down_for():.1f} s): the little network answers")
        device = self._device_status()
        if device is None:
            return big
        return device if self.down is not None else f"{device}; {big}"

    def close(self) -> None:
        try:
            self._close_device()
            if self._probe is not None:
                self._probe.close()
                self._probe = None
            which = {(True, True): "both", (True, False): "device", (False, True): "server"}
            up = (self.device_gone is None, self.down is None)
            if self.link is not None and up in which:
                self._link_request(None, which[up], 2.0)
            self.dep.undeploy()
        except AgentError as exc:  # an agent that is gone keeps what it had; nothing to undo
            log.info("closing the Big-Little deployment: %s", exc)
        finally:
            for c in self.clients:
                c.close()
            self.dep.session.close()


def _message(type: str, content: dict[str, Any]) -> Any:
    from agent import protocol as P  # noqa: PLC0415

    return P.Message(type, content)


def _deployable(parts: Parts) -> Any:
    """The whole network, plus the features Output of the device part when features are sent."""
    full = parts.whole
    if not parts.features_out:
        return full
    cut = parts.device.modules[parts.features_out].prev[0]
    return extract(full, set(full.modules), full.name,
                   outputs={cut: parts.features_out})
