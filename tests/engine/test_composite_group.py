"""Grouping a selection into a new composite type: the rewritten network computes exactly what
the original did (weights regrouped into one composite vector), the type folder is a readable
composite, and selections with several inputs or outputs are refused with a clear error."""

from __future__ import annotations

import numpy as np
import pytest

from engine import composite
from engine.builder import NetworkBuilder
from engine.composite import read_composite
from engine.composite_group import group_into_composite
from engine.description import read_network
from engine.errors import DianneError
from engine.graph import Network
from engine.layout import read_layout
from tests.conftest import ROOT

LENET = ROOT / "resources" / "examples" / "lenet"


@pytest.fixture(autouse=True)
def _fresh_registry():
    yield
    composite.unregister_composites()


def _chain_ids(desc, types):
    """The first run of modules of ``types`` in execution order."""
    order = Network(desc, backend="numpy").order
    for i in range(len(order)):
        run = order[i:i + len(types)]
        if [desc.modules[m].type for m in run] == types:
            return run
    raise AssertionError(types)


def test_grouped_lenet_block_computes_the_same(tmp_path):
    desc = read_network(LENET)
    net = Network(desc, backend="numpy", seed=5)
    weights = net.get_weights()
    block = _chain_ids(desc, ["Convolution", "ReLU", "MaxPooling"])
    res = group_into_composite(desc, block, "ConvBlock", tmp_path, weights=weights,
                               layout=read_layout(LENET))
    assert not res.missing_weights
    assert [m.type for m in res.network.modules.values()].count("ConvBlock") == 1
    assert not set(block) & set(res.network.modules)
    grouped = Network(res.network, backend="numpy")
    grouped.set_weights(res.weights)
    x = np.random.default_rng(0).random((1, 28, 28), np.float32)
    np.testing.assert_array_equal(grouped.forward(x), net.forward(x))
    spec = read_composite(res.folder)
    assert spec.props == () and set(block) <= set(spec.description.modules)
    assert res.composite_id in res.layout.positions and not set(block) & set(res.layout.positions)
    assert set(block) <= set(read_layout(res.folder).positions)


def test_fork_consumers_outside_get_the_one_output(tmp_path):
    """The giving module feeds two outside modules: both read the composite."""
    b = NetworkBuilder("fan")
    i = b.add("Input", dims="4")
    lin = b.add("Linear", input=4, output=4)
    act = b.add("Tanh")
    s1, s2 = b.add("Sigmoid"), b.add("ReLU")
    acc, out = b.add("Accumulate"), b.add("Output")
    b.chain(i, lin, act, s1, acc, out)
    b.connect(act, s2).connect(s2, acc)
    desc = b.build()
    net = Network(desc, backend="numpy", seed=1)
    res = group_into_composite(desc, [lin, act], "LinTanh", tmp_path, weights=net.get_weights())
    cmod = res.network.modules[res.composite_id]
    assert cmod.next == [s1, s2] and cmod.prev == [i]
    grouped = Network(res.network, backend="numpy")
    grouped.set_weights(res.weights)
    x = np.arange(4, dtype=np.float32)
    np.testing.assert_allclose(grouped.forward(x), net.forward(x), rtol=1e-6)


def test_selection_with_two_outputs_is_refused(tmp_path):
    desc = read_network(LENET)
    order = Network(desc, backend="numpy").order
    lin_relu = _chain_ids(desc, ["Linear", "ReLU"])
    with pytest.raises(DianneError, match="ONE input"):
        group_into_composite(desc, [order[1], lin_relu[0]], "Bad", tmp_path)
    b = NetworkBuilder("two-out")
    i = b.add("Input", dims="3")
    t, s = b.add("Tanh"), b.add("Sigmoid")
    o1, o2 = b.add("Output"), b.add("Output")
    b.chain(i, t, o1).chain(i, s, o2)
    with pytest.raises(DianneError, match="ONE input|ONE output"):
        group_into_composite(b.build(), [t, s], "Bad", tmp_path)


def test_names_and_io_modules_are_checked(tmp_path):
    desc = read_network(LENET)
    inp = next(m.id for m in desc.modules.values() if m.type == "Input")
    with pytest.raises(DianneError, match="Input and Output"):
        group_into_composite(desc, [inp], "X", tmp_path)
    relu = _chain_ids(desc, ["ReLU"])
    with pytest.raises(DianneError, match="exists already"):
        group_into_composite(desc, relu, "Linear", tmp_path)
    with pytest.raises(DianneError, match="plain folder name"):
        group_into_composite(desc, relu, "a/b", tmp_path)
