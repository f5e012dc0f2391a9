"""Automatic placement: left to right by topological depth (no Qt).

A module's column is the length of the longest path from a module without predecessors to it
(edges into recurrent modules are ignored, so a Memory loop does not stretch the layout). Within
a column modules are ordered by the mean row of their predecessors, which keeps chains straight
and limits crossings, then stacked around a common centre line.
"""

from __future__ import annotations

from engine.description import NetworkDescription
from engine.topology import link, topological_order

COLUMN = 170  # px between columns: the examples' spacing, room for a node and its wires
ROW = 120     # px between rows
ORIGIN = (80, 200)


def layered_positions(desc: NetworkDescription) -> dict[str, tuple[int, int]]:
    """``{module id: (x, y)}`` for every module of ``desc``."""
    ids = list(desc.modules)
    succ, pred, _ = link(desc)
    order = topological_order(ids, succ, pred)
    order += [m for m in ids if m not in set(order)]  # modules on a cycle go last
    depth: dict[str, int] = {}
    for m in order:
        depth[m] = max((depth[p] + 1 for p in pred[m] if p in depth), default=0)
    columns: dict[int, list[str]] = {}
    for m in order:
        columns.setdefault(depth[m], []).append(m)
    row: dict[str, float] = {}
    out: dict[str, tuple[int, int]] = {}
    for d in sorted(columns):
        col = columns[d]
        keyed = [(_mean(row[p] for p in pred[m] if p in row), i, m) for i, m in enumerate(col)]
        col = [m for _, _, m in sorted(keyed, key=lambda t: (t[0] if t[0] is not None else t[1],
                                                            t[1]))]
        for i, m in enumerate(col):
            row[m] = i - (len(col) - 1) / 2
            out[m] = (ORIGIN[0] + d * COLUMN, round(ORIGIN[1] + row[m] * ROW))
    return out


def _mean(values) -> float | None:
    vals = list(values)
    return sum(vals) / len(vals) if vals else None
