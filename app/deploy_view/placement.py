"""Assignments of modules to agents: ``placement.json`` next to ``modules.txt`` and undo.

The file is a JSON object ``{module uuid: agent name}``; modules not in it are unassigned (on
deploy they follow their predecessor). Each change is one step on a ``QUndoStack``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from PySide6 import QtGui

from engine.errors import FormatError
from engine.fileio import atomic_write

FILE = "placement.json"


def read_placement(folder: Path | None) -> dict[str, str]:
    if folder is None or not (Path(folder) / FILE).is_file():
        return {}
    path = Path(folder) / FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FormatError(f"{path}: not a placement file: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                             for k, v in data.items()):
        raise FormatError(f"{path}: a placement is an object {{module uuid: agent name}}")
    return data


def write_placement(folder: Path, placement: dict[str, str]) -> Path:
    """Write the placement unless the file already says the same (opening a network must not
    write into its folder: it may be a read-only example); no file for an empty placement."""
    path = Path(folder) / FILE
    try:
        same = read_placement(folder) == placement if path.exists() else not placement
    except FormatError:
        same = False  # a damaged file is replaced
    if same:
        return path
    atomic_write(path, json.dumps(dict(sorted(placement.items())), indent=2) + "\n")
    return path


class _SetPlacement(QtGui.QUndoCommand):
    def __init__(self, owner: Placement, old: dict[str, str], new: dict[str, str],
                 text: str) -> None:
        super().__init__(text)
        self.owner, self.old, self.new = owner, old, new

    def redo(self) -> None:
        self.owner._apply(self.new)  # noqa: SLF001

    def undo(self) -> None:
        self.owner._apply(self.old)  # noqa: SLF001


class Placement:
    """The current assignment; ``on_change(placement)`` after every set, undo and redo."""

    def __init__(self, on_change: Callable[[dict[str, str]], None]) -> None:
        self.value: dict[str, str] = {}
        self.stack = QtGui.QUndoStack()
        self.on_change = on_change

    def reset(self, value: dict[str, str]) -> None:
        self.stack.clear()
        self._apply(dict(value))

    def assign(self, modules: list[str], agent: str | None) -> None:
        new = dict(self.value)
        for m in modules:
            if agent is None:
                new.pop(m, None)
            else:
                new[m] = agent
        if new != self.value:
            what = f"{len(modules)} module{'s' * (len(modules) != 1)}"
            self.stack.push(_SetPlacement(self, dict(self.value), new,
                                          f"assign {what} to {agent or 'no agent'}"))

    def replace(self, value: dict[str, str], text: str) -> None:
        if value != self.value:
            self.stack.push(_SetPlacement(self, dict(self.value), dict(value), text))

    def _apply(self, value: dict[str, str]) -> None:
        self.value = dict(value)
        self.on_change(self.value)
