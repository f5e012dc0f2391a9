"""``dianne bench forward`` end to end on the small networks: the JSON rows carry every key the
issue names, ONNX Runtime runs the same network (outputs agree), bad options are one error
line. Timings are printed, never asserted."""

from __future__ import annotations

import json

import pytest

from app.cli import main

pytest.importorskip("onnxruntime")


def test_bench_forward_json_rows(capsys):
    assert main(["bench", "forward", "--nets", "mlp20,lenet", "--repeat", "20", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    rows = {r["net"]: r for r in result["rows"]}
    assert set(rows) == {"mlp20", "lenet"}
    for row in rows.values():
        for key in ("net", "ours_us", "ort_us", "torch_us", "ratio_ort", "ratio_torch",
                    "max_abs_diff"):
            assert key in row
        assert row["ours_us"] > 0 and row["ort_us"] > 0
        assert row["ratio_ort"] == pytest.approx(row["ours_us"] / row["ort_us"])
        assert row["ratio_ort_rounds"] > 0
        assert (row["ratio_torch_rounds"] is None) == (row["torch_us"] is None)
        assert row["max_abs_diff"] < 1e-4  # ORT ran our exported network, same weights
        if row["torch_us"] is not None:
            assert row["max_abs_diff_torch"] < 1e-4
    assert rows["lenet"]["calls"] < rows["lenet"]["modules"]  # fused
    assert result["overhead"]["per_module_us"] > 0
    assert "blas" in result["environment"]


def test_bench_forward_text_and_errors(capsys):
    assert main(["bench", "forward", "--nets", "mlp20", "--repeat", "10"]) == 0
    out = capsys.readouterr().out
    assert "ours/ORT" in out and "per module call" in out
    assert main(["bench", "forward", "--nets", "mlp20,vgg"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "vgg" in err[0]


def test_paired_ratio_compares_each_round_within_itself():
    """ratio_*_rounds: the median of the rounds' own ratios. A machine that slows down for half
    of the run (both engines alike), and for ORT in three more rounds, leaves it at the true
    ratio, 1.25 here, where the ratio of the whole run's medians mixes the states (0.83)."""
    import numpy as np  # noqa: PLC0415

    from app.bench.forward import ROUNDS, _paired  # noqa: PLC0415

    per = 5
    speed = np.repeat([1.0] * (ROUNDS // 2) + [3.0] * (ROUNDS // 2), per)  # a slow half
    ours, ref = 1.25 * speed, speed.copy()
    ref[: per * 3] *= 3.0  # ...and ORT caught three more rounds of it
    assert _paired(ours, ref) == pytest.approx(1.25)
    assert np.median(ours) / np.median(ref) == pytest.approx(2.5 / 3.0)
    assert _paired(ours, None) is None
