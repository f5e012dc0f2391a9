"""Thousands of malformed messages: each gets an error reply, the agent keeps serving."""

from __future__ import annotations

import json

import numpy as np
import zmq

from agent import protocol as P
from agent.client import deploy
from tests.agent.test_distributed import mnist_mlp

TYPES = ["hello", "deploy", "undeploy", "forward", "backward", "get_parameters",
         "set_parameters", "zero_grad", "mode", "nonsense", "", "x" * 300]


def pick(rng: np.random.Generator, options: list):
    return options[int(rng.integers(len(options)))]


def _header(rng: np.random.Generator, **over) -> dict:
    head = {"v": 1, "id": f"fz{rng.integers(1 << 30)}", "parent": None,
            "type": pick(rng, TYPES), "content": {}, "tensors": []}
    head.update(over)
    return head


def _junk(rng: np.random.Generator):
    return pick(rng, [None, True, -1, 3, 1e300, "", "zz", [], [1, "a"], {"a": {}},
                       "d1a00e01-0000-4000-8000-000000000000"])


def malformed(rng: np.random.Generator, dep: str) -> tuple[list[bytes], bool]:
    """One malformed message (frames) and whether the agent must answer it."""
    kind = int(rng.integers(12))
    enc = lambda h: json.dumps(h).encode()  # noqa: E731
    if kind == 0:
        return [rng.bytes(int(rng.integers(0, 64)))], True
    if kind == 1:
        return [rng.bytes(8) for _ in range(int(rng.integers(2, 5)))], True
    if kind == 2:
        return [enc(pick(rng, [[1, 2], "text", 3, None]))], True
    if kind == 3:
        return [enc(_header(rng, v=int(rng.integers(2, 99))))], True
    if kind == 4:
        head = _header(rng)
        head[pick(rng, ["id", "type", "content", "tensors"])] = _junk(rng)
        return [enc(head)], True
    if kind == 5:  # fewer or more frames than descriptors
        head = _header(rng, tensors=[{"dtype": "float32", "shape": [2]}] * 2)
        return [enc(head)] + [b"\0" * 8] * pick(rng, [0, 1, 3]), True
    if kind == 6:  # frame size disagrees with the shape
        head = _header(rng, tensors=[{"dtype": "float32", "shape": [3, 3]}])
        return [enc(head), b"\0" * pick(rng, [0, 7, 35, 37])], True
    if kind == 7:  # bad dtype or shape
        desc = pick(rng, [{"dtype": "object", "shape": [1]}, {"dtype": "float32", "shape": -1},
                           {"dtype": "float32", "shape": [-2]}, {"dtype": "<f4", "shape": [1]},
                           {"dtype": "float32", "shape": [1 << 20, 1 << 20]}, "x"])
        return [enc(_header(rng, tensors=[desc])), b"\0" * 4], True
    if kind == 8:  # over the agent's element limit
        head = _header(rng, tensors=[{"dtype": "uint8", "shape": [200_001]}])
        return [enc(head), b"\0" * 200_001], True
    if kind == 9:  # truncated JSON
        text = enc(_header(rng))
        return [text[: int(rng.integers(1, len(text)))]], True
    # well-formed, wrong content for a known type (forward, deploy, ...)
    t = pick(rng, TYPES[1:9])
    keys = ["deployment", "sample", "feeds", "outputs", "grads", "network", "placement",
            "agents", "weights", "modules", "train", "name"]
    content = {pick(rng, keys): _junk(rng) for _ in range(int(rng.integers(0, 5)))}
    if rng.random() < 0.5 and t not in ("undeploy", "deploy"):
        content["deployment"] = dep  # reach the real deployment, but never remove it
    head = _header(rng, type=t, content=content,
                   tensors=[{"dtype": "float32", "shape": [2]}] * int(rng.integers(0, 2)))
    frames = [enc(head)] + [b"\0" * 8] * len(head["tensors"])
    # forward/backward to the real deployment may fail per sample, still with one reply
    return frames, t not in ("undeploy", "hello") and not (t == "mode" and content.get(
        "train") in (True,))


def test_fuzz_then_correct_forward(spawn) -> None:
    (agent,) = spawn(["fuzzed"], "--max-tensor-elements", "200000")
    desc, net = mnist_mlp()
    net.train(False)  # what agents run: unfrozen modules (eval() folds weights: rounding)
    dep = deploy(desc, net.get_weights(), {m: agent.id for m in desc.modules}, [agent.address])
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(agent.address)
    rng = np.random.default_rng(12345)
    errors = answered = 0
    try:
        for _ in range(15):
            batch = [malformed(rng, dep.id) for _ in range(200)]
            for frames, _must in batch:
                sock.send_multipart(frames)
            expected = sum(1 for _, must in batch if must)
            got = []
            while sock.poll(1000 if len(got) < expected else 50):
                got.append(P.decode(sock.recv_multipart()))
            answered += len(got)
            errors += sum(1 for m in got if m.type == "error")
            assert len(got) >= expected
            codes = {m.content.get("code") for m in got if m.type == "error"}
            assert codes <= {P.E_PROTOCOL, P.E_VERSION, P.E_UNKNOWN_TYPE, P.E_TOO_LARGE,
                             P.E_BAD_REQUEST, P.E_MODULE}, codes
        assert errors >= 2500
        # still serving, same answers as before
        x = np.random.default_rng(0).random((1, 28, 28), dtype=np.float32)
        np.testing.assert_array_equal(dep.forward(x), net.forward(x))
    finally:
        sock.close(0)
        ctx.term()
        dep.session.close()
    assert agent.proc.poll() is None
