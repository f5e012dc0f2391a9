"""Recurrent state carried through a re-placement: what ``get_state``/``set_state`` move.

A module *holds state* when it is a ``Memory`` (one tensor) or a recurrent composite such as
``LSTM`` (one tensor per inner Memory); a Memory that never ran holds none yet (``None``: zeros).
The state is not a parameter, so :meth:`agent.deployment.Deployment.place` carries it apart:

- Agent side (:class:`agent.host.Fragment`): :func:`module_states` / :func:`set_module_states`
  read and write one module's state. A fragment also remembers, per module, the state it held
  before its last update and the sample that made it, so a sample lost in a failover (and sent
  again) can be undone: ``get_state`` with ``before`` answers that earlier state.
- Client side: :func:`fetch_states` before the new fragments go up (the modules that move away
  from a live agent; after a failover with samples to send again, every state on a live agent as
  it was before them), :func:`restore_states` once they are up. A module's state on an agent
  whose share is merely redeployed stays where it is (the fragment keeps the module object).
- :func:`agent.graph.holds_state` tells the client from a type name alone (no instance) which
  modules hold state: those of a dead agent are the ones whose state a failover resets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from agent import protocol as P
from agent.graph import holds_state
from engine.errors import DianneError
from engine.modules import Module

if TYPE_CHECKING:
    from agent.deployment import Deployment

States = dict[str, list[np.ndarray | None]]  # module UUID -> its state tensors


def memories_of(mod: Module) -> list[Any]:
    """The Memory objects whose state ``mod`` holds (itself, a composite's inner ones, none)."""
    if getattr(mod, "recurrent", False):
        return [mod]
    return list(getattr(mod, "memories", None) or ())


def module_states(mod: Module) -> list[Any]:
    """The state tensors of ``mod`` (on its backend; None where a Memory has none yet)."""
    return [m.state for m in memories_of(mod)]


def set_module_states(mod: Module, states: list[Any]) -> None:
    """Give ``mod`` these state tensors (None: zeros, as a new sequence)."""
    mems = memories_of(mod)
    if len(states) != len(mems):
        raise DianneError(f"{mod.label}: holds {len(mems)} state tensor(s). Received: "
                          f"{len(states)}")
    for mem, state in zip(mems, states, strict=True):
        mem.reset_state(state=state)  # a copy, checked against the Memory's size


def encode(msg: P.Message, states: Mapping[str, list[Any]]) -> dict[str, list[int | None]]:
    """``states`` as content (tensor indexes, null for none), its tensors added to ``msg``."""
    return {mid: [None if s is None else msg.add(np.ascontiguousarray(s, np.float32))
                  for s in values] for mid, values in states.items()}


def decode(msg: P.Message, refs: Any, what: str) -> States:
    """The states a message's content ``refs`` (module id -> [tensor index | null]) names."""
    if not isinstance(refs, dict) or not all(isinstance(v, list) for v in refs.values()):
        raise P.ProtocolError(P.E_BAD_REQUEST, f"{what}: 'modules' maps module ids to lists of "
                                               f"tensor indexes. Received: {str(refs)[:60]}")
    return {mid: [None if r is None else P.tensor_ref(msg, r, f"{what}: state of {mid}")
                  for r in values] for mid, values in refs.items()}


def stateful(dep: Deployment) -> list[str]:
    """The modules of ``dep`` that hold state (by type name), in topological order."""
    return [m for m in dep.order if holds_state(dep.description.modules[m].type)]


def fetch_states(dep: Deployment, placement: Mapping[str, str], gone: set[str],
                 resent: Iterable[str] = (), timeout: float | None = None) -> States:
    """Before ``dep`` is redeployed with ``placement``: the states to set again once it is up.
    The modules that hold state and move away from a live agent; with ``resent`` (samples lost
    in a failover, to be sent again), every such module on a live agent, as it was before those
    samples updated it. Nothing is asked of the agents in ``gone``."""
    resent = list(resent)
    ask: dict[str, list[str]] = {}
    for mid in stateful(dep):
        aid = dep.placement.get(mid)
        if aid is None or aid in gone:
            continue
        if resent or placement.get(mid) not in (None, aid):
            ask.setdefault(aid, []).append(mid)
    states: States = {}
    for aid in sorted(ask):
        reply = dep.session.request(dep.all_conns[aid], P.Message("get_state", {
            "deployment": dep.id, "modules": ask[aid], "before": resent,
            "token": dep.token}), timeout)
        states.update(decode(reply, reply.content.get("modules"), f"agent {aid}: state"))
    return states


def restore_states(dep: Deployment, states: Mapping[str, list[Any]],
                   timeout: float | None = None) -> None:
    """Set ``states`` on the agents that hold their modules now (one request per agent)."""
    by_agent: dict[str, dict[str, list[Any]]] = {}
    for mid, values in states.items():
        by_agent.setdefault(dep.placement[mid], {})[mid] = values
    for aid in sorted(by_agent):
        msg = P.Message("set_state", {"deployment": dep.id, "token": dep.token})
        msg.content["modules"] = encode(msg, by_agent[aid])
        dep.session.request(dep.all_conns[aid], msg, timeout)
