"""Kill a process at random points while it saves a network, then check what is on disk.

A save is what the app does: ``Repository.store_network`` (``modules.txt`` + ``layout.txt``)
and ``Repository.store_weights`` for every module with parameters (one into ``weights/``, one
into the network's own folder), all through ``engine.fileio.atomic_write``. Two versions of the
same network (same architecture; different weights, positions and description text, so the
files differ in content and length) are saved alternately by a forked child until the parent
SIGKILLs it after a random delay. After every kill each file must be, byte for byte, one of the
two versions, and the network must load and run with the weights found.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.description import NetworkDescription, dumps_network
from engine.graph import Network
from engine.layout import Layout, dumps_layout
from engine.repository import Repository
from engine.weights import weight_filename, weights_to_bytes
from engine.zoo import mlp


@dataclass
class Version:
    desc: NetworkDescription
    layout: Layout
    weights: dict[str, np.ndarray]

    def files(self, root: Path) -> dict[Path, bytes]:
        """Every file a save of this version writes, with its exact bytes."""
        folder = root / self.desc.name
        out = {folder / "modules.txt": dumps_network(self.desc).encode(),
               folder / "layout.txt": dumps_layout(self.layout).encode()}
        for i, (mid, flat) in enumerate(self.weights.items()):
            where = folder if i % 2 else root / "weights"
            out[where / weight_filename(mid)] = weights_to_bytes(flat)
        return out


def make_versions(sizes: list[int]) -> list[Version]:
    versions = []
    for k in range(2):
        desc = mlp(sizes)
        desc.properties = {"description": f"version {k} " + "x" * (300 * k)}
        weights = Network(desc, seed=k).get_weights()
        layout = Layout({m: (100.0 * i + k, 40.0 * k) for i, m in enumerate(desc.modules)})
        versions.append(Version(desc, layout, weights))
    return versions


def save(repo: Repository, v: Version) -> None:
    repo.store_network(v.desc, v.layout)
    for i, (mid, flat) in enumerate(v.weights.items()):
        repo.store_weights(mid, flat, network=v.desc.name if i % 2 else None)


def naive_save(repo: Repository, v: Version) -> None:
    """What a save without atomic_write does (open, truncate, write): the test must catch it."""
    for path, data in v.files(repo.root).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as handle:
            for start in range(0, len(data), 1 << 14):
                handle.write(data[start:start + (1 << 14)])
                handle.flush()


def check(repo: Repository, versions: list[Version]) -> None:
    """Every file is exactly one of the versions; the network loads, takes its weights, runs."""
    for path in versions[0].files(repo.root):
        data = path.read_bytes()
        if data not in {v.files(repo.root)[path] for v in versions}:
            raise AssertionError(f"{path.name}: {len(data)} bytes, neither version")
    name = versions[0].desc.name
    desc = repo.load_network(name)
    assert repo.load_layout(name) is not None
    net = Network(desc)
    net.set_weights(repo.load_weights(desc, sizes=net.parameter_sizes()))
    out = net.forward(np.ones((1, 28, 28), dtype=np.float32))
    assert np.all(np.isfinite(out))


def strays(root: Path) -> set[Path]:
    return {p for p in root.rglob(".*.tmp")}


def fork_child(body: Callable[[int], object]) -> tuple[int, bool]:
    """Fork a child that runs ``body(ready)`` and never returns into the caller (it writes one
    byte to the pipe ``ready`` when it is where it should be killed); wait for that byte.
    Returns the child's pid and whether the byte came (False: the child ended first)."""
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ready_r)
            body(ready_w)
        finally:
            os._exit(1)
    os.close(ready_w)
    try:
        return pid, os.read(ready_r, 1) == b"!"
    finally:
        os.close(ready_r)


def kill_inside_write(root: Path, write: Callable[[], object]) -> set[Path]:
    """Run ``write`` in a forked child whose first fsync never returns (a stalled disk), kill
    it there with SIGKILL and return the temporary files it left under ``root``."""
    before = strays(root)

    def writer(ready: int) -> None:
        def stalled(fd: int) -> None:
            os.write(ready, b"!")
            time.sleep(60)

        os.fsync = stalled  # this process only: it is a fork
        write()

    pid, inside = fork_child(writer)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    if not inside:
        raise AssertionError("the writer ended before it reached a write")
    return strays(root) - before


@dataclass
class KillStats:
    kills: int = 0
    survived: int = 0
    mid_write: int = 0  # kills that left a temporary file: they landed inside a write
    failures: list[str] | None = None
    save_ms: float = 0.0


def kill_during_saves(root: Path, versions: list[Version], kills: int, seed: int = 12,
                      saver: Callable[[Repository, Version], None] = save) -> KillStats:
    repo = Repository(root)
    save(repo, versions[0])
    start = time.perf_counter()
    for k in range(4):
        saver(repo, versions[k % 2])
    save_s = (time.perf_counter() - start) / 4
    rng = random.Random(seed)
    stats = KillStats(failures=[], save_ms=save_s * 1000)
    for i in range(kills):
        before = strays(root)

        def saving(ready: int, k: int = i) -> None:
            os.write(ready, b"!")
            while True:
                saver(repo, versions[k % 2])
                k += 1

        pid, _ = fork_child(saving)
        time.sleep(rng.uniform(0, 3 * save_s))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        stats.kills += 1
        stats.mid_write += bool(strays(root) - before)
        try:
            check(repo, versions)
            stats.survived += 1
        except Exception as exc:  # noqa: BLE001 - collected and reported by the test
            stats.failures.append(f"kill {i}: {type(exc).__name__}: {exc}")
    return stats
