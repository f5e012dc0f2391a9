"""Frozen weights: what a module may keep derived from its parameters in inference.

``Network.eval()`` freezes the modules that can keep forms derived from their weights (within a
memory budget): Convolution keeps its bias-folded GEMM matrix, Winograd-transformed or
phase-rearranged weights; Linear its weights with the bias as one more column. While such a
form is kept, the parameter arrays are read-only (:meth:`Freezable.lock_params`), so a write that
would leave it stale fails loudly instead. ``train()``, ``set_flat``, ``reset`` and
:meth:`Freezable.thaw` drop the forms (``set_flat``/``reset`` freeze again afterwards).
"""

from __future__ import annotations

from typing import Any


class Freezable:
    """Mixin for a :class:`engine.modules.Module` with a ``_slot`` (see ``buffers.Slot``) whose
    contents depend on whether the module is frozen; subclasses drop their own kept forms in
    :meth:`_drop_kept` and say what they would keep in ``freeze_bytes``."""

    _frozen = False

    def freeze(self) -> None:
        """Inference mode: keep forms derived from the weights (see the module docstring)."""
        if not self._frozen:
            self._frozen = True
            self._slot.clear()  # type: ignore[attr-defined]

    def lock_params(self) -> None:
        """Make the parameter arrays read-only while forms derived from them are kept."""
        locked = self.__dict__.setdefault("_locked", [])
        for p in self.params.values():  # type: ignore[attr-defined]
            if p.flags.writeable:
                p.flags.writeable = False
                locked.append(p)

    def thaw(self) -> None:
        for p in self.__dict__.get("_locked", ()):
            p.flags.writeable = True
        self.__dict__["_locked"] = []
        self._drop_kept()
        if self._frozen:
            self._frozen = False
            self._slot.clear()  # type: ignore[attr-defined]

    def _drop_kept(self) -> None:
        """Forget forms kept outside the slot (none by default)."""

    def train(self, mode: bool = True) -> Any:
        super().train(mode)  # type: ignore[misc]
        if mode:
            self.thaw()
        return self

    def set_flat(self, flat: Any) -> None:
        frozen = self._frozen
        self.thaw()
        super().set_flat(flat)  # type: ignore[misc]
        if frozen:
            self.freeze()

    def reset(self, rng: Any = None) -> None:
        frozen = self._frozen
        self.thaw()
        super().reset(rng)  # type: ignore[misc]
        if frozen:
            self.freeze()
