"""Per-module profiles for placement: single-sample forward time, output and parameter bytes.

:func:`profile_modules` builds the network once on a backend, runs one real forward pass with a
random sample (so every module sees the argument it sees in practice: a Split's slice, a
MaxUnpooling's indices), then times each module alone on that argument: a short warm run, then
the median of ``repeat`` calls. Output sizes are the real output arrays' byte counts, checked
against shape inference; parameter bytes come from the module's parameter vector. Timings are
cached per module configuration (backend, type, constructor properties, input shapes, number of
successors and predecessors), so profiling a second network that shares layers, or the same
network again, costs nothing. This is what an agent runs on its own hardware for the planner
(``app/planner.py``), which then never needs to run anything itself.
"""

from __future__ import annotations

import time
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


def _time_call(call: Any, arg: Any, backend: Backend, repeat: int, warmup: int) -> float:
    for _ in range(warmup):
        call(arg)
    _sync(backend)
    samples = []
    clock = time.perf_counter
    for _ in range(repeat):
        t0 = clock()
        call(arg)
        _sync(backend)
        samples.append(clock() - t0)
    return float(np.median(samples))


def _shape_of(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_shape_of(v) for v in value)
    return tuple(int(d) for d in value.shape)


def _cache_key(net: Network, mid: str, arg: Any, repeat: int) -> tuple:
    md = net.description.modules[mid]
    props = tuple(sorted((k, v) for k, v in md.properties.items() if k not in _INFORMATIONAL))
    return (net.backend.name, str(net.dtype), md.type, props, _shape_of(arg),
            len(net.succ[mid]), len(net.pred[mid]), repeat)


def profile_modules(desc: NetworkDescription, input_shape: tuple[int, ...] | None = None, *,
                    backend: Backend | str | None = None, repeat: int = 20, warmup: int = 3,
                    seed: int = 0) -> dict[str, dict[str, Any]]:
    """Profile every module of ``desc`` for one sample on ``backend``.

    Returns ``{uuid: {...}}`` in execution order with ``forward_s`` (median seconds of one
    forward call), ``out_bytes`` (bytes of the module's output; a fork's outputs summed),
    ``next_bytes`` (successor uuid -> bytes that successor receives), ``param_bytes``, ``type``
    and ``name``. ``input_shape`` is one sample's shape for a single Input whose ``dims`` are
    not set (a mapping Input id -> shape for several Inputs).
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
    xp, rng = net.xp, np.random.default_rng(seed)
    values: dict[str, Any] = {}
    result: dict[str, dict[str, Any]] = {}
    for mid in net.order:
        mod = net.modules[mid]
        if mod.type_name == "Input":
            sample = rng.standard_normal(shapes[mid].out_shape).astype(net.dtype)
            arg: Any = xp.asarray(sample)
        else:
            parts = [values[p][net.succ[p].index(mid)] if net.modules[p].fork else values[p]
                     for p in net.pred[mid]]
            arg = parts if mod.join else parts[0]
        out = mod.forward(arg)
        values[mid] = _copy(out)
        key = _cache_key(net, mid, arg, repeat)
        forward_s = _CACHE.get(key)
        if forward_s is None:
            forward_s = _CACHE[key] = _time_call(mod.forward, arg, net.backend, repeat, warmup)
            values[mid] = _copy(mod.forward(arg))  # timing may have reused output buffers
        nxt = net.succ[mid]
        if mod.fork:
            next_bytes = {s: _nbytes(values[mid][i]) for i, s in enumerate(nxt)}
        else:
            next_bytes = dict.fromkeys(nxt, _nbytes(values[mid]))
        result[mid] = {"type": mod.type_name, "name": mod.name, "forward_s": forward_s,
                       "out_bytes": _nbytes(values[mid]),
                       "param_bytes": mod.parameter_size() * int(net.dtype.itemsize),
                       "next_bytes": next_bytes}
    return result


def total_forward_s(profile: dict[str, dict[str, Any]]) -> float:
    """The sum of the modules' forward times: a single-agent forward, executor cost aside."""
    return float(sum(p["forward_s"] for p in profile.values()))
