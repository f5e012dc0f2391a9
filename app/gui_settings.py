"""The desktop app's own settings (no Qt): first start, recent networks. A small JSON file.

Stored in ``$DIANNE_CONFIG_DIR/app.json``, else ``$XDG_CONFIG_HOME/dianne/app.json``, else
``~/.config/dianne/app.json``; written atomically. A damaged file is ignored (and replaced on
the next write) rather than stopping the app.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from engine.fileio import atomic_write

log = logging.getLogger(__name__)
MAX_RECENT = 8


def config_dir() -> Path:
    if os.environ.get("DIANNE_CONFIG_DIR"):
        return Path(os.environ["DIANNE_CONFIG_DIR"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "dianne"


@dataclass
class Settings:
    first_start_done: bool = False
    recent: list[str] = field(default_factory=list)
    path: Path | None = None

    @classmethod
    def load(cls, path: Path | None = None) -> Settings:
        p = path or config_dir() / "app.json"
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
            recent = [str(r) for r in doc.get("recent", []) if isinstance(r, str)]
            return cls(bool(doc.get("first_start_done")), recent[:MAX_RECENT], p)
        except FileNotFoundError:
            return cls(path=p)
        except (OSError, ValueError, AttributeError) as exc:
            log.warning("ignoring unreadable settings %s: %s", p, exc)
            return cls(path=p)

    def save(self) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, json.dumps({"first_start_done": self.first_start_done,
                                                "recent": self.recent}, indent=1))
        except OSError as exc:
            log.warning("cannot save settings %s: %s", self.path, exc)

    def add_recent(self, folder: str | Path) -> None:
        """Put a network folder (kept absolute) or a bundled example (``example:NAME``, kept as
        it is) first in the recent list."""
        text = folder if isinstance(folder, str) and folder.startswith("example:") else str(
            Path(folder).resolve())
        self.recent = [text] + [r for r in self.recent if r != text]
        del self.recent[MAX_RECENT:]
        self.save()
