"""A training job on an agent, followed from a thread of its own.

:class:`JobRunner` starts the job (``AgentClient.start_job``), collects the agent's
``progress.<job>`` events into a queue that the Learn tab drains on a timer (so plotting never
runs per event), fetches the final weights and reports the end through a queued signal. Stop
goes over a separate connection, so it never waits behind the follower thread.
"""

from __future__ import annotations

import collections
import threading
from typing import Any

from PySide6 import QtCore


class JobRunner(QtCore.QObject):
    started = QtCore.Signal(str)  # job id
    finished = QtCore.Signal(object)  # {"status": ..., "weights": ...} or {"error": ...}

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.progress: collections.deque[dict[str, Any]] = collections.deque()
        self.job: str | None = None
        self.address: str | None = None
        self.thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def start(self, address: str, desc: Any, weights: dict, dataset: str,
              options: dict[str, Any], content: dict[str, Any]) -> None:
        self.address, self.job = address, None
        self.thread = threading.Thread(target=self._run, name="learn-job", daemon=True,
                                       args=(address, desc, weights, dataset, options, content))
        self.thread.start()

    def _run(self, address, desc, weights, dataset, options, content) -> None:
        from agent.client import AgentClient  # noqa: PLC0415

        try:
            with AgentClient(address) as client:
                self.job = client.start_job(desc, weights, dataset, options, **content)
                self.started.emit(self.job)
                status = client.wait_job(self.job, on_progress=self.progress.append)
                out = {"status": status}
                if status.get("state") in ("done", "stopped"):
                    out["weights"] = client.job_weights(self.job)
                elif status.get("error"):
                    out["error"] = status["error"]
        except Exception as exc:  # noqa: BLE001 - shown to the user
            out = {"error": " ".join(str(exc).split())}
        self.finished.emit(out)

    def stop(self) -> None:
        """Ask the agent to stop the job (on a thread; the end comes through ``finished``)."""
        job, address = self.job, self.address
        if job is None or address is None:
            return

        def ask() -> None:
            from agent.client import AgentClient  # noqa: PLC0415

            try:
                with AgentClient(address) as client:
                    client.stop_job(job)
            except Exception:  # noqa: BLE001 - the follower reports what happened
                pass
        threading.Thread(target=ask, name="learn-stop", daemon=True).start()
