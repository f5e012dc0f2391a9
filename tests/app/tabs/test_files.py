"""placement.json and actions.json: round trips, refusals naming the file, rule counting."""

from __future__ import annotations

import pytest

from app.deploy_view.placement import read_placement, write_placement
from app.run_view.actions import Rule, RuleEngine, read_rules, write_rules
from engine.errors import FormatError


def test_placement_round_trip_and_refusal(tmp_path):
    assert read_placement(tmp_path) == {}
    write_placement(tmp_path, {"b": "agent-2", "a": "agent-1"})
    assert read_placement(tmp_path) == {"a": "agent-1", "b": "agent-2"}
    (tmp_path / "placement.json").write_text('{"a": 3}')
    with pytest.raises(FormatError, match="placement.json"):
        read_placement(tmp_path)


def test_rules_round_trip_and_counting(tmp_path):
    rules = [Rule("7", 0.8, 3, "command", "true"), Rule("1", 0.5, 1)]
    write_rules(tmp_path, rules)
    assert read_rules(tmp_path) == rules
    eng = RuleEngine(rules)
    fired = [eng.feed({"7": p, "1": 0.0}) for p in (0.9, 0.9, 0.9, 0.9, 0.1, 0.9, 0.9, 0.9)]
    assert [len(f) for f in fired] == [0, 0, 1, 0, 0, 0, 0, 1]  # once per run of 3 frames
    assert eng.feed({"1": 0.6}) == [rules[1]]
    (tmp_path / "actions.json").write_text('[{"label": "1", "threshold": 0.5, "frames": 0, '
                                           '"kind": "notify"}]')
    with pytest.raises(FormatError, match="actions.json"):
        read_rules(tmp_path)
