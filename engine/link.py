"""A link model for emulating a network between a device and a server: delay plus rate.

``parse_link("20ms,10Mbit")`` gives a :class:`Link` whose :meth:`Link.transfer_ms` is the time a
send of N bytes takes from first byte out to last byte in: the one-way delay plus N*8/rate. It is
applied to every send in each direction, like ``tc netem delay 20ms rate 10mbit`` on both ends,
so a request/reply round trip costs two delays. Used by Big-Little (modelled or emulated in
process) and by agents that emulate a link on loopback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.errors import DianneError

_TIME = {"us": 1e-3, "ms": 1.0, "s": 1e3}
_RATE = {"bit": 1.0, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "bps": 8.0, "kbps": 8e3,
         "mbps": 8e6, "gbps": 8e9}


@dataclass(frozen=True)
class Link:
    """A link model: one-way delay plus a rate limit, applied to every send in each direction."""

    delay_ms: float = 0.0
    rate_bit_s: float | None = None

    def transfer_ms(self, nbytes: int) -> float:
        """Milliseconds from the first byte sent to the last byte received."""
        wire = 0.0 if not self.rate_bit_s else nbytes * 8.0 / self.rate_bit_s * 1e3
        return self.delay_ms + wire

    def __str__(self) -> str:
        rate = f",{self.rate_bit_s / 1e6:g}Mbit" if self.rate_bit_s else ""
        return f"{self.delay_ms:g}ms{rate}"


def parse_link(text: str) -> Link:
    """``"50ms"``, ``"20ms,10Mbit"``, ``"1Mbit"``: delay (us/ms/s) and rate (bit/kbit/Mbit/
    Gbit per second, or bps/kbps/Mbps/Gbps bytes per second), comma separated, either order."""
    delay, rate = 0.0, None
    for part in [p.strip() for p in str(text).split(",") if p.strip()]:
        m = re.fullmatch(r"([0-9]*\.?[0-9]+(?:e[-+]?\d+)?)\s*([a-zA-Z/]+)", part)
        unit = m.group(2).lower().removesuffix("/s") if m else ""
        if m and unit in _TIME:
            delay = float(m.group(1)) * _TIME[unit]
        elif m and unit in _RATE and float(m.group(1)) > 0:
            rate = float(m.group(1)) * _RATE[unit]
        else:
            raise DianneError(f"a link is a delay (e.g. 20ms) and/or a rate (e.g. 10Mbit), "
                              f"comma separated. Received: {text!r}")
    return Link(delay, rate)
