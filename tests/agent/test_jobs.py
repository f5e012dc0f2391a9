"""Training jobs and evaluation on an agent equal the same engine calls made locally."""

from __future__ import annotations

import time

import numpy as np

from agent.client import AgentClient
from engine.datasets.spec import open_dataset
from engine.evaluation import evaluate_network
from engine.training import TrainConfig, Trainer
from tests.agent.test_distributed import mnist_mlp

OPTIONS = {"method": "SGD", "criterion": "NLL", "learningRate": "0.05", "batchSize": "10",
           "momentum": "0.9", "traceInterval": "10"}


def test_training_job_equals_local_trainer(trio) -> None:
    desc, net = mnist_mlp()
    start = net.get_weights()
    with AgentClient(trio[0].address) as client:
        progress: list[dict] = []
        job = client.start_job(desc, start, "mnist", OPTIONS, range=[0, 600], iterations=60,
                               seed=7)
        status = client.wait_job(job, timeout=60, on_progress=progress.append)
        assert status["state"] == "done" and status["result"]["iterations"] == 60
        remote = client.job_weights(job)
    assert [p["iteration"] for p in progress] == [10, 20, 30, 40, 50, 60]
    assert {"iteration", "epoch", "loss", "train_accuracy", "val_accuracy", "samples_per_s",
            "elapsed_s"} <= set(progress[0])
    # the same run locally
    trainer = Trainer(net, open_dataset("mnist", range_=(0, 600)),
                      TrainConfig.from_options(OPTIONS), seed=7)
    trainer.run(iterations=60)
    local = net.get_weights()
    assert set(remote) == set(local)
    for k in local:
        assert not np.array_equal(local[k], start[k])  # it did train
        np.testing.assert_allclose(remote[k], local[k], rtol=0, atol=1e-6)


def test_stop_job_and_evaluate(trio) -> None:
    desc, net = mnist_mlp()
    with AgentClient(trio[1].address) as client:
        job = client.start_job(desc, net.get_weights(), "mnist", OPTIONS, iterations=10**6)
        deadline = time.monotonic() + 10  # stop once it reported progress (it has trained)
        while not client.job_status(job)["progress"] and time.monotonic() < deadline:
            time.sleep(0.02)
        status = client.stop_job(job)
        assert status["state"] == "stopped"
        assert 0 < status["result"]["iterations"] < 10**6
        remote = client.evaluate(desc, net.get_weights(), "mnist", range=[0, 300])
    local = evaluate_network(net, open_dataset("mnist", range_=(0, 300)), batch_size=1)
    assert remote["samples"] == 300
    assert remote["accuracy"] == local.accuracy and remote["confusion"] == local.confusion


def test_evaluation_runs_off_the_serving_thread(trio) -> None:
    """While an evaluation runs, the agent answers pings; the evaluation's reply comes later,
    equal to the local one; a failing evaluation still answers with an error."""
    import time  # noqa: PLC0415

    import pytest  # noqa: PLC0415

    from agent.client import AgentError  # noqa: PLC0415
    from engine.graph import Network  # noqa: PLC0415
    from engine.repository import resolve_model  # noqa: PLC0415
    from tests.conftest import ROOT  # noqa: PLC0415

    src = resolve_model(str(ROOT / "resources" / "examples" / "lenet"))
    net = Network(src.description)
    net.set_weights(src.load_weights(sizes=net.parameter_sizes()))
    with AgentClient(trio[2].address) as client, AgentClient(trio[2].address) as other:
        msg = client._with_network("evaluate", src.description, net.get_weights(),
                                   {"dataset": "mnist", "range": [0, 3000]})
        t0 = time.perf_counter()
        client.session.send(client.conn, msg)
        other.ping()
        pong = time.perf_counter() - t0
        client.session.pump(0)
        assert msg.id not in client.session.replies, "the ping waited for the evaluation"
        remote = client.session.wait_reply(client.conn, msg, timeout=60).content
        done = time.perf_counter() - t0
        print(f"\nping answered after {pong * 1e3:.1f} ms while a {done * 1e3:.0f} ms "
              f"evaluation ran")
        with pytest.raises(AgentError, match="dataset"):
            client.evaluate(src.description, None, "no-such-dataset")
        assert client.request("ping").type == "pong"
    local = evaluate_network(net, open_dataset("mnist", range_=(0, 3000)), batch_size=1)
    assert remote["samples"] == 3000
    assert remote["accuracy"] == local.accuracy and remote["confusion"] == local.confusion
