"""Per-module profiles for placement: single-sample forward time, output and parameter bytes.

:func:`profile_modules` builds the network once on a backend and runs it on a random sample, so
every module sees the argument it sees in practice (a Split's slice, a MaxUnpooling's indices);
then it runs a few warm passes and ``repeat`` timed ones, module by module in execution order,
timing every call where it really happens (after its predecessors, with the caches as a real
forward leaves them), and keeps each module's median. Output sizes are the real output arrays'
byte counts; parameter bytes come from the module's parameter vector. Timings are
cached per module configuration (backend, type, constructor properties, input shapes, number of
successors and predecessors), so profiling a second network that shares layers, or the same
network again, costs nothing. This is what an agent runs on its own hardware for the planner
(``app/planner.py``), which then never needs to run anything itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from engine.backends import Backend, get_backend
from engine.description import NetworkDescription
from engine.errors import ShapeError
from engine.graph import Network
from engine.shapes import infer_shapes

# Properties that do not change what a module computes (kept out of the cache key).
_INFORMATIONAL = ("name", "category", "trainable")
_CACHE: dict[tuple, float] = {}


def clear_cache() -> None:
    """Forget every cached timing (e.g. after changing the machine's load or thread count)."""
    _CACHE.clear()


def _nbytes(value: Any) -> int:
    if isinstance(value, list | tuple):
        return sum(_nbytes(v) for v in value)
    return int(value.nbytes)


def _copy(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [v.copy() for v in value]
    return value.copy()


def _sync(backend: Backend) -> None:
    """Wait for queued device work, so a GPU timing measures the work and not its launch."""
    if backend.name == "cupy":
        backend.xp.cuda.Device().synchronize()


def _arg(net: Network, values: dict[str, Any], mid: str, feeds: dict[str, Any]) -> Any:
    """A module's argument from its predecessors' outputs, the way the executor builds it."""
    mod = net.modules[mid]
    if mod.type_name == "Input":
        return feeds[mid]
    if getattr(mod, "recurrent", False):  # a Memory emits its state: no argument
        return None
    parts = [values[p][net.succ[p].index(mid)] if net.modules[p].fork else values[p]
             for p in net.pred[mid]]
    return parts if mod.join else parts[0]


def _call(mod: Any) -> Callable[[Any], Any]:
    """What the executor calls for a module in a pass: a Memory's ``emit``, else ``forward``."""
    return mod.emit if getattr(mod, "recurrent", False) else mod.forward


def _timed_passes(net: Network, feeds: dict[str, Any], calls: dict[str, Callable[[Any], Any]],
                  repeat: int, warmup: int) -> dict[str, float]:
    """Median seconds per module over ``repeat`` whole forward passes run module by module in
    execution order (after ``warmup`` passes): each module is timed where it really runs,
    after its predecessors, with their outputs in cache and its own weights not."""
    samples: dict[str, list[float]] = {m: [] for m in net.order}
    clock = time.perf_counter
    for r in range(warmup + repeat):
        values: dict[str, Any] = {}
        for mid in net.order:
            arg = _arg(net, values, mid, feeds)
            t0 = clock()
            values[mid] = calls[mid](arg)
            _sync(net.backend)
            if r >= warmup:
                samples[mid].append(clock() - t0)
    return {m: float(np.median(t)) for m, t in samples.items()}


def _shape_of(value: Any) -> Any:
    if value is None:  # a Memory's (absent) argument
        return None
    if isinstance(value, list | tuple):
        return tuple(_shape_of(v) for v in value)
    return tuple(int(d) for d in value.shape)


def _cache_key(net: Network, mid: str, arg: Any, repeat: int, warmup: int, wrap: Any) -> tuple:
    md = net.description.modules[mid]
    props = tuple(sorted((k, v) for k, v in md.properties.items() if k not in _INFORMATIONAL))
    return (net.backend.name, str(net.dtype), md.type, props, _shape_of(arg),
            len(net.succ[mid]), len(net.pred[mid]), repeat, warmup, wrap)


def profile_modules(desc: NetworkDescription, input_shape: tuple[int, ...] | None = None, *,
                    backend: Backend | str | None = None, repeat: int = 20, warmup: int = 3,
                    seed: int = 0, wrap: Callable[[Callable[[Any], Any]], Callable[[Any], Any]]
                    | None = None) -> dict[str, dict[str, Any]]:
    """Profile every module of ``desc`` for one sample on ``backend``.

    Returns ``{uuid: {...}}`` in execution order with ``forward_s`` (median seconds of one
    forward call), ``out_bytes`` (bytes of the module's output; a fork's outputs summed),
    ``next_bytes`` (successor uuid -> bytes that successor receives), ``param_bytes``, ``type``
    and ``name``. ``input_shape`` is one sample's shape for a single Input whose ``dims`` are
    not set (a mapping Input id -> shape for several Inputs). ``wrap`` (hashable; part of
    the cache key) wraps each module's forward before it is timed, the way an agent that
    emulates a slower machine wraps the modules it runs.
    """
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1. Received: {repeat}")
    shapes = infer_shapes(desc, input_shape)
    if shapes.errors:
        mid, why = next(iter(shapes.errors.items()))
        md = desc.modules[mid]
        raise ShapeError(f"{desc.source or desc.name}: cannot profile: {md.type} '{md.name}' "
                         f"({mid}): {why}. Received: input shape {input_shape}")
    net = Network(desc, backend if isinstance(backend, Backend) else get_backend(backend),
                  seed=seed)
    net.eval()
    rng = np.random.default_rng(seed)
    feeds = {m: net.xp.asarray(rng.standard_normal(shapes[m].out_shape).astype(net.dtype))
             for m in net.inputs}
    values: dict[str, Any] = {}
    keys: dict[str, tuple] = {}
    for mid in net.order:
        arg = _arg(net, values, mid, feeds)
        values[mid] = _copy(_call(net.modules[mid])(arg))
        keys[mid] = _cache_key(net, mid, arg, repeat, warmup, wrap)
    if any(k not in _CACHE for k in keys.values()):
        calls = {m: _call(mod) if wrap is None else wrap(_call(mod))
                 for m, mod in net.modules.items()}
        timed = _timed_passes(net, feeds, calls, repeat, warmup)
        for mid, key in keys.items():
            _CACHE.setdefault(key, timed[mid])
    result: dict[str, dict[str, Any]] = {}
    for mid in net.order:
        mod, out = net.modules[mid], values[mid]
        nxt = net.succ[mid]
        if mod.fork:
            next_bytes = {s: _nbytes(out[i]) for i, s in enumerate(nxt)}
        else:
            next_bytes = dict.fromkeys(nxt, _nbytes(out))
        result[mid] = {"type": mod.type_name, "name": mod.name, "forward_s": _CACHE[keys[mid]],
                       "out_bytes": _nbytes(out),
                       "param_bytes": mod.parameter_size() * int(net.dtype.itemsize),
                       "next_bytes": next_bytes}
    return result


def total_forward_s(profile: dict[str, dict[str, Any]]) -> float:
    """The sum of the modules' forward times: a single-agent forward, executor cost aside."""
    return float(sum(p["forward_s"] for p in profile.values()))
