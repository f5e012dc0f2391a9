"""Graph facts that the client and the agents read from module *type names* alone.

A deployment's description may name module types this process does not know (they live on
another agent, which knows them); these helpers answer without instantiating anything and treat
an unknown type as neither a fork nor recurrent nor holding state. :func:`cut_memories` cuts the
edges into ``Memory`` modules exactly as the local executor does, so the client
(:mod:`agent.deployment`) and every agent (:mod:`agent.host`) see the same acyclic graph.
"""

from __future__ import annotations

from engine.description import NetworkDescription
from engine.errors import ModuleError
from engine.modules import Module, module_class
from engine.topology import cut_recurrent


def _class(type_name: str) -> type[Module] | None:
    try:
        return module_class(type_name)
    except ModuleError:  # a type this agent does not know lives elsewhere; it fails there
        return None


def is_fork(type_name: str) -> bool:
    """Whether a module type is a fork (its successors each get their own output slot)."""
    cls = _class(type_name)
    return cls is not None and cls.fork


def is_recurrent(type_name: str) -> bool:
    """Whether a module type is recurrent (a Memory: emits a state, fed after the pass)."""
    return bool(getattr(_class(type_name), "recurrent", False))


def holds_state(type_name: str) -> bool:
    """Whether a module type holds recurrent state (a Memory, or a composite with one inside);
    a type this process does not know counts as none."""
    cls = _class(type_name)
    if cls is None:
        return False
    if getattr(cls, "recurrent", False):
        return True
    spec = getattr(cls, "spec", None)
    return spec is not None and any(holds_state(md.type) for md in
                                    spec.description.modules.values() if "$" not in md.type)


def cut_memories(desc: NetworkDescription, pred: dict[str, list[str]]) -> dict[str, list[str]]:
    """Cut the edges into recurrent modules (Memory) from ``pred`` in place, as the local
    executor does (:func:`engine.topology.cut_recurrent`); returns Memory id -> producers."""
    return cut_recurrent({m: _class(md.type) for m, md in desc.modules.items()}, pred)
