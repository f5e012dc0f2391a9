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
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import numpy as np

from agent.client import AgentClient, deploy
from engine.biglittle import Parts
from engine.errors import DianneError
from engine.link import Link
from engine.subnet import extract


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


class AgentRunner:
    """The two parts deployed on a device agent and a server agent."""

    def __init__(self, parts: Parts, deployment: Any, clients: list[AgentClient],
                 link: Link | None) -> None:
        self.parts, self.dep, self.clients, self.link = parts, deployment, clients, link
        self._x: np.ndarray | None = None
        policy = parts.policy
        self._little = [policy.little] + ([parts.features_out] if parts.features_out else [])

    @classmethod
    def open(cls, args: argparse.Namespace, parts: Parts, weights: dict, link: Link | None
             ) -> AgentRunner:
        """From the CLI options ``--agent``/``--interface``/``--device``/``--server``."""
        from app.cmds.agents import load_keys  # noqa: PLC0415

        return cls.connect(parts, weights, agent_addresses(args), args.device, args.server, link,
                           keys=load_keys(args))

    @classmethod
    def connect(cls, parts: Parts, weights: dict, addresses: Sequence[str],
                device: str | None = None, server: str | None = None, link: Link | None = None,
                *, keys: Any = None) -> AgentRunner:
        """Deploy on the agents at ``addresses``: the little part on ``device`` (id, name or
        address; default the first), the rest on ``server`` (default the last), and set the
        emulated ``link`` on both (none: no emulation). :meth:`close` undeploys."""
        clients = [AgentClient(a, keys=keys) for a in addresses]
        try:
            infos = [c.info for c in clients]
            dev = _pick(device, infos, 0, "device")
            srv = _pick(server, infos, len(infos) - 1, "server")
            desc = _deployable(parts)
            on_device = set(parts.device.modules)
            placement = {m: (dev.id if m in on_device else srv.id) for m in desc.modules}
            dep = deploy(desc, weights, placement, [dev.address, srv.address], keys=keys)
            runner = cls(parts, dep, clients, link)
            runner._set_link(dev, srv)
            return runner
        except BaseException:
            for c in clients:
                c.close()
            raise

    def _set_link(self, device: Any, server: Any) -> None:
        self.devices = [(device, "agents"), (server, "all")]
        self._link_request(self.link)

    def _link_request(self, link: Link | None) -> None:
        by_id = {c.info.id: c for c in self.clients}
        for info, to in self.devices:
            content = {"delay_ms": link.delay_ms if link else 0.0,
                       "rate_bit_s": link.rate_bit_s if link else None, "to": to}
            by_id[info.id].request("set_link", content)

    def little(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._x = np.asarray(x, dtype=np.float32)
        out = self.dep.forward(self._x, outputs=self._little)
        payload = out[self._little[1]] if len(self._little) > 1 else self._x
        return np.asarray(out[self._little[0]]), np.asarray(payload, dtype=np.float32)

    def big(self, payload: np.ndarray) -> np.ndarray:
        if self._x is None:
            raise DianneError("big() before little(): the device has no sample to send")
        return np.asarray(self.dep.forward(self._x, outputs=self.parts.policy.big))

    def close(self) -> None:
        try:
            if self.link is not None:
                self._link_request(None)
            self.dep.undeploy()
        finally:
            for c in self.clients:
                c.close()


def _deployable(parts: Parts) -> Any:
    """The whole network, plus the features Output of the device part when features are sent."""
    full = parts.whole
    if not parts.features_out:
        return full
    cut = parts.device.modules[parts.features_out].prev[0]
    return extract(full, set(full.modules), full.name,
                   outputs={cut: parts.features_out})
