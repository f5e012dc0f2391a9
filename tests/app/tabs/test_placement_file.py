"""placement.json is written only when the placement says something new."""

from __future__ import annotations

import json

from app.deploy_view.placement import FILE, read_placement, write_placement


def test_empty_placement_writes_no_file(tmp_path):
    write_placement(tmp_path, {})
    assert not (tmp_path / FILE).exists()


def test_same_placement_is_not_rewritten_and_a_change_is(tmp_path):
    write_placement(tmp_path, {"b": "edge", "a": "server"})
    path = tmp_path / FILE
    assert json.loads(path.read_text()) == {"a": "server", "b": "edge"}
    before = path.stat().st_mtime_ns
    write_placement(tmp_path, {"a": "server", "b": "edge"})
    assert path.stat().st_mtime_ns == before
    write_placement(tmp_path, {})
    assert read_placement(tmp_path) == {}


def test_damaged_file_is_replaced(tmp_path):
    (tmp_path / FILE).write_text("{not json")
    write_placement(tmp_path, {"a": "x"})
    assert read_placement(tmp_path) == {"a": "x"}
