"""Real zeroconf on loopback: agents announce themselves, browsers find them, heartbeats tell
when one is gone. (Other agents may be announced on loopback too; only ours are checked.)"""

from __future__ import annotations

import json
import signal
import threading
import time

from agent.client import discover
from agent.discovery import Browser
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
