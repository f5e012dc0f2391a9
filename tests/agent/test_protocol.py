"""The wire module on its own: round trips, and every check that guards a receiver."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agent import protocol as P


@pytest.mark.parametrize("dtype", list(P.DTYPES))
def test_round_trip_every_wire_dtype(dtype: str) -> None:
    x = (np.arange(24) % 7).astype(dtype).reshape(2, 3, 4)
    msg = P.Message("forward", {"feeds": {"a": 0}, "deep": [1, {"b": None}]}, [x, x[:, 0]],
                    parent="p1")
    got = P.decode([bytes(f) for f in P.encode(msg)])
    assert (got.type, got.content, got.id, got.parent) == ("forward", msg.content, msg.id, "p1")
    assert got.tensors[0].dtype == np.dtype(dtype) and np.array_equal(got.tensors[0], x)
    assert np.array_equal(got.tensors[1], x[:, 0])  # non-contiguous input made contiguous
    assert not got.tensors[0].flags.writeable  # a zero-copy view on the received frame


def test_big_endian_and_bool_are_converted_not_refused() -> None:
    got = P.decode([bytes(f) for f in P.encode(P.Message("t", tensors=[
        np.arange(3, dtype=">f8"), np.array([True, False])]))])
    assert got.tensors[0].dtype.str == "<f8" and list(got.tensors[0]) == [0.0, 1.0, 2.0]
    assert got.tensors[1].dtype == np.uint8 and list(got.tensors[1]) == [1, 0]
    with pytest.raises(P.ProtocolError, match="cannot travel"):
        P.encode(P.Message("t", tensors=[np.array(["text"])]))


def _frames(head: dict, *payload: bytes) -> list[bytes]:
    base = {"v": 1, "id": "m1", "parent": None, "type": "t", "content": {}, "tensors": []}
    return [json.dumps({**base, **head}).encode(), *payload]


@pytest.mark.parametrize(("frames", "code", "text"), [
    ([b"\xff\xfe"], P.E_PROTOCOL, "not JSON"),
    ([b"[1]"], P.E_PROTOCOL, "JSON object"),
    (_frames({"v": 2}), P.E_VERSION, "version 1 expected"),
    (_frames({"type": 3}), P.E_PROTOCOL, "'type'"),
    (_frames({"parent": 5}), P.E_PROTOCOL, "'parent'"),
    (_frames({"tensors": [{"dtype": "float32", "shape": [2]}]}), P.E_PROTOCOL,
     "describes 1 tensors but 0"),
    (_frames({"tensors": [{"dtype": "float32", "shape": [2]}]}, b"1234567"), P.E_PROTOCOL,
     "needs 8 bytes. Received: 7"),
    (_frames({"tensors": [{"dtype": "object", "shape": [1]}]}, b"x"), P.E_PROTOCOL, "dtype"),
    (_frames({"tensors": [{"dtype": "uint8", "shape": [-1]}]}, b"x"), P.E_PROTOCOL, "shape"),
    (_frames({"tensors": [{"dtype": "uint8", "shape": [11]}]}, b"x" * 11), P.E_TOO_LARGE,
     "11 elements, over the limit of 10"),
    (_frames({}, b"x" * 2000), P.E_TOO_LARGE, "over the limit of 1000"),
])
def test_malformed_frames_raise_with_a_code(frames, code, text) -> None:
    limits = P.Limits(max_message_bytes=1000, max_tensor_elements=10)
    with pytest.raises(P.ProtocolError, match=text) as info:
        P.decode(frames, limits)
    assert info.value.code == code


def test_content_helpers_name_the_key() -> None:
    msg = P.Message("forward", {"sample": 3}, [np.zeros(1, np.float32)])
    with pytest.raises(P.ProtocolError, match="'sample' must be a str. Received: 3"):
        P.need(msg.content, "sample", str, "forward")
    with pytest.raises(P.ProtocolError, match="feed: tensor index out of range"):
        P.tensor_ref(msg, 1, "feed")
    assert P.tensor_ref(msg, 0, "feed").shape == (1,)
    assert msg.error(P.E_MODULE, "boom").content == {"code": "module", "message": "boom"}
