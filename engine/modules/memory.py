"""The recurrent ``Memory`` module (spec 4.2, rnn bundle): one step of delay in a graph.

A Memory closes a cycle in a recurrent network (GRU, LSTM). At the start of a network pass it
*emits* the state it holds (zeros of ``size`` at first); once its predecessor has computed the
new state, the executor hands it over with :meth:`Memory.forward`, which stores it for the next
pass — the original's two steps ``updateOutput`` (on trigger) and ``updateMemory`` (on input).
The executor therefore treats the edge *into* a Memory as delayed: the Memory is a source of the
current pass and its predecessor a sink. Standalone, ``forward`` is the identity that also
stores its input, and ``backward`` passes the gradient through (the original's SimpleMemory);
during a network backward the gradient w.r.t. the emitted state is kept in ``grad_state`` (what
a BPTT learner feeds into the previous step). The state is not a persisted parameter.
"""

from __future__ import annotations

from typing import Any

from engine.modules.base import Module, Prop, register


@register
class Memory(Module):
    """Recurrent state of ``size`` values: emits the previous state, stores the new one."""

    type_name = "Memory"
    category = "Memory"
    # The original's module-type DTO flagged Memory trainable, but it has no parameters to
    # learn or persist, so the palette does not mark it.
    trainable = False
    recurrent = True
    props = (Prop("size", "int", required=True, doc="number of state values"),)
    example = {"props": {"size": 4}, "inputs": [(4,)]}

    def setup(self) -> None:
        if self.cfg["size"] <= 0:
            raise self.fail("size must be > 0", self.cfg["size"])
        self.state: Any = None
        self.grad_state: Any = None
        self.batch: int | None = None

    # ----------------------------------------------------------------- state
    def reset_state(self, state: Any = None, batch: int | None = None) -> None:
        """Start a new sequence: zeros (one sample, or ``batch`` rows), or the given state."""
        size = self.cfg["size"]
        self.grad_state = None
        if state is not None:
            arr = self.xp.asarray(state, dtype=self.dtype)
            if arr.shape[-1:] != (size,) or arr.ndim > 2:
                raise self.shape_fail(f"state must have shape ({size},) or (N, {size})",
                                      tuple(arr.shape))
            self.state = arr.copy()
            self.batch = int(arr.shape[0]) if arr.ndim == 2 else None
            return
        self.batch = batch
        shape = (size,) if batch is None else (batch, size)
        self.state = self.xp.zeros(shape, dtype=self.dtype)

    def emit(self, _unused: Any = None) -> Any:
        """The state of the previous step (what successors receive in the current pass)."""
        if self.state is None:
            self.reset_state(batch=self.batch)
        return self.state

    # ----------------------------------------------------------------- module contract
    def forward(self, x: Any) -> Any:
        """Store ``x`` as the state for the next step; returns it (identity)."""
        size = self.cfg["size"]
        if x.ndim not in (1, 2) or x.shape[-1] != size:
            raise self.shape_fail(f"input must have shape ({size},) or (N, {size})",
                                  tuple(x.shape))
        # A copy: producers may reuse their output buffers on the next pass.
        self.state = x.copy()
        self.batch = int(x.shape[0]) if x.ndim == 2 else None
        return self.state

    def backward(self, grad_output: Any) -> Any:
        self.grad_state = grad_output
        return grad_output

    def output_shape(self, in_shape: Any) -> Any:
        size = self.cfg["size"]
        if in_shape is not None and tuple(in_shape) != (size,):
            raise self.shape_fail(f"input must have shape ({size},)", tuple(in_shape))
        return (size,)
