"""Link emulation: ``set_link`` makes an agent delay and rate-limit what it sends.

``set_link`` {delay_ms, rate_bit_s (null: no limit), to "agents" | "clients" | "all"} -> ``ok``
{delay_ms, rate_bit_s, to}. From then on every message the agent sends to the chosen peers
(``agents``: tensors to other agents of a deployment; ``clients``: results and replies through
its request socket; ``all``: both) waits :meth:`engine.link.Link.transfer_ms` of its bytes
(header + tensors) before it leaves: the one-way delay plus bytes*8/rate. ``delay_ms`` 0 and no
rate switch it off. So a Big-Little device agent set to ``agents`` and a server agent set to
``all`` put the device-server link on both directions of a forwarded sample, on loopback.

The wait happens on the serving thread, one send at a time, as on a link that carries one
message at a time: right for request/reply traffic (one sample in flight); with many samples in
flight it serialises the delays too, so pipelined throughput under emulation is pessimistic.
"""

from __future__ import annotations

import math
import time
from typing import Any

from agent import protocol as P
from agent.handlers import handler
from engine.link import Link

TARGETS = ("agents", "clients", "all")


class _LinkState:
    def __init__(self, agent: Any) -> None:
        self.link: Link | None = None
        self.to = "all"
        self.router = agent.router
        self.send = agent.send_frames  # the agent's own send, called after the wait

    def __call__(self, sock: Any, frames: list, prefix: list | None = None) -> None:
        link = self.link
        if link is not None:
            to_client = sock is self.router
            if self.to == "all" or (self.to == "clients") == to_client:
                nbytes = sum(memoryview(f).nbytes for f in frames)
                time.sleep(link.transfer_ms(nbytes) / 1e3)
        self.send(sock, frames, prefix)


@handler("set_link")
def set_link(agent: Any, msg: P.Message, sender: bytes) -> P.Message:
    c = msg.content
    delay, rate, to = c.get("delay_ms", 0.0), c.get("rate_bit_s"), c.get("to", "all")
    ok_delay = isinstance(delay, int | float) and not isinstance(delay, bool) and 0 <= delay < 1e6
    ok_rate = rate is None or (isinstance(rate, int | float) and not isinstance(rate, bool)
                               and math.isfinite(rate) and rate > 0)
    if not (ok_delay and ok_rate and to in TARGETS):
        raise P.ProtocolError(P.E_BAD_REQUEST, f"set_link takes delay_ms (0 to 1e6), rate_bit_s "
                                               f"(> 0 or null) and to ({', '.join(TARGETS)}). "
                                               f"Received: {str(c)[:120]}")
    state = getattr(agent, "link_state", None)
    if state is None:
        state = _LinkState(agent)
        agent.link_state = state
        agent.send_frames = state  # every send of the agent goes through send_frames
    state.link = Link(float(delay), float(rate) if rate else None) if delay or rate else None
    state.to = to
    return msg.reply("ok", {"delay_ms": float(delay), "rate_bit_s": rate, "to": to})
