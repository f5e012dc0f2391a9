"""The graph of a network description as plain id lists: successors and predecessors, the
modules a set depends on, a topological order, and the recurrent edges to cut.

Shared by the executor (``engine.graph``), shape inference, the agents' fragments, the planner
and the editor's auto layout; nothing here builds modules or touches arrays.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from engine.description import NetworkDescription


def _dedupe(ids: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for i in ids:
        seen.setdefault(i, None)
    return list(seen)


def link(desc: NetworkDescription) -> tuple[dict[str, list[str]], dict[str, list[str]],
                                            list[tuple[str, str, str]]]:
    """Successor and predecessor lists of every module, from ``next`` and ``prev`` merged (an
    edge written on one side only still counts: hand-written files do this), de-duplicated, in
    file order. Also returns the dangling references as (module id, "next"|"prev", missing id).
    """
    ids = desc.modules
    succ: dict[str, list[str]] = {i: [] for i in ids}
    pred: dict[str, list[str]] = {i: [] for i in ids}
    dangling: list[tuple[str, str, str]] = []
    # First each module's own arrays (their order is semantic: Split outputs, Concat inputs),
    # then the edges that only the other side wrote.
    for md in ids.values():
        for side, refs, own in (("next", md.next, succ), ("prev", md.prev, pred)):
            for ref in refs:
                if ref in ids:
                    own[md.id].append(ref)
                else:
                    dangling.append((md.id, side, ref))
    for md in ids.values():
        for ref in md.next:
            if ref in ids:
                pred[ref].append(md.id)
        for ref in md.prev:
            if ref in ids:
                succ[ref].append(md.id)
    return ({k: _dedupe(v) for k, v in succ.items()}, {k: _dedupe(v) for k, v in pred.items()},
            dangling)


def upstream(ids: Iterable[str], *preds: Mapping[str, Sequence[str]]) -> set[str]:
    """``ids`` and every module they depend on through the predecessor maps ``preds``."""
    seen: set[str] = set()
    stack = list(ids)
    while stack:
        m = stack.pop()
        if m not in seen:
            seen.add(m)
            for pred in preds:
                stack.extend(pred.get(m, ()))
    return seen


def topological_order(ids: list[str], succ: Mapping[str, list[str]],
                      pred: Mapping[str, list[str]]) -> list[str]:
    """Kahn's algorithm, ties broken by the order of ``ids``; modules on a cycle (and behind
    one) are left out, so ``len(result) < len(ids)`` means there is a cycle."""
    indeg = {m: len(pred[m]) for m in ids}
    position = {m: i for i, m in enumerate(ids)}
    ready = [m for m in ids if indeg[m] == 0]
    order: list[str] = []
    while ready:
        ready.sort(key=position.__getitem__)
        m = ready.pop(0)
        order.append(m)
        for n in succ[m]:
            indeg[n] -= 1
            if indeg[n] == 0:
                ready.append(n)
    return order


def cut_recurrent(modules: Mapping[str, Any],
                  pred: dict[str, list[str]]) -> dict[str, list[str]]:
    """Remove the edges into recurrent modules (``recurrent = True``, i.e. Memory) from
    ``pred`` (in place) and return them as memory id -> predecessor ids. The successor lists
    keep them, so a fork still counts the Memory among its outputs."""
    delayed: dict[str, list[str]] = {}
    for mid, mod in modules.items():
        if getattr(mod, "recurrent", False) and pred.get(mid):
            delayed[mid] = pred[mid]
            pred[mid] = []
    return delayed
