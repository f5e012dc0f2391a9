"""This computer's own agent for the desktop app: ``dianne-agent`` on loopback, in the background.

:class:`LocalAgent` starts ``python -m agent`` bound to ``tcp://127.0.0.1:0`` and announced on the
loopback interface only, with no console window and its output discarded; the address it prints
on its first line is read on a thread (the GUI never waits on it). :meth:`LocalAgent.stop` ends
it (SIGTERM, then SIGKILL after 3 s); it is also stopped when the Python process exits.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class LocalAgent:
    """One background agent process; ``on_ready(info)`` gets its ``{id, name, address, events}``
    (from a background thread), ``on_failed(message)`` when it could not start."""

    def __init__(self, name: str | None = None, *, backend: str | None = None) -> None:
        self.name = name or f"local-{socket.gethostname().split('.')[0]}"
        self.backend = backend
        self.proc: subprocess.Popen | None = None
        self.info: dict[str, Any] | None = None

    def start(self, on_ready: Callable[[dict[str, Any]], None],
              on_failed: Callable[[str], None]) -> None:
        cmd = [sys.executable, "-m", "agent", "--name", self.name, "--bind", "tcp://127.0.0.1:0",
               "--advertise-interface", "127.0.0.1", "--exit-with-parent"]
        if self.backend:
            cmd += ["--backend", self.backend]
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)  # no console on Windows
        # stdin: a pipe this process holds open; when it ends, however, the agent stops too
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, creationflags=flags,
                                     start_new_session=os.name == "posix")
        atexit.register(self.stop)
        proc = self.proc

        def read() -> None:
            line = proc.stdout.readline() if proc.stdout else ""
            try:
                self.info = json.loads(line)
            except ValueError:
                if self.proc is not proc:  # stopped while starting: nothing to report
                    return
                err = (proc.stderr.read() if proc.stderr else "").strip().splitlines()
                on_failed(f"the local agent did not start: {err[-1] if err else 'no output'}")
                return
            on_ready(self.info)
            for stream in (proc.stdout, proc.stderr):  # keep draining so it never blocks
                threading.Thread(target=_drain, args=(stream,), daemon=True).start()

        threading.Thread(target=read, name="local-agent-start", daemon=True).start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(3)
        atexit.unregister(self.stop)


def _drain(stream: Any) -> None:
    if stream is None:
        return
    try:
        for _ in stream:
            pass
    except (OSError, ValueError):
        pass
