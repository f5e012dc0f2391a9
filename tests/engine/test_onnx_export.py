"""ONNX export of every module type that ONNX can express: a one-module network built from the
type's registry example, exported, run in onnxruntime, equals our engine (float32, 1e-5); the
types without an ONNX form fail with an error naming the module."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from engine.builder import NetworkBuilder
from engine.errors import ModuleError
from engine.graph import Network
from engine.modules import REGISTRY
from engine.onnx import to_onnx

NOT_EXPRESSIBLE = {"Memory", "DropPath"}
SKIP = {"Input", "Output"}
EXPORTABLE = sorted(set(REGISTRY) - NOT_EXPRESSIBLE - SKIP)
TOL = 1e-5


def one_module_network(type_name: str):
    """Inputs (one per example input) -> the module -> Outputs (one per successor)."""
    ex = REGISTRY[type_name].example
    b = NetworkBuilder(f"one-{type_name}")
    ins = [b.add("Input", name=f"in{i}", dims=",".join(map(str, s)))
           for i, s in enumerate(ex["inputs"])]
    mid = b.add(type_name, **ex["props"])
    for i in ins:
        b.connect(i, mid)
    for k in range(ex.get("n_next", 1)):
        b.connect(mid, b.add("Output", name=f"out{k}"))
    return b.build()


def example_inputs(type_name: str, rng: np.random.Generator) -> list[np.ndarray]:
    ex = REGISTRY[type_name].example
    if "make_inputs" in ex:
        return [np.asarray(a, dtype=np.float32) for a in ex["make_inputs"](rng)]
    return [rng.standard_normal(s).astype(np.float32) for s in ex["inputs"]]


def run_both(desc, xs: list[np.ndarray], seed: int = 3):
    net = Network(desc, backend="numpy", seed=seed)
    model = to_onnx(net)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {inp.name: x[None] for inp, x in zip(sess.get_inputs(), xs, strict=True)}
    got = sess.run(None, feeds)
    want = net.forward(list(xs), outputs=list(net.outputs))
    return [want[o] for o in net.outputs], [g[0] for g in got], sess


@pytest.mark.parametrize("type_name", EXPORTABLE)
def test_module_exports_and_matches_onnxruntime(type_name):
    xs = example_inputs(type_name, np.random.default_rng(5))
    want, got, _ = run_both(one_module_network(type_name), xs)
    assert len(want) == len(got)
    for w, g in zip(want, got, strict=True):
        assert w.shape == g.shape
        np.testing.assert_allclose(g, w, rtol=TOL, atol=TOL, err_msg=type_name)


@pytest.mark.parametrize("type_name", sorted(NOT_EXPRESSIBLE))
def test_inexpressible_types_fail_naming_the_module(type_name):
    desc = one_module_network(type_name)
    net = Network(desc, backend="numpy")
    mid = next(m for m in net.order if net.modules[m].type_name == type_name)
    with pytest.raises(ModuleError, match=mid):
        to_onnx(net)


def test_batch_axis_is_symbolic():
    desc = one_module_network("Linear")
    net = Network(desc, backend="numpy")
    model = to_onnx(net)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and [d.dim_value for d in dims[1:]] == [6]
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    xs = np.random.default_rng(0).standard_normal((5, 6)).astype(np.float32)
    np.testing.assert_allclose(sess.run(None, {"in0": xs})[0], net.forward(xs), rtol=TOL,
                               atol=TOL)


VARIANTS = [  # geometry the registry examples do not cover
    ("Convolution", {"noInputPlanes": 3, "noOutputPlanes": 2, "kernelWidth": 3, "strideX": 2,
                     "padX": 1}, (7, 3)),
    ("Convolution", {"noInputPlanes": 2, "noOutputPlanes": 2, "kernelWidth": 2,
                     "kernelHeight": 2, "kernelDepth": 2, "padY": 1}, (2, 3, 4, 4)),
    ("Convolution", {"noInputPlanes": 1, "noOutputPlanes": 2, "kernelWidth": 3,
                     "kernelHeight": 3, "pad": True}, (5, 5)),
    ("MaxPooling", {"width": 2}, (6, 3)),
    ("MaxPooling", {"width": -1, "height": -1}, (3, 4, 5)),
    ("AvgPooling", {"width": 2, "height": 2, "depth": 2}, (2, 4, 4, 4)),
    ("AvgPooling", {"width": 3, "strideX": 2}, (7, 2)),
    ("Softmax", {}, (3, 2, 2)),
    ("LogSoftmax", {}, (2, 5)),
    ("Linear", {"input": 12, "output": 3}, (3, 2, 2)),
    ("BatchNormalization", {"size": 4}, (4,)),
    ("BatchNormalization", {"size": 3}, (3, 2, 2)),
    ("LRN", {"size": 3}, (5,)),
    ("SoftPlus", {}, (6,)),
    ("Scale", {"factor0": 2.0, "factor1": 0.5}, (2, 3, 6)),
    ("Scale", {"dim0": 3, "dim1": 4, "dim2": 5}, (1, 2, 2)),
    ("Frame", {"dim0": 4, "dim1": 4}, (3, 6, 8)),
    ("Frame", {"dim0": 3, "dim1": 4, "dim2": 4}, (1, 8, 6)),
]


@pytest.mark.parametrize("type_name,props,shape", VARIANTS,
                         ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(VARIANTS)])
def test_geometry_variants_match_onnxruntime(type_name, props, shape):
    b = NetworkBuilder("variant")
    b.chain(b.add("Input", dims=",".join(map(str, shape))), b.add(type_name, **props),
            b.add("Output"))
    x = np.random.default_rng(9).standard_normal(shape).astype(np.float32)
    (want,), (got,), _ = run_both(b.build(), [x])
    assert want.shape == got.shape
    np.testing.assert_allclose(got, want, rtol=TOL, atol=TOL)
