"""Composite modules (spec 8.1) on the eight composites written by the original: each loads with
its properties substituted, infers shapes inside a network, passes the float64 gradient check
(the registry harness's finite differences), and keeps its parameters as one flat vector in
Java-HashMap order of the sub-module UUIDs. GRU and LSTM run step by step against hand-written
numpy recurrences."""

from __future__ import annotations

import numpy as np
import pytest

from engine import composite
from engine.builder import NetworkBuilder
from engine.composite import CompositeModule, read_composite, register_composites
from engine.errors import FormatError
from engine.graph import Network
from engine.modules import REGISTRY, create_module
from engine.shapes import infer_shapes
from engine.weights import read_weights, write_weights
from tests.conftest import COMPOSITE_NAMES, COMPOSITES
from tests.engine.test_module_harness import ATOL, RTOL, loss_of, numeric_gradient

# Small instances: (properties, one sample's input shape, output shape)
CASES = {
    "ConvLayer": ({"activation": "ReLU", "noInputPlanes": 2, "noOutputPlanes": 3,
                   "kernelWidth": 3, "kernelHeight": 3, "padX": 1, "padY": 1, "strideX": 1,
                   "strideY": 1, "kernelDepth": "", "strideZ": "", "padZ": ""},
                  (2, 4, 4), (3, 4, 4)),
    "Fractal-3": ({"noInputPlanes": 2, "noOutputPlanes": 2}, (2, 3, 3), (2, 3, 3)),
    "GRU": ({"input": 3, "output": 2}, (3,), (2,)),
    "Inception_v1": ({"noInputPlanes": 2, "1x1": 1, "3x3": 2, "5x5": 1, "3x3reduce": 1,
                      "5x5reduce": 1, "poolproj": 1}, (2, 3, 3), (5, 3, 3)),
    "Inception_v2": ({"noInputPlanes": 2, "1x1": 1, "3x3": 2, "5x5": 1, "3x3reduce": 1,
                      "5x5reduce": 1, "poolproj": 1}, (2, 3, 3), (5, 3, 3)),
    "LSTM": ({"input": 3, "output": 2}, (3,), (2,)),
    "Residual": ({"noInputPlanes": 2, "noOutputPlanes": 2}, (2, 3, 3), (2, 3, 3)),
    "Residual_b": ({"noInputPlanes": 2, "noFilters": 1, "noOutputPlanes": 4}, (2, 3, 3),
                   (4, 3, 3)),
}


@pytest.fixture(autouse=True)
def _fresh_registry():
    """Composite types found during a test are forgotten after it (the registry-wide tests
    elsewhere count the built-in types only)."""
    paths, repos = list(composite._paths), list(composite._repositories)
    yield
    composite.unregister_composites()
    composite._paths[:], composite._repositories[:] = paths, repos


def make(name: str, dtype=np.float64, seed: int = 1) -> CompositeModule:
    props, _, _ = CASES[name]
    mod = create_module(name, dtype=dtype, **{k: str(v) for k, v in props.items()})
    mod.reset(np.random.default_rng(seed))
    # BatchNormalization statistics away from 0/1, so the flat vector test sees them move
    for sub in mod.net.modules.values():
        if sub.type_name == "BatchNormalization":
            sub.params["running_mean"][...] = np.linspace(-0.2, 0.2, sub.size)
            sub.params["running_var"][...] = np.linspace(0.5, 1.5, sub.size)
    return mod


def test_every_fixture_is_a_case():
    assert sorted(CASES) == sorted(COMPOSITE_NAMES)
    assert sorted(p.name for p in composite.builtin_dir().iterdir()) == sorted(COMPOSITE_NAMES)


@pytest.mark.parametrize("name", COMPOSITE_NAMES)
def test_fixture_loads_as_a_registered_composite_type(name):
    spec = read_composite(COMPOSITES / name)
    assert {p.name for p in spec.props} == set(CASES[name][0])
    mod = make(name)
    assert REGISTRY[name].category == "Composite" and REGISTRY[name].trainable
    assert mod.parameter_size() == sum(mod.net.parameter_sizes().values())
    assert mod.parameter_size() > 0


@pytest.mark.parametrize("name", COMPOSITE_NAMES)
def test_shapes_inside_a_network(name):
    props, in_shape, out_shape = CASES[name]
    b = NetworkBuilder(f"with-{name}")
    b.chain(b.add("Input", dims=",".join(map(str, in_shape))),
            b.add(name, **{k: str(v) for k, v in props.items()}), b.add("Output"))
    desc = b.build()
    shapes = infer_shapes(desc)
    assert not shapes.errors
    comp = next(s for s in shapes.modules.values() if s.type == name)
    assert comp.out_shape == out_shape and comp.params == make(name).parameter_size()
    x = np.random.default_rng(0).standard_normal(in_shape)
    assert Network(desc, backend="numpy").forward(x).shape == out_shape


def _fixed_state(mod: CompositeModule, rng: np.random.Generator):
    """For recurrent composites: a random previous state, restored before every forward."""
    states = [rng.standard_normal(m.cfg["size"]) for m in mod.memories]

    def restore() -> None:
        for m, s in zip(mod.memories, states, strict=True):
            m.reset_state(s)
    return restore


GRAD_CASES = [(n, False) for n in COMPOSITE_NAMES] + [("ConvLayer", True), ("Residual", True)]


@pytest.mark.parametrize("name,training", GRAD_CASES)
def test_gradient_check(name, training):
    """Finite differences in float64 on the input and on every learnable parameter
    (training: BatchNormalization on the sample's own statistics)."""
    _, in_shape, _ = CASES[name]
    rng = np.random.default_rng(7)
    mod = make(name)
    mod.train(training)
    restore = _fixed_state(mod, rng)
    x = rng.standard_normal(in_shape)

    def forward() -> list[np.ndarray]:
        restore()
        return [np.array(mod.forward(x), copy=True)]

    weights = [rng.standard_normal(o.shape) for o in forward()]
    mod.zero_grad()
    forward()
    gx = mod.backward(weights[0])

    def loss() -> float:
        return loss_of(forward(), weights, [0])

    np.testing.assert_allclose(gx, numeric_gradient(x, loss), rtol=RTOL, atol=ATOL)
    assert mod.grads
    for pname, grad in mod.grads.items():
        num = numeric_gradient(mod.params[pname], loss)
        np.testing.assert_allclose(grad, num, rtol=RTOL, atol=ATOL, err_msg=pname)


def test_flat_vector_is_in_java_hashmap_order():
    """Spec 8.1: ConvLayer = BN c871f226 then Conv a4745ffd; Residual = BN ff31285b,
    Conv 015e1346, Conv 50857d99, BN 08f8f598."""
    assert [p[:8] for p in make("ConvLayer").parts] == ["c871f226", "a4745ffd"]
    assert [p[:8] for p in make("Residual").parts] == ["ff31285b", "015e1346", "50857d99",
                                                      "08f8f598"]
    mod = make("ConvLayer")
    flat = mod.get_flat()
    bn, conv = (mod.net.modules[p] for p in mod.parts)
    np.testing.assert_array_equal(flat, np.concatenate([bn.get_flat(), conv.get_flat()]))


@pytest.mark.parametrize("name", COMPOSITE_NAMES)
def test_one_weight_file_round_trip(name, tmp_path):
    _, in_shape, _ = CASES[name]
    src, dst = make(name, np.float32, seed=1), make(name, np.float32, seed=2)
    path = tmp_path / "weights"
    write_weights(path, src.get_flat())
    dst.set_flat(read_weights(path, expected=src.parameter_size()))
    x = np.random.default_rng(3).standard_normal(in_shape).astype(np.float32)
    np.testing.assert_array_equal(dst.forward(x), src.forward(x))


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def _linears(mod):
    """The sub-network's Linear modules keyed by output size."""
    return {m.cfg["output"]: (m.params["weight"], m.params["bias"])
            for m in mod.net.modules.values() if m.type_name == "Linear"}


def test_gru_recurrence_matches_numpy():
    mod = make("GRU")
    (w_rz, b_rz), (w_h, b_h) = _linears(mod)[4], _linears(mod)[2]
    xs = np.random.default_rng(4).standard_normal((5, 3))
    h = np.zeros(2)
    mod.reset_state()
    for x in xs:
        r, z = np.split(sigmoid(w_rz @ np.concatenate([x, h]) + b_rz), 2)
        cand = np.tanh(w_h @ np.concatenate([x, r * h]) + b_h)
        h = z * cand + (1 - z) * h
        np.testing.assert_allclose(mod.forward(x), h, rtol=1e-10, atol=1e-12)


def test_lstm_recurrence_matches_numpy():
    mod = make("LSTM")
    w, b = _linears(mod)[8]
    xs = np.random.default_rng(5).standard_normal((5, 3))
    h, c = np.zeros(2), np.zeros(2)
    for x in xs:
        a = w @ np.concatenate([x, h]) + b
        f, o, i = (sigmoid(v) for v in np.split(a[:6], 3))
        c = f * c + i * np.tanh(a[6:])
        h = o * np.tanh(c)
        np.testing.assert_allclose(mod.forward(x), h, rtol=1e-10, atol=1e-12)


def test_recurrent_composite_takes_a_batch():
    mod = make("GRU")
    xs = np.random.default_rng(6).standard_normal((3, 4, 3))
    batched = [mod.forward(x) for x in xs]
    for k in range(4):
        mod.reset_state()
        for t in range(3):
            np.testing.assert_allclose(mod.forward(xs[t, k]), batched[t][k], rtol=1e-10)


def _write_composite(folder, body_type="Tanh", extra=""):
    """A user composite: Input -> Linear(${n}, 2*${n}) -> body -> Output."""
    folder.mkdir(parents=True)
    (folder / "composite.txt").write_text("Size,n,java.lang.Integer\n" + extra)
    b = NetworkBuilder(folder.name)
    b.chain(b.add("Input"), b.add("Linear", input="${n}", output="2*${n}"), b.add(body_type),
            b.add("Output"))
    from engine.description import write_network
    write_network(b.build(), folder)


def test_users_composites_folder_and_palette(tmp_path):
    _write_composite(tmp_path / "composites" / "Widen")
    composite.add_repository(tmp_path)
    mod = create_module("Widen", n="3")
    assert mod.output_shape((3,)) == (6,) and mod.parameter_size() == 6 * 4
    names = register_composites()
    assert "Widen" in names and set(COMPOSITE_NAMES) <= set(names)
    from engine.modules import module_types
    palette = {t.type_name: t for t in module_types("Composite")}
    assert palette["Widen"].props[0].name == "n" and palette["GRU"].trainable


def test_undeclared_placeholder_is_an_error_naming_it(tmp_path):
    folder = tmp_path / "Bad"
    _write_composite(folder)
    (folder / "composite.txt").write_text("Size,m,java.lang.Integer\n")
    composite.add_composite_path(tmp_path)
    with pytest.raises(FormatError, match=r"\$\{n\}"):
        create_module("Bad", m="3")


def test_bad_composite_txt_line_names_the_file(tmp_path):
    folder = tmp_path / "Odd"
    _write_composite(folder, extra="only,two\n")
    with pytest.raises(FormatError, match=r"composite.txt:2"):
        read_composite(folder)


def test_unknown_type_still_lists_the_known_ones():
    from engine.errors import ModuleError
    with pytest.raises(ModuleError, match="unknown module type"):
        create_module("NoSuchComposite")


def test_repository_network_as_module_and_parts_fallback(tmp_path):
    """A repository network used as a module type; with no composite weight file, its parts'
    own files (tagged with the composite's UUID first, then untagged) are loaded."""
    from engine.description import write_network
    from engine.repository import Repository

    b = NetworkBuilder("TinyNet")
    lin = b.add("Linear", input=3, output=2)
    b.chain(b.add("Input"), lin, b.add("Sigmoid"), b.add("Output"))
    write_network(b.build(), tmp_path / "TinyNet")
    composite.add_repository(tmp_path)
    repo = Repository(tmp_path)
    outer = NetworkBuilder("outer")
    cid = outer.add("TinyNet")
    outer.chain(outer.add("Input", dims="3"), cid, outer.add("Output"))
    net = Network(outer.build(), backend="numpy")
    tagged = np.arange(8, dtype=np.float32) / 10
    repo.store_weights(lin, -tagged)
    assert composite.load_parts(net, repo) == [cid]
    np.testing.assert_array_equal(net.get_weights()[cid], -tagged)
    repo.store_weights(lin, tagged, tags=(cid,))
    composite.load_parts(net, repo)
    np.testing.assert_array_equal(net.get_weights()[cid], tagged)
    assert composite.load_parts(net, repo, loaded=[cid]) == []


def test_nested_composite_runs_infers_and_exports(tmp_path):
    """A user composite made of two bundled ones: forward, shapes and ONNX export."""
    import onnxruntime as ort

    from engine.description import write_network
    from engine.onnx import to_onnx

    folder = tmp_path / "TwoBlocks"
    folder.mkdir()
    (folder / "composite.txt").write_text("Planes,planes,java.lang.Integer\n")
    b = NetworkBuilder("TwoBlocks")
    b.chain(b.add("Input"), b.add("Residual", noInputPlanes="${planes}",
                                  noOutputPlanes="${planes}"),
            b.add("Residual_b", noInputPlanes="${planes}", noFilters="1",
                  noOutputPlanes="2*${planes}"), b.add("Output"))
    write_network(b.build(), folder)
    composite.add_composite_path(tmp_path)
    outer = NetworkBuilder("outer")
    outer.chain(outer.add("Input", dims="2,4,4"), outer.add("TwoBlocks", planes=2),
                outer.add("Output"))
    desc = outer.build()
    assert not infer_shapes(desc).errors
    net = Network(desc, backend="numpy", seed=3)
    x = np.random.default_rng(0).standard_normal((2, 4, 4)).astype(np.float32)
    want = net.forward(x)
    assert want.shape == (4, 4, 4)
    sess = ort.InferenceSession(to_onnx(net).SerializeToString(),
                                providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x[None]})[0][0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_composite_around_a_recurrent_composite_holds_its_state(tmp_path):
    """A user composite wrapping an LSTM: its memories are the LSTM's two, so reset_state
    starts the nested sequence again (the same inputs then give the same outputs)."""
    from engine.description import write_network  # noqa: PLC0415

    folder = tmp_path / "composites" / "WrapLSTM"
    folder.mkdir(parents=True)
    (folder / "composite.txt").write_text("Size,n,java.lang.Integer\n")
    b = NetworkBuilder("WrapLSTM")
    b.chain(b.add("Input"), b.add("LSTM", input="${n}", output="${n}"), b.add("Output"))
    write_network(b.build(), folder)
    composite.add_repository(tmp_path)
    mod = create_module("WrapLSTM", n="3")
    assert len(mod.memories) == 2 and all(m.recurrent for m in mod.memories)
    xs = np.random.default_rng(3).standard_normal((4, 3)).astype(np.float32)
    first = [mod.forward(x).copy() for x in xs]
    assert not np.allclose(first[0], first[1])  # the state matters
    mod.reset_state()
    again = [mod.forward(x).copy() for x in xs]
    for a, b_ in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b_)
