"""Tests of engine.layout: the builder's layout.txt read, updated and written like the browser.

Fixture layouts were written by the original builder (``JSON.stringify``); an unchanged layout
must come back byte for byte, and a changed one may differ only where positions changed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from engine.errors import FormatError
from engine.layout import (
    Layout,
    dumps_layout,
    js_stringify,
    parse_layout,
    read_layout,
    write_layout,
)
from tests.conftest import COMPOSITE_NAMES as NAMES
from tests.conftest import COMPOSITES

CONV_INPUT = "1c79f52b-beea-9d55-8f87-274b03934a35"


@pytest.mark.parametrize("name", NAMES)
def test_fixture_layouts_round_trip_byte_exact(name: str, tmp_path: Path):
    path = COMPOSITES / name / "layout.txt"
    raw = path.read_text(encoding="utf-8")
    layout = read_layout(COMPOSITES / name)
    assert layout is not None and layout.source == str(path)
    assert len(layout.positions) == len(json.loads(raw)["nodes"])
    assert dumps_layout(layout) == raw
    assert js_stringify(json.loads(raw)) == raw  # our JSON.stringify matches the browser's
    write_layout(layout, tmp_path)
    assert (tmp_path / "layout.txt").read_bytes() == path.read_bytes()


def test_moving_a_node_changes_only_its_numbers():
    raw = (COMPOSITES / "ConvLayer" / "layout.txt").read_text(encoding="utf-8")
    layout = read_layout(COMPOSITES / "ConvLayer")
    assert layout.positions[CONV_INPUT] == (231, 199)
    layout.positions[CONV_INPUT] = (240.0, 180.5)
    out = dumps_layout(layout)
    old = f'"id":"{CONV_INPUT}","positionX":231,"positionY":199'
    new = f'"id":"{CONV_INPUT}","positionX":240,"positionY":180.5'
    assert old in raw and out == raw.replace(old, new)
    # the same integral value as a float is no change
    layout.positions[CONV_INPUT] = (231.0, 199.0)
    assert dumps_layout(layout) == raw


def test_connections_and_unknown_nodes_are_kept_untouched():
    doc = {"nodes": [{"id": "m1", "positionX": 10, "positionY": 20},
                     {"id": "dataset-1", "positionX": 5, "positionY": 6},
                     {"note": "no id"}],
           "connections": [{"connectionId": "con_1", "sourceId": "dataset-1", "targetId": "m1",
                            "anchors": [[1, 0.5, 1, 0, 0, 0], [0, 0.5, -1, 0, 0, 0]]}],
           "zoom": 1.25}
    text = json.dumps(doc, separators=(",", ":"))
    layout = parse_layout(text, "l.txt")
    assert layout.positions == {"m1": (10, 20), "dataset-1": (5, 6)}
    assert layout.connections == doc["connections"]
    layout.positions["m2"] = (300, 400)
    del layout.positions["m1"]
    out = json.loads(dumps_layout(layout))
    assert out["nodes"] == [{"id": "dataset-1", "positionX": 5, "positionY": 6},
                            {"note": "no id"}, {"id": "m2", "positionX": 300, "positionY": 400}]
    assert out["connections"] == doc["connections"] and out["zoom"] == 1.25
    assert list(out) == ["nodes", "connections", "zoom"]


def test_new_layout_from_positions():
    layout = Layout({"a": (200, 100), "b": (350.5, 100)})
    assert dumps_layout(layout) == ('{"nodes":[{"id":"a","positionX":200,"positionY":100},'
                                    '{"id":"b","positionX":350.5,"positionY":100}],'
                                    '"connections":[]}')
    assert dumps_layout(Layout()) == '{"nodes":[],"connections":[]}'


def test_layout_without_nodes_is_not_an_error():
    layout = parse_layout('{"connections":[]}', "x")
    assert layout.positions == {} and dumps_layout(layout) == '{"connections":[]}'


@pytest.mark.parametrize(
    ("value", "text"),
    [(1.0, "1"), (0.5, "0.5"), (-2.25, "-2.25"), (1e21, "1e+21"), (1e-7, "1e-7"),
     (1.5e-6, "0.0000015"), (123456789012345680000.0, "123456789012345680000"), (-0.0, "0"),
     (float("nan"), "null"), (7, "7"), (True, "true"), (None, "null"),
     ("a\"b\\c\n\x01é\u2028", '"a\\"b\\\\c\\n\\u0001é\u2028"'), ("\ud800", '"\\ud800"'),
     ({"b": 1, "10": 2, "2": 3}, '{"2":3,"10":2,"b":1}'), ([1, [2.5]], "[1,[2.5]]")],
)
def test_js_stringify_matches_javascript(value: object, text: str):
    assert js_stringify(value) == text


def test_missing_and_malformed_layouts(tmp_path: Path):
    assert read_layout(tmp_path) is None
    assert read_layout(tmp_path / "layout.txt") is None
    bad = tmp_path / "layout.txt"
    bad.write_text('{"nodes":[', encoding="utf-8")
    with pytest.raises(FormatError, match=rf"^{bad}: not valid JSON at line 1 column 11"):
        read_layout(tmp_path)
    bad.write_text("[1]", encoding="utf-8")
    with pytest.raises(FormatError, match="must be a JSON object"):
        read_layout(bad)


def test_write_layout_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    layout = Layout({"a": (1, 2)})
    path = write_layout(layout, tmp_path / "net")
    before = path.read_bytes()
    layout.positions["a"] = (3, 4)

    def boom(*_a: object) -> None:
        raise OSError("no space")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="no space"):
        write_layout(layout, tmp_path / "net")
    assert path.read_bytes() == before
    assert [p.name for p in (tmp_path / "net").iterdir()] == ["layout.txt"]
