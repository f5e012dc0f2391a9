"""Action rules, as the paper's "open a door": when class X has probability >= p for k frames
in a row, run a command or show a notification. Saved with the network as ``actions.json``
(a list of rule objects). Only the desktop app executes them, never an agent.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from engine.errors import FormatError
from engine.fileio import atomic_write

FILE = "actions.json"
KINDS = ("notify", "command")


@dataclass
class Rule:
    label: str
    threshold: float = 0.9
    frames: int = 3
    kind: str = "notify"
    command: str = ""

    def describe(self) -> str:
        then = f"run {self.command!r}" if self.kind == "command" else "notify"
        return f"when {self.label} \u2265 {self.threshold:g} for {self.frames} frames: {then}"


def read_rules(folder: Path | None) -> list[Rule]:
    if folder is None or not (Path(folder) / FILE).is_file():
        return []
    path = Path(folder) / FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        rules = [Rule(label=str(r["label"]), threshold=float(r["threshold"]),
                      frames=int(r["frames"]), kind=str(r["kind"]),
                      command=str(r.get("command", ""))) for r in data]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FormatError(f"{path}: not an actions file: {exc}") from None
    for r in rules:
        if r.kind not in KINDS or r.frames < 1:
            raise FormatError(f"{path}: bad rule {r.describe()} (kind notify|command, "
                              f"frames >= 1)")
    return rules


def write_rules(folder: Path, rules: list[Rule]) -> Path:
    path = Path(folder) / FILE
    atomic_write(path, json.dumps([asdict(r) for r in rules], indent=2) + "\n")
    return path


class RuleEngine:
    """Counts consecutive frames per rule; :meth:`feed` returns the rules that fire now (once
    per run of frames: a rule fires again only after its condition was false)."""

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = list(rules)
        self.counts = [0] * len(self.rules)
        self.fired = [False] * len(self.rules)

    def feed(self, probs: dict[str, float]) -> list[Rule]:
        out = []
        for i, r in enumerate(self.rules):
            if probs.get(r.label, 0.0) >= r.threshold:
                self.counts[i] += 1
                if self.counts[i] >= r.frames and not self.fired[i]:
                    self.fired[i] = True
                    out.append(r)
            else:
                self.counts[i], self.fired[i] = 0, False
        return out
