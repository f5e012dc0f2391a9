"""``dianne train`` and ``dianne bench train`` end to end, as a user runs them (subprocesses):
JSON keys, splits, tagged weights + snapshots + ``-best`` in the repository, the test accuracy
confirmed by ``dianne eval``, stand-alone folders, Ctrl-C, the CIFAR and Big-Little examples,
one-line errors, and the benchmark's loss equal to PyTorch's on the same batches."""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from engine.description import read_network
from engine.graph import Network
from engine.training import upstream

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "resources" / "examples"
MLP_W1 = "d1a00e01-0000-4000-8000-000000000001"


def env(home: Path) -> dict[str, str]:
    return {"DIANNE_BACKEND": "numpy", "PATH": "/usr/bin:/bin", "HOME": str(home),
            "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def dianne(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, env=env(home))


def test_train_stores_tagged_weights_and_eval_agrees(tmp_path):
    repo = tmp_path / "repo"
    res = dianne(tmp_path, "--repository", str(repo), "train", "mnist-mlp", "--dataset", "mnist",
                 "--range", "0,1000", "--validation", "0.1", "--clean", "--method", "ADAM",
                 "--learningRate", "0.002", "--batchSize", "20", "--epochs", "2", "--tag", "t1",
                 "--storeInterval", "40", "--json", "--no-progress")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert {"train_loss", "val_accuracy", "test_accuracy", "seconds"} <= set(out)
    assert out["splits"] == {"train": [0, 800], "validation": [800, 900], "test": [900, 1000]}
    assert out["iterations"] == 80 and out["criterion"] == "NLL" and out["stopped"] == "done"
    assert out["val_accuracy"] > 0.6 and out["test_accuracy"] > 0.6 and out["train_loss"] < 1.5
    assert "copied example mnist-mlp" in res.stderr
    files = {p.name for p in (repo / "weights").iterdir()}
    for suffix in ("-t1", "-t1-best", "-t1-40", "-t1-80"):
        assert MLP_W1 + suffix in files
    res = dianne(tmp_path, "--repository", str(repo), "eval", "mnist-mlp", "--dataset", "mnist",
                 "--range", "900,1000", "--tag", "t1", "--json", "--batch-size", "50")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["accuracy"] == pytest.approx(out["test_accuracy"], abs=0)


def test_standalone_folder_keeps_its_weights(tmp_path):
    folder = tmp_path / "lenet"
    assert dianne(tmp_path, "examples", "copy", "lenet", str(folder)).returncode == 0
    before = {p.name: p.read_bytes() for p in folder.iterdir() if len(p.name) == 36}
    res = dianne(tmp_path, "--repository", str(tmp_path / "repo"), "train", str(folder),
                 "--dataset", "mnist", "--range", "0,200", "--iterations", "3", "--batchSize",
                 "8", "-o", "criterion=MSE", "--no-progress")
    assert res.returncode == 0, res.stderr
    assert "start: 5 weight files" in res.stdout and "trained 3 iterations" in res.stdout
    assert "SGD, MSE, batch 8" in res.stdout  # -o keys reach the learner
    assert f"weights stored in {folder}" in res.stdout
    after = {p.name: p.read_bytes() for p in folder.iterdir() if len(p.name) == 36}
    assert set(after) == set(before) and all(after[k] != before[k] for k in after)
    assert not (tmp_path / "repo" / "weights").exists()


def test_ctrl_c_stops_after_the_iteration_and_stores_weights(tmp_path):
    repo = tmp_path / "repo"
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "--repository", str(repo), "train", "mnist-mlp",
         "--dataset", "mnist", "--iterations", "1000000", "--batchSize", "8", "--tag", "run",
         "--storeInterval", "25", "--json", "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env(tmp_path))
    try:
        snapshot = repo / "weights" / f"{MLP_W1}-run-25"
        deadline = time.monotonic() + 120
        while not snapshot.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert snapshot.exists(), "training did not start"
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    out = json.loads(stdout)
    assert out["stopped"] == "stopped" and 25 <= out["iterations"] < 1000000
    assert "Traceback" not in stderr and "stopping after this iteration" in stderr
    final = repo / "weights" / f"{MLP_W1}-run"
    assert final.exists()
    res = dianne(tmp_path, "--repository", str(repo), "eval", "mnist-mlp", "--dataset", "mnist",
                 "--range", "9000,9100", "--tag", "run", "--json")
    assert res.returncode == 0, res.stderr


def _cifar_dir(folder: Path, n: int) -> None:
    folder.mkdir()
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 10
    images = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    images[:, :1024] = (labels[:, None] * 25).astype(np.uint8)  # the red plane says the class
    (folder / "data_batch_1.bin").write_bytes(
        b"".join(bytes([int(c)]) + img.tobytes() for c, img in zip(labels, images, strict=True)))


def test_cifar10_cnn_trains_on_cifar_records(tmp_path):
    _cifar_dir(tmp_path / "cifar", 60)
    res = dianne(tmp_path, "--repository", str(tmp_path / "repo"), "train", "cifar10-cnn",
                 "--dataset", f"cifar10:{tmp_path / 'cifar'}", "--iterations", "4",
                 "--batchSize", "6", "--method", "ADAM", "--json", "--no-progress")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["iterations"] == 4 and np.isfinite(out["train_loss"])
    assert out["splits"]["test"] == [54, 60] and out["test_accuracy"] is not None


def test_big_little_branch_training_leaves_the_other_branch(tmp_path):
    """The bundled Big-Little network (two Outputs, ``little`` on 0, 1, 2 + other): training
    the little branch with --clean re-initialises and trains only modules behind ``little``."""
    repo = tmp_path / "repo"
    net = Network(read_network(EXAMPLES / "mnist-biglittle"), backend="numpy")
    little_out, big_out = net.module("little").id, net.module("big").id
    labels = [lb for lb in net.labels(little_out) if lb != "other"]
    sizes = net.parameter_sizes()
    only_big = [m for m in upstream(net, big_out) - upstream(net, little_out) if m in sizes]
    only_little = [m for m in upstream(net, little_out) - upstream(net, big_out) if m in sizes]
    assert only_big and only_little
    res = dianne(tmp_path, "--repository", str(repo), "train", "mnist-biglittle", "--dataset",
                 "mnist", "--range", "0,500", "--labels", ",".join(labels), "--other",
                 "--output", "little", "--clean", "--iterations", "5", "--batchSize", "16",
                 "--json", "--no-progress")
    assert res.returncode == 0, res.stderr
    shipped, weights = EXAMPLES / "mnist-biglittle", repo / "weights"
    for mid in only_big:
        assert (weights / mid).read_bytes() == (shipped / mid).read_bytes()
    for mid in only_little:
        assert (weights / mid).read_bytes() != (shipped / mid).read_bytes()
    res = dianne(tmp_path, "--repository", str(repo), "train", "mnist-biglittle", "--dataset",
                 "mnist", "--output", "little", "--iterations", "1", "--json")
    assert res.returncode == 1 and f"{len(labels) + 1} labels" in res.stderr  # 10 classes


@pytest.mark.parametrize(("args", "needle"), [
    (["--dataset", "nowhere:x"], "nowhere:x"),
    (["--dataset", "mnist", "--method", "LBFGS"], "LBFGS"),
    (["--dataset", "mnist", "--split", "2"], "split"),
    (["--dataset", "mnist", "-o", "frame"], "KEY=VALUE"),
    (["--dataset", "mnist", "-o", "range=0,10"], "--range A,B"),
])
def test_errors_are_one_line(tmp_path, args, needle):
    res = dianne(tmp_path, "--repository", str(tmp_path / "repo"), "train", "mnist-mlp", *args)
    assert res.returncode == 1 and needle in res.stderr
    assert len(res.stderr.strip().splitlines()) <= 2  # the example-copy note + the error
    res = dianne(tmp_path, "--repository", str(tmp_path / "repo"), "train", "no-such-net",
                 "--dataset", "mnist")
    assert res.returncode == 1 and "no-such-net" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_bench_train_matches_pytorch_loss(tmp_path):
    res = dianne(tmp_path, "bench", "train", "--samples", "640", "--torch-threads", "1",
                 "--repeat", "1", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["ours_samples_per_s"] > 0 and out["samples"] == 640
    if importlib.util.find_spec("torch") is None:  # the comparison needs the bench extra
        assert out["torch_samples_per_s"] is None and out["ratio"] is None
        return
    assert out["ratio"] == pytest.approx(out["ours_samples_per_s"] / out["torch_samples_per_s"])
    # same initial weights, same batches, same SGD: the same epoch loss (float32 rounding only)
    assert out["ours_loss"] == pytest.approx(out["torch_loss"], rel=1e-4)
