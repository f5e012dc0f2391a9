"""Interrupted save: SIGKILL a process at random points while it saves a network; the files on
disk are always one complete version or the other, and the network loads and runs.

The same harness run against a save WITHOUT ``atomic_write`` finds torn files, so the check
can fail. Figures (kills, kills that landed inside a write) are printed with ``-s``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hardening.save_kill import kill_during_saves, make_versions, naive_save


def report(label: str, stats) -> None:
    print(f"\n{label}: {stats.kills} kills, {stats.survived} survived, {stats.mid_write} "
          f"inside a write, one save {stats.save_ms:.1f} ms")


def test_kills_during_saves_leave_loadable_files(tmp_path: Path) -> None:
    stats = kill_during_saves(tmp_path, make_versions([784, 100, 10]), kills=50)
    report("atomic save", stats)
    assert stats.failures == []
    assert stats.survived == stats.kills == 50
    assert stats.mid_write > 0  # some kills really did land inside a write


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
