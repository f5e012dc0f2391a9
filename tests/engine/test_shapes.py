"""Shape inference over whole networks: shapes, parameter counts, MACs, and errors that name
the module without stopping the rest of the inference."""

from __future__ import annotations

import numpy as np
import pytest

from engine.builder import NetworkBuilder, sequential
from engine.errors import ShapeError
from engine.graph import Network
from engine.shapes import infer_shapes


def test_mlp_shapes_params_and_macs():
    desc = sequential("mlp", [("Linear", {"input": 784, "output": 20}), ("Sigmoid", {}),
                              ("Linear", {"input": 20, "output": 10}), ("Sigmoid", {})],
                      input_dims=(1, 28, 28))
    shapes = infer_shapes(desc)
    assert shapes.errors == {}
    outs = [m.out_shape for m in shapes.modules.values()]
    assert outs == [(1, 28, 28), (20,), (20,), (10,), (10,), (10,)]
    assert shapes.params == 784 * 20 + 20 + 20 * 10 + 10
    assert shapes.macs == 784 * 20 + 20 * 10


def test_input_shape_given_when_input_has_no_dims():
    desc = sequential("mlp", [("Linear", {"input": 12, "output": 2})])
    assert "dims" in next(iter(infer_shapes(desc).errors.values()))
    shapes = infer_shapes(desc, (1, 3, 4))
    assert shapes.errors == {}
    assert list(shapes.modules.values())[-1].out_shape == (2,)


def test_bad_module_is_marked_and_downstream_is_unknown():
    desc = sequential("bad", [("Linear", {"input": 10, "output": 4}), ("Tanh", {}),
                              ("Linear", {"input": 4, "output": 2})], input_dims=(12,))
    shapes = infer_shapes(desc)
    mods = list(shapes.modules.values())
    assert mods[0].ok
    assert mods[1].error and "10" in mods[1].error and mods[1].id in mods[1].error
    assert mods[2].error and "no known shape" in mods[2].error
    assert mods[3].error and mods[4].error


def test_bad_property_is_reported_not_raised():
    b = NetworkBuilder("x")
    i = b.add("Input", dims="4")
    lin = b.add("Linear", input="four", output=2)
    o = b.add("Output")
    b.chain(i, lin, o)
    shapes = infer_shapes(b.build())
    assert "input" in shapes[lin].error
    assert shapes[i].ok


def test_fork_join_shapes():
    b = NetworkBuilder("fj")
    i = b.add("Input", dims="6")
    d = b.add("Duplicate")
    la, lb = b.add("Linear", input=6, output=3), b.add("Linear", input=6, output=2)
    c, o = b.add("Concat", dim=0), b.add("Output")
    b.chain(i, d)
    b.connect(d, la).connect(d, lb).connect(la, c).connect(lb, c).connect(c, o)
    shapes = infer_shapes(b.build())
    assert shapes.errors == {}
    assert shapes[c].in_shapes == [(3,), (2,)]
    assert shapes[o].out_shape == (5,)


def test_results_come_in_execution_order():
    desc = sequential("mlp", [("Linear", {"input": 4, "output": 3}), ("ReLU", {})],
                      input_dims=(4,))
    # shuffle the file order: reported order must still follow the graph
    ids = list(desc.modules)
    desc.modules = {k: desc.modules[k] for k in reversed(ids)}
    assert [m.type for m in infer_shapes(desc).modules.values()] == [
        "Input", "Linear", "ReLU", "Output"]


@pytest.mark.parametrize(("dims", "n_in", "want"), [
    ((12,), 12, (2,)),             # odd rank: one sample
    ((1, 3, 4), 12, (2,)),
    ((3, 4), 4, (3, 2)),           # even rank: a batch of 3 rows of 4
    ((2, 1, 3, 4), 12, (2, 2)),    # a batch of 2 images of 1x3x4
    ((3, 4), 12, None),            # 3 rows of 4 are not 12 features
    ((2, 1, 3, 4), 24, None),
])
def test_linear_shapes_follow_the_forward_batch_rule(dims, n_in, want):
    """Shape inference gives the verdict forward gives: the same output shape, or an error
    naming the module and the input shape it received."""
    desc = sequential("rule", [("Linear", {"input": n_in, "output": 2})], input_dims=dims)
    shapes = infer_shapes(desc)
    lin = next(m for m in shapes.modules.values() if m.type == "Linear")
    net = Network(desc)
    x = np.ones(dims, dtype=np.float32)
    if want is None:
        with pytest.raises(ShapeError) as forward_error:
            net.forward(x)
        assert lin.error is not None and lin.out_shape is None
        assert lin.id in lin.error and f"Received: {dims}" in lin.error
        assert f"expects {n_in} input features" in lin.error
        assert f"expects {n_in} input features" in str(forward_error.value)
        assert shapes.first_error() == lin.error
        return
    assert lin.error is None and lin.out_shape == want
    assert net.forward(x).shape == want
    rows = dims[0] if len(dims) % 2 == 0 else 1
    assert lin.macs == rows * n_in * 2
    assert shapes.modules[net.outputs[0]].out_shape == want
