"""Array backends: numpy always, cupy when importable and a GPU answers.

Code in modules is written once against ``xp`` (the array module). This is the only package of
the engine that may import cupy, and it does so lazily, on request. The choice comes from an
explicit argument, else the ``DIANNE_BACKEND`` environment variable, else ``auto`` (cupy if a GPU
answers, numpy otherwise). One log line says which backend was chosen and why.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.errors import BackendError

log = logging.getLogger(__name__)

CHOICES = ("auto", "numpy", "cupy")


@dataclass(frozen=True)
class Backend:
    """An array module plus the two boundary moves (host <-> device)."""

    name: str
    xp: Any
    device: str = "cpu"

    def asarray(self, array: Any, dtype: Any = np.float32) -> Any:
        """Move a host array to this backend (no copy for numpy when the dtype matches)."""
        return self.xp.asarray(array, dtype=dtype)

    def to_host(self, array: Any) -> np.ndarray:
        """Return ``array`` as a numpy array (a device-to-host copy for cupy)."""
        if isinstance(array, np.ndarray):
            return array
        if self.name == "cupy":
            return self.xp.asnumpy(array)
        return np.asarray(array)


NUMPY = Backend("numpy", np, "cpu")
_cache: dict[str, Backend] = {}


def _try_cupy() -> tuple[Backend | None, str]:
    """Return (backend, reason); backend is None when cupy cannot be used."""
    try:
        import cupy  # noqa: PLC0415  (lazy on purpose: cupy only on request)
    except ImportError as exc:
        return None, f"cupy is not installed ({exc})"
    try:
        if not cupy.cuda.is_available():
            return None, "cupy is installed but no CUDA GPU answers"
        props = cupy.cuda.runtime.getDeviceProperties(0)
        gpu = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
        cupy.zeros(1)  # first real use: raises when the driver is unusable
    except Exception as exc:  # CUDARuntimeError and friends are RuntimeErrors
        return None, f"cupy is installed but the GPU cannot be used ({exc})"
    return Backend("cupy", cupy, gpu), f"GPU {gpu}"


def available() -> dict[str, str]:
    """Map backend name -> device description for every backend usable here."""
    found = {"numpy": "cpu"}
    cp, _ = _try_cupy()
    if cp is not None:
        found["cupy"] = cp.device
    return found


def get_backend(choice: str | None = None) -> Backend:
    """Return the backend for ``choice`` (``auto``, ``numpy`` or ``cupy``).

    ``None`` reads ``DIANNE_BACKEND`` (default ``auto``). Asking for ``cupy`` explicitly when it
    cannot be used raises :class:`BackendError`; ``auto`` falls back to numpy.
    """
    choice = (choice or os.environ.get("DIANNE_BACKEND") or "auto").strip().lower()
    if choice not in CHOICES:
        raise BackendError(
            f"unknown backend; choose one of {', '.join(CHOICES)}. Received: {choice!r}"
        )
    if choice in _cache:
        return _cache[choice]
    if choice == "numpy":
        backend = NUMPY
        log.info("backend: numpy (asked for explicitly)")
    else:
        cp, reason = _try_cupy()
        if cp is not None:
            backend = cp
            log.info("backend: cupy on %s", reason)
        elif choice == "cupy":
            raise BackendError(f"backend 'cupy' was asked for but {reason}")
        else:
            backend = NUMPY
            log.info("backend: numpy (auto: %s)", reason)
    _cache[choice] = backend
    return backend
