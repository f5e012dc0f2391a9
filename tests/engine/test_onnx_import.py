"""ONNX import: the original's four test vectors (model.pb + input.csv -> output.csv), the round
trip of every exportable module type and of every example network (export, onnxruntime within
1e-5, import, same outputs), a PyTorch-exported network, and clear errors naming the node."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper

from engine import composite
from engine.builder import NetworkBuilder
from engine.description import read_network
from engine.errors import FormatError, ModuleError
from engine.graph import Network
from engine.onnx import from_onnx, to_onnx
from tests.conftest import ROOT, SHARED
from tests.engine.test_onnx_export import (
    EXPORTABLE,
    VARIANTS,
    example_inputs,
    one_module_network,
)

ONNXTEST = SHARED / "fixtures" / "dianne" / "onnxtest"
CASES = ["singleff", "singleconv", "convlinear", "convlinearpool"]
# Exported with ops that have no DIANNE inverse: ONNX's whole-tensor MaxPool indices
# (Mod/Cast), MaxUnpool, Frame's Gather/Expand, a BatchNormalization whose 4-D sample DIANNE
# itself reads as a batch (the export folds it into N).
EXPORT_ONLY = {"MaxPooling", "MaxUnpooling", "Frame", "BatchNormalization"}
EXPORT_ONLY_VARIANTS = {"Scale-15", "Frame-16", "Frame-17"}
EXAMPLES = sorted(p for p in (ROOT / "resources" / "examples").iterdir()
                  if (p / "modules.txt").is_file())
TOL = 1e-5


@pytest.fixture(autouse=True)
def _forget_composites():
    """Composite types used here are unregistered again (registry-wide tests count only the
    built-in types)."""
    yield
    composite.unregister_composites()


def imported(model) -> Network:
    desc, weights = from_onnx(model)
    net = Network(desc, backend="numpy")
    assert sorted(net.set_weights(weights)) == sorted(net.parameter_sizes())
    return net


@pytest.mark.parametrize("case", CASES)
def test_original_onnx_test_vectors(case):
    net = imported(ONNXTEST / case / "model.pb")
    x = np.loadtxt(ONNXTEST / case / "input.csv", delimiter=",", dtype=np.float32)
    want = np.loadtxt(ONNXTEST / case / "output.csv", delimiter=",", dtype=np.float32)
    dims = net.modules[net.inputs[0]].cfg["dims"]
    got = net.forward(x.reshape(dims))
    np.testing.assert_allclose(got.ravel(), want.ravel(), rtol=1e-5, atol=1e-6)
    assert net.description.name == "torch-jit-export"


def test_original_conv_bias_add_is_folded():
    desc, weights = from_onnx(ONNXTEST / "convlinearpool" / "model.pb")
    types = [m.type for m in desc.modules.values()]
    assert types == ["Input", "Convolution", "ReLU", "MaxPooling", "Reshape", "Linear", "ReLU",
                     "Output"]
    conv = next(m for m in desc.modules.values() if m.type == "Convolution")
    assert conv.properties["kernelWidth"] == "3" and weights[conv.id].size == 9 + 1


def _round_trip(desc, xs, label):
    net = Network(desc, backend="numpy", seed=3)
    model = to_onnx(net)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = net.forward(list(xs), outputs=list(net.outputs))
    got = sess.run(None, {i.name: x[None] for i, x in zip(sess.get_inputs(), xs, strict=True)})
    back = imported(model)
    # graph outputs (and the imported Output modules) carry the Output modules' names
    names = [o.name for o in sess.get_outputs()]
    again = back.forward(list(xs), outputs=names)
    again = {back.modules[k].name: v for k, v in again.items()}
    for o, g, name in zip(net.outputs, got, names, strict=True):
        np.testing.assert_allclose(g[0], want[o], rtol=TOL, atol=TOL, err_msg=label)
        np.testing.assert_allclose(again[name], want[o], rtol=TOL, atol=TOL, err_msg=label)
    return back


@pytest.mark.parametrize("type_name", sorted(set(EXPORTABLE) - EXPORT_ONLY))
def test_every_module_type_round_trips(type_name):
    back = _round_trip(one_module_network(type_name),
                       example_inputs(type_name, np.random.default_rng(5)), type_name)
    if type_name not in ("Duplicate", "Multiply"):
        assert [m.type_name for m in back.modules.values()].count(type_name) == 1


@pytest.mark.parametrize("type_name", sorted(EXPORT_ONLY))
def test_export_only_forms_fail_naming_the_node(type_name):
    net = Network(one_module_network(type_name), backend="numpy")
    with pytest.raises(FormatError, match="ONNX node"):
        from_onnx(to_onnx(net))


@pytest.mark.parametrize("index", range(len(VARIANTS)))
def test_geometry_variants_round_trip(index):
    type_name, props, shape = VARIANTS[index]
    b = NetworkBuilder("variant")
    b.chain(b.add("Input", dims=",".join(map(str, shape))), b.add(type_name, **props),
            b.add("Output"))
    x = np.random.default_rng(9).standard_normal(shape).astype(np.float32)
    if f"{type_name}-{index}" in EXPORT_ONLY_VARIANTS:
        with pytest.raises(FormatError, match="ONNX node"):
            from_onnx(to_onnx(Network(b.build(), backend="numpy")))
    else:
        _round_trip(b.build(), [x], f"{type_name}-{index}")


@pytest.mark.parametrize("folder", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_networks_round_trip(folder):
    desc = read_network(folder)
    dims = next(m for m in desc.modules.values() if m.type == "Input").properties["dims"]
    x = np.random.default_rng(1).random(tuple(int(d) for d in dims.split(",")), np.float32)
    back = _round_trip(desc, [x], folder.name)
    assert back.parameter_count() == Network(desc, backend="numpy").parameter_count()


def test_composites_are_inlined_and_memory_is_refused():
    b = NetworkBuilder("with-composites")
    b.chain(b.add("Input", dims="2,5,5"),
            b.add("ConvLayer", activation="ReLU", noInputPlanes=2, noOutputPlanes=3,
                  kernelWidth=3, kernelHeight=3, padX=1, padY=1, strideX=1, strideY=1,
                  kernelDepth="", strideZ="", padZ=""),
            b.add("Residual", noInputPlanes=3, noOutputPlanes=3), b.add("Output"))
    x = np.random.default_rng(2).standard_normal((2, 5, 5)).astype(np.float32)
    back = _round_trip(b.build(), [x], "composites")
    assert "Convolution" in {m.type_name for m in back.modules.values()}
    g = NetworkBuilder("gru")
    g.chain(g.add("Input", dims="3"), g.add("GRU", input=3, output=2), g.add("Output"))
    with pytest.raises(ModuleError, match="Memory"):
        to_onnx(Network(g.build(), backend="numpy"))


PYTORCH_CNN = Path(__file__).resolve().parents[1] / "fixtures" / "pytorch_cnn"


def test_pytorch_export_imports():
    """A CNN exported by PyTorch's own exporter (tools/make_pytorch_fixture.py: Conv, BN, ReLU,
    MaxPool, AvgPool, Flatten, Linear, BatchNorm1d, Tanh, Dropout, Linear, LogSoftmax) imports
    and reproduces PyTorch's output."""
    net = imported((PYTORCH_CNN / "model.onnx").read_bytes())
    x = np.load(PYTORCH_CNN / "input.npy", allow_pickle=False)
    want = np.load(PYTORCH_CNN / "output.npy", allow_pickle=False)
    got = np.stack([net.forward(s) for s in x])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def _model(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(nodes, "bad", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _vi(name, dims):
    return helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, dims)


def test_unknown_operator_names_the_node():
    model = _model([helper.make_node("Erf", ["x"], ["y"], name="erf1")],
                   [_vi("x", ["N", 4])], [_vi("y", ["N", 4])])
    with pytest.raises(FormatError, match="Erf 'erf1'"):
        from_onnx(model)


def test_grouped_convolution_is_refused_naming_the_node():
    w = onnx.numpy_helper.from_array(np.zeros((4, 1, 3, 3), np.float32), "w")
    model = _model([helper.make_node("Conv", ["x", "w"], ["y"], name="dw", group=4)],
                   [_vi("x", ["N", 4, 5, 5])], [_vi("y", ["N", 4, 3, 3])], [w])
    with pytest.raises(FormatError, match="Conv 'dw'.*group"):
        from_onnx(model)


def test_fan_out_becomes_a_duplicate():
    model = _model([helper.make_node("Relu", ["x"], ["a"]),
                    helper.make_node("Sigmoid", ["a"], ["b"]),
                    helper.make_node("Tanh", ["a"], ["c"]),
                    helper.make_node("Add", ["b", "c"], ["y"])],
                   [_vi("x", ["N", 3])], [_vi("y", ["N", 3])])
    desc, _ = from_onnx(model)
    dup = [m for m in desc.modules.values() if m.type == "Duplicate"]
    assert len(dup) == 1 and len(dup[0].next) == 2
    x = np.array([-1.0, 0.5, 2.0], np.float32)
    r = np.maximum(x, 0)
    np.testing.assert_allclose(Network(desc, backend="numpy").forward(x),
                               1 / (1 + np.exp(-r)) + np.tanh(r), rtol=1e-6)


def test_not_an_onnx_file(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"\x00garbage\xff" * 10)
    with pytest.raises(FormatError, match="model.onnx"):
        from_onnx(bad)
