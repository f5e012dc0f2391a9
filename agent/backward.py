"""Backward through one agent's fragment: :class:`Backward`, mixed into
:class:`agent.host.Fragment`.

Backward runs the same way as forward, in reverse over the plan of the last forward: each
module waits for a gradient (or an explicit "none") from every successor of that plan, exactly
as the local executor combines them (fork slots, sums), and Inputs report their gradient to the
client. As locally, it stops at a Memory (one step, no backpropagation through time): the Memory
keeps the gradient of its emitted state (``grad_state``) and the edge into it carries none.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from agent.plan import MAX_IN_FLIGHT, Plan, Step
from engine.backends import Backend
from engine.errors import DianneError
from engine.modules import Module


class Backward:
    """The backward half of a fragment; the fragment provides the attributes named below."""

    id: str
    backend: Backend
    modules: dict[str, Module]
    succ: dict[str, list[str]]
    last_outputs: tuple[str, ...] | None
    send: Callable[..., None] | None
    report: Callable[..., None] | None
    _grads: OrderedDict[str, tuple[list[Step], dict[str, list]]]
    plan: Callable[[tuple[str, ...]], Plan]
    local_module: Callable[[str], Module]
    _call: Callable[[Module, str, Any], Any]

    def grad(self, sample: str, src: str | None, dst: str, tensor: Any) -> None:
        """A gradient (or None) for local module ``dst``'s output, from successor ``src``."""
        if self.last_outputs is None:
            raise DianneError(f"deployment {self.id}: backward before any forward")
        self.local_module(dst)
        entry = self._grads.get(sample)
        if entry is None:
            steps = list(self.plan(self.last_outputs).back)
            entry = self._grads[sample] = (steps, {})
            if len(self._grads) > MAX_IN_FLIGHT:
                self._grads.popitem(last=False)
        steps, gin = entry
        gin.setdefault(dst, []).append((src, tensor))
        try:
            left = [s for s in steps if not self._backward_step(sample, s, gin)]
        except BaseException:
            self._grads.pop(sample, None)
            raise
        if left:
            self._grads[sample] = (left, gin)
        else:
            self._grads.pop(sample, None)

    def _backward_step(self, sample: str, step: Step, gin: dict[str, list]) -> bool:
        incoming = gin.get(step.mid, [])
        if len(incoming) < step.n_grads:
            return False
        mod = step.module
        succ = self.succ[step.mid]
        given = [(succ.index(s) if s in succ else 0, s, g) for s, g in incoming if g is not None]
        given.sort(key=lambda t: t[0])
        grad_in: Any = None
        if given:
            xp = self.backend.xp
            if mod.fork:
                slots: list[Any] = [None] * mod.n_next
                for idx, _, g in given:
                    g = xp.asarray(g, dtype=mod.dtype)
                    slots[idx] = g if slots[idx] is None else slots[idx] + g
                grad_out: Any = slots
            else:
                grad_out = xp.asarray(given[0][2], dtype=mod.dtype)
                for _, _, g in given[1:]:
                    grad_out = grad_out + xp.asarray(g, dtype=mod.dtype)
            grad_in = self._call(mod, "backward", grad_out)
        if mod.type_name == "Input":
            self.report("backward", sample, step.mid,
                        None if grad_in is None else self.backend.to_host(grad_in))
            return True
        grads = grad_in if (mod.join and grad_in is not None) else [grad_in] * len(step.to_pred)
        for (p, _, agent), g in zip(step.to_pred, grads, strict=True):
            if agent is None:
                gin.setdefault(p, []).append((step.mid, g))
            else:
                self.send(agent, "backward", sample, step.mid, p, None,
                          None if g is None else self.backend.to_host(g))
        return True
