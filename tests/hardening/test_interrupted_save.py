"""Interrupted save: SIGKILL a process at random points while it saves a network; the files on
disk are always one complete version or the other, and the network loads and runs.

The same harness run against a save WITHOUT ``atomic_write`` finds torn files, so the check
can fail. Figures (kills, kills that landed inside a write) are printed with ``-s``. The
temporary files a killed save leaves are removed by the next save into that folder (or by
opening the network), and nothing else there is touched.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from app.editor.document import open_folder
from engine import fileio
from engine.repository import Repository
from tests.hardening.save_kill import (
    check,
    kill_during_saves,
    kill_inside_write,
    make_versions,
    naive_save,
    save,
    strays,
)


def report(label: str, stats) -> None:
    print(f"\n{label}: {stats.kills} kills, {stats.survived} survived, {stats.mid_write} "
          f"inside a write, one save {stats.save_ms:.1f} ms")


def test_kills_during_saves_leave_loadable_files(tmp_path: Path) -> None:
    stats = kill_during_saves(tmp_path, make_versions([784, 100, 10]), kills=50)
    report("atomic save", stats)
    assert stats.failures == []
    assert stats.survived == stats.kills == 50
    assert stats.mid_write > 0  # some kills really did land inside a write
    save(Repository(tmp_path), make_versions([784, 100, 10])[0])
    assert strays(tmp_path) == set()  # what the last kills left went with the next save


def test_the_harness_catches_a_non_atomic_save(tmp_path: Path) -> None:
    stats = kill_during_saves(tmp_path, make_versions([784, 100, 10]), kills=20,
                              saver=naive_save)
    report("naive save", stats)
    assert stats.failures, "no torn file found: the harness would not notice a broken save"


@pytest.mark.slow
def test_kills_during_saves_full_size(tmp_path: Path) -> None:
    stats = kill_during_saves(tmp_path, make_versions([784, 1000, 1000, 10]), kills=1000)
    report("atomic save, full size", stats)
    assert stats.failures == []
    assert stats.survived == stats.kills == 1000


def _keepers(folder: Path) -> dict[str, float]:
    """Files beside a killed save's temporaries that a save must leave alone: names that are
    not exactly a temporary name, a directory with one, a temporary of a live writer (this
    process) or of another machine, and a fresh one without a pid. Returns name -> mtime."""
    old = time.time() - fileio.STALE_AFTER_S - 60
    live = f".modules.txt.dianne-{os.getpid()}-{fileio._HOST_TAG}.abcd_123.tmp"  # noqa: SLF001
    other_host = "0" * 8 if fileio._HOST_TAG != "0" * 8 else "1" * 8  # noqa: SLF001
    names = {".modules.txt.tmp": old, "modules.txt.abcdefgh.tmp": old, "notes.tmp": old,
             ".modules.txt.ABCDEFGH.tmp": old, ".modules.txt.abcdefgh.tmp.bak": old,
             ".hidden": old, live: time.time(),
             f".layout.txt.dianne-999999999-{other_host}.abcdefgh.tmp": time.time(),
             ".layout.txt.abcdefgh.tmp": time.time()}
    for name, mtime in names.items():
        (folder / name).write_text("keep")
        os.utime(folder / name, (mtime, mtime))
    (folder / ".x.abcdefgh.tmp").mkdir()
    return {**names, ".x.abcdefgh.tmp": 0.0}


def test_the_next_save_removes_what_a_killed_save_left(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    v0, v1 = make_versions([784, 100, 10])
    save(repo, v0)
    folder, weights = tmp_path / v0.desc.name, tmp_path / "weights"
    mid, flat = next(iter(v1.weights.items()))
    left = kill_inside_write(tmp_path, lambda: save(repo, v1))
    left |= kill_inside_write(tmp_path, lambda: repo.store_weights(mid, flat))
    assert {p.parent for p in left} == {folder, weights}  # one in each folder a save writes
    ancient = weights / ".weights-of-a-crash.k3j4h5g6.tmp"  # an older name, hours old
    ancient.write_bytes(b"x")
    os.utime(ancient, (time.time() - 7200, time.time() - 7200))
    keep = _keepers(folder)
    check(repo, [v0, v1])  # the killed saves changed nothing yet

    save(repo, v1)
    assert strays(tmp_path) & (left | {ancient}) == set()
    assert sorted(p.name for p in folder.iterdir() if p.name in keep) == sorted(keep)
    check(repo, [v1])


def test_opening_a_network_folder_removes_what_a_killed_save_left(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    v0, v1 = make_versions([784, 100, 10])
    save(repo, v0)
    left = kill_inside_write(tmp_path, lambda: repo.store_network(v1.desc, v1.layout))
    assert len(left) == 1
    assert repo.load_network(v0.desc.name).modules.keys() == v0.desc.modules.keys()
    assert strays(tmp_path) == set()
    left = kill_inside_write(tmp_path, lambda: repo.store_network(v1.desc, v1.layout))
    assert len(left) == 1
    opened = open_folder(tmp_path / v0.desc.name)  # the desktop app's File > Open
    assert opened.desc.name == v0.desc.name and strays(tmp_path) == set()
