"""Real ``dianne-agent`` processes on 127.0.0.1 for the agent tests, always killed at the end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import ROOT


@dataclass
class AgentProc:
    proc: subprocess.Popen
    id: str
    name: str
    address: str
    events: str

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=5)


def start_agents(names: list[str], *extra: str, discovery: bool = False) -> list[AgentProc]:
    """Start one agent process per name (in parallel) and wait for their ready lines."""
    env = dict(os.environ, DIANNE_BACKEND="numpy", PYTHONPATH=str(ROOT))
    procs = []
    for name in names:
        cmd = [sys.executable, "-m", "agent", "--name", name, *extra]
        if not discovery:
            cmd.append("--no-discovery")
        log = tempfile.TemporaryFile("w+")  # a pipe nobody reads could fill up and block
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env,
                                cwd=ROOT)
        proc.log = log
        procs.append(proc)
    agents = []
    try:
        for p in procs:
            line = p.stdout.readline()
            if not line:
                p.wait()
                p.log.seek(0)
                raise RuntimeError(f"agent did not start: {p.log.read()}")
            info = json.loads(line)
            agents.append(AgentProc(p, info["id"], info["name"], info["address"],
                                    info["events"]))
    except BaseException:
        for p in procs:
            p.kill()
            p.wait()
        raise
    return agents


@pytest.fixture
def spawn() -> Iterator:
    """``spawn(names, *options)`` -> started agents; every one is killed at teardown."""
    started: list[AgentProc] = []

    def _spawn(names: list[str], *extra: str, discovery: bool = False) -> list[AgentProc]:
        agents = start_agents(names, *extra, discovery=discovery)
        started.extend(agents)
        return agents

    yield _spawn
    for a in started:
        a.kill()


@pytest.fixture(scope="module")
def trio() -> Iterator[list[AgentProc]]:
    """Three agents shared by the tests of one module."""
    agents = start_agents(["alpha", "beta", "gamma"])
    yield agents
    for a in agents:
        a.kill()
