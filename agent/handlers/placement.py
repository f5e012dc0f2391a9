"""Messages for automatic placement: profiling, link measurement, emulated slowness and links.

- ``profile`` {network (modules.txt text), input_shape?, repeat?, warmup?} -> ``profile``
  {modules {uuid: {forward_s, out_bytes, next_bytes, param_bytes, type, name}}, backend,
  slowdown}: :func:`engine.profiling.profile_modules` on this agent's backend, through the
  emulated slowdown (so a slowed agent reports what it really takes).
- ``module_times`` {deployment, reset?} -> ``module_times`` {modules {uuid: {median_s,
  count}}}: the forward time of each local module over the last 256 real forwards of that
  deployment (deployments made after the first ``profile`` or ``emulate`` message are timed).
  This is what the planner uses: a module serving one sample at a time runs with colder caches
  than in a tight profiling loop (2-3x slower for small layers here).
- ``randomize`` {deployment, seed?} -> ``ok``: fresh seeded parameters for the local modules of
  a deployment (live profiling deploys without weights; never-written zero weights would be
  read from one cached zero page and time far too fast).
- ``emulate`` {slowdown, module_delay_s, links {agent id | "client" | "*": {rtt, bandwidth}}}
  -> ``emulated``: from now on every module forward of this agent takes ``slowdown`` times its
  steady reference time, or longer when it really takes longer (see :class:`Slowdown`), plus
  ``module_delay_s``, and every tensor this agent sends waits ``rtt / 2 + bytes /
  bandwidth`` for the link to its destination first (like ``tc netem delay`` + ``rate`` on this
  end: configure both ends). The link to the client is emulated here in both directions: the
  results sent to it, and the forward/backward requests received from it. Applies to
  deployments made after it.

Links are measured on the data path itself, by timing forwards of a two-module probe network
(:func:`app.autoplace.measure_links`), so no message type is needed for that. The emulation
wraps this agent's ``send_agent`` and ``reply`` and its ``deploy``, ``forward`` and
``backward`` handler entries (per agent instance, in this file only): the agent core knows
nothing about it.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agent import protocol as P
from agent.handlers import handler
from engine.description import parse_network
from engine.profiling import profile_modules

_clock = time.perf_counter


def wait(seconds: float) -> None:
    """Wait ``seconds`` precisely: sleep most of it, spin the last millisecond."""
    if seconds <= 0:
        return
    end = _clock() + seconds
    if seconds > 0.002:
        time.sleep(seconds - 0.001)
    while _clock() < end:
        pass


CALIBRATE = 5  # calls that fix a module configuration's reference time
# (module type, configuration, input shape) -> its first calls' seconds, then the fastest
_REFERENCE: dict[tuple, list[float] | float] = {}


def _module_key(fn: Callable[[Any], Any]) -> tuple | None:
    mod = getattr(fn, "__self__", None)  # a module's bound forward
    cfg = getattr(mod, "cfg", None)
    if mod is None or cfg is None:
        return None
    return type(mod).__name__, tuple(sorted((k, repr(v)) for k, v in cfg.items()))


def _shape(x: Any) -> tuple:
    if isinstance(x, list | tuple):
        return tuple(_shape(v) for v in x)
    return tuple(getattr(x, "shape", ()))


def _reference(key: tuple, spent: float) -> float:
    """The steady reference time of a configuration: the fastest of its first calls (the one
    least disturbed by the host's load, so agents on one host agree on it)."""
    got = _REFERENCE.setdefault(key, [])
    if isinstance(got, float):
        return got
    got.append(spent)
    if len(got) >= CALIBRATE:
        _REFERENCE[key] = float(min(got))
    return spent


@dataclass(frozen=True)
class Slowdown:
    """Wraps a module's forward so it takes ``factor`` times its reference time (the fastest of
    the first calls of that module configuration and input shape in this process), or its
    real time when that is longer, plus ``delay_s``. Padding to a steady target keeps the
    emulated machine steady while this host's load is not: a dedicated slower machine does
    not slow down with the load of the others. Hashable, so profiling caches slowed and
    normal timings apart."""

    factor: float = 1.0
    delay_s: float = 0.0

    def __call__(self, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        if self.factor == 1.0 and self.delay_s == 0.0:
            return fn
        factor, delay, static = self.factor, self.delay_s, _module_key(fn)

        def slowed(x: Any) -> Any:
            t0 = _clock()
            out = fn(x)
            spent = _clock() - t0
            ref = spent if static is None else _reference((*static, _shape(x)), spent)
            wait(max(0.0, factor * ref - spent) + delay)
            return out

        return slowed


@dataclass
class Emulation:
    """What this agent emulates: its slowdown and its outgoing links (delay s, bytes/s)."""

    slowdown: Slowdown = field(default_factory=Slowdown)
    links: dict[str, tuple[float, float]] = field(default_factory=dict)

    def transfer_s(self, to: str, nbytes: int) -> float:
        link = self.links.get(to) or self.links.get("*")
        if link is None:
            return 0.0
        delay, bandwidth = link
        return delay + nbytes / bandwidth

    def to_json(self) -> dict[str, Any]:
        return {"slowdown": self.slowdown.factor, "module_delay_s": self.slowdown.delay_s,
                "links": {k: {"rtt": 2 * d, "bandwidth": None if math.isinf(b) else b}
                          for k, (d, b) in self.links.items()}}


def _nbytes(msg: P.Message) -> int:
    return int(sum(np.asarray(t).nbytes for t in msg.tensors))


def emulation(agent: Any) -> Emulation:
    """This agent's emulation, installing the wrappers on first use."""
    em = getattr(agent, "placement_emulation", None)
    if em is not None:
        return em
    em = agent.placement_emulation = Emulation()
    send_agent, reply = agent.send_agent, agent.reply

    def send_agent_emulated(agent_id: str, msg: P.Message) -> None:
        wait(em.transfer_s(agent_id, _nbytes(msg)))
        send_agent(agent_id, msg)

    def reply_emulated(sender: bytes, msg: P.Message) -> None:
        if msg.type == "result" or (msg.type == "error" and "sample" in msg.content):
            wait(em.transfer_s("client", _nbytes(msg)))
        reply(sender, msg)

    handlers = dict(agent.handlers)
    deploy = handlers["deploy"]

    times: dict[str, dict[str, deque]] = {}
    agent.placement_times = times

    def deploy_emulated(agent: Any, msg: P.Message, sender: bytes) -> Any:
        out = deploy(agent, msg, sender)
        dep = msg.content.get("deployment")
        frag = agent.deployments.get(dep)
        for gone in [d for d in times if d not in agent.deployments]:
            del times[gone]
        if frag is not None:
            times[dep] = {}
            for mid, mod in frag.modules.items():
                base = mod.__dict__.setdefault("_unemulated_forward", mod.forward)
                mod.forward = _timed(times[dep].setdefault(mid, deque(maxlen=256)),
                                     em.slowdown(base))
        return out

    def from_client(fn: Callable[..., Any]) -> Callable[..., Any]:
        def received(agent: Any, msg: P.Message, sender: bytes) -> Any:
            wait(em.transfer_s("client", _nbytes(msg)))
            return fn(agent, msg, sender)
        return received

    handlers["deploy"] = deploy_emulated
    handlers["forward"] = from_client(handlers["forward"])
    handlers["backward"] = from_client(handlers["backward"])
    agent.send_agent, agent.reply, agent.handlers = send_agent_emulated, reply_emulated, handlers
    return em


def _timed(record: deque, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``fn`` that appends the seconds of each call to ``record`` (what ``module_times``
    reports: module times observed in real forwards, caches and all)."""
    def call(x: Any) -> Any:
        t0 = _clock()
        out = fn(x)
        record.append(_clock() - t0)
        return out
    return call


def _number(content: dict[str, Any], key: str, default: float, what: str) -> float:
    value = content.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise P.ProtocolError(P.E_BAD_REQUEST, f"{what}: '{key}' must be a number >= 0. "
                                               f"Received: {str(value)[:40]}")
    return float(value)


@handler("emulate")
def emulate(agent: Any, msg: P.Message, sender: bytes) -> P.Message:
    c = msg.content
    factor = _number(c, "slowdown", 1.0, "emulate")
    if factor < 1.0:
        raise P.ProtocolError(P.E_BAD_REQUEST, f"emulate: 'slowdown' is a factor >= 1. "
                                               f"Received: {factor}")
    links = c.get("links") or {}
    if not isinstance(links, dict):
        raise P.ProtocolError(P.E_BAD_REQUEST, f"emulate: 'links' must be an object. "
                                               f"Received: {str(links)[:60]}")
    parsed = {}
    for key, link in links.items():
        if not isinstance(link, dict):
            raise P.ProtocolError(P.E_BAD_REQUEST, f"emulate: link {key!r} must be an object "
                                                   f"with rtt and bandwidth. Received: {link!r}")
        rtt = _number(link, "rtt", 0.0, f"emulate: link {key!r}")
        bandwidth = _number(link, "bandwidth", math.inf, f"emulate: link {key!r}") or math.inf
        parsed[str(key)] = (rtt / 2.0, bandwidth)
    em = emulation(agent)
    em.slowdown = Slowdown(factor, _number(c, "module_delay_s", 0.0, "emulate"))
    em.links = parsed
    return msg.reply("emulated", em.to_json())


@handler("profile")
def profile(agent: Any, msg: P.Message, sender: bytes) -> P.Message:
    c = msg.content
    desc = parse_network(P.need(c, "network", str, "profile"), "profile request")
    desc.validate()
    shape = c.get("input_shape")
    if shape is not None and not (isinstance(shape, list) and shape and all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)):
        raise P.ProtocolError(P.E_BAD_REQUEST, f"profile: 'input_shape' is a list of positive "
                                               f"integers. Received: {str(shape)[:60]}")
    repeat = int(_number(c, "repeat", 20, "profile")) or 1
    warmup = int(_number(c, "warmup", 3, "profile"))
    slow = emulation(agent).slowdown
    modules = profile_modules(desc, tuple(shape) if shape else None, backend=agent.backend,
                              repeat=repeat, warmup=warmup, wrap=slow)
    return msg.reply("profile", {"modules": modules, "backend": agent.backend.name,
                                 "slowdown": slow.factor, "module_delay_s": slow.delay_s})


@handler("module_times")
def module_times(agent: Any, msg: P.Message, sender: bytes) -> P.Message:
    dep = P.need(msg.content, "deployment", str, "module_times")
    table = getattr(agent, "placement_times", {}).get(dep)
    if table is None:
        raise P.ProtocolError(P.E_BAD_REQUEST, f"module_times: no timed deployment {dep!r} on "
                                               f"agent {agent.name} (deploy after a profile or "
                                               f"emulate message). Received: {dep}")
    out = {m: {"median_s": float(np.median(t)), "count": len(t)} for m, t in table.items() if t}
    if msg.content.get("reset"):
        for t in table.values():
            t.clear()
    return msg.reply("module_times", {"deployment": dep, "modules": out})


@handler("randomize")
def randomize(agent: Any, msg: P.Message, sender: bytes) -> P.Message:
    """Fresh seeded parameters for every local module of a deployment (profiling runs on
    these: untouched zero weights would read as one cached page and time unrealistically)."""
    dep = P.need(msg.content, "deployment", str, "randomize")
    frag = agent.deployments.get(dep)
    if frag is None:
        raise P.ProtocolError(P.E_BAD_REQUEST, f"randomize: no deployment {dep!r} on agent "
                                               f"{agent.name}. Received: {dep}")
    rng = np.random.default_rng(int(_number(msg.content, "seed", 0, "randomize")))
    for mid in sorted(frag.modules):
        frag.modules[mid].reset(rng)
    return msg.reply("ok", {"deployment": dep, "modules": sorted(frag.modules)})
