"""The example networks bundled in ``resources/examples`` (DIANNE network folders).

Each example is a folder with ``modules.txt`` (and optionally ``layout.txt`` and weight files),
exactly as in a DIANNE repository's ``models/<name>/``. ``copy_example`` copies one to a folder
of the user's choice (refusing to overwrite a non-empty folder).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from engine.description import read_network
from engine.errors import DianneError


@dataclass(frozen=True)
class Example:
    name: str
    folder: Path
    description: str
    modules: int
    has_weights: bool


def examples_dir() -> Path:
    return Path(str(resources.files("resources") / "examples"))


def list_examples() -> list[Example]:
    out = []
    root = examples_dir()
    for folder in sorted(p for p in root.iterdir() if (p / "modules.txt").is_file()):
        desc = read_network(folder)
        about = (desc.properties or {}).get("description", "")
        weights = any(len(p.name) >= 36 and p.name[8] == "-" for p in folder.iterdir())
        out.append(Example(folder.name, folder, about, len(desc.modules), weights))
    return out


def find_example(name: str) -> Example:
    found = {e.name: e for e in list_examples()}
    if name not in found:
        raise DianneError(f"no example network named {name!r} (available: "
                          f"{', '.join(sorted(found))}). Received: {name!r}")
    return found[name]


def copy_example(name: str, dest: str | Path) -> Path:
    """Copy example ``name`` to ``dest`` (created; must be absent or empty); returns ``dest``."""
    example = find_example(name)
    target = Path(dest)
    if target.exists() and any(target.iterdir()):
        raise DianneError(f"{target}: folder exists and is not empty; choose another. "
                          f"Received: {str(target)!r}")
    target.mkdir(parents=True, exist_ok=True)
    for item in example.folder.iterdir():
        if item.is_file():
            shutil.copyfile(item, target / item.name)
    return target
