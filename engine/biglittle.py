"""Big-Little (De Coninck et al., 2015): a little network on the device, the big one on a server.

A Big-Little network is one ordinary DIANNE network with two Outputs: the *little* Output
(classes = the priority classes + ``"other"``) and the *big* Output (every class), typically
``Input -> Duplicate -> little branch / big branch``. The policy is stored as top-level network
properties of ``modules.txt`` (the string map the original has read since 2018), so it travels
with the network through repositories, zips and the editor:

=========================  ===========================================================
``bigLittle.little``       UUID of the little Output
``bigLittle.big``          UUID of the big Output
``bigLittle.priority``     the priority classes, e.g. ``[0, 1, 2]`` (labels of both Outputs)
``bigLittle.threshold``    confidence threshold, e.g. ``0.9``
``bigLittle.features``     ``false``: the device sends the sample; ``true``: it sends the
                           tensor where the big branch leaves the little one (its features)
=========================  ===========================================================

The rule: the little part answers on the device when its top class is a priority class with
probability >= threshold; otherwise the payload goes to the big part, whose top class is the
answer. :func:`split` cuts the network into the device part and the server part (module UUIDs
kept, so the weight files serve both); :class:`BigLittle` runs the rule on one sample through any
pair of part runners (in-process :class:`LocalRunner`, or agents); ``engine.biglittle_sweep``
gives the threshold trade-off curve from one pass over a dataset.

When the big part cannot answer (a runner's ``big`` raises :class:`BigUnreachable`: its agent
is gone, or it did not answer within the runner's bound), :meth:`BigLittle.classify` still
answers, with the little network's verdict (its top class, ``"other"`` included, and that
class's probability) marked ``fallback=True`` with the runner's ``reason``. A runner whose little
part had to leave the device (its agent lost) says where it runs in its ``little_on`` attribute
(an agent's name; None while on the device), and every answer carries it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from engine.description import ModuleDescription, NetworkDescription
from engine.errors import DianneError
from engine.graph import Network
from engine.link import Link
from engine.modules.io import format_labels, parse_labels
from engine.shapes import infer_shapes
from engine.subnet import (
    ancestors,
    derived_id,
    extract,
    last_module_type,
    output_id,
    output_labels,
    probabilities,
    require,
    with_policy,
)

PREFIX = "bigLittle."
OTHER = "other"


@dataclass
class Policy:
    """Which Outputs are little and big, the priority classes, the threshold, what is sent."""

    little: str
    big: str
    priority: list[str]
    threshold: float = 0.9
    features: bool = False

    def to_properties(self) -> dict[str, str]:
        return {PREFIX + "little": self.little, PREFIX + "big": self.big,
                PREFIX + "priority": format_labels(self.priority),
                PREFIX + "threshold": repr(float(self.threshold)),
                PREFIX + "features": "true" if self.features else "false"}

    def attach(self, desc: NetworkDescription) -> NetworkDescription:
        """A copy of ``desc`` carrying this policy (after checking it fits the network)."""
        self.check(desc)
        return with_policy(desc, PREFIX, self.to_properties())

    def check(self, desc: NetworkDescription) -> None:
        """DianneError unless both Outputs exist and the priority classes are labels of both."""
        self.little, self.big = output_id(desc, self.little), output_id(desc, self.big)
        require(self.little != self.big, desc, "the little and big Outputs must differ",
                self.little)
        require(0.0 <= self.threshold <= 1.0, desc, "the threshold must lie in [0, 1]",
                self.threshold)
        little, big = output_labels(desc, self.little), output_labels(desc, self.big)
        require(bool(self.priority), desc, "at least one priority class is needed", self.priority)
        for label in self.priority:
            require(label in little and label in big, desc, f"priority class {label!r} must be a "
                    f"label of the little Output {little} and of the big Output", label)

    @classmethod
    def from_description(cls, desc: NetworkDescription) -> Policy:
        props = desc.properties or {}
        missing = [k for k in ("little", "big", "priority") if PREFIX + k not in props]
        require(not missing, desc, "not a Big-Little network: the network properties lack "
                f"{', '.join(PREFIX + k for k in missing)}", sorted(props))
        try:
            threshold = float(props.get(PREFIX + "threshold", "0.9"))
        except ValueError:
            threshold = float("nan")
        policy = cls(props[PREFIX + "little"], props[PREFIX + "big"],
                     parse_labels(props[PREFIX + "priority"]), threshold,
                     props.get(PREFIX + "features", "false").strip().lower() == "true")
        require(threshold == threshold, desc, f"{PREFIX}threshold is not a number",
                props.get(PREFIX + "threshold"))
        policy.check(desc)
        return policy


@dataclass
class Parts:
    """The device part and the server part of a Big-Little network, and how to read them."""

    policy: Policy
    whole: NetworkDescription  # the Big-Little network itself
    device: NetworkDescription  # little part (+ an Output "features" when features are sent)
    server: NetworkDescription  # big part, fed with the sample or with the features
    features_out: str | None
    little_labels: list[str]
    big_labels: list[str]
    little_kind: str | None  # type of the module before the little Output
    big_kind: str | None

    @property
    def local_class(self) -> np.ndarray:
        """little class index -> big class index (-1 for a little class the big net lacks)."""
        return np.array([self.big_labels.index(c) if c in self.big_labels else -1
                         for c in self.little_labels], dtype=np.int64)

    @property
    def priority_mask(self) -> np.ndarray:
        """Over the little classes: True for a priority class."""
        return np.array([c in self.policy.priority for c in self.little_labels])


def split(desc: NetworkDescription, policy: Policy | None = None) -> Parts:
    """Cut ``desc`` into its device part and its server part according to ``policy``."""
    policy = policy or Policy.from_description(desc)
    policy.check(desc)
    little_set = ancestors(desc, [policy.little])
    big_set = ancestors(desc, [policy.big])
    features_out = None
    if not policy.features:
        device = extract(desc, little_set, f"{desc.name}-little")
        server = extract(desc, big_set, f"{desc.name}-big")
    else:
        only_big = big_set - little_set
        cut = sorted({p for m in only_big for p in desc.modules[m].prev if p in little_set} |
                     {m for m in little_set for n in desc.modules[m].next if n in only_big})
        require(len(cut) == 1 and desc.modules[cut[0]].type != "Input", desc,
                "sending features needs exactly one module (not the Input) whose output feeds "
                "the big branch", cut)
        shapes = infer_shapes(desc)
        cut_shape = shapes[cut[0]]
        require(cut_shape.ok, desc, "the shape of the features is unknown (set the Input's dims)",
                cut_shape.error)
        out_shape = cut_shape.out_shape
        if isinstance(out_shape, list):  # a fork: the slot that fed the big branch
            succ = desc.modules[cut[0]].next
            out_shape = out_shape[[i for i, n in enumerate(succ) if n in only_big][0]]
        features_out = derived_id(desc.name, cut[0], "features")
        device = extract(desc, little_set, f"{desc.name}-little",
                         outputs={cut[0]: features_out})
        server = extract(desc, only_big, f"{desc.name}-big",
                         inputs={cut[0]: (derived_id(desc.name, cut[0], "input"), out_shape)})
    return Parts(policy, desc, device, server, features_out, output_labels(desc, policy.little),
                 output_labels(desc, policy.big), last_module_type(desc, policy.little),
                 last_module_type(desc, policy.big))


def decide(probs: np.ndarray, parts: Parts, threshold: float | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """The rule on little-net probabilities ``(N, C)``: returns (answered locally, top class).

    A sample stays on the device when its top little class is a priority class and its
    probability is >= the threshold (the policy's unless given); ties go to the lower class.
    """
    p = np.atleast_2d(np.asarray(probs, dtype=np.float64))
    t = parts.policy.threshold if threshold is None else float(threshold)
    top = np.argmax(p, axis=1)
    conf = p[np.arange(len(p)), top]
    return parts.priority_mask[top] & (conf >= t), top


def combine(name: str, little: NetworkDescription, big: NetworkDescription,
            policy_priority: Sequence[str], threshold: float = 0.9) -> NetworkDescription:
    """One Big-Little network from two single-Input, single-Output networks.

    ``Input -> Duplicate -> little body -> Output 'little'`` and ``-> big body -> Output 'big'``:
    the big network's Input (and dims) is kept, the little one's dropped, module UUIDs are
    unchanged (they must not overlap), and the policy is attached.
    """
    for what, net in (("little", little), ("big", big)):
        require(len(net.inputs()) == 1 and len(net.outputs()) == 1, net,
                f"the {what} network needs exactly one Input and one Output",
                (len(net.inputs()), len(net.outputs())))
    shared = set(little.modules) & set(big.modules)
    require(not shared, little, "the little and big networks share module UUIDs", sorted(shared))
    inp, little_in = big.inputs()[0], little.inputs()[0]
    dup = derived_id(name, inp.id, "duplicate")
    modules = {}
    for net, drop in ((big, None), (little, little_in.id)):
        for mid, md in net.modules.items():
            if mid != drop:
                md = ModuleDescription(mid, md.type, list(md.next), list(md.prev),
                                       dict(md.properties))
                md.prev = [dup if p in (inp.id, little_in.id) else p for p in md.prev]
                modules[mid] = md
    modules[inp.id].next = [dup]
    modules[dup] = ModuleDescription(dup, "Duplicate", list(little_in.next) +
                                     list(big.modules[inp.id].next), [inp.id],
                                     {"name": "Duplicate", "category": "Fork"})
    if not modules[inp.id].properties.get("dims") and little_in.properties.get("dims"):
        modules[inp.id].properties["dims"] = little_in.properties["dims"]
    little_out, big_out = little.outputs()[0].id, big.outputs()[0].id
    modules[little_out].properties["name"] = "little"
    modules[big_out].properties["name"] = "big"
    desc = NetworkDescription(name, modules, {"description": f"Big-Little: {little.name} on the "
                                              f"device, {big.name} on the server"})
    desc.validate()
    return Policy(little_out, big_out, list(policy_priority), threshold).attach(desc)


# ------------------------------------------------------------------------------ running
FALLBACK_REASONS = ("timeout", "gone", "error", "down")


class BigUnreachable(DianneError):
    """The big part cannot answer now; :meth:`BigLittle.classify` answers from the little net.

    ``reason``: ``"timeout"`` (no answer within the runner's bound), ``"gone"`` (the server's
    heartbeat had stopped), ``"error"`` (the server side answered with an error), ``"down"``
    (it failed on an earlier sample and has not answered since: not sent); ``sent``: whether
    the payload left the device.
    """

    def __init__(self, message: str, reason: str, sent: bool = False) -> None:
        super().__init__(message)
        self.reason, self.sent = reason, sent


class PartRunner(Protocol):
    """Runs the two parts: ``little(x) -> (little values, payload)``, ``big(payload) -> values``
    (or :class:`BigUnreachable`, never a wait without end). Optional attribute ``little_on``:
    the agent that runs the little part when that is not the device (None, or absent, else)."""

    def little(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def big(self, payload: np.ndarray) -> np.ndarray: ...


class LocalRunner:
    """Both parts in this process; ``link`` (optional) is emulated by sleeping on each send."""

    def __init__(self, parts: Parts, weights: Mapping[str, np.ndarray], backend: Any = None,
                 link: Link | None = None) -> None:
        self.parts, self.link = parts, link
        self.device = _network(parts.device, weights, backend)
        self.server = _network(parts.server, weights, backend)
        self._little = (output_id(parts.device, parts.policy.little),)
        if parts.features_out:
            self._little += (parts.features_out,)

    def little(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = self.device.forward(x, outputs=list(self._little))
        host = self.device.backend.to_host
        payload = host(out[self._little[1]]) if len(self._little) > 1 else np.asarray(x)
        return host(out[self._little[0]]), np.asarray(payload, dtype=np.float32)

    def big(self, payload: np.ndarray) -> np.ndarray:
        if self.link is not None:
            _sleep_ms(self.link.transfer_ms(payload.nbytes))
        out = self.server.backend.to_host(self.server.forward(payload))
        if self.link is not None:
            _sleep_ms(self.link.transfer_ms(out.nbytes))
        return out


def _network(desc: NetworkDescription, weights: Mapping[str, np.ndarray], backend: Any
             ) -> Network:
    net = Network(desc, backend=backend)
    net.set_weights({m: w for m, w in weights.items() if m in net.modules})
    return net.eval()


def _sleep_ms(ms: float) -> None:
    # time.sleep overshoots by ~0.1 ms; good enough for a link of a few ms or more.
    if ms > 0:
        time.sleep(ms / 1e3)


@dataclass
class Answer:
    """One classification: the label, which part answered, and what it cost. A fallback
    answer (the big part unreachable) is the little network's top class and its probability,
    ``answered_by="little"``, ``fallback=True`` and ``reason`` one of :data:`FALLBACK_REASONS`;
    ``big_ms`` is then the time spent waiting on the big part (None when it was not asked).
    ``little_on``: the agent that ran the little part when the device could not (its agent was
    lost and the little part moved, e.g. to the server); None when it ran on the device. It is
    independent of ``fallback``, which says only that the big part did not answer."""

    label: str
    answered_by: str  # "little" or "big"
    probability: float
    latency_ms: float
    little_ms: float
    big_ms: float | None  # the round trip to the big part (None when not forwarded)
    bytes_sent: int
    fallback: bool = False
    reason: str | None = None  # why the big part did not answer (fallback answers only)
    little_on: str | None = None  # where the little part ran, when not on the device

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class BigLittle:
    """The decision logic around a pair of part runners; ``fallbacks`` counts the answers
    given by the little network because the big part was unreachable."""

    def __init__(self, parts: Parts, runner: PartRunner) -> None:
        self.parts, self.runner = parts, runner
        self.fallbacks = 0

    def classify(self, x: np.ndarray, threshold: float | None = None) -> Answer:
        parts = self.parts
        t0 = time.perf_counter()
        little, payload = self.runner.little(x)
        t1 = time.perf_counter()
        where = self._little_on()  # where the little part ran (big() may move it afterwards)
        probs = probabilities(np.ravel(little), parts.little_kind)
        local, top = decide(probs, parts, threshold)
        k = int(top[0])
        if local[0]:
            return Answer(parts.little_labels[k], "little", float(probs[k]), (t1 - t0) * 1e3,
                          (t1 - t0) * 1e3, None, 0, little_on=where)
        try:
            values = self.runner.big(payload)
        except BigUnreachable as exc:
            t2 = time.perf_counter()
            self.fallbacks += 1
            return Answer(parts.little_labels[k], "little", float(probs[k]), (t2 - t0) * 1e3,
                          (t1 - t0) * 1e3, (t2 - t1) * 1e3 if exc.sent else None,
                          int(payload.nbytes) if exc.sent else 0, True, exc.reason, where)
        big = probabilities(np.ravel(values), parts.big_kind)
        t2 = time.perf_counter()
        b = int(np.argmax(big))
        return Answer(parts.big_labels[b], "big", float(big[b]), (t2 - t0) * 1e3,
                      (t1 - t0) * 1e3, (t2 - t1) * 1e3, int(payload.nbytes),
                      little_on=where)

    def _little_on(self) -> str | None:
        return getattr(self.runner, "little_on", None)
