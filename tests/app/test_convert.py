"""``dianne convert`` end to end (real subprocesses): import the original's convlinearpool
test model into a network folder that ``dianne run`` then uses, export a network folder with its
weights to ONNX that onnxruntime runs to the same numbers, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort

from tests.app.test_cli import dianne
from tests.conftest import SHARED

CASE = SHARED / "fixtures" / "dianne" / "onnxtest" / "convlinearpool"


def test_import_then_run_then_export(tmp_path):
    out = tmp_path / "pooled"
    r = dianne("convert", str(CASE / "model.pb"), str(out), "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["direction"] == "import" and info["name"] == "pooled"
    assert info["parameters"] == 9 + 1 + 49 * 5 + 5
    weight_files = [p for p in out.iterdir() if p.name != "modules.txt"]
    assert len(weight_files) == 2 and all(len(p.name) == 36 for p in weight_files)

    x = np.loadtxt(CASE / "input.csv", delimiter=",", dtype=np.float32).reshape(1, 10, 10)
    want = np.loadtxt(CASE / "output.csv", delimiter=",", dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    r = dianne("run", str(out), "--input", str(tmp_path / "x.npy"), "--json")
    assert r.returncode == 0, r.stderr
    np.testing.assert_allclose(json.loads(r.stdout)["output"], want, rtol=1e-5, atol=1e-6)

    onnx_file = tmp_path / "pooled.onnx"
    r = dianne("convert", str(out), str(onnx_file), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["direction"] == "export"
    sess = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x[None]})[0][0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_export_needs_weights_unless_asked(tmp_path):
    from engine.builder import sequential
    from engine.description import write_network

    folder = tmp_path / "tiny"
    write_network(sequential("tiny", [("Linear", {"input": 4, "output": 2})], input_dims=(4,)),
                  folder)
    repo = ["--repository", str(tmp_path / "empty-repo")]
    r = dianne(*repo, "convert", str(folder), str(tmp_path / "tiny.onnx"))
    assert r.returncode == 1 and "no weight file" in r.stderr
    r = dianne(*repo, "convert", str(folder), str(tmp_path / "tiny.onnx"), "--random-weights")
    assert r.returncode == 0, r.stderr
    assert "exported tiny" in r.stdout and (tmp_path / "tiny.onnx").is_file()


def test_errors_are_one_line(tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    r = dianne("convert", str(CASE / "model.pb"), str(tmp_path / "busy"))
    assert r.returncode == 1 and "not an empty folder" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = dianne("convert", str(tmp_path / "busy"), str(tmp_path / "other"))
    assert r.returncode == 1 and "convert needs" in r.stderr
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    r = dianne("convert", str(bad), str(tmp_path / "x"))
    assert r.returncode == 1 and "bad.onnx" in r.stderr
