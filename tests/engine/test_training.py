"""The trainer: one step equal to a hand-computed SGD update, learning on real MNIST, seeds,
callbacks (progress, snapshots, stop), NaN recovery, frozen modules, multi-output branches and
the flat option map."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.builder import NetworkBuilder, sequential
from engine.datasets import Dataset, RangeAdapter, apply_options, open_dataset
from engine.errors import DianneError
from engine.graph import Network
from engine.training import TrainConfig, Trainer, auto_criterion

DIGITS = [str(d) for d in range(10)]


class Table(Dataset):
    """A tiny in-memory classification set."""

    def __init__(self, x: np.ndarray, y: np.ndarray, n_classes: int) -> None:
        self.name, self.labels = "table", [str(c) for c in range(n_classes)]
        self.input_shape = x.shape[1:]
        self._x, self._y = x.astype(np.float32), y.astype(np.int64)

    def __len__(self) -> int:
        return len(self._y)

    def _inputs(self, idx):
        return self._x[idx]

    def _target_indices(self, idx):
        return self._y[idx]


def mlp(hidden: int = 16, seed: int = 0) -> Network:
    desc = sequential("mlp", [("Linear", {"input": 784, "output": hidden}), ("ReLU", {}),
                              ("Linear", {"input": hidden, "output": 10}), ("LogSoftmax", {})],
                      input_dims=(1, 28, 28), labels=DIGITS)
    return Network(desc, backend="numpy", seed=seed)


@pytest.fixture(scope="module")
def mnist():
    return open_dataset("mnist")


def test_one_sgd_step_equals_the_hand_computed_update():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 3)), np.array([0, 1, 1, 0])
    desc = sequential("lin", [("Linear", {"input": 3, "output": 2}), ("LogSoftmax", {})],
                      labels=["a", "b"])
    net = Network(desc, backend="numpy", seed=1)
    lin = next(m for m in net.modules.values() if m.type_name == "Linear")
    w0, b0 = lin.params["weight"].astype(np.float64), lin.params["bias"].astype(np.float64)
    cfg = TrainConfig.from_options({"method": "SGD", "learningRate": "0.5", "batchSize": "4",
                                    "criterion": "NLL", "sampling": "SEQUENTIAL"})
    result = Trainer(net, Table(x, y, 2), cfg).run(iterations=1)
    # By hand: z = x W^T + b, p = softmax(z), dL/dz = (p - onehot) / N, W -= lr dz^T x.
    z = x @ w0.T + b0
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dz = (p - np.eye(2)[y]) / 4
    np.testing.assert_allclose(lin.params["weight"], w0 - 0.5 * dz.T @ x, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(lin.params["bias"], b0 - 0.5 * dz.sum(0), rtol=1e-5, atol=1e-6)
    assert result["train_loss"] == pytest.approx(-np.log(p[np.arange(4), y]).mean(), rel=1e-5)
    assert result["iterations"] == 1 and result["stopped"] == "done"


def test_learns_mnist_and_reports_progress(mnist):
    train, val = RangeAdapter(mnist, 0, 2000), RangeAdapter(mnist, 2000, 2500)
    net = mlp()
    cfg = TrainConfig.from_options({"method": "ADAM", "batchSize": "32", "criterion": "AUTO",
                                    "sampling": "PERMUTATION", "traceInterval": "20"})
    seen: list[dict] = []
    trainer = Trainer(net, train, cfg, validation=val, seed=3)
    result = trainer.run(epochs=2, on_progress=seen.append)
    assert trainer.criterion.name == "NLL"
    assert result["iterations"] == 2 * 63 and result["epochs"] == 2.0
    assert result["val_accuracy"] > 0.7 and result["train_accuracy"] > 0.7  # chance: 0.1
    assert seen[0]["loss"] > seen[-1]["loss"]
    keys = {"iteration", "epoch", "loss", "train_accuracy", "val_accuracy", "samples_per_s",
            "elapsed_s"}
    assert all(set(p) == keys for p in seen)
    json.dumps(seen)  # JSON-serialisable
    assert [p["iteration"] for p in seen][:3] == [20, 40, 60]
    assert any(p["iteration"] == 63 and p["val_accuracy"] is not None for p in seen)
    json.dumps(result)


def test_same_seed_same_weights(mnist):
    data = RangeAdapter(mnist, 0, 300)
    cfg = TrainConfig.from_options({"batchSize": "10", "criterion": "NLL", "momentum": "0.9",
                                    "hflip": "0.5"})
    runs = []
    for _ in range(2):
        net = mlp(seed=5)
        Trainer(net, apply_options(data, cfg.options), cfg, seed=9).run(iterations=15)
        runs.append(list(net.get_weights().values()))
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)
    net = mlp(seed=5)
    Trainer(net, data, cfg, seed=10).run(iterations=15)
    assert any(not np.array_equal(a, b) for a, b in zip(runs[0], net.get_weights().values(),
                                                         strict=True))


def test_snapshots_stop_and_tags(mnist):
    data = RangeAdapter(mnist, 0, 200)
    cfg = TrainConfig.from_options({"batchSize": "20", "criterion": "NLL", "tag": "run",
                                    "storeInterval": "3", "validationInterval": "4"})
    snaps: list[list[str]] = []
    calls = iter(range(100))
    trainer = Trainer(mlp(), data, cfg, validation=RangeAdapter(mnist, 200, 300))
    result = trainer.run(iterations=50, on_snapshot=lambda tags, w: snaps.append(tags),
                         should_stop=lambda: next(calls) >= 7)
    assert result["stopped"] == "stopped" and result["iterations"] == 7
    assert ["run", "3"] in snaps and ["run", "6"] in snaps
    assert snaps[0] != ["run"] and snaps[-1] == ["run"]  # the final weights come last
    assert ["run", "best"] in snaps  # the first validation is always the best so far


def test_nan_loss_restores_the_last_good_weights():
    x = np.ones((8, 2))
    desc = sequential("lin", [("Linear", {"input": 2, "output": 2})], labels=["a", "b"])
    net = Network(desc, backend="numpy", seed=0)
    before = net.get_weights()
    cfg = TrainConfig.from_options({"criterion": "MSE", "learningRate": "1e30",
                                    "batchSize": "8"})
    result = Trainer(net, Table(x, np.zeros(8), 2), cfg).run(iterations=20)
    assert result["stopped"] == "nan" and result["iterations"] < 20
    for mid, w in net.get_weights().items():
        np.testing.assert_array_equal(w, before[mid])


def test_fixed_modules_and_other_branch_stay_put(mnist):
    b = NetworkBuilder("two")
    i, d = b.add("Input", dims="1,28,28"), b.add("Duplicate")
    l1, l2 = b.add("Linear", input=784, output=10), b.add("Linear", input=784, output=2)
    s1, s2 = b.add("LogSoftmax"), b.add("LogSoftmax")
    o1 = b.add("Output", name="big", labels="[" + ", ".join(DIGITS) + "]")
    o2 = b.add("Output", name="little", labels="[1, other]")
    b.chain(i, d)
    b.connect(d, l1).connect(d, l2).chain(l1, s1, o1).chain(l2, s2, o2)
    net = Network(b.build(), backend="numpy", seed=0)
    before = net.get_weights()
    data = RangeAdapter(mnist, 0, 100)
    cfg = TrainConfig.from_options({"criterion": "AUTO", "batchSize": "10", "l2": "0.1",
                                    "clean": "true"})
    Trainer(net, data, cfg, output="big", seed=4).run(iterations=3)
    after = net.get_weights()
    assert not np.array_equal(after[l1], before[l1])
    # not re-initialised by clean, not trained, not even decayed by l2
    np.testing.assert_array_equal(after[l2], before[l2])
    cfg = TrainConfig.from_options({"batchSize": "10", "criterion": "NLL", "fixed": l1.upper()})
    Trainer(net, data, cfg, output="big").run(iterations=3)
    np.testing.assert_array_equal(net.get_weights()[l1], after[l1])
    with pytest.raises(DianneError, match="2 labels"):
        Trainer(net, data, cfg, output="little")


def test_config_from_original_options():
    cfg = TrainConfig.from_options({"method": "adam", "criterion": "nll", "learningRate": "0.01",
                                    "batchSize": "64", "clean": "true", "tag": "x",
                                    "syncInterval": "1000", "hflip": "0.5", "maxIterations": "7"})
    assert (cfg.method, cfg.criterion, cfg.batch_size, cfg.clean, cfg.tag) == (
        "ADAM", "NLL", 64, True, "x")
    assert cfg.options["syncInterval"] == "1000" and cfg.options["hflip"] == "0.5"
    assert cfg.max_iterations == 7
    default = TrainConfig.from_options({})
    assert (default.method, default.criterion, default.batch_size, default.sampling) == (
        "SGD", "MSE", 1, "UNIFORM")
    for bad, match in [({"batchSize": "0"}, "batchSize"), ({"method": "newton"}, "newton"),
                       ({"criterion": "hinge"}, "hinge"), ({"sampling": "random"}, "random"),
                       ({"storeInterval": "2.5"}, "storeInterval")]:
        with pytest.raises(DianneError, match=match):
            TrainConfig.from_options(bad)


def test_auto_criterion_and_run_arguments(mnist):
    net = mlp()
    assert auto_criterion(net, net.single_output()) == "NLL"
    logits = Network(sequential("l", [("Linear", {"input": 4, "output": 3})]), seed=0)
    assert auto_criterion(logits, logits.single_output()) == "CE"
    assert auto_criterion(logits, logits.single_output(), classification=False) == "MSE"
    trainer = Trainer(net, RangeAdapter(mnist, 0, 50), TrainConfig.from_options({}))
    with pytest.raises(DianneError, match="not both"):
        trainer.run(epochs=1, iterations=3)
    assert trainer.run(iterations=2)["iterations"] == 2
    assert trainer.run(iterations=3)["iterations"] == 5  # the count goes on across runs
