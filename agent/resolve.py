"""Placements as people write them, resolved to ids: :func:`resolve_placement`.

A placement maps modules (UUIDs or unique names) to agents (ids, names or unique id prefixes);
:func:`_match_agent` is the one rule that names an agent, used by :mod:`agent.deployment` (move,
failover, rejoin) and re-exported by :mod:`agent.client` (the app's planner matches with it too).
An unplaced module goes where its first predecessor went.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from agent.discovery import AgentInfo
from agent.graph import cut_memories
from agent.session import AgentError
from engine.description import NetworkDescription
from engine.topology import link, topological_order


def _match_agent(key: str, infos: Sequence[AgentInfo]) -> AgentInfo:
    """The agent ``key`` names: its id, else its name, else a unique id prefix. The same agent
    listed twice (same id) is one agent; two agents sharing a name need their ids."""
    unique: dict[str, AgentInfo] = {}
    for info in infos:
        unique.setdefault(info.id, info)
    infos = list(unique.values())
    several: list[AgentInfo] = []
    for attr in ("id", "name"):
        hits = [i for i in infos if getattr(i, attr) == key]
        if len(hits) == 1:
            return hits[0]
        several = several or hits
    hits = [i for i in infos if i.id.startswith(key)]
    if len(hits) == 1:
        return hits[0]
    several = several or hits
    if several:
        named = ", ".join(f"{i.name} ({i.id} at {i.address})" for i in several)
        raise AgentError(f"placement: {key!r} matches several agents: {named}; name one by its "
                         f"id or a unique id prefix. Received: {key}")
    known = ", ".join(f"{i.name} ({i.id})" for i in infos) or "none"
    raise AgentError(f"placement: {key!r} is not a known agent (agents: {known}). "
                     f"Received: {key}")


def resolve_placement(desc: NetworkDescription, placement: Mapping[str, str],
                      infos: Sequence[AgentInfo]) -> dict[str, str]:
    """Module UUID -> agent id for every module. Keys may be UUIDs or unique module names,
    values agent ids, names or id prefixes. An unplaced module goes where its first
    predecessor went (an unplaced Input: where the first placed module went)."""
    out: dict[str, str] = {}
    for key, agent_key in placement.items():
        if not isinstance(agent_key, str):
            raise AgentError(f"placement: {key} maps to {agent_key!r}; an agent id or name is "
                             f"a string")
        out[desc.module(key).id] = _match_agent(agent_key, infos).id
    if not out:
        raise AgentError("placement: the placement is empty. Received: {}")
    succ, pred, _ = link(desc)
    cut_memories(desc, pred)  # a Memory's cycle is no dependency: each one is placed
    first = next(iter(out.values()))
    for mid in topological_order(list(desc.modules), succ, pred):
        if mid not in out:
            out[mid] = next((out[p] for p in pred[mid] if p in out), first)
    return out
