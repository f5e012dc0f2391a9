"""What the Deploy, Learn and Run tabs share: the open network's weights and its deployment.

:class:`NetState` holds the agents model, the weights in use (read from the network's folder by
tag, or handed over by a finished training job) and the one live :class:`Deployment`. All agent
work goes through :meth:`NetState.call` on a worker thread; a lock keeps one request at a time
on the deployment's session (sessions are not thread-safe). The GUI thread only starts work and
reacts to the signals.

A Big-Little network (engine.biglittle policy in its properties) runs in the Run tab through
:meth:`NetState.classify`: its own deployment (app.biglittle_agents.AgentRunner), the little
part on the default agent (the device) and the big part on another live agent (the server),
which answers from the little network, marked fallback, while the server is unreachable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6 import QtCore

from agent.client import AgentInfo, Deployment, deploy
from app.agents_model import AgentsModel
from engine.description import NetworkDescription
from engine.errors import DianneError


def network_folder(editor: Any) -> Path | None:
    """Where the open network's files lie: its folder, else the bundled example of that name."""
    if editor.folder is not None:
        return Path(editor.folder)
    from app.examples import find_example  # noqa: PLC0415

    try:
        return Path(find_example(editor.desc.name).folder)
    except DianneError:
        return None


def read_weights(desc: NetworkDescription, folder: Path | None, tag: str = ""
                 ) -> dict[str, np.ndarray]:
    """UUID -> flat weights from ``folder`` (and the repository) with ``tag``; {} if none."""
    from engine.composite import load_parts  # noqa: PLC0415
    from engine.graph import Network  # noqa: PLC0415
    from engine.repository import resolve_model  # noqa: PLC0415

    if folder is None:
        return {}
    net = Network(desc)
    sizes = net.parameter_sizes()
    if not sizes:
        return {}
    tags = [t for t in tag.split("-") if t] if tag else []
    source = resolve_model(str(folder))
    source.description = desc  # the edited network, not the one on disk
    try:
        weights = source.load_weights(tags=tags, sizes=sizes)
    except DianneError:
        if tags:
            raise
        weights = {}
    # a composite without its own file (e.g. just grouped and saved): its parts' files
    for mid in load_parts(net, source, loaded=weights):
        weights[mid] = net.modules[mid].get_flat()
    return weights


def weight_tags(folder: Path | None) -> list[str]:
    """The tags of the weight files in ``folder`` ("" = untagged), for the tag chooser."""
    from engine.weights import parse_weight_filename  # noqa: PLC0415

    tags = {""}
    if folder is not None and folder.is_dir():
        for f in folder.iterdir():
            parsed = parse_weight_filename(f.name) if f.is_file() else None
            if parsed is not None:
                tags.add("-".join(parsed[1]))
    return sorted(tags)


def store_weights(folder: Path, weights: dict[str, np.ndarray], tag: str) -> list[Path]:
    """(Worker.) Write ``<uuid>-<tag>`` weight files into the network's folder."""
    from engine.weights import weight_filename, write_weights  # noqa: PLC0415

    tags = [t for t in tag.split("-") if t]
    paths = []
    for mid, flat in weights.items():
        path = Path(folder) / weight_filename(mid, tags)
        write_weights(path, flat)
        paths.append(path)
    return paths


class NetState(QtCore.QObject):
    """``weights_changed`` after new weights (training), ``deployment_changed`` after a
    deploy/undeploy (or its loss)."""

    weights_changed = QtCore.Signal()
    deployment_changed = QtCore.Signal()

    def __init__(self, editor: Any, agents: AgentsModel, workers: Any,
                 parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.editor, self.agents, self.workers = editor, agents, workers
        self.tag = ""
        self.trained: dict[str, np.ndarray] | None = None  # from the Learn tab, newest first
        self.deployment: Deployment | None = None
        self.deployed_names: dict[str, str] = {}  # uuid -> agent name of the live deployment
        self.lock = threading.RLock()
        self.local_agent: Any = None
        self._stale = False
        self.biglittle: Any = None  # engine.biglittle.BigLittle over an AgentRunner
        self._biglittle_stale = False

    # ----------------------------------------------------------------------- weights ---
    def weights(self) -> dict[str, np.ndarray]:
        """The weights to use now (any thread): trained ones if a job finished, else read."""
        if self.trained is not None:
            return dict(self.trained)
        return read_weights(self.editor.desc, network_folder(self.editor), self.tag)

    def set_trained(self, weights: dict[str, np.ndarray]) -> None:
        """New weights from training: a live deployment gets them before its next forward."""
        self.trained = dict(weights)
        self._stale = self._biglittle_stale = True
        self.weights_changed.emit()

    def default_agent(self) -> AgentInfo | None:
        """The local agent when it is alive, else the first live agent."""
        alive = self.agents.alive()
        local = self.local_agent.info if self.local_agent is not None else None
        for info in alive:
            if local is not None and info.id == local.get("id"):
                return info
        return alive[0] if alive else None

    # -------------------------------------------------------------------- deployment ---
    def call(self, fn: Callable[..., Any], *args: Any, on_done: Callable[[Any], None],
             on_error: Callable[[str], None], label: str) -> None:
        """Run ``fn(*args)`` on a worker, holding the deployment lock."""
        def locked(*a: Any) -> Any:
            with self.lock:
                return fn(*a)
        self.workers.start(locked, *args, on_done=on_done, on_error=on_error, label=label)

    def deploy_now(self, placement: dict[str, str], agents: list[AgentInfo]) -> Deployment:
        """(Worker thread, lock held.) Replace the deployment; ``placement``: uuid -> agent
        id, unplaced modules follow their predecessor."""
        self.undeploy_now()
        self._stale = False
        dep = deploy(self.editor.desc, self.weights(), placement, agents)
        self.deployment = dep
        names = {a.id: a.name for a in agents}
        self.deployed_names = {m: names[a] for m, a in dep.placement.items()}
        return dep

    def undeploy_now(self) -> None:
        self.close_biglittle()
        dep, self.deployment = self.deployment, None
        self.deployed_names = {}
        if dep is None:
            return
        alive = {a.id for a in self.agents.alive()}
        for aid, conn in list(dep.conns.items()):
            if aid in alive:
                try:
                    dep.session.request(conn, _undeploy_msg(dep.id), timeout=2.0)
                except DianneError:
                    pass
        dep.session.close()

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        """(Worker thread.) One sample through the deployment; deploys the whole network on the
        default agent first when nothing is deployed. Returns (output, seconds)."""
        with self.lock:
            if self.deployment is None or self.deployment.description is not self.editor.desc:
                agent = self.default_agent()
                if agent is None:
                    raise DianneError("no agent is running: start dianne-agent, or wait for "
                                      "the local agent")
                self.deploy_now(dict.fromkeys(self.editor.desc.modules, agent.id), [agent])
                self._changed_later()
            elif self._stale:
                self.deployment.set_weights(self.weights())
            self._stale = False
            t0 = time.perf_counter()
            y = self.deployment.forward(x[None] if x.ndim else x)
            return np.asarray(y)[0], time.perf_counter() - t0

    def classify(self, x: np.ndarray) -> tuple[Any, str]:
        """(Worker thread.) One sample through the open Big-Little network; deploys it first
        (little part on the default agent, big part on another live agent, else the same).
        Returns (engine.biglittle.Answer, the runner's status in a few words)."""
        from app.biglittle_agents import AgentRunner  # noqa: PLC0415
        from engine.biglittle import BigLittle, split  # noqa: PLC0415

        with self.lock:
            bl = self.biglittle
            if bl is None or bl.parts.whole is not self.editor.desc or self._biglittle_stale:
                self.close_biglittle()
                device = self.default_agent()
                if device is None:
                    raise DianneError("no agent is running: start dianne-agent, or wait for "
                                      "the local agent")
                others = [a for a in self.agents.alive() if a.id != device.id]
                server = others[0] if others else device
                parts = split(self.editor.desc)
                runner = AgentRunner.connect(parts, self.weights(),
                                             [device.address, server.address], device.id,
                                             server.id)
                self.biglittle = bl = BigLittle(parts, runner)
                self._biglittle_stale = False
            return bl.classify(x), bl.runner.status

    def close_biglittle(self) -> None:
        """Undeploy the Big-Little network (any thread; what is gone is skipped)."""
        with self.lock:
            bl, self.biglittle = self.biglittle, None
            if bl is not None:
                try:
                    bl.runner.close()
                except DianneError:
                    pass

    def _changed_later(self) -> None:
        QtCore.QMetaObject.invokeMethod(self, "_emit_changed",
                                        QtCore.Qt.ConnectionType.QueuedConnection)

    @QtCore.Slot()
    def _emit_changed(self) -> None:
        self.deployment_changed.emit()


def _undeploy_msg(dep_id: str) -> Any:
    from agent import protocol as P  # noqa: PLC0415

    return P.Message("undeploy", {"deployment": dep_id})
