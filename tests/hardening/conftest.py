"""Hardening tests: the ``slow`` marker for the full-size variants (``pytest -m slow
tests/hardening`` runs them; a plain run deselects them, so CI stays fast) and shared paths."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CORPUS = HERE / "corpus"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: full-size hardening variant (minutes); run with -m slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "slow" in (config.getoption("-m") or ""):
        return
    slow = [i for i in items if "slow" in i.keywords and HERE in Path(i.path).parents]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [i for i in items if i not in slow]
