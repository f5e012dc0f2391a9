"""Tests of engine.description: reading both modules.txt shapes, validation, and the Java writer.

The eight composite files in the shared fixtures were written by the original (six untouched,
ConvLayer and GRU later hand-edited to end with a newline): reading and re-writing them must
reproduce them byte for byte. Hash orders in the ``java_hashmap_order`` tests are worked out by
hand from ``String.hashCode`` / ``UUID.hashCode``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from engine.description import (
    ModuleDescription,
    NetworkDescription,
    dumps_network,
    gson_string,
    java_hashmap_order,
    new_module_id,
    parse_network,
    read_network,
    write_network,
)
from engine.errors import FormatError
from tests.conftest import COMPOSITE_NAMES as NAMES
from tests.conftest import COMPOSITES

HAND_EDITED = {"ConvLayer", "GRU"}  # end with a newline the Java writer never emits

A = "a36a7229-7d9b-8776-666e-a3adae26e01e"
B = "0f3e1111-2222-3333-4444-555566667777"
C = "c0ffee00-0000-0000-0000-00000000000c"
D = "d0d0d0d0-1111-2222-3333-444444444444"


def same(a: NetworkDescription, b: NetworkDescription) -> bool:
    return (a.name, a.modules, a.properties) == (b.name, b.modules, b.properties)


@pytest.mark.parametrize("name", NAMES)
def test_fixture_composites_read_validate_and_rewrite_byte_exact(name: str, tmp_path: Path):
    path = COMPOSITES / name / "modules.txt"
    raw = path.read_text(encoding="utf-8")
    desc = read_network(path)  # read_network validates
    assert desc.name == name
    assert desc.properties is None
    assert len(desc.inputs()) == 1 and len(desc.outputs()) == 1
    assert list(desc.modules) == list(json.loads(raw)["modules"])  # file order kept
    out = dumps_network(desc)
    if name in HAND_EDITED:
        assert out != raw and out + "\n" == raw
    else:
        assert out == raw
    # what we wrote reads back to the same description
    written = write_network(desc, tmp_path / name)
    assert written.read_bytes() == out.encode("utf-8")
    assert same(read_network(tmp_path / name), desc)


def test_fixture_oddities_are_tolerated():
    inc = read_network(COMPOSITES / "Inception_v1")
    assert any(len(m.prev) != len(set(m.prev)) for m in inc.modules.values())  # duplicated prev
    res_b = read_network(COMPOSITES / "Residual_b")
    assert any(not m.next and not m.prev for m in res_b.modules.values())  # orphan Multiply
    conv = read_network(COMPOSITES / "ConvLayer")
    assert conv.module("Convolution").properties["noOutputPlanes"] == "${noOutputPlanes}"
    assert conv.module("a4745ffd-401c-96d8-9e1a-1b8baa457060").type == "Convolution"


BARE = """{{
  "{A}": {{"id": "{A}", "type": "Input", "next": "{B}", "category": "Input-Output"}},
  "{B}": {{"id": "{B}", "type": "Linear", "next": ["{C}"], "prev": ["{A}"],
            "input": 784, "output": 20, "rate": 0.5, "eps": 1e-3, "trainable": true,
            "name": "fc1", "drop": null, "one": ["x"]}},
  "{C}": {{"id": "{C}", "type": "Output", "prev": ["{B}", "{B}"],
            "labels": "[0, 1, 2]"}},
  "{D}": {{"id": "{D}", "type": "Multiply"}}
}}""".format(A=A.upper(), B=B, C=C, D=D)


def test_bare_legacy_file_reads_as_strings_and_writes_wrapped(tmp_path: Path):
    folder = tmp_path / "mnist-20"
    folder.mkdir()
    (folder / "modules.txt").write_text(BARE, encoding="utf-8")
    desc = read_network(folder)
    assert desc.name == "mnist-20" and desc.properties is None
    assert list(desc.modules) == [A, B, C, D]  # JS insertion order, ids lowercased
    inp, lin, out, orphan = desc.modules.values()
    assert inp.id == A and inp.next == [B] and inp.prev == []
    assert lin.properties == {"input": "784", "output": "20", "rate": "0.5", "eps": "1e-3",
                              "trainable": "true", "name": "fc1", "one": "x"}
    assert lin.name == "fc1" and inp.name == "Input"
    assert out.prev == [B, B]  # duplicates kept, order kept
    assert orphan.next == [] and orphan.prev == []
    text = dumps_network(desc)
    doc = json.loads(text)
    assert list(doc) == ["name", "modules"] and doc["name"] == "mnist-20"
    m = doc["modules"][B]
    assert list(m)[:4] == ["id", "type", "next", "prev"]
    assert m["trainable"] == "true" and m["input"] == "784" and m["next"] == [C]
    assert doc["modules"][A]["next"] == [B] and "prev" not in doc["modules"][A]
    assert list(doc["modules"][D]) == ["id", "type"]
    assert all(isinstance(v, str) for mod in doc["modules"].values() for k, v in mod.items()
               if k not in ("next", "prev"))
    assert list(doc["modules"]) == java_hashmap_order([A, B, C, D], "uuid")
    assert same(parse_network(text), desc)
    assert dumps_network(parse_network(text)) == text


def test_exact_writer_output_with_properties_and_escaping():
    m = ModuleDescription(A, "Input", next=[B], properties={"name": "a=b<c>&'d\"\\"})
    n = ModuleDescription(B, "Output", prev=[A],
                          properties={"labels": "é\u2028\x01\n\t\x7f"})
    desc = NetworkDescription("net", {A: m, B: n}, properties={"owner": "me"})
    # UUID buckets: A -> 5, B -> 14 (hand-computed below), so A first.
    expected = (
        '{\n  "name": "net",\n  "properties": {\n    "owner": "me"\n  },\n  "modules": {\n'
        f'    "{A}": {{\n      "id": "{A}",\n      "type": "Input",\n      "next": [\n'
        f'        "{B}"\n      ],\n'
        '      "name": "a\\u003db\\u003cc\\u003e\\u0026\\u0027d\\"\\\\"\n    },\n'
        f'    "{B}": {{\n      "id": "{B}",\n      "type": "Output",\n      "prev": [\n'
        f'        "{A}"\n      ],\n'
        '      "labels": "é\\u2028\\u0001\\n\\t\x7f"\n    }\n  }\n}'
    )
    assert java_hashmap_order([B, A], "uuid") == [A, B]
    assert dumps_network(desc) == expected
    assert not expected.endswith("\n")
    back = parse_network(expected)
    assert same(back, desc)


def test_uuid_buckets_hand_computed():
    # A: msb 0xa36a72297d9b8776, lsb 0x666ea3adae26e01e; hilo = xor; h = hi32 ^ lo32
    for key, bucket in ((A, 5), (B, 14)):
        v = int(key.replace("-", ""), 16)
        hilo = (v >> 64) ^ (v & (2**64 - 1))
        h = ((hilo >> 32) ^ hilo) & 0xFFFFFFFF
        assert ((h ^ (h >> 16)) & 15) == bucket


def test_empty_network_and_top_level_properties_order():
    assert dumps_network(NetworkDescription("e", {})) == '{\n  "name": "e",\n  "modules": {}\n}'
    props = {"q": "1", "b": "2", "a": "3"}  # buckets 1, 2, 1 -> q, a, b
    text = dumps_network(NetworkDescription("p", {}, properties=props))
    assert text == ('{\n  "name": "p",\n  "properties": {\n    "q": "1",\n    "a": "3",\n'
                    '    "b": "2"\n  },\n  "modules": {}\n}')
    assert dumps_network(NetworkDescription("p", {}, properties={})).count('"properties": {}') == 1


def test_java_hashmap_order_hand_computed():
    # String.hashCode of one char is its code; "a"=97 and "q"=113 share bucket 1 of 16.
    assert java_hashmap_order(["q", "b", "a"]) == ["q", "a", "b"]
    assert java_hashmap_order(["BB", "Aa"]) == ["BB", "Aa"]  # equal hashCode 2112
    assert java_hashmap_order(["Aa", "BB"]) == ["Aa", "BB"]
    # 13 keys: the table grows to 32, so "a" (bucket 1) now precedes "q" (bucket 17)
    twelve = ["q", "a"] + [chr(c) for c in range(ord("b"), ord("l"))]
    assert java_hashmap_order(twelve)[:2] == ["q", "a"]
    thirteen = twelve + ["l"]
    assert java_hashmap_order(thirteen)[:2] == ["a", "b"] and "q" in java_hashmap_order(thirteen)
    assert java_hashmap_order(thirteen).index("q") > java_hashmap_order(thirteen).index("l")
    # a 9th entry in one bucket of a table < 64 doubles it (treeifyBin) instead of treeifying
    codes = [17, 33, 49, 65, 81, 97, 113, 129, 145]  # all bucket 1 of 16
    keys = [chr(c) for c in codes]
    assert java_hashmap_order(keys[:8]) == keys[:8]
    assert java_hashmap_order(keys) == [chr(c) for c in (33, 65, 97, 129, 17, 49, 81, 113, 145)]
    # UUID: hash = (int)(hilo >> 32) ^ (int)hilo with hilo = msb ^ lsb
    u3 = "00000000-0000-0001-0000-000000000002"  # hilo 3 -> bucket 3
    u17 = "00000000-0000-0000-0000-000000000011"  # 17 -> bucket 1
    u1 = "00000001-0000-0000-0000-000000000000"  # hilo 1 << 32 -> 1 -> bucket 1
    assert java_hashmap_order([u3, u17, u1], "uuid") == [u17, u1, u3]
    # non-BMP characters hash as their UTF-16 pair: 0xd83d * 31 + 0xde00 = 1772899 -> bucket
    # (3 ^ 27) & 15 = 8 (the code point 0x1f600 would give bucket 1 and keep "a" second)
    assert java_hashmap_order(["\U0001f600", "a"]) == ["a", "\U0001f600"]


def test_gson_string_escapes():
    assert gson_string("<a href='x'>&=</a>") == (
        '"\\u003ca href\\u003d\\u0027x\\u0027\\u003e\\u0026\\u003d\\u003c/a\\u003e"')
    assert gson_string("\b\f\r\x00\x1f") == '"\\b\\f\\r\\u0000\\u001f"'
    assert gson_string("ü\u2029") == '"ü\\u2029"'


def test_wrapped_file_keeps_its_name_and_properties(tmp_path: Path):
    folder = tmp_path / "folder-name"
    folder.mkdir()
    doc = {"name": "file-name", "properties": {"x": 1, "y": True},
           "modules": {A: {"id": A, "type": "Input"}}}
    (folder / "modules.txt").write_text(json.dumps(doc), encoding="utf-8")
    desc = read_network(folder / "modules.txt")
    assert desc.name == "file-name" and desc.properties == {"x": "1", "y": "true"}
    assert desc.source == str(folder / "modules.txt")
    assert parse_network(json.dumps({"modules": {}}), name="given").name == "given"
    assert parse_network(json.dumps({"modules": {}})).name == "unnamed"


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ('{"modules": {', r"^net\.txt: not valid JSON at line 1 column 14: "),
        ('{\n  "a": 1,\n}', r"^net\.txt: not valid JSON at line 3 column 1: "),
        ("[]", r"net\.txt: the top level must be a JSON object"),
        (f'{{"{A}": {{"id": "{A}"}}}}', rf"net\.txt: module {A} has no 'type'"),
        (f'{{"{A}": {{"id": "{A}", "type": "Linear", "sizes": [1, 2]}}}}',
         rf"module {A} \(Linear\): property 'sizes' must be a string or number, not an array"),
        (f'{{"{A}": {{"id": "{A}", "type": "Linear", "properties": {{"a": "1"}}}}}}',
         r"property 'properties' must be a string or number, not an object"),
        ('{"not-a-uuid": {"type": "Input"}}', r"module key 'not-a-uuid' is not a UUID"),
        (f'{{"{A}": {{"id": "{A}", "type": "Input", "next": "nope"}}}}',
         r"'next' is not a UUID .*Received: 'nope'"),
        (f'{{"{A}": {{"id": "{A}", "type": "Input"}}, "name": "x"}}',
         r"bare module map and cannot have a 'name' key"),
        (f'{{"{A}": {{"id": "{A}", "type": "Input"}}, "{A.upper()}": {{"type": "Input"}}}}',
         r"appears twice"),
        (f'{{"modules": {{"{A}": 3}}}}', r"is not a JSON object"),
    ],
)
def test_format_errors_name_the_file(text: str, pattern: str):
    with pytest.raises(FormatError, match=pattern):
        parse_network(text, "net.txt")


def test_validate_errors(tmp_path: Path):
    dangling = {"modules": {A: {"id": A, "type": "Input", "next": [B], "name": "in"}}}
    folder = tmp_path / "n"
    folder.mkdir()
    (folder / "modules.txt").write_text(json.dumps(dangling), encoding="utf-8")
    with pytest.raises(FormatError) as err:
        read_network(folder)
    msg = str(err.value)
    assert str(folder / "modules.txt") in msg and A in msg and "'next'" in msg
    assert msg.endswith(f"Received: {B}") and "Input 'in'" in msg
    mismatch = parse_network(json.dumps({A: {"id": B, "type": "Input"}}), "m.txt")
    with pytest.raises(FormatError, match=rf"m\.txt: .*stored under the key {A}"):
        mismatch.validate()
    # a missing id takes the map key
    assert parse_network(json.dumps({A: {"type": "Input"}})).modules[A].id == A


def test_non_utf8_and_missing_files(tmp_path: Path):
    bad = tmp_path / "modules.txt"
    bad.write_bytes(b'{"name": "\xff"}')
    with pytest.raises(FormatError, match=re.escape(str(bad)) + ": not UTF-8"):
        read_network(bad)
    with pytest.raises(FormatError, match="cannot read"):
        read_network(tmp_path / "nowhere")


def test_module_lookup_and_copy():
    desc = parse_network(BARE, name="n")
    assert desc.module(B.upper()).type == "Linear"
    assert desc.module("fc1").id == B
    assert desc.module("Output").id == C  # no name property: the type is its name
    desc.modules[D].properties["name"] = "fc1"
    with pytest.raises(FormatError, match="several modules are named 'fc1'"):
        desc.module("fc1")
    with pytest.raises(FormatError, match="no module with id or name 'zzz'.*fc1"):
        desc.module("zzz")
    dup = desc.copy()
    dup.modules[A].next.append(C)
    dup.modules[B].properties["input"] = "1"
    assert desc.modules[A].next == [B] and desc.modules[B].properties["input"] == "784"


def test_new_module_id_shape():
    ids = {new_module_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", i)
               for i in ids)


def test_write_network_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    desc = parse_network(BARE, name="n")
    target = write_network(desc, tmp_path / "n")
    before = target.read_bytes()
    desc.modules[B].properties["input"] = "1"

    def boom(*_a: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_network(desc, tmp_path / "n")
    assert target.read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "n").iterdir()) == ["modules.txt"]
    desc.modules[A].next = ["99999999-0000-0000-0000-000000000000"]
    monkeypatch.undo()
    with pytest.raises(FormatError, match="not a module of this network"):
        write_network(desc, tmp_path / "n")
    assert target.read_bytes() == before
