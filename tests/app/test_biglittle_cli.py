"""``dianne biglittle`` and ``dianne cascade`` on small networks written to a temporary folder."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from app.cli import main
from engine.biglittle import combine
from engine.biglittle_sweep import ROW_KEYS
from engine.builder import sequential
from engine.cascade import ROW_KEYS as CASCADE_KEYS
from engine.description import write_network
from engine.graph import Network
from engine.weights import weight_filename, write_weights
from tests.engine.test_cascade import cascade_network

DIGITS = [str(d) for d in range(10)]


def save(desc, folder, seed=0):
    net = Network(desc, seed=seed)
    write_network(desc, folder)
    for mid, flat in net.get_weights().items():
        write_weights(folder / weight_filename(mid), flat)
    return folder


@pytest.fixture(scope="module")
def bl_model(tmp_path_factory):
    big = sequential("big", [("Linear", {"input": 784, "output": 10}), ("LogSoftmax", {})],
                     input_dims=(1, 28, 28), labels=DIGITS)
    little = sequential("little", [("Linear", {"input": 784, "output": 4}), ("Softmax", {})],
                        input_dims=(1, 28, 28), labels=["0", "1", "2", "other"])
    return save(combine("blt", little, big, ["0", "1", "2"], 0.3),
                tmp_path_factory.mktemp("bl") / "blt")


def run_json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_sweep_json_csv_and_png(bl_model, tmp_path, capsys):
    out_csv, out_png = tmp_path / "s.csv", tmp_path / "s.png"
    rows = run_json(capsys, ["biglittle", "sweep", str(bl_model), "--dataset", "mnist",
                             "--range", "9000,9040", "--link", "5ms,10Mbit", "--thresholds",
                             "0,0.3,1", "--csv", str(out_csv), "--png", str(out_png), "--json",
                             "--no-progress"])
    assert [tuple(r) for r in rows] == [ROW_KEYS] * 3
    assert [r["threshold"] for r in rows] == [0.0, 0.3, 1.0]
    assert rows[2]["forwarded"] == 1.0 and rows[2]["bytes_sent"] == 40 * 3136
    assert rows[2]["accuracy"] == pytest.approx(rows[2]["big_accuracy"])
    # every forwarded sample pays two link delays (request and reply) plus the wire time
    assert rows[2]["latency_ms_mean"] >= 10.0 + 3136 * 8 / 1e7 * 1e3
    assert rows[0]["forwarded"] <= rows[1]["forwarded"] <= rows[2]["forwarded"]
    with out_csv.open() as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == list(ROW_KEYS) and len(table) == 3
    assert float(table[1]["forwarded"]) == pytest.approx(rows[1]["forwarded"])
    with Image.open(out_png) as img:
        assert img.format == "PNG" and img.size[0] > 600


def test_run_dataset_agrees_with_the_sweep(bl_model, tmp_path, capsys):
    rows = run_json(capsys, ["biglittle", "sweep", str(bl_model), "--dataset", "mnist",
                             "--range", "9000,9030", "--thresholds", "0.3", "--json",
                             "--no-progress", "--csv", str(tmp_path / "a.csv"), "--png",
                             str(tmp_path / "a.png")])
    res = run_json(capsys, ["biglittle", "run", str(bl_model), "--dataset", "mnist", "--range",
                            "9000,9030", "--json", "--no-progress"])
    assert res["samples"] == 30
    assert res["forwarded"] == pytest.approx(rows[0]["forwarded"])
    assert res["accuracy"] == pytest.approx(rows[0]["accuracy"])
    assert res["bytes_sent"] == rows[0]["bytes_sent"]
    assert {a["answered_by"] for a in res["answers"]} <= {"little", "big"}


def test_run_one_input_says_who_answered(bl_model, tmp_path, capsys):
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 28, 28), np.float32))
    res = run_json(capsys, ["biglittle", "run", str(bl_model), "--input", str(x), "--json",
                            "--threshold", "1.0"])
    assert res["answered_by"] == "big" and res["bytes_sent"] == 3136
    assert res["label"] in DIGITS and res["latency_ms"] >= res["little_ms"]


def test_errors_are_one_line(bl_model, tmp_path, capsys):
    plain = save(sequential("plain", [("Linear", {"input": 784, "output": 10})],
                            input_dims=(1, 28, 28), labels=DIGITS), tmp_path / "plain")
    assert main(["biglittle", "sweep", str(plain), "--dataset", "mnist", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert "not a Big-Little network" in err and "\n" not in err
    assert main(["biglittle", "sweep", str(bl_model), "--dataset", "mnist", "--link",
                 "fast"]) == 1
    assert "a link is" in capsys.readouterr().err


def test_cascade_sweep_and_run(tmp_path, capsys):
    desc, _ = cascade_network()
    model = save(desc, tmp_path / "casc")
    rows = run_json(capsys, ["cascade", "sweep", str(model), "--dataset", "mnist", "--range",
                             "9000,9050", "--thresholds", "0,0;1,1", "--json", "--no-progress",
                             "--csv", str(tmp_path / "c.csv"), "--png", str(tmp_path / "c.png")])
    assert [tuple(r) for r in rows] == [CASCADE_KEYS] * 2
    assert rows[0]["macs_mean"] == 7840 and rows[1]["macs_mean"] == 7840 + 39200 + 1000
    assert rows[1]["accuracy"] == rows[1]["full_accuracy"] and rows[0]["full_macs"] == 39700
    assert (tmp_path / "c.png").stat().st_size > 1000
    res = run_json(capsys, ["cascade", "run", str(model), "--dataset", "mnist", "--range",
                            "9000,9050", "--thresholds", "1,1", "--json"])
    assert res["exits"] == [0, 0, 50] and res["macs_mean"] == rows[1]["macs_mean"]
    assert res["accuracy"] == pytest.approx(rows[1]["accuracy"])
    assert main(["cascade", "sweep", str(model), "--dataset", "mnist", "--thresholds",
                 "0.5"]) == 1
    assert "each setting needs 2 thresholds" in capsys.readouterr().err


def test_create_trains_the_little_network_and_keeps_the_big_one(tmp_path, capsys):
    big_desc = sequential("tinybig", [("Linear", {"input": 784, "output": 10}),
                                      ("LogSoftmax", {})], input_dims=(1, 28, 28), labels=DIGITS)
    big = save(big_desc, tmp_path / "tinybig", seed=8)
    out = tmp_path / "made"
    res = run_json(capsys, ["biglittle", "create", str(big), "--priority", "0,1,2", "--little",
                            "mlp", "--dataset", "mnist", "--range", "0,600", "--epochs", "3",
                            "--threshold", "0.8", "--out", str(out), "--json", "--no-progress",
                            "-o", "learningRate=0.05"])
    assert res["little_params"] == 784 * 12 + 12 + 12 * 4 + 4 and res["train_samples"] == 600
    assert res["train_accuracy"] > 0.8  # "other" alone is ~70 %: it learnt something
    from engine.biglittle import Policy, split
    from engine.description import read_network
    from engine.repository import resolve_model

    source = resolve_model(str(out))
    policy = Policy.from_description(source.description)
    assert policy.threshold == 0.8 and policy.priority == ["0", "1", "2"]
    # own UUIDs (weights are found by UUID repository-wide), same big weights
    assert not set(source.description.modules) & set(big_desc.modules)
    weights = source.load_weights()
    parts = split(source.description)
    x = np.random.default_rng(0).random((1, 28, 28), dtype=np.float32)
    from engine.biglittle import LocalRunner

    got = LocalRunner(parts, weights).big(x)
    tiny = Network(read_network(big), seed=8)
    np.testing.assert_allclose(got, tiny.forward(x), rtol=1e-5, atol=1e-6)
    assert main(["biglittle", "create", str(big), "--priority", "0,11", "--dataset", "mnist",
                 "--out", str(tmp_path / "bad")]) == 1
    assert "['11'] are not labels" in capsys.readouterr().err


def test_cascade_train_writes_trained_exits(tmp_path, capsys):
    desc, ids = cascade_network()
    model = tmp_path / "casc"
    write_network(desc, model)
    res = run_json(capsys, ["cascade", "train", str(model), "--dataset", "mnist", "--range",
                            "0,300", "--epochs", "1", "--json", "--no-progress", "-o",
                            "learningRate=0.05"])
    assert res["folder"] == str(model)
    assert len(res["train_accuracy"]) == 3 and min(res["train_accuracy"]) > 0.3  # chance: 0.1
    rows = run_json(capsys, ["cascade", "sweep", str(model), "--dataset", "mnist", "--range",
                             "0,300", "--thresholds", "1,1", "--json", "--no-progress", "--csv",
                             str(tmp_path / "c.csv"), "--png", str(tmp_path / "c.png")])
    assert rows[0]["full_accuracy"] == pytest.approx(res["train_accuracy"][2], abs=1e-9)
