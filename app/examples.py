"""The example networks bundled in ``resources/examples`` (DIANNE network folders).

Each example is a folder with ``modules.txt`` (and optionally ``layout.txt`` and weight files),
exactly as in a DIANNE repository's ``models/<name>/``. ``copy_example`` copies one to a folder
of the user's choice (refusing to overwrite a non-empty folder).

:func:`locate_model` is where every ``MODEL`` argument is resolved (the desktop app's
``dianne MODEL`` and the ``eval``/``run``/``info``/``train``/``biglittle``/``cascade``
subcommands): a path, else a network of the repository, else the name of a bundled example.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from engine.description import read_network
from engine.errors import DianneError, RepositoryError
from engine.repository import ModelSource, Repository
from engine.repository import resolve_model as resolve_path_or_name


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


def example_names() -> list[str]:
    """Names of the bundled examples (their folders), without reading them."""
    return sorted(p.name for p in examples_dir().iterdir() if (p / "modules.txt").is_file())


def example_folder(name: str) -> Path | None:
    """The folder of the bundled example ``name``; None when there is no such example."""
    return examples_dir() / name if name in example_names() else None


@dataclass(frozen=True)
class Located:
    """Where a MODEL argument points: ``kind`` is ``"path"`` (``target`` is the folder,
    ``modules.txt`` or zip as given), ``"repository"`` (``target`` is the network's name) or
    ``"example"`` (``target`` is the bundled example's folder)."""

    kind: str
    target: str


def locate_model(spec: str, repository: Repository | None = None) -> Located:
    """Resolve MODEL the way every command does: something at that path first (what it is, and
    any fault in it, is for the reader to tell), then a network of the repository by that
    name, then a bundled example by that name (only when nothing of that name exists at the
    path or in the repository). Nothing found: one error naming ``spec`` and every place
    looked in."""
    repo = repository if repository is not None else Repository()
    path = Path(spec).expanduser()
    names = repo.list_networks()
    network_here = path.is_file() or (path / "modules.txt").is_file()
    if network_here or (path.exists() and spec not in names):
        return Located("path", spec)
    if spec in names:
        return Located("repository", spec)
    folder = example_folder(spec)
    if folder is not None:
        return Located("example", str(folder))
    raise RepositoryError(
        f"no network {spec!r}: not a folder, modules.txt or zip at {path.absolute()}, not a "
        f"network of the repository {repo.root} (networks there: {', '.join(names) or 'none'}), "
        f"not a bundled example ({', '.join(example_names())}). Received: {spec}")


def resolve_model(spec: str, repository: Repository | None = None) -> ModelSource:
    """:func:`engine.repository.resolve_model` of what :func:`locate_model` found: a bundled
    example is read from its folder (weights shipped there, then the repository's)."""
    repo = repository if repository is not None else Repository()
    where = locate_model(spec, repo)
    return resolve_path_or_name(where.target if where.kind == "example" else spec, repo)


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
