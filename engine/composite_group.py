"""Group a selection of modules into a new composite type (the editor's "group into composite").

:func:`group_into_composite` takes a network description and the UUIDs of the selected
modules. The selection must read ONE tensor from outside (one producer; one output slot of a
fork) and hand ONE module's output to the outside (composites have a single Input and Output,
spec 8.1). It writes ``<root>/<TypeName>/{modules.txt, composite.txt, layout.txt}`` — the
selected modules with their UUIDs and properties, a new Input and Output, an empty
``composite.txt`` (no ``${key}`` properties) — registers the type, and returns the rewritten
network where one module of that type replaces the selection, with the weights regrouped: the
selected modules' vectors become the composite's one vector (Java-HashMap order, as its weight
file). Pure engine code: the app calls it and then saves the network as usual.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.description import (
    ModuleDescription,
    NetworkDescription,
    new_module_id,
    write_network,
)
from engine.errors import DianneError
from engine.fileio import atomic_write
from engine.layout import Layout, write_layout
from engine.modules import REGISTRY, module_class
from engine.topology import link


@dataclass
class GroupResult:
    """What :func:`group_into_composite` made."""

    folder: Path  # the new composite type's folder
    composite_id: str  # UUID of the module that replaces the selection
    network: NetworkDescription  # the rewritten network
    definition: NetworkDescription  # the composite's own sub-network
    weights: dict[str, np.ndarray] = field(default_factory=dict)  # rewritten weights
    layout: Layout | None = None  # rewritten canvas layout (when one was given)
    missing_weights: list[str] = field(default_factory=list)  # parts without a vector


def _check_name(type_name: str, root: Path) -> Path:
    if (not type_name or type_name.startswith(".") or any(c in type_name for c in "/\\\0,")
            or type_name.strip() != type_name):
        raise DianneError(f"a composite type name must be a plain folder name. "
                          f"Received: {type_name!r}")
    if type_name in REGISTRY or (root / type_name).exists():
        raise DianneError(f"the module type {type_name!r} exists already (registry or "
                          f"{root / type_name}); choose another name. Received: {type_name!r}")
    return root / type_name


def _boundary(desc: NetworkDescription, sel: set[str]) -> tuple[str, str, list[str]]:
    """(outside producer, inside module giving the output, outside consumers in order)."""
    succ, pred, _ = link(desc)
    fork = {m: getattr(module_class(desc.modules[m].type), "fork", False) for m in desc.modules}
    ins = [(p, m) for m in sel for p in pred[m] if p not in sel]
    outs = [(m, c) for m in sel for c in succ[m] if c not in sel]
    producers = {p for p, _ in ins}
    givers = {m for m, _ in outs}
    label = ", ".join(sorted(sel))
    if len(producers) != 1 or (fork[next(iter(producers))] and len(ins) != 1):
        raise DianneError(f"a composite takes ONE input: the selection must read the output of "
                          f"one module outside it. Received: inputs from {sorted(producers)} "
                          f"for [{label}]")
    if len(givers) != 1 or (fork[next(iter(givers))] and len(outs) != 1):
        raise DianneError(f"a composite gives ONE output: one selected module must feed the "
                          f"outside. Received: outputs from {sorted(givers)} for [{label}]")
    giver = next(iter(givers))
    return next(iter(producers)), giver, [c for c in succ[giver] if c not in sel]


def group_into_composite(desc: NetworkDescription, selection: Iterable[str], type_name: str,
                         root: str | os.PathLike[str], *,
                         weights: Mapping[str, Any] | None = None,
                         layout: Layout | None = None) -> GroupResult:
    """Turn ``selection`` (module UUIDs of ``desc``) into composite type ``type_name``,
    written under ``root`` (e.g. a repository's ``composites/``); see the module docstring."""
    from engine.composite import register_composite

    sel = {s.lower() for s in selection}
    unknown = sorted(s for s in sel if s not in desc.modules)
    if not sel or unknown:
        raise DianneError(f"select modules of {desc.name} to group. Received: unknown "
                          f"{unknown}" if unknown else "Received: an empty selection")
    io = sorted(desc.modules[s].name for s in sel if desc.modules[s].type in ("Input", "Output"))
    if io:
        raise DianneError(f"Input and Output modules cannot go into a composite. Received: {io}")
    folder = _check_name(type_name, Path(root))
    producer, giver, consumers = _boundary(desc, sel)
    succ, pred, _ = link(desc)
    inner_in, inner_out, cid = new_module_id(), new_module_id(), new_module_id()

    # The composite's own network: Input -> selected modules (ids kept) -> Output.
    inner: dict[str, ModuleDescription] = {}
    first_readers = [m for m in succ[producer] if m in sel]
    inner[inner_in] = ModuleDescription(inner_in, "Input", list(first_readers), [],
                                        {"name": "Input", "category": "Input-Output"})
    for mid in desc.modules:
        if mid not in sel:
            continue
        md = desc.modules[mid]
        nxt, placed = [], False
        for c in succ[mid]:
            if c in sel:
                nxt.append(c)
            elif not placed:  # every outside reader gets the one Output
                nxt.append(inner_out)
                placed = True
        prev = [p if p in sel else inner_in for p in pred[mid]]
        inner[mid] = ModuleDescription(mid, md.type, nxt, prev, dict(md.properties))
    inner[inner_out] = ModuleDescription(inner_out, "Output", [], [giver],
                                         {"name": "Output", "category": "Input-Output"})
    definition = NetworkDescription(type_name, inner)

    # The rewritten network: the composite module takes the selection's place.
    outer: dict[str, ModuleDescription] = {}
    for mid, md in desc.modules.items():
        if mid in sel:
            if mid == giver:  # keep the file order roughly where the selection was
                outer[cid] = ModuleDescription(cid, type_name, list(consumers), [producer], {
                    "name": type_name, "category": "Composite", "trainable": "true"})
            continue
        nxt = []
        for c in succ[mid]:
            target = cid if c in sel else c
            if target not in nxt:
                nxt.append(target)
        prev = [cid if p in sel else p for p in pred[mid]]
        outer[mid] = ModuleDescription(mid, md.type, nxt, prev, dict(md.properties))
    network = NetworkDescription(desc.name, outer, desc.properties, desc.source)
    network.validate()

    folder.mkdir(parents=True)
    write_network(definition, folder)
    atomic_write(folder / "composite.txt", "")
    sub_layout = None
    if layout is not None:
        pos = {m: layout.positions[m] for m in sel if m in layout.positions}
        if pos:
            xs, ys = [p[0] for p in pos.values()], [p[1] for p in pos.values()]
            pos[inner_in] = (min(xs) - 150, ys[0])
            pos[inner_out] = (max(xs) + 150, ys[0])
            sub_layout = Layout(pos)
            write_layout(sub_layout, folder)
    cls = register_composite(folder)
    result = GroupResult(folder, cid, network, definition)
    if layout is not None:
        kept = {m: p for m, p in layout.positions.items() if m not in sel}
        inside = [layout.positions[m] for m in sel if m in layout.positions]
        if inside:
            kept[cid] = (sum(p[0] for p in inside) / len(inside),
                         sum(p[1] for p in inside) / len(inside))
        result.layout = Layout(kept, layout.document, layout.text, layout.source)
    if weights is not None:
        parts = cls(id=cid).parts
        result.weights = {m: np.asarray(w) for m, w in weights.items() if m not in sel}
        result.missing_weights = [p for p in parts if p not in weights]
        if parts and not result.missing_weights:
            result.weights[cid] = np.concatenate(
                [np.asarray(weights[p], dtype=np.float32).ravel() for p in parts])
    return result
