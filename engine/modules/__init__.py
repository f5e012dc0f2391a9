"""DIANNE module types. Importing this package registers every built-in type.

``REGISTRY`` maps the DIANNE type name (``"Linear"``, ``"Convolution"``, ...) to its class;
``create_module`` instantiates one from its JSON properties; ``module_types`` describes them for
the editor's palette and property dialogs.
"""

from __future__ import annotations

import importlib

from engine.modules.base import (
    CATEGORIES,
    REGISTRY,
    Module,
    Prop,
    TypeInfo,
    create_module,
    module_class,
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

__all__ = [
    "CATEGORIES", "REGISTRY", "Module", "Prop", "TypeInfo", "create_module", "module_class",
    "module_types", "register", "unregister",
]
