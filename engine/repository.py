"""The DIANNE model repository on disk (spec section 3.1) and "where does MODEL come from".

A repository root holds one folder per network (``modules.txt``, ``layout.txt``, an optional
``.locked`` marker, optional shipped weight files), ``<name>.zip`` packages of the same, and
``weights/`` with trained weight files. As in the original, weights are found by module UUID
only: first ``weights/<file>``, then every entry of the root (sorted here, so the answer does
not depend on the file system) as ``<dir>/<file>`` or a zip entry ``<file>``; first hit wins.
:func:`resolve_model` turns the CLI's MODEL argument (folder, ``modules.txt``, zip or
repository name) into a :class:`ModelSource` that loads description, layout and weights.
"""

from __future__ import annotations

import os
import shutil
import sys
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.description import NetworkDescription, dumps_network, parse_network, read_network
from engine.errors import FormatError, RepositoryError, module_label
from engine.fileio import (
    MAX_TEXT_BYTES,
    atomic_write,
    decode_text,
    read_zip_entry,
    remove_stale_temps,
)
from engine.layout import Layout, dumps_layout, parse_layout, read_layout
from engine.weights import (
    MAX_COUNT,
    parse_weight_filename,
    read_weights,
    weight_filename,
    weights_from_bytes,
    write_weights,
)

WEIGHTS = "weights"
Place = tuple[str, Path]  # ("dir", folder) or ("zip", zip file): where weight files may lie
Found = Path | tuple[Path, str]


def default_root() -> Path:
    """``$DIANNE_REPOSITORY``, else ``dianne/models`` in the platform's user data folder."""
    env = os.environ.get("DIANNE_REPOSITORY")
    if env:
        return Path(env).expanduser()
    home = Path.home()
    if sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    elif os.name == "nt":
        base = Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming")
    else:
        xdg = os.environ.get("XDG_DATA_HOME", "")
        base = Path(xdg) if os.path.isabs(xdg) else home / ".local" / "share"
    return base / "dianne" / "models"


def _zip_names(path: Path) -> set[str] | None:
    """Entry names of ``path`` if it is a readable zip, else ``None``."""
    try:
        if not path.is_file() or not zipfile.is_zipfile(path):
            return None
        with zipfile.ZipFile(path) as zf:
            return set(zf.namelist())
    except (OSError, zipfile.BadZipFile):
        return None


def _read_zip_text(path: Path, entry: str) -> str:
    return decode_text(read_zip_entry(path, entry, MAX_TEXT_BYTES), f"{path}!{entry}")


def _zip_network(path: Path) -> NetworkDescription:
    text = _read_zip_text(path, "modules.txt")
    desc = parse_network(text, f"{path}!modules.txt", name=path.name.split(".")[0])
    desc.validate()
    return desc


def _zip_layout(path: Path) -> Layout | None:
    if "layout.txt" not in (_zip_names(path) or ()):
        return None
    return parse_layout(_read_zip_text(path, "layout.txt"), f"{path}!layout.txt")


def _find(fname: str, places: Iterable[Place], names: dict[Path, set[str] | None]) -> Found | None:
    for kind, where in places:
        if kind == "dir":
            if (where / fname).is_file():
                return where / fname
        else:
            if where not in names:
                names[where] = _zip_names(where)
            if fname in (names[where] or ()):
                return where, fname
    return None


def _read_found(found: Found, expected: int | None) -> np.ndarray:
    if isinstance(found, Path):
        return read_weights(found, expected)
    zpath, entry = found
    # A weight file is 4 + 4 * count bytes: never inflate more than the module can hold.
    limit = 4 + 4 * (MAX_COUNT if expected is None else expected)
    return weights_from_bytes(read_zip_entry(zpath, entry, limit), f"{zpath}!{entry}", expected)


def _load_all(desc: NetworkDescription, places: list[Place], tags: Iterable[object],
              sizes: dict[str, int] | None, where: str) -> dict[str, np.ndarray]:
    tags = tuple(tags) if not isinstance(tags, str) else (tags,)
    names: dict[Path, set[str] | None] = {}
    result: dict[str, np.ndarray] = {}
    for mid in desc.modules:
        found = _find(weight_filename(mid, tags), places, names)
        if found is not None:
            try:
                result[mid] = _read_found(found, (sizes or {}).get(mid))
            except FormatError as exc:  # say which module the file belongs to
                md = desc.modules[mid]
                label = module_label(mid, md.type, md.properties.get("name"))
                raise FormatError(f"weights of {label}: {exc}") from None
    if not result:
        raise RepositoryError(f"no weight file for any module of {desc.name!r} (tags "
                              f"{list(tags)}) in {where}. Received: tags={list(tags)}")
    return result


class Repository:
    """A DIANNE repository root (``models/``): networks, layouts and weight files."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_root()

    def __repr__(self) -> str:
        return f"Repository({str(self.root)!r})"

    def _entries(self) -> list[Path]:
        return sorted(self.root.iterdir()) if self.root.is_dir() else []

    def _zips(self) -> dict[str, Path]:
        zips: dict[str, Path] = {}
        for entry in self._entries():
            name = entry.name.split(".")[0]
            if name and name not in zips and "modules.txt" in (_zip_names(entry) or ()):
                zips[name] = entry
        return zips

    def list_networks(self) -> list[str]:
        """Folders (except ``weights``) holding a ``modules.txt`` and zips holding one."""
        names = {e.name.split(".")[0] for e in self._entries()
                 if e.name != WEIGHTS and e.is_dir() and (e / "modules.txt").is_file()}
        names.update(self._zips())
        return sorted(n for n in names if n)

    def network_dir(self, name: str) -> Path:
        """The folder of network ``name`` (which need not exist yet)."""
        if (not name or name in (".", "..", WEIGHTS) or any(c in name for c in "/\\\0")
                or name.startswith(".")):
            raise RepositoryError(f"{name!r} cannot be a network name in {self.root}: it must be "
                                  f"a plain folder name other than 'weights'. Received: {name!r}")
        return self.root / name

    def _unknown(self, name: str) -> RepositoryError:
        known = ", ".join(self.list_networks()) or "none"
        return RepositoryError(f"no network {name!r} in the repository {self.root} (available: "
                               f"{known}). Received: {name}")

    def _locate(self, name: str) -> Path:
        folder = self.network_dir(name)
        if folder.is_dir():
            if not (folder / "modules.txt").is_file():
                raise RepositoryError(f"{folder} has no modules.txt. Received: {name}")
            return folder
        zpath = self._zips().get(name)
        if zpath is None:
            raise self._unknown(name)
        return zpath

    def load_network(self, name: str) -> NetworkDescription:
        """The network's description: from its folder, else from ``<name>.zip``. Opening a
        folder removes what killed saves left in it (:func:`engine.fileio.remove_stale_temps`)."""
        where = self._locate(name)
        if not where.is_dir():
            return _zip_network(where)
        remove_stale_temps(where)
        return read_network(where)

    def load_layout(self, name: str) -> Layout | None:
        where = self._locate(name)
        return read_layout(where) if where.is_dir() else _zip_layout(where)

    def is_locked(self, name: str) -> bool:
        return (self.network_dir(name) / ".locked").exists()

    def store_network(self, desc: NetworkDescription, layout: Layout | None = None) -> Path:
        """Write ``<root>/<desc.name>/modules.txt`` (+ ``layout.txt``); refuses when locked."""
        folder = self.network_dir(desc.name)
        if "." in desc.name:
            raise RepositoryError(f"network names cannot contain '.': the listing cuts names at "
                                  f"the first dot. Received: {desc.name!r}")
        if self.is_locked(desc.name):
            raise RepositoryError(f"{folder} is locked (.locked exists); store the network under "
                                  f"another name. Received: {desc.name}")
        desc.validate()
        text = dumps_network(desc)
        layout_text = dumps_layout(layout) if layout is not None else None
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(folder / "modules.txt", text)
        if layout_text is not None:
            atomic_write(folder / "layout.txt", layout_text)
        return folder

    def delete_network(self, name: str) -> None:
        """Remove the network's folder (or zip); refuses when locked. Weights stay."""
        where = self._locate(name)
        if where.is_dir():
            if self.is_locked(name):
                raise RepositoryError(f"{where} is locked (.locked exists). Received: {name}")
            shutil.rmtree(where)
        else:
            where.unlink()

    def _places(self) -> list[Place]:
        places: list[Place] = [("dir", self.root / WEIGHTS)]
        for entry in self._entries():
            if entry.name == WEIGHTS:
                continue
            places.append(("dir", entry) if entry.is_dir() else ("zip", entry))
        return places

    def find_weights(self, module_id: str, tags: Iterable[object] = ()) -> Found | None:
        """Where the weight file of ``module_id`` (+ tags) is: a path, (zip, entry) or None."""
        return _find(weight_filename(module_id, tags), self._places(), {})

    def read_module_weights(self, module_id: str, tags: Iterable[object] = (),
                            expected: int | None = None) -> np.ndarray | None:
        found = self.find_weights(module_id, tags)
        return None if found is None else _read_found(found, expected)

    def load_weights(self, desc: NetworkDescription, tags: Iterable[object] = (),
                     sizes: dict[str, int] | None = None) -> dict[str, np.ndarray]:
        """Weights of every module that has a file; RepositoryError when none has one."""
        return _load_all(desc, self._places(), tags, sizes, str(self.root))

    def store_weights(self, module_id: str, flat: object, tags: Iterable[object] = (),
                      network: str | None = None) -> Path:
        """Write to ``weights/`` or, with ``network``, into that network's folder."""
        folder = self.root / WEIGHTS if network is None else self.network_dir(network)
        path = folder / weight_filename(module_id, tags)
        folder.mkdir(parents=True, exist_ok=True)
        write_weights(path, flat)
        return path

    def list_tags(self, module_id: str) -> list[list[str]]:
        """Tag lists of every weight file of ``module_id`` (``[]`` = untagged), lookup order."""
        mid = module_id.lower()
        seen: list[list[str]] = []
        for kind, where in self._places():
            if kind == "dir":
                files = sorted(p.name for p in where.iterdir()) if where.is_dir() else []
            else:
                files = sorted(_zip_names(where) or ())
            for fname in files:
                parsed = parse_weight_filename(fname)
                if parsed and parsed[0] == mid and parsed[1] not in seen:
                    seen.append(parsed[1])
        return seen


@dataclass
class ModelSource:
    """A network to run or train: its description, where it lies, and how to find weights."""

    description: NetworkDescription
    folder: Path | None
    layout: Layout | None
    zip: Path | None = None
    repository: Repository | None = None
    _places: Callable[[], list[Place]] = field(default=lambda: [], repr=False)

    @property
    def name(self) -> str:
        return self.description.name

    def load_weights(self, tags: Iterable[object] = (),
                     sizes: dict[str, int] | None = None) -> dict[str, np.ndarray]:
        where = str(self.folder or self.zip or self.repository)
        return _load_all(self.description, self._places(), tags, sizes, where)

    def find_weights(self, module_id: str, tags: Iterable[object] = ()) -> Found | None:
        """Like :meth:`Repository.find_weights`, over this model's places (its folder or zip,
        then the repository): what :func:`engine.composite.load_parts` needs."""
        return _find(weight_filename(module_id, tags), self._places(), {})

    def read_module_weights(self, module_id: str, tags: Iterable[object] = (),
                            expected: int | None = None) -> np.ndarray | None:
        found = self.find_weights(module_id, tags)
        return None if found is None else _read_found(found, expected)


def resolve_model(spec: str, repository: Repository | None = None) -> ModelSource:
    """MODEL as a folder, a ``modules.txt``, a zip, or a network name in the repository.

    Weights of a folder or zip are looked up in it first, then in the repository. A folder or
    zip that sits directly in a repository root (its parent has ``weights/`` or is the given
    repository's root) is that repository's network: the original's global order applies
    (``weights/`` first), so running it by path or by name finds the same trained weights.
    """
    repo = repository if repository is not None else Repository()
    path = Path(spec).expanduser()
    names = repo.list_networks()
    is_network_dir = path.is_dir() and (path / "modules.txt").is_file()
    if is_network_dir or path.is_file():
        if path.is_dir():
            folder, zpath = path, None
            desc, layout = read_network(path), read_layout(path)
        elif _zip_names(path) is not None:
            folder, zpath = None, path
            desc, layout = _zip_network(path), _zip_layout(path)
        elif path.suffix.lower() == ".zip":
            raise FormatError(f"{path}: not a readable zip archive (damaged or truncated). "
                              f"Received: {path.stat().st_size} bytes")
        else:
            folder, zpath = path.parent, None
            desc, layout = read_network(path), read_layout(path.parent)
        parent = Path(os.path.abspath(folder if folder is not None else path)).parent
        own: list[Place] = [("dir", folder)] if folder is not None else [("zip", path)]
        repo_root = Path(os.path.abspath(repo.root))
        if (parent / WEIGHTS).is_dir() or parent == repo_root:
            home = Repository(parent)
            same = parent == repo_root
            places = lambda: home._places() + ([] if same else repo._places())  # noqa: E731
        else:
            places = lambda: own + repo._places()  # noqa: E731
        return ModelSource(desc, folder, layout, zpath, repo, places)
    if spec in names:
        desc = repo.load_network(spec)
        folder = repo.network_dir(spec)
        is_dir = folder.is_dir()
        return ModelSource(desc, folder if is_dir else None, repo.load_layout(spec),
                           None if is_dir else repo._zips()[spec], repo, repo._places)
    known = ", ".join(names) or "none"
    if path.is_dir():
        raise RepositoryError(f"{path} has no modules.txt, and {spec!r} is not a network of the "
                              f"repository {repo.root} (networks there: {known}). Received: {spec}")
    raise RepositoryError(f"{spec!r} is not a network folder, modules.txt, zip, or a network of "
                          f"the repository {repo.root} (networks there: {known}). Received: {spec}")
