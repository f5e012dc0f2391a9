"""Generated malformed protocol messages, and a lock-step driver that fires them at a real agent.

Every generated message has a *kind* (random frames, truncated header, lying tensor descriptor,
oversized message, wrong version, unknown type, frame count mismatch, non-object/non-UTF-8/deep
header, and valid types with bad content) and an expectation: ``"error"`` (the agent must answer
with an ``error`` reply carrying a known code) or ``"any"`` (a message that may legitimately
succeed or be answered elsewhere). After each message the driver sends a ``ping`` and reads until
its ``pong``: the agent serves one message at a time in arrival order, so everything in between
is the answer to the fuzz message, and a missing ``pong`` means the agent stopped serving.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import zmq

from agent import protocol as P

CODES = {P.E_PROTOCOL, P.E_VERSION, P.E_UNKNOWN_TYPE, P.E_TOO_LARGE, P.E_BAD_REQUEST,
         P.E_MODULE, P.E_REFUSED}
JUNK: list[Any] = [None, True, False, -1, 0, 7, 2**63, 1e308, -0.5, "", "zz", "\u0000\ud7ff",
                   [], [1, "a"], {}, {"a": {"b": []}}, "0bad0000-0000-4000-8000-000000000099"]
DTYPE_LIES = ["object", "<f4", ">f4", "float128", "bool", "complex64", "", None, 3, ["float32"],
              "float32 ", "S10", "V8", "O"]


@dataclass
class Target:
    """What the fuzzer knows of the agent: a real deployment, its Input, its limits."""

    deployment: str
    input_id: str
    input_size: int
    network_text: str
    max_message_bytes: int
    max_tensor_elements: int
    token: str | None = None  # the deployment's token: the fuzz's messages pass the check


@dataclass
class Fuzz:
    kind: str
    frames: list[bytes]
    expect: str  # "error" or "any"
    msg_id: str | None = None  # the header id, when the header is one


def _header(rng: random.Random, type_: str, content: dict, tensors: list) -> dict:
    return {"v": 1, "id": f"fz{rng.getrandbits(48):x}", "parent": None, "type": type_,
            "content": content, "tensors": tensors}


def _enc(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _f32(n: int) -> tuple[dict, bytes]:
    return {"dtype": "float32", "shape": [n]}, b"\0" * (4 * n)


def _valid(rng: random.Random, t: Target) -> tuple[dict, list[bytes]]:
    """A well-formed request of a random type (the base the content mutations start from)."""
    desc, frame = _f32(t.input_size)
    choices = {
        "forward": ({"deployment": t.deployment, "sample": "s1", "outputs": None,
                     "feeds": {t.input_id: 0}, "token": t.token}, [desc], [frame]),
        "backward": ({"deployment": t.deployment, "sample": "s2", "grads": {t.input_id: 0},
                      "token": t.token}, [desc], [frame]),
        "deploy": ({"deployment": f"fuzz-{rng.getrandbits(32):x}", "network": t.network_text,
                    "placement": {}, "agents": {}, "weights": {}}, [], []),
        "get_parameters": ({"deployment": t.deployment, "modules": [t.input_id]}, [], []),
        "set_parameters": ({"deployment": t.deployment, "weights": {t.input_id: 0}},
                           [desc], [frame]),
        "mode": ({"deployment": t.deployment, "train": False}, [], []),
        "tensor": ({"deployment": t.deployment, "sample": "s3", "client": "00", "dir": "forward",
                    "from": t.input_id, "to": t.input_id, "outputs": None, "token": t.token},
                   [desc], [frame]),
        "undeploy": ({"deployment": f"nothing-{rng.getrandbits(16)}"}, [], []),
    }
    type_ = rng.choice(sorted(choices))
    content, descs, frames = choices[type_]
    return _header(rng, type_, content, descs), frames


# For each content mutation, the request types that must then be answered with an error.
# (Elsewhere the mutated message may be legitimately accepted: an optional key dropped, a
# backward that waits for more gradients, a ``tensor`` answered to the client it names.)
_ALL = {"forward", "backward", "deploy", "get_parameters", "set_parameters", "mode", "tensor"}
_ERROR_WHEN = {0: {"deploy"}, 1: {"deploy"}, 2: {"deploy", "forward", "set_parameters"},
               3: _ALL, 4: _ALL, 5: {"deploy", "forward", "set_parameters"},
               6: {"deploy", "forward", "set_parameters", "get_parameters", "backward"}}


def _bad_content(rng: random.Random, t: Target) -> Fuzz:
    head, frames = _valid(rng, t)
    c = head["content"]
    how = rng.randrange(7)
    if how == 0:  # a key missing
        c.pop(rng.choice(sorted(c)))
    elif how == 1:  # a key of another type
        key = rng.choice(sorted(c))
        c[key] = rng.choice([j for j in JUNK if type(j) is not type(c[key])])
    elif how == 2:  # tensor references that do not exist
        for key in ("feeds", "grads", "weights"):
            if isinstance(c.get(key), dict):
                c[key] = {t.input_id: rng.choice([-1, 5, 10**9, True, "0", None, 1.5])}
    elif how == 3:  # a deployment that does not exist
        c["deployment"] = f"ghost-{rng.getrandbits(16)}"
    elif how == 4:  # a network that does not parse or build
        head["type"] = "deploy"
        c.clear()
        c.update({"deployment": f"fuzz-{rng.getrandbits(32):x}", "placement": {},
                  "agents": {}, "network": rng.choice(_bad_networks(t))})
    elif how == 5:  # a tensor of the wrong size for the module
        n = rng.choice([1, 3, t.input_size + 1])
        head["tensors"], frames = [_f32(n)[0]], [_f32(n)[1]]
    else:  # ids that are no module of the deployment
        for key in ("feeds", "grads", "weights"):
            if isinstance(c.get(key), dict):
                c[key] = {rng.choice(["x", "0bad0000-0000-4000-8000-000000000099"]): 0}
        if "modules" in c:
            c["modules"] = ["not-a-module"]
    expect = "error" if head["type"] in _ERROR_WHEN[how] else "any"
    return Fuzz("bad_content", [_enc(head), *frames], expect, head["id"])


def _bad_networks(t: Target) -> list[str]:
    text = t.network_text
    return [text[: len(text) // 2], "", "[]", '{"modules": 5}', "\ud800",
            text.replace('"Linear"', '"Lineer"'),
            text.replace('"output": "10"', f'"output": "{2**40}"'),
            text.replace('"input": "784"', '"input": "-4"'),
            "[" * 5000 + "]" * 5000]


def generate(rng: random.Random, t: Target) -> Fuzz:
    """One malformed message."""
    kind = rng.choice(["random_frames", "truncated_header", "lying_descriptor", "oversized",
                       "wrong_version", "unknown_type", "bad_content", "bad_content",
                       "frame_count", "header_shape"])
    if kind == "bad_content":
        return _bad_content(rng, t)
    head, frames = _valid(rng, t)
    if kind == "random_frames":
        return Fuzz(kind, [rng.randbytes(rng.randrange(0, 300))
                           for _ in range(rng.randrange(1, 5))], "error")
    if kind == "truncated_header":
        raw = _enc(head)
        return Fuzz(kind, [raw[: rng.randrange(0, len(raw))], *frames], "error")
    if kind == "lying_descriptor":
        if not head["tensors"]:
            head["tensors"], frames = [_f32(4)[0]], [_f32(4)[1]]
        d = head["tensors"][0]
        lie = rng.randrange(5)
        if lie == 0:
            d["dtype"] = rng.choice(DTYPE_LIES)
        elif lie == 1:  # the frame is shorter or longer than the shape says
            d["shape"] = [d["shape"][0] + rng.choice([-1, 1, 1000])]
        elif lie == 2:  # a shape that would be huge (the frame is small)
            d["shape"] = rng.choice([[2**31], [2**20, 2**20], [2**62, 4], [65536, 65536, 2]])
        elif lie == 3:
            d["shape"] = rng.choice([[-1], [1.5], ["3"], None, 5, [True], [[1]], [1] * 40])
        else:
            head["tensors"][0] = rng.choice(JUNK)
        return Fuzz(kind, [_enc(head), *frames], "error", head["id"])
    if kind == "oversized":
        if rng.random() < 0.5:  # over the message byte limit
            big = b"\0" * (t.max_message_bytes + 4)
            head["tensors"], frames = [{"dtype": "uint8", "shape": [len(big)]}], [big]
        else:  # a descriptor over the element limit, with a frame that matches it
            n = t.max_tensor_elements + 1
            head["tensors"], frames = [{"dtype": "uint8", "shape": [n]}], [b"\0" * n]
        return Fuzz(kind, [_enc(head), *frames], "error", head["id"])
    if kind == "wrong_version":
        head["v"] = rng.choice([0, 2, -1, "1", None, [1], 99, 1.5])
        return Fuzz(kind, [_enc(head), *frames], "error", head["id"])
    if kind == "unknown_type":
        head["type"] = rng.choice(["", "Forward", "forward ", "x" * 5000, "\u00e9t\u00e9",
                                   f"t{rng.getrandbits(20)}", "__init__", "../../etc/passwd"])
        return Fuzz(kind, [_enc(head), *frames], "error", head["id"])
    if kind == "frame_count":
        extra = rng.choice([[], [b"\0" * 8], [b"", b""], frames + frames])
        return Fuzz(kind, [_enc(head), *extra], "error" if extra != frames else "any",
                    head["id"])
    # header_shape: not an object, not UTF-8, deeply nested, or a key of the wrong type
    bad = rng.choice([_enc([1, 2]), _enc("text"), b"\xff\xfe\x00{}", b"[" * 50000,
                      _enc({**head, "content": rng.choice(JUNK[:12])}),
                      _enc({**head, "tensors": {"0": 1}}), _enc({**head, "id": 5}),
                      _enc({**head, "parent": 7})])
    return Fuzz("header_shape", [bad, *frames], "error")


@dataclass
class FuzzStats:
    sent: int = 0
    errors: int = 0
    other_replies: int = 0
    by_kind: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    rss_kib: list[tuple[int, int]] = field(default_factory=list)  # (messages sent, VmRSS)
    seconds: float = 0.0


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fuzz_agent(address: str, pid: int, target: Target, count: int, seed: int = 1,
               pong_timeout_s: float = 5.0) -> FuzzStats:
    """Send ``count`` generated messages in lock-step; collect what came back."""
    rng = random.Random(seed)
    stats = FuzzStats()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.IDENTITY, b"fuzzer-%d" % seed)
    sock.connect(address)
    start = time.monotonic()
    try:
        for i in range(count):
            fz = generate(rng, target)
            stats.by_kind[fz.kind] += 1
            sock.send_multipart(fz.frames)
            ping = P.Message("ping")
            sock.send_multipart(P.encode(ping))
            answers = _until_pong(sock, ping.id, pong_timeout_s)
            stats.sent += 1
            if answers is None:
                stats.problems.append(f"message {i} ({fz.kind}): no pong within "
                                      f"{pong_timeout_s} s: the agent stopped serving")
                break
            errors = [m for m in answers if m.type == "error"]
            stats.errors += len(errors)
            stats.other_replies += len(answers) - len(errors)
            bad_codes = {m.content.get("code") for m in errors} - CODES
            if bad_codes:
                stats.problems.append(f"message {i} ({fz.kind}): error codes {bad_codes}: "
                                      f"{errors[0].content}")
            if fz.expect == "error" and not errors:
                stats.problems.append(f"message {i} ({fz.kind}): no error reply "
                                      f"(got {[m.type for m in answers]}); sent "
                                      f"{fz.frames[0][:120]!r}")
            if i % 250 == 0 or i == count - 1:
                stats.rss_kib.append((i + 1, rss_kib(pid)))
    finally:
        stats.seconds = time.monotonic() - start
        sock.close(0)
        ctx.term()
    return stats


def _until_pong(sock: zmq.Socket, ping_id: str, timeout_s: float) -> list[P.Message] | None:
    answers: list[P.Message] = []
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if not sock.poll(max(1, int((end - time.monotonic()) * 1000))):
            continue
        msg = P.decode(sock.recv_multipart())
        if msg.parent == ping_id:
            return answers
        answers.append(msg)
    return None
