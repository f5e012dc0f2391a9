"""Evaluator extensions: per-class precision/recall/F1 from a hand-made confusion matrix, a
network evaluated in evaluation mode (and its mode restored), and the criterion metric."""

from __future__ import annotations

import numpy as np
import pytest

from engine.builder import sequential
from engine.datasets import open_dataset
from engine.evaluation import evaluate_loss, evaluate_network, per_class
from engine.graph import Network
from engine.losses import make_criterion


def test_per_class_by_hand():
    # target a: 3 right, 1 taken for b; target b: 2 right; target c: never present, predicted 1x
    confusion = [[3, 1, 0], [0, 2, 1], [0, 0, 0]]
    stats = per_class(confusion, ["a", "b", "c"])
    assert stats["a"] == {"precision": 1.0, "recall": 0.75, "f1": pytest.approx(6 / 7),
                          "support": 4}
    assert stats["b"]["precision"] == pytest.approx(2 / 3)
    assert stats["b"]["recall"] == pytest.approx(2 / 3)
    assert stats["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


@pytest.fixture(scope="module")
def dropout_net():
    desc = sequential("d", [("Dropout", {"rate": 0.9}), ("Linear", {"input": 784, "output": 10}),
                            ("LogSoftmax", {})], input_dims=(1, 28, 28),
                      labels=[str(d) for d in range(10)])
    return Network(desc, backend="numpy", seed=2)


def test_evaluate_network_uses_evaluation_mode(dropout_net):
    data = open_dataset("mnist", range_=(0, 300))
    net = dropout_net.train()
    result = evaluate_network(net, data, batch_size=64)
    assert all(m.training for m in net.modules.values())  # the mode is restored
    lin = next(m for m in net.modules.values() if m.type_name == "Linear")
    x = data.inputs(range(300)).reshape(300, -1)
    scores = x @ lin.params["weight"].T + lin.params["bias"]  # no dropout in evaluation mode
    want = float((scores.argmax(1) == data.target_indices(range(300))).mean())
    assert result.accuracy == pytest.approx(want, abs=0) and result.samples == 300


def test_evaluate_loss_is_the_mean_nll(dropout_net):
    data = open_dataset("mnist", range_=(0, 100))
    net = dropout_net.eval()
    logp = net.forward(data.inputs(range(100))).astype(np.float64)
    want = -logp[np.arange(100), data.target_indices(range(100))].mean()
    got = evaluate_loss(net, data, make_criterion("NLL"), batch_size=30)
    assert got == pytest.approx(want, rel=1e-6)
