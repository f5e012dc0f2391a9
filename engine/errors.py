"""Exception classes of the engine.

Everything the engine raises on bad input derives from :class:`DianneError`, so a CLI can catch
one class and print one line. Messages name the file, the module id and type where known, and
end with the value received (Keras style: ``"... Received: 7"``).
"""

from __future__ import annotations


class DianneError(Exception):
    """Base class of every error the engine raises on bad input or bad state."""


class FormatError(DianneError):
    """A network, layout, weight or dataset file cannot be read or is inconsistent."""


class ModuleError(DianneError):
    """A module was configured or called wrongly (bad property, wrong input shape, ...)."""


class ShapeError(ModuleError):
    """A module cannot accept the shape it was given."""


class RepositoryError(DianneError):
    """A repository operation failed (unknown network, locked folder, missing weights)."""


class BackendError(DianneError):
    """The requested array backend is not available."""


class DatasetError(DianneError):
    """A dataset cannot be opened or indexed."""


def module_label(module_id: str | None, type_name: str | None, name: str | None = None) -> str:
    """Return the way errors refer to a module: ``Linear 'fc1' (0f3e...)``."""
    label = type_name or "module"
    if name and name != type_name:
        label += f" '{name}'"
    if module_id:
        label += f" ({module_id})"
    return label
