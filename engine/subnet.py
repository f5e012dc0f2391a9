"""Parts of a multi-output network: what an Output needs, cutting a part out, reading its answer.

Big-Little (``engine.biglittle``) and early-exit cascades (``engine.cascade``) are ordinary DIANNE
networks with several Outputs. Both need the same three things: the set of modules an Output
depends on (:func:`ancestors`), a part of the network as a network of its own that keeps the
module UUIDs — so the weight files still match — with a new Input where the part is fed from
outside and a new Output where it hands a tensor on (:func:`extract`), and the class
probabilities an Output's values stand for (:func:`probabilities`): exponentiated after
LogSoftmax, as they are after Softmax, a softmax of anything else.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from engine.description import ModuleDescription, NetworkDescription
from engine.errors import DianneError
from engine.modules.io import parse_labels
from engine.topology import link, upstream

# Namespace of the UUIDs made up for the Inputs/Outputs of extracted parts: derived from the
# cut, so extracting the same part twice gives the same file.
_NAMESPACE = uuid.UUID("6d1a0e5e-b16c-4c1e-8a11-000000000000")


def derived_id(*parts: str) -> str:
    """A deterministic module UUID for a module made up from ``parts`` (lowercase hex)."""
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


def ancestors(desc: NetworkDescription, ids: Iterable[str]) -> set[str]:
    """The modules ``ids`` depend on, themselves included (everything a forward to them runs)."""
    _, pred, _ = link(desc)
    return upstream(ids, pred)


def output_id(desc: NetworkDescription, key: str) -> str:
    """The UUID of the Output named or numbered ``key``; DianneError when it is not an Output."""
    md = desc.module(key)
    if md.type != "Output":
        raise DianneError(f"{desc.source or desc.name}: {md.name} ({md.id}) is a {md.type}, "
                          f"not an Output. Received: {key!r}")
    return md.id


def output_labels(desc: NetworkDescription, oid: str) -> list[str]:
    return parse_labels(desc.modules[oid].properties.get("labels"))


def extract(desc: NetworkDescription, keep: set[str], name: str,
            inputs: Mapping[str, tuple[str, Sequence[int]]] | None = None,
            outputs: Mapping[str, str] | None = None) -> NetworkDescription:
    """The modules ``keep`` as a network of their own, module UUIDs unchanged.

    ``inputs`` maps a module outside ``keep`` that feeds the part to ``(new Input id, dims)``:
    the new Input takes its place in the ``prev`` arrays. ``outputs`` maps a module of the part
    to a new Output id that is appended to its successors, taking the place of the successor
    outside ``keep`` it fed (so a fork keeps its slot order). Edges to modules outside the part
    are dropped; everything is checked by :meth:`NetworkDescription.validate`.
    """
    inputs = dict(inputs or {})
    outputs = dict(outputs or {})
    modules: dict[str, ModuleDescription] = {}
    for mid, md in desc.modules.items():
        if mid not in keep:
            continue
        nxt: list[str] = []
        for n in md.next:
            if n in keep:
                nxt.append(n)
            elif mid in outputs and outputs[mid] not in nxt:
                nxt.append(outputs[mid])
        prev = [p if p in keep else inputs[p][0] for p in md.prev if p in keep or p in inputs]
        if mid in outputs and outputs[mid] not in nxt:
            nxt.append(outputs[mid])
        modules[mid] = ModuleDescription(mid, md.type, nxt, prev, dict(md.properties))
    for outside, (iid, dims) in inputs.items():
        fed = [m for m in modules.values() if iid in m.prev]
        modules[iid] = ModuleDescription(
            iid, "Input", [m.id for m in fed], [],
            {"dims": ",".join(str(int(d)) for d in dims), "name": f"from {outside[:8]}",
             "category": "Input-Output"})
    for mid, oid in outputs.items():
        modules[oid] = ModuleDescription(oid, "Output", [], [mid],
                                         {"name": "features", "category": "Input-Output"})
    part = NetworkDescription(name, modules, None, desc.source)
    part.validate()
    return part


def renamed(desc: NetworkDescription, mapping: Mapping[str, str], name: str | None = None
            ) -> NetworkDescription:
    """A copy of ``desc`` whose module UUIDs are replaced by ``mapping`` (others kept)."""
    def new(mid: str) -> str:
        return mapping.get(mid, mid)

    modules = {new(mid): ModuleDescription(new(mid), md.type, [new(n) for n in md.next],
                                           [new(p) for p in md.prev], dict(md.properties))
               for mid, md in desc.modules.items()}
    out = NetworkDescription(name or desc.name, modules,
                             dict(desc.properties) if desc.properties is not None else None,
                             desc.source)
    out.validate()
    return out


def last_module_type(desc: NetworkDescription, oid: str) -> str | None:
    """The type of the module feeding Output ``oid`` (None when it has no predecessor)."""
    _, pred, _ = link(desc)
    before = pred.get(oid) or []
    return desc.modules[before[0]].type if before else None


def probabilities(values: np.ndarray, kind: str | None) -> np.ndarray:
    """Class probabilities, row by row, from an Output's values.

    ``kind`` is the type of the module feeding the Output (:func:`last_module_type`):
    LogSoftmax values are exponentiated, Softmax values kept, anything else goes through a
    softmax. ``values`` is ``(C,)`` or ``(N, C)``; the result is float64 of the same shape.
    """
    v = np.asarray(values, dtype=np.float64)
    if kind == "LogSoftmax":
        return np.exp(v)
    if kind == "Softmax":
        return v.copy()
    shifted = v - v.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def require(condition: bool, desc: NetworkDescription, message: str, received: object) -> None:
    """Raise a DianneError naming the network when ``condition`` does not hold."""
    if not condition:
        raise DianneError(f"{desc.source or desc.name}: {message}. Received: {received}")


def with_policy(desc: NetworkDescription, prefix: str, properties: dict[str, str]
                ) -> NetworkDescription:
    """A copy of ``desc`` whose top-level properties under ``prefix`` are ``properties``
    (how Big-Little and cascade policies are stored in ``modules.txt``)."""
    out = desc.copy()
    props = {k: v for k, v in (out.properties or {}).items() if not k.startswith(prefix)}
    props.update(properties)
    out.properties = props
    return out
