"""The ``dianne`` CLI end to end, as a user runs it (a real subprocess).

The central check: a 784-20-10 sigmoid MLP written in the ORIGINAL's legacy format (bare module
map, JavaScript insertion order, boolean ``trainable``, weight files written here with struct,
not with our writer) is evaluated on the bundled MNIST test set with one ``dianne eval``
command, and the accuracy equals the one computed independently in this test from the raw IDX
bytes with plain numpy — to the last sample.
"""

from __future__ import annotations

import gzip
import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
MNIST = ROOT / "resources" / "mnist"

IDS = {
    "input": "5e1d3c2a-1f7d-4c8e-9a0b-0c1d2e3f4a5b",
    "lin1": "a36a7229-7d9b-8776-666e-a3adae26e01e",
    "sig1": "0b5c6d7e-8f90-a1b2-c3d4-e5f607182930",
    "lin2": "c1d2e3f4-0516-2738-495a-6b7c8d9eafb0",
    "sig2": "d4e5f607-1829-3a4b-5c6d-7e8f90a1b2c3",
    "output": "e7f80912-3a4b-5c6d-7e8f-90a1b2c3d4e5",
}


def dianne(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=300,
                          env={"DIANNE_BACKEND": "numpy", "PATH": "/usr/bin:/bin",
                               "HOME": str(cwd or ROOT), "PYTHONPATH": str(ROOT)})


def read_idx(name: str) -> np.ndarray:
    raw = gzip.decompress((MNIST / name).read_bytes())
    ndim = raw[3]
    dims = struct.unpack(">" + "i" * ndim, raw[4 : 4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


@pytest.fixture(scope="module")
def mnist():
    x = read_idx("t10k-images-idx3-ubyte.gz").reshape(10000, 784).astype(np.float64) / 255.0
    y = read_idx("t10k-labels-idx1-ubyte.gz").astype(np.int64)
    return x, y


def write_original_weights(path: Path, flat: np.ndarray) -> None:
    """DataOutputStream.writeInt + writeFloat, as the Java original did."""
    flat = np.asarray(flat, dtype=np.float32).ravel()
    path.write_bytes(struct.pack(">i", flat.size) + flat.astype(">f4").tobytes())


def legacy_modules_txt() -> str:
    """A bare map in the builder's (JavaScript insertion) order, booleans and numbers as the
    2015 builder wrote them."""
    i = IDS
    mods = {
        i["input"]: {"id": i["input"], "type": "Input", "next": [i["lin1"]],
                     "category": "Input-Output"},
        i["lin1"]: {"id": i["lin1"], "type": "Linear", "next": [i["sig1"]], "prev": [i["input"]],
                    "input": 784, "output": 20, "category": "Layer", "trainable": True},
        i["sig1"]: {"id": i["sig1"], "type": "Sigmoid", "next": [i["lin2"]], "prev": [i["lin1"]],
                    "category": "Activation"},
        i["lin2"]: {"id": i["lin2"], "type": "Linear", "next": [i["sig2"]], "prev": [i["sig1"]],
                    "input": "20", "output": "10", "category": "Layer", "trainable": True},
        i["sig2"]: {"id": i["sig2"], "type": "Sigmoid", "next": [i["output"]],
                    "prev": [i["lin2"]], "category": "Activation"},
        i["output"]: {"id": i["output"], "type": "Output", "prev": [i["sig2"]],
                      "labels": "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]", "category": "Input-Output"},
    }
    return json.dumps(mods)


@pytest.fixture(scope="module")
def mnist20(tmp_path_factory, mnist):
    """The network folder plus the accuracy computed independently of the engine."""
    x, y = mnist
    rng = np.random.default_rng(2015)
    w1 = rng.normal(0, 0.08, (20, 784)).astype(np.float32)
    b1 = rng.normal(0, 0.1, 20).astype(np.float32)
    h = 1 / (1 + np.exp(-(x @ w1.T.astype(np.float64) + b1)))
    # least-squares read-out on the first half, so the weights mean something
    hb = np.hstack([h[:5000], np.ones((5000, 1))])
    target = np.eye(10)[y[:5000]] * 4 - 2
    sol = np.linalg.lstsq(hb, target, rcond=None)[0]
    w2, b2 = sol[:20].T.astype(np.float32), sol[20].astype(np.float32)
    folder = tmp_path_factory.mktemp("models") / "mnist-20"
    folder.mkdir()
    (folder / "modules.txt").write_text(legacy_modules_txt())
    (folder / ".locked").write_bytes(b"")
    write_original_weights(folder / IDS["lin1"], np.concatenate([w1.ravel(), b1]))
    write_original_weights(folder / IDS["lin2"], np.concatenate([w2.ravel(), b2]))
    # independent float32 reference forward
    x32 = x.astype(np.float32)
    h32 = 1 / (1 + np.exp(-(x32 @ w1.T + b1)))
    o32 = 1 / (1 + np.exp(-(h32 @ w2.T + b2)))
    pred = o32.argmax(axis=1)
    accuracy = float((pred == y).mean())
    top3 = float(np.mean([y[k] in np.argsort(-o32[k], kind="stable")[:3] for k in range(10000)]))
    confusion = np.zeros((10, 10), dtype=int)
    np.add.at(confusion, (y, pred), 1)
    return folder, accuracy, top3, confusion, o32


def test_eval_of_an_original_format_network_matches_the_reference(mnist20):
    folder, accuracy, top3, confusion, _ = mnist20
    assert 0.5 < accuracy < 0.99  # a real, non-trivial classifier
    res = dianne("eval", str(folder), "--dataset", "mnist", "--json")
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    assert got["samples"] == 10000
    assert got["accuracy"] == pytest.approx(accuracy, abs=0)  # same count of hits
    assert got["top3"] == pytest.approx(top3, abs=2e-4)  # ties may order differently: 2 samples
    assert np.array_equal(np.array(got["confusion"]), confusion)
    assert got["forward_ms"] > 0


def test_eval_range_and_human_output(mnist20):
    folder, *_ = mnist20
    res = dianne("eval", str(folder), "--dataset", "mnist", "--range", "9000,10000",
                 "--no-progress")
    assert res.returncode == 0, res.stderr
    assert "1000 samples" in res.stdout and "accuracy" in res.stdout
    assert "confusion matrix" in res.stdout


def test_eval_label_subset_with_other_needs_matching_output(mnist20):
    folder, *_ = mnist20
    res = dianne("eval", str(folder), "--dataset", "mnist", "--labels", "0,1", "--other")
    assert res.returncode == 1
    assert res.stderr.count("\n") == 1 and "labels" in res.stderr
    assert "Traceback" not in res.stderr


def test_run_npy_prints_the_top_class(mnist20, mnist, tmp_path):
    folder, *_, o32 = mnist20
    x, _ = mnist
    np.save(tmp_path / "s.npy", x[3].reshape(1, 28, 28).astype(np.float32))
    res = dianne("run", str(folder), "--input", str(tmp_path / "s.npy"), "--json")
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    np.testing.assert_allclose(got["output"], o32[3], rtol=1e-5, atol=1e-6)
    assert got["labels"] == [str(d) for d in range(10)]
    assert got["top"][0][0] == str(int(np.argmax(o32[3])))
    assert abs(sum(p for _, p in got["top"]) - 1) < 1 or len(got["top"]) < 10


def test_run_image_is_converted_to_the_input_shape(mnist20, mnist, tmp_path):
    from PIL import Image

    folder, *_, o32 = mnist20
    x, _ = mnist
    img = Image.fromarray((x[7].reshape(28, 28) * 255).round().astype(np.uint8), "L")
    img = img.resize((56, 56), Image.Resampling.NEAREST).convert("RGB")
    img.save(tmp_path / "digit.png")
    res = dianne("run", str(folder), "--input", str(tmp_path / "digit.png"), "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["top"][0][0] == str(int(np.argmax(o32[7])))


def test_errors_are_one_line_and_name_the_culprit(tmp_path, mnist20):
    folder, *_ = mnist20
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "modules.txt").write_text('{"a": {"id": "a", ')
    res = dianne("eval", str(bad), "--dataset", "mnist")
    assert res.returncode == 1 and "modules.txt" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr

    short = tmp_path / "short"
    short.mkdir()
    for f in folder.iterdir():
        if f.is_file():
            (short / f.name).write_bytes(f.read_bytes())
    (short / IDS["lin2"]).write_bytes((short / IDS["lin2"]).read_bytes()[:-4])
    res = dianne("eval", str(short), "--dataset", "mnist")
    assert res.returncode == 1 and IDS["lin2"] in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1

    res = dianne("run", str(folder), "--input", str(tmp_path / "missing.png"))
    assert res.returncode == 1 and "missing.png" in res.stderr

    res = dianne("eval", str(tmp_path / "nowhere"), "--dataset", "mnist")
    assert res.returncode == 1 and "nowhere" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_examples_list_and_copy(tmp_path):
    res = dianne("examples", "--json")
    assert res.returncode == 0, res.stderr
    names = [e["name"] for e in json.loads(res.stdout)]
    assert "mnist-mlp" in names
    res = dianne("examples", "copy", "mnist-mlp", str(tmp_path / "copy"))
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "copy" / "modules.txt").is_file()
    res = dianne("info", str(tmp_path / "copy"), "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert all(m["error"] is None for m in info["modules"])
    res = dianne("examples", "copy", "mnist-mlp", str(tmp_path / "copy"))
    assert res.returncode == 1 and "not empty" in res.stderr


def test_commands_take_a_bundled_example_by_name(tmp_path):
    """``dianne info|eval NAME`` for an example listed by ``dianne examples``, found after the
    working folder and the repository; an unknown name is one line naming every place."""
    res = dianne("info", "lenet", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["name"] == "lenet"
    res = dianne("eval", "mnist-mlp", "--dataset", "mnist", "--range", "0,100", "--json",
                 "--no-progress", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["accuracy"] > 0.8  # its shipped weights were found
    res = dianne("info", "no-such-net", cwd=tmp_path)
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1
    assert "'no-such-net'" in res.stderr and str(tmp_path / "no-such-net") in res.stderr
    assert "repository" in res.stderr and "lenet, mnist-biglittle" in res.stderr
    for cmd in (["info", "lenet"], ["convert", "lenet", str(tmp_path / "x.onnx")]):
        res = dianne(*cmd, "--input-shape", "1,x,28", cwd=tmp_path)
        assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert "--input-shape takes integers" in res.stderr and "'1,x,28'" in res.stderr


def test_multi_output_network_needs_output_and_repository_names_work(tmp_path, mnist20):
    """A Big-Little style topology (Input -> Duplicate -> two branches, two Outputs) stored in
    a repository: eval by repository name, --output by name, and a clear error without it."""
    from engine.builder import NetworkBuilder
    from engine.graph import Network
    from engine.repository import Repository

    b = NetworkBuilder("two-heads")
    i, d = b.add("Input", dims="1,28,28"), b.add("Duplicate")
    little, big = b.add("Linear", name="little", input=784, output=10), b.add(
        "Linear", name="big", input=784, output=10)
    o1 = b.add("Output", name="little-out", labels="[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]")
    o2 = b.add("Output", name="big-out", labels="[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]")
    b.chain(i, d)
    b.connect(d, little).connect(d, big).connect(little, o1).connect(big, o2)
    desc = b.build()
    repo = Repository(tmp_path / "repo")
    repo.store_network(desc)
    net = Network(desc, backend="numpy", seed=4)
    for mid, flat in net.get_weights().items():
        repo.store_weights(mid, flat)

    res = dianne("--repository", str(tmp_path / "repo"), "eval", "two-heads", "--dataset",
                 "mnist", "--range", "0,200")
    assert res.returncode == 1
    assert "little-out" in res.stderr and "big-out" in res.stderr and "--output" in res.stderr
    res = dianne("--repository", str(tmp_path / "repo"), "eval", "two-heads", "--dataset",
                 "mnist", "--range", "0,200", "--output", "big-out", "--json")
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    x = read_idx("t10k-images-idx3-ubyte.gz")[:200].reshape(200, 784) / np.float32(255)
    y = read_idx("t10k-labels-idx1-ubyte.gz")[:200]
    w = net.modules[big].params["weight"]
    bias = net.modules[big].params["bias"]
    want = float(((x.astype(np.float32) @ w.T + bias).argmax(1) == y).mean())
    assert got["samples"] == 200 and got["accuracy"] == pytest.approx(want, abs=0)


def test_run_npy_must_match_declared_dims(tmp_path):
    res = dianne("examples", "copy", "mnist-mlp", str(tmp_path / "mlp"))
    assert res.returncode == 0, res.stderr
    np.save(tmp_path / "flat.npy", np.zeros(784, dtype=np.float32))
    res = dianne("run", str(tmp_path / "mlp"), "--input", str(tmp_path / "flat.npy"))
    assert res.returncode == 1 and "(1, 28, 28)" in res.stderr and "(784,)" in res.stderr
    np.save(tmp_path / "ok.npy", np.zeros((1, 28, 28), dtype=np.float32))
    res = dianne("run", str(tmp_path / "mlp"), "--input", str(tmp_path / "ok.npy"), "--json")
    assert res.returncode == 0, res.stderr
    assert len(json.loads(res.stdout)["output"]) == 10
