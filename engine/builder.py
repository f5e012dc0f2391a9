"""Building network descriptions in Python: ``NetworkBuilder`` and ``sequential``.

Produces the same ``modules.txt`` content the original builder did: every module carries its
``name``, ``category`` and (for trainable types) ``trainable`` properties, all values strings,
``next``/``prev`` kept symmetric. Used by the examples, the tests and (later) the editor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.description import ModuleDescription, NetworkDescription, new_module_id
from engine.errors import DianneError
from engine.modules import module_class


def _as_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(_as_string(v) for v in value)
    return str(value)


class NetworkBuilder:
    """Add modules and connect them; ``build()`` returns a :class:`NetworkDescription`."""

    def __init__(self, name: str, properties: dict[str, str] | None = None) -> None:
        self.name = name
        self.properties = properties
        self._modules: dict[str, ModuleDescription] = {}

    def add(self, type_name: str, name: str | None = None, id: str | None = None,
            **props: Any) -> str:
        """Add a module of a registered type; returns its UUID."""
        cls = module_class(type_name)
        mid = (id or new_module_id()).lower()
        if mid in self._modules:
            raise DianneError(f"duplicate module id. Received: {mid}")
        properties = {k: _as_string(v) for k, v in props.items() if v is not None}
        properties["name"] = name or type_name
        properties["category"] = cls.category
        if cls.trainable:
            properties["trainable"] = "true"
        self._modules[mid] = ModuleDescription(mid, type_name, [], [], properties)
        return mid

    def connect(self, src: str, dst: str) -> NetworkBuilder:
        """Edge ``src -> dst``; the order of calls is the order of ``next``/``prev`` arrays."""
        for mid in (src, dst):
            if mid not in self._modules:
                raise DianneError(f"no module with id {mid} in {self.name}")
        self._modules[src].next.append(dst)
        self._modules[dst].prev.append(src)
        return self

    def chain(self, *ids: str) -> NetworkBuilder:
        for a, b in zip(ids, ids[1:], strict=False):
            self.connect(a, b)
        return self

    def build(self) -> NetworkDescription:
        desc = NetworkDescription(self.name, dict(self._modules), self.properties)
        desc.validate()
        return desc.copy()


def sequential(name: str, layers: Sequence[tuple[str, dict[str, Any]]],
               input_dims: Sequence[int] | None = None,
               labels: Sequence[str] | None = None) -> NetworkDescription:
    """Input -> layers... -> Output, e.g. ``sequential("mlp", [("Linear", {...}), ...])``."""
    b = NetworkBuilder(name)
    ids = [b.add("Input", dims=",".join(map(str, input_dims)) if input_dims else None)]
    for type_name, props in layers:
        props = dict(props)
        ids.append(b.add(type_name, name=props.pop("name", None), **props))
    out_props = {"labels": "[" + ", ".join(labels) + "]"} if labels else {}
    ids.append(b.add("Output", **out_props))
    b.chain(*ids)
    return b.build()
