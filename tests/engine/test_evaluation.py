"""The evaluator: exactly known accuracy, top-N, confusion and tie handling on hand-made scores,
batch sizes, progress, errors, and a rule-based forward on the real MNIST checked by numpy."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.datasets import Dataset, RangeAdapter, open_dataset
from engine.errors import DianneError
from engine.evaluation import Evaluation, evaluate


class Indexed(Dataset):
    """Sample i has input [i] (shape (1,)) and the given target; 4 classes."""

    def __init__(self, targets: list[int], n_classes: int = 4) -> None:
        self.name = "indexed"
        self.labels = [f"c{k}" for k in range(n_classes)]
        self.input_shape = (1,)
        self._t = np.asarray(targets, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._t)

    def _inputs(self, idx: np.ndarray) -> np.ndarray:
        return idx.astype(np.float32)[:, None]

    def _target_indices(self, idx: np.ndarray) -> np.ndarray:
        return self._t[idx]


TARGETS = [0, 1, 2, 3, 0, 1]
SCORES = np.array(
    [
        [5, 1, 0, 0],  # t=0: predicted 0, rank 0
        [3, 2, 1, 0],  # t=1: predicted 0, rank 1 (top-3 hit)
        [0, 0, 0, 1],  # t=2: predicted 3; ties with 0 and 1 come first -> rank 3 (miss)
        [1, 1, 1, 1],  # t=3: all tied -> predicted 0 (first max), rank 3 (miss)
        [2, 2, 0, 0],  # t=0: tie won by the lower index -> predicted 0, rank 0
        [0, 2, 2, 0],  # t=1: predicted 1, rank 0
    ],
    dtype=np.float32,
)
CONFUSION = [[2, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 1], [1, 0, 0, 0]]


def table_forward(x: np.ndarray) -> np.ndarray:
    """Scores looked up by the sample index held in the input (sample or batch)."""
    if x.ndim == 1:
        return SCORES[int(x[0])]
    return SCORES[x[:, 0].astype(int)]


@pytest.mark.parametrize("batch_size", [1, 2, 4, 6, 100])
def test_known_results(batch_size):
    ev = evaluate(table_forward, Indexed(TARGETS), batch_size=batch_size, top_n=(1, 2, 3, 4))
    assert ev.samples == 6
    assert ev.accuracy == pytest.approx(3 / 6, abs=0)
    assert ev.error == pytest.approx(1 - 3 / 6, abs=0)
    assert ev.topn == {1: 3 / 6, 2: 4 / 6, 3: 4 / 6, 4: 1.0}
    assert ev.top3 == 4 / 6 and ev.top5 is None
    assert ev.confusion == CONFUSION
    assert ev.labels == ["c0", "c1", "c2", "c3"]


def test_progress_and_timing():
    calls: list[tuple[int, int]] = []
    ev = evaluate(table_forward, Indexed(TARGETS), progress=lambda d, t: calls.append((d, t)))
    assert calls == [(k, 6) for k in range(1, 7)]
    calls.clear()
    ev4 = evaluate(
        table_forward, Indexed(TARGETS), batch_size=4, progress=lambda d, t: calls.append((d, t))
    )
    assert calls == [(4, 6), (6, 6)]
    for e in (ev, ev4):
        assert e.forward_ms > 0 and e.total_ms > 0
        assert e.forward_ms * e.samples <= e.total_ms  # only part of the loop is timed


def test_forward_receives_sample_or_batch_shapes():
    seen: list[tuple[int, ...]] = []

    def forward(x):
        seen.append(x.shape)
        return table_forward(x)

    evaluate(forward, Indexed(TARGETS), batch_size=1)
    assert set(seen) == {(1,)}
    seen.clear()
    evaluate(forward, Indexed(TARGETS), batch_size=4)
    assert seen == [(4, 1), (2, 1)]


def test_to_json():
    ev = evaluate(table_forward, Indexed(TARGETS), top_n=(5,))
    data = json.loads(json.dumps(ev.to_json()))
    assert list(data)[:5] == ["accuracy", "top3", "samples", "confusion", "forward_ms"]
    assert data["accuracy"] == 0.5 and data["top3"] == 4 / 6 and data["samples"] == 6
    assert data["confusion"] == CONFUSION
    assert data["top5"] == 1.0 and data["error"] == 0.5
    assert data["labels"] == ["c0", "c1", "c2", "c3"]
    assert isinstance(ev, Evaluation)


def test_wrong_class_count_names_both():
    with pytest.raises(DianneError, match="outputs 3 classes.*has 4 labels"):
        evaluate(lambda x: np.zeros(3, np.float32), Indexed(TARGETS))
    with pytest.raises(DianneError, match="outputs 5 classes.*has 4 labels"):
        evaluate(lambda x: np.zeros((len(x), 5), np.float32), Indexed(TARGETS), batch_size=3)


def test_nan_never_wins_and_single_row_output():
    # Output (1, C) for one sample is accepted; NaN ranks as -inf, consistently for both
    # argmax and rank, so top-1 equals accuracy.
    scores = np.array([[np.nan, 1, 0, 0], [np.nan, np.nan, np.nan, np.nan]], np.float32)
    ev = evaluate(lambda x: scores[int(x[0])][None, :], Indexed([1, 0]), top_n=(1, 2))
    assert ev.confusion[1][1] == 1 and ev.confusion[0][0] == 1
    assert ev.accuracy == 1.0 and ev.topn[1] == 1.0


def test_bad_arguments():
    with pytest.raises(DianneError, match="no samples"):
        evaluate(table_forward, Indexed([]))
    with pytest.raises(DianneError, match="batch size"):
        evaluate(table_forward, Indexed(TARGETS), batch_size=0)


def test_rule_forward_on_real_mnist():
    # Prediction rule: (number of pixels > 0.5) mod 10, as a one-hot. The expected results
    # are computed here with plain numpy from the dataset's arrays.
    ds = RangeAdapter(open_dataset("mnist"), 0, 500)
    x = ds.inputs(range(500))
    t = ds.target_indices(range(500))
    rule = (x > 0.5).reshape(500, -1).sum(1) % 10
    confusion = np.zeros((10, 10), dtype=int)
    np.add.at(confusion, (t, rule), 1)

    def forward(batch):
        pred = (batch > 0.5).reshape(-1, 784).sum(1) % 10
        out = np.eye(10, dtype=np.float32)[pred]
        return out[0] if batch.ndim == 3 else out

    for batch_size in (1, 64):
        ev = evaluate(forward, ds, batch_size=batch_size)
        assert ev.samples == 500
        assert ev.confusion == confusion.tolist()
        assert ev.accuracy == np.mean(rule == t)
        # One-hot outputs: a missed true class scores 0, below the predicted class (1) and
        # after the classes below it that also score 0 (stable ranking).
        rank = np.where(rule == t, 0, 1 + t - (rule < t))
        assert ev.top3 == np.mean(rank < 3)
