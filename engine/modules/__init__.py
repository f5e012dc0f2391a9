"""DIANNE module types. Importing this package registers every built-in type.

``REGISTRY`` maps the DIANNE type name (``"Linear"``, ``"Convolution"``, ...) to its class;
``create_module`` instantiates one from its JSON properties; ``module_types`` describes them for
the editor's palette and property dialogs. A type name that is not registered is looked up as a
composite type (``engine.composite``: the bundled composites, then the folders added with
``engine.composite.add_composite_path``), which registers it on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from engine.modules import base as _base
from engine.modules.base import (
    CATEGORIES,
    REGISTRY,
    Module,
    Prop,
    TypeInfo,
    module_types,
    register,
    unregister,
)

# One file per family; each registers its classes on import. Missing families are an error.
_FAMILIES = (
    "io", "linear", "activations", "conv", "pooling", "unpooling", "shape", "forkjoin",
    "regularization", "preprocessing", "resize", "memory",
)
for _family in _FAMILIES:
    try:
        importlib.import_module(f"engine.modules.{_family}")
    except ModuleNotFoundError as _exc:  # pragma: no cover - only while the tree is being built
        if _exc.name != f"engine.modules.{_family}":
            raise


def module_class(type_name: str) -> type[Module]:
    """The class of a registered type, else of the composite type of that name (registered
    now); unknown names raise :class:`~engine.errors.ModuleError` listing the known types."""
    cls = REGISTRY.get(type_name)
    if cls is not None:
        return cls
    from engine.composite import resolve_composite  # lazy: composite imports the executor

    cls = resolve_composite(type_name)
    return cls if cls is not None else _base.module_class(type_name)


def create_module(type_name: str, **kwargs: Any) -> Module:
    """Instantiate a type: ``create_module("Linear", input=784, output=10)``."""
    return module_class(type_name)(**kwargs)


__all__ = [
    "CATEGORIES", "REGISTRY", "Module", "Prop", "TypeInfo", "create_module", "module_class",
    "module_types", "register", "unregister",
]
