"""Measuring links on the data path: round-trip time and bandwidth from probe forwards.

A probe is a two-module network (Input, Output) deployed with the Input on agent ``a`` and the
Output on agent ``b``; one forward goes client -> a -> b -> client, exactly the way a tensor hop
of a real deployment goes (encoding, the agents' loops, any emulated link included). With
``T_ab(s)`` the median forward time carrying ``s`` bytes:

* the client's link to ``a``: one way is ``T_aa(s) / 2``;
* the hop a -> b is ``T_ab(s) - T_aa(s) / 2 - T_bb(s) / 2``.

A one-float probe gives the round-trip time; the bandwidth comes from the extra time of a
sized probe, grown until it spends about 20 ms on that link (so a slow link is never sent
megabytes). Probes of one size run in interleaved rounds of a few back-to-back forwards (the way
a deployment is timed), so a burst of load on this machine shifts all of them alike instead of
skewing the differences.
"""

from __future__ import annotations

import itertools
import math
import time
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from agent.client import Deployment, deploy
from agent.session import Session
from app.planner import Link, Links
from engine.builder import sequential

CLIENT = "client"
SMALL = 4              # bytes: one float, for the round-trip time
FIRST = 1 << 12        # first sized probe
LARGEST = 1 << 24
TARGET_S = 0.02        # a sized probe should spend about this long on the link
BLOCK = 5              # forwards timed back to back per probe and round


class Probes:
    """Probe deployments over a set of agents; times them in interleaved rounds."""

    def __init__(self, session: Session, conns: Sequence[Any], repeat: int = 10) -> None:
        self.session, self.repeat = session, repeat
        self.conns = {c.info.id: c for c in conns}
        self.times: dict[tuple[str, str, int], float] = {}

    def _deploy(self, a: str, b: str, nbytes: int) -> tuple[Deployment, np.ndarray]:
        n = max(1, nbytes // 4)
        desc = sequential(f"link-probe-{uuid.uuid4().hex[:8]}", [], input_dims=(n,))
        placement = {desc.inputs()[0].id: a, desc.outputs()[0].id: b}
        addresses = list(dict.fromkeys([self.conns[a].info.address, self.conns[b].info.address]))
        return deploy(desc, {}, placement, addresses, session=self.session), \
            np.zeros(n, dtype=np.float32)

    def measure(self, keys: Sequence[tuple[str, str]], nbytes: int, repeat: int) -> None:
        """Median forward time of every probe ``(a, b)`` in ``keys`` carrying ``nbytes``."""
        todo = [k for k in dict.fromkeys(keys) if (*k, nbytes) not in self.times]
        if not todo:
            return
        deps = [self._deploy(a, b, nbytes) for a, b in todo]
        samples: list[list[float]] = [[] for _ in todo]
        try:
            for _ in range(math.ceil(repeat / BLOCK)):
                for i, (dep, x) in enumerate(deps):
                    dep.forward(x)  # wakes the path up: timed forwards run back to back
                    for _ in range(min(BLOCK, repeat)):
                        t0 = time.perf_counter()
                        dep.forward(x)
                        samples[i].append(time.perf_counter() - t0)
        finally:
            for dep, _ in deps:
                dep.undeploy()
        for key, got in zip(todo, samples, strict=True):
            self.times[(*key, nbytes)] = float(np.median(got))

    @staticmethod
    def needs(a: str, b: str) -> list[tuple[str, str]]:
        return [(a, a)] if a == b else [(a, b), (a, a), (b, b)]

    def hop(self, a: str, b: str, nbytes: int) -> float:
        """One-way seconds for ``nbytes`` from ``a`` to ``b`` (a == b: client <-> a)."""
        t = self.times
        if a == b:
            return t[(a, a, nbytes)] / 2.0
        return t[(a, b, nbytes)] - t[(a, a, nbytes)] / 2.0 - t[(b, b, nbytes)] / 2.0

    def fit(self, a: str, b: str) -> Link:
        """The link a - b (a == b: the client's link to a) from small and sized probes."""
        keys = self.needs(a, b)
        self.measure(keys, SMALL, 2 * self.repeat)
        small = self.hop(a, b, SMALL)
        size = FIRST
        while True:
            self.measure(keys, size, 3)
            extra = self.hop(a, b, size) - small
            if extra >= TARGET_S / 2 or size >= LARGEST:
                break
            grow = 64 if extra <= 0 else min(64.0, max(2.0, TARGET_S / extra))
            size = int(min(LARGEST, size * grow))
        self.measure(keys, size, self.repeat)
        extra = self.hop(a, b, size) - small
        bandwidth = (size - SMALL) / extra if extra > 0 else math.inf
        return Link(2.0 * max(0.0, small - SMALL / bandwidth), bandwidth)


def measure_links(session: Session, conns: Sequence[Any], *, repeat: int = 10) -> Links:
    """Links between the client and each agent and between every pair of agents, keyed by
    agent id and ``"client"``."""
    probes = Probes(session, conns, repeat)
    ids = [c.info.id for c in conns]
    probes.measure([k for a, b in itertools.combinations_with_replacement(ids, 2)
                    for k in probes.needs(a, b)], SMALL, 2 * repeat)
    pairs = {(CLIENT, a): probes.fit(a, a) for a in ids}
    pairs.update({(a, b): probes.fit(a, b) for a, b in itertools.combinations(ids, 2)})
    return Links(pairs)
