"""A network grouped into a composite, saved without a weight file for the composite, reopened:
the app's weight loading falls back to the parts' files (the original's rule), as the CLI does."""

from __future__ import annotations

import shutil

import numpy as np

from app.deploy_view.state import read_weights
from app.examples import find_example
from engine import composite
from engine.composite_group import group_into_composite
from engine.description import read_network, write_network
from engine.graph import Network
from engine.repository import resolve_model


def test_grouped_block_gets_its_parts_weights_after_reopening(tmp_path):
    src = find_example("lenet").folder
    desc = read_network(src / "modules.txt")
    weights = resolve_model(str(src)).load_weights(sizes=Network(desc).parameter_sizes())
    first_conv = next(m for m, d in desc.modules.items() if d.type == "Convolution")
    relu = desc.modules[first_conv].next[0]
    pool = desc.modules[relu].next[0]
    chain = [first_conv, relu, pool]
    try:
        result = group_into_composite(desc, chain, "LeadConvBlock", tmp_path / "composites",
                                      weights=weights)
        folder = tmp_path / "net"
        folder.mkdir()
        write_network(result.network, folder)
        for f in src.iterdir():  # the parts' weight files stay in the folder, as after Save
            if f.name not in ("modules.txt", "layout.txt"):
                shutil.copy(f, folder / f.name)
        loaded = read_weights(result.network, folder)
        cid = result.composite_id
        assert cid in loaded
        np.testing.assert_array_equal(loaded[cid], result.weights[cid])
        x = np.random.default_rng(0).random((1, 28, 28), dtype=np.float32)
        before = Network(desc)
        before.set_weights(weights)
        after = Network(result.network)
        after.set_weights(loaded)
        np.testing.assert_allclose(after.forward(x), before.forward(x), atol=1e-6)
    finally:
        composite.unregister_composites()
