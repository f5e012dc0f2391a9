"""``app.commands.load_network`` with composites: the repository's networks work as module
types, and a composite without its own weight file gets its parts' weights."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from app.commands import load_network
from engine import composite
from engine.builder import NetworkBuilder
from engine.description import write_network
from engine.errors import DianneError
from engine.repository import Repository


@pytest.fixture
def clean_composites(monkeypatch):
    monkeypatch.setattr(composite, "_paths", [])
    monkeypatch.setattr(composite, "_repositories", [])
    yield
    composite.unregister_composites()


def _args(model, repository, *tags: str) -> argparse.Namespace:
    return argparse.Namespace(model=str(model), repository=str(repository), tag=list(tags),
                              backend="numpy")


def test_a_repository_network_as_module_gets_its_parts_weights(tmp_path, clean_composites):
    root = tmp_path / "repo"
    b = NetworkBuilder("AgentTwoPart")
    lin = b.add("Linear", input=3, output=2)
    b.chain(b.add("Input"), lin, b.add("Output"))
    write_network(b.build(), root / "AgentTwoPart")
    composite.add_repository(root)  # to build the outer network here
    outer = NetworkBuilder("ensemble")
    cid = outer.add("AgentTwoPart")
    outer.chain(outer.add("Input", dims="3"), cid, outer.add("Output"))
    folder = tmp_path / "elsewhere" / "ensemble"
    write_network(outer.build(), folder)  # no weight file for the composite anywhere
    composite._repositories.clear()  # load_network must add the repository itself
    composite.unregister_composites()
    with pytest.raises(DianneError, match="no weight files found"):
        load_network(_args(folder, root))
    repo = Repository(root)
    w = np.arange(8, dtype=np.float32) / 10  # 3x2 weights + 2 biases, the part's own file
    repo.store_weights(lin, w)
    net = load_network(_args(folder, root))
    np.testing.assert_array_equal(net.get_weights()[cid], w)
    x = np.array([1.0, -2.0, 0.5], np.float32)
    want = w[:6].reshape(2, 3) @ x + w[6:]
    np.testing.assert_allclose(net.forward(x), want, rtol=0, atol=1e-6)
    repo.store_weights(lin, -w, tags=(cid,))  # tagged with the composite: preferred
    np.testing.assert_array_equal(load_network(_args(folder, root)).get_weights()[cid], -w)
    repo.store_weights(cid, w + 1)  # the composite's own file wins over its parts
    np.testing.assert_array_equal(load_network(_args(folder, root)).get_weights()[cid], w + 1)
