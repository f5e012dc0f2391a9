"""Real zeroconf on loopback: agents announce themselves, browsers find them, heartbeats tell
when one is gone. (Other agents may be announced on loopback too; only ours are checked.)"""

from __future__ import annotations

import json
import signal
import threading
import time

import pytest

from agent.client import discover
from agent.discovery import AgentInfo, Browser
from app.cli import main


def _wait(cond, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.05)
    return cond()


def test_discover_and_gone_within_two_seconds(spawn, capsys) -> None:
    a, b = spawn(["disc-a", "disc-b"], discovery=True)
    gone, seen = threading.Event(), threading.Event()

    def on_change(kind: str, info) -> None:
        if info.id == b.id:
            (gone if kind == "gone" else seen).set()

    browser = Browser("127.0.0.1", on_change=on_change)
    try:
        assert _wait(lambda: {a.id, b.id} <= {i.id for i in browser.agents()}, 10.0)
        assert seen.is_set()
        mine = {i.name: i for i in discover(interface="127.0.0.1", timeout=2.0)
                if i.id in (a.id, b.id)}
        assert set(mine) == {"disc-a", "disc-b"}
        assert mine["disc-a"].address == a.address and mine["disc-a"].events == a.events
        assert "numpy" in mine["disc-b"].backends and mine["disc-b"].cores >= 1
        assert main(["agents", "--interface", "127.0.0.1", "--json", "--timeout", "2"]) == 0
        rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
        assert rows[a.id]["name"] == "disc-a" and rows[b.id]["address"] == b.address

        t0 = time.monotonic()
        b.kill()  # SIGKILL: no zeroconf goodbye, only the heartbeat stops
        assert gone.wait(5.0)
        assert time.monotonic() - t0 < 2.0
        assert [i.name for i in browser.agents() if i.id in (a.id, b.id)] == ["disc-a"]
        a.proc.send_signal(signal.SIGTERM)  # a clean stop: unregistered, sockets closed
        assert a.proc.wait(timeout=10) == 0
        assert _wait(lambda: all(i.id != a.id for i in browser.agents()), 2.0)
    finally:
        browser.close()


def test_an_agent_added_by_hand_is_followed_by_its_heartbeat(spawn) -> None:
    """An agent that does not announce itself (the app's loopback local agent) is added with
    Browser.add: it turns up once it beats and is reported gone when killed."""
    (quiet,) = spawn(["disc-quiet"])  # --no-discovery: zeroconf never sees it
    events: list[tuple[str, str]] = []
    gone = threading.Event()

    def on_change(kind: str, info) -> None:
        if info.id == quiet.id:
            events.append((kind, info.name))
            if kind == "gone":
                gone.set()

    browser = Browser("127.0.0.1", on_change=on_change)
    try:
        info = AgentInfo(id=quiet.id, name=quiet.name, address=quiet.address,
                         events=quiet.events)
        assert browser.add(info) is True
        assert browser.add(AgentInfo(id=quiet.id, name="other", address=quiet.address,
                                     events=quiet.events)) is False  # known: left as it is
        assert _wait(lambda: any(i.id == quiet.id for i in browser.agents()), 5.0)
        assert [i.name for i in browser.agents() if i.id == quiet.id] == ["disc-quiet"]
        with pytest.raises(ValueError, match="no events address"):
            browser.add(AgentInfo(id="x" * 32, name="mute", address=quiet.address))
        quiet.kill()
        assert gone.wait(5.0)
        assert events == [("added", "disc-quiet"), ("gone", "disc-quiet")]
        assert all(i.id != quiet.id for i in browser.agents())
    finally:
        browser.close()
