"""Shared by the placement benchmarks: loopback agents with emulated speeds and links.

:class:`Lab` starts ``dianne-agent`` processes on 127.0.0.1 (no zeroconf), tells each how much
slower than this machine to be and what link to emulate towards every other agent and towards the
client (the benchmark process, which sits with the first agent, the "device"), and times
single-sample forwards of a deployment. Every process it starts is killed on :meth:`close`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agent import protocol as P
from agent.client import Deployment, deploy
from agent.session import AgentError, Session
from app.linkprobe import CLIENT
from app.planner import Link
from engine.description import NetworkDescription


@dataclass
class LabAgent:
    name: str
    id: str
    address: str
    slowdown: float
    proc: subprocess.Popen


class Lab:
    """Agents named ``names`` with the given slowdowns; the first one hosts the client."""

    def __init__(self, names: Sequence[str], slowdowns: Sequence[float]) -> None:
        self.agents: list[LabAgent] = []
        self.session = Session()
        env = dict(os.environ, DIANNE_BACKEND=os.environ.get("DIANNE_BACKEND", "numpy"))
        try:
            procs = []
            for name in names:
                log = tempfile.TemporaryFile("w+")
                proc = subprocess.Popen([sys.executable, "-m", "agent", "--name", name,
                                         "--no-discovery"], stdout=subprocess.PIPE,
                                        stderr=log, text=True, env=env)
                proc.log = log  # type: ignore[attr-defined]
                procs.append(proc)
            for name, slow, proc in zip(names, slowdowns, procs, strict=True):
                line = proc.stdout.readline() if proc.stdout else ""
                if not line:
                    proc.log.seek(0)  # type: ignore[attr-defined]
                    raise AgentError(f"agent {name} did not start: "
                                     f"{proc.log.read()[-400:]}")  # type: ignore[attr-defined]
                info = json.loads(line)
                self.agents.append(LabAgent(name, info["id"], info["address"], slow, proc))
            self.conns = {a.name: self.session.connect(a.address) for a in self.agents}
            self.emulate({})  # the slowdowns hold from the start (profiling included)
        except BaseException:
            for proc in procs:
                proc.kill()
            self.close()
            raise

    @property
    def ids(self) -> dict[str, str]:
        return {a.name: a.id for a in self.agents}

    def named(self, obj: Any) -> Any:
        """``obj`` (text, or JSON-like) with agent ids replaced by agent names."""
        if isinstance(obj, dict):
            return {self.named(k): self.named(v) for k, v in obj.items()}
        if isinstance(obj, str):
            for a in self.agents:
                obj = obj.replace(a.id, a.name)
        return obj

    @property
    def addresses(self) -> list[str]:
        return [a.address for a in self.agents]

    def emulate(self, links: Mapping[tuple[str, str], Link]) -> None:
        """Set every agent's slowdown and its links: ``links[(a, b)]`` between agent names
        (either order); the client sits with the first agent, so its link to any other agent
        is that agent's link to the first one, and to the first one no link at all."""
        device = self.agents[0].name

        def between(a: str, b: str) -> Link | None:
            return None if a == b else links.get((a, b)) or links.get((b, a))

        for a in self.agents:
            table = {}
            for b in self.agents:
                found = between(a.name, b.name)
                if found is not None:
                    table[b.id] = found.to_json()
            to_client = between(a.name, device)
            if to_client is not None:
                table[CLIENT] = to_client.to_json()
            self.session.request(self.conns[a.name], P.Message(
                "emulate", {"slowdown": a.slowdown, "links": table}))

    def deploy(self, desc: NetworkDescription, weights: Mapping[str, np.ndarray],
               placement: Mapping[str, str]) -> Deployment:
        return deploy(desc, weights, placement, self.addresses, session=self.session)

    def time_samples(self, dep: Deployment, x: np.ndarray, n: int, *, warmup: int = 2,
                     budget_s: float = 20.0) -> list[float]:
        """Seconds of ``n`` back-to-back forwards after ``warmup`` (fewer when slow)."""
        t0 = time.perf_counter()
        for _ in range(warmup):
            dep.forward(x)
        each = (time.perf_counter() - t0) / max(1, warmup)
        samples = []
        for _ in range(max(1, min(n, int(budget_s / max(each, 1e-6))))):
            t0 = time.perf_counter()
            dep.forward(x)
            samples.append(time.perf_counter() - t0)
        return samples

    def time_forward(self, dep: Deployment, x: np.ndarray, *, repeat: int = 5,
                     budget_s: float = 20.0) -> float:
        """Median seconds of one forward (after one warm-up); fewer repeats when slow."""
        return float(np.median(self.time_samples(dep, x, repeat, warmup=1,
                                                 budget_s=budget_s)))

    def close(self) -> None:
        for a in self.agents:
            if a.proc.poll() is None:
                a.proc.terminate()
        for a in self.agents:
            try:
                a.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                a.proc.kill()
                a.proc.wait()
        self.agents = []
        self.session.close()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
