"""engine.zoo: the reference networks' structure (the fast OverFeat of Sermanet et al. 2013:
145.9 M parameters, 5.6 GFLOP), deterministic ids, and the bundled overfeat-fast example."""

from __future__ import annotations

import uuid
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from engine import zoo
from engine.description import dumps_network, read_network
from engine.graph import Network
from engine.layout import read_layout
from engine.shapes import infer_shapes


def test_overfeat_fast_has_the_published_size():
    desc = zoo.overfeat_fast()
    shapes = infer_shapes(desc)
    assert shapes.first_error() is None
    # table 1 of the paper: 5 conv (+3 max) and 3 fully connected layers
    assert shapes.params == 145_920_872  # 584 MB of float32
    assert shapes.macs == 2_801_403_904  # 5.6 GFLOP
    out = next(m for m in shapes.modules.values() if m.type == "Output")
    assert tuple(out.out_shape) == (1000,)
    types = [m.type for m in desc.modules.values()]
    assert types.count("Convolution") == 5 and types.count("Linear") == 3
    assert types.count("MaxPooling") == 3


def test_ids_are_deterministic_and_distinct_per_network():
    a, b = zoo.lenet5(), zoo.lenet5()
    assert list(a.modules) == list(b.modules)
    for mid in a.modules:
        assert str(uuid.UUID(mid)) == mid
    assert not set(a.modules) & set(zoo.mlp([784, 20, 10]).modules)
    assert not set(zoo.mlp([784, 20, 10]).modules) & set(zoo.mlp([784, 30, 10]).modules)


def test_mlp_and_lenet_run_and_give_log_probabilities():
    rng = np.random.default_rng(0)
    for desc, shape in ((zoo.mlp([784, 20, 10]), (784,)), (zoo.lenet5(), (1, 28, 28))):
        net = Network(desc, seed=3)
        y = net.forward(rng.standard_normal(shape).astype(np.float32))
        assert y.shape == (10,)
        assert abs(float(np.exp(y).sum()) - 1.0) < 1e-5
    types = [m.type for m in zoo.mlp([4, 3, 2, 1], activation="Tanh", output=None)
             .modules.values()]
    assert types == ["Input", "Linear", "Tanh", "Linear", "Tanh", "Linear", "Output"]
    with pytest.raises(ValueError, match="at least two"):
        zoo.mlp([784])


def test_bundled_example_is_the_zoo_network():
    folder = Path(str(resources.files("resources") / "examples" / "overfeat-fast"))
    assert (folder / "modules.txt").read_text() == dumps_network(zoo.overfeat_fast())
    desc = read_network(folder)
    layout = read_layout(folder)
    assert layout is not None and set(layout.positions) == set(desc.modules)
    assert not [p for p in folder.iterdir() if p.name not in ("modules.txt", "layout.txt")]
