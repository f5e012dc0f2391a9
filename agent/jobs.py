"""Training jobs on an agent: ``engine.training.Trainer`` on a thread of its own.

A job holds a whole network (built from the description and weights the client sent) and a
dataset opened on the agent (a spec string such as ``mnist`` or ``mnist:DIR``). The serving
loop keeps answering while the job runs; progress dicts go out as ``progress.<job>`` events on
the agent's PUB socket, the end as one ``job.<job>`` event (state ``done``, ``stopped``,
``nan`` or ``failed``, with the Trainer's summary or the error). The last weights of each
snapshot tag are kept for ``get_job_weights``, and stored in the agent's repository when it has
one and the job has a ``tag``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from engine.description import NetworkDescription
from engine.errors import DianneError

log = logging.getLogger(__name__)


def open_data(spec: Any, range_: Any = None, labels: Any = None, other: bool = False) -> Any:
    """A dataset from a job's content (spec string, range [a, b], labels list)."""
    from engine.datasets.spec import open_dataset  # noqa: PLC0415

    if not isinstance(spec, str) or not spec:
        raise DianneError(f"a dataset is a spec string such as 'mnist'. Received: {spec!r}")
    if range_ is not None and not (isinstance(range_, list) and
                                   all(isinstance(v, int) for v in range_)):
        raise DianneError(f"a range is a list of integers. Received: {range_!r}")
    if labels is not None and not isinstance(labels, list):
        raise DianneError(f"labels is a list. Received: {labels!r}")
    return open_dataset(spec, range_=range_, labels=labels, other=bool(other))


class TrainingJob:
    """One training run; :meth:`start` runs it on a thread, :meth:`stop` asks it to stop."""

    def __init__(self, job_id: str, desc: NetworkDescription, weights: dict[str, np.ndarray],
                 content: dict[str, Any], backend: Any,
                 publish: Callable[[str, dict[str, Any]], None],
                 repository: str | None = None) -> None:
        from engine.graph import Network  # noqa: PLC0415
        from engine.training import TrainConfig, Trainer  # noqa: PLC0415

        self.id, self.publish, self.repository = job_id, publish, repository
        self.state = "running"
        self.progress: dict[str, Any] | None = None
        self.result: dict[str, Any] | None = None
        self.error: str | None = None
        self.snapshots: dict[str, dict[str, np.ndarray]] = {}
        self._stop = threading.Event()
        options = content.get("options") or {}
        if not isinstance(options, dict):
            raise DianneError(f"job options are a flat object. Received: {str(options)[:60]}")
        self.net = Network(desc, backend=backend, seed=int(content.get("seed") or 0))
        if weights:
            self.net.set_weights(weights, source=f"job {job_id}")
        train = open_data(content.get("dataset"), content.get("range"),
                          content.get("labels"), content.get("other", False))
        val = content.get("validation")
        validation = None
        if isinstance(val, dict):
            validation = open_data(val.get("dataset"), val.get("range"), val.get("labels"),
                                   val.get("other", False))
        self.run_args = {k: content[k] for k in ("epochs", "iterations")
                         if content.get(k) is not None}
        self.trainer = Trainer(self.net, train, TrainConfig.from_options(options),
                               validation=validation, seed=int(content.get("seed") or 0),
                               output=content.get("output"))
        self.thread = threading.Thread(target=self._run, name=f"job-{job_id[:8]}", daemon=True)

    def start(self) -> TrainingJob:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def status(self) -> dict[str, Any]:
        return {"job": self.id, "state": self.state, "progress": self.progress,
                "result": self.result, "error": self.error,
                "tags": sorted(self.snapshots)}

    def _on_progress(self, p: dict[str, Any]) -> None:
        self.progress = p
        self.publish(f"progress.{self.id}", {"job": self.id, **p})

    def _on_snapshot(self, tags: list[str], weights: dict[str, np.ndarray]) -> None:
        key = "-".join(tags)
        self.snapshots[key] = {k: np.array(v, copy=True) for k, v in weights.items()}
        if self.repository and tags:
            from engine.repository import Repository  # noqa: PLC0415

            repo = Repository(self.repository)
            for mid, flat in weights.items():
                repo.store_weights(mid, flat, tags=tags)

    def _run(self) -> None:
        try:
            self.result = self.trainer.run(on_progress=self._on_progress,
                                           should_stop=self._stop.is_set,
                                           on_snapshot=self._on_snapshot, **self.run_args)
            self.state = self.result.get("stopped") or "done"
        except Exception as exc:  # reported as an event: the agent keeps serving
            log.exception("job %s failed", self.id)
            self.error, self.state = f"{type(exc).__name__}: {exc}", "failed"
        self.publish(f"job.{self.id}", self.status())

    def weights(self, tag: str | None = None) -> dict[str, np.ndarray]:
        """The weights of snapshot ``tag`` (default: the final one, else the current ones)."""
        if tag is not None:
            if tag not in self.snapshots:
                raise DianneError(f"job {self.id} has no snapshot {tag!r} (has: "
                                  f"{', '.join(self.snapshots) or 'none'}). Received: {tag}")
            return self.snapshots[tag]
        if self.state == "running":
            raise DianneError(f"job {self.id} is still running; stop it or ask for a "
                              f"snapshot tag")
        return self.net.get_weights()
