"""Backward across agents equals the local backward; failures name the agent and the module."""

from __future__ import annotations

import time

import numpy as np
import pytest

from agent.client import AgentError, deploy
from engine.builder import NetworkBuilder
from engine.optim import Optimizer
from tests.agent.test_distributed import lenet_fork, mnist_mlp, split3


def _param_grads(net) -> dict[str, np.ndarray]:
    return {m: np.concatenate([mod.grads[k].ravel() for k in mod.params])
            for m, mod in net.modules.items() if mod.parameter_size()}


@pytest.mark.parametrize("make", [mnist_mlp, lenet_fork], ids=["mlp", "lenet-fork"])
def test_backward_across_agents_equals_local(trio, make) -> None:
    desc, net = make()
    start = net.get_weights()
    dep = deploy(desc, start, split3(net, [a.id for a in trio]), [a.address for a in trio])
    try:
        rng = np.random.default_rng(4)
        net.zero_grad()
        dep.zero_grad()
        for _ in range(2):  # parameter gradients accumulate over two samples
            x = rng.random((1, 28, 28), dtype=np.float32)
            g = rng.standard_normal(10).astype(np.float32)
            np.testing.assert_array_equal(dep.forward(x), net.forward(x))
            remote, local = dep.backward(g), net.backward(g)
            assert set(remote) == set(local) == set(net.inputs)
            for k in local:
                np.testing.assert_allclose(remote[k], local[k], rtol=0, atol=1e-6)
        remote_grads, local_grads = dep.get_weights(grads=True), _param_grads(net)
        assert set(remote_grads) == set(local_grads)
        for k in local_grads:
            np.testing.assert_allclose(remote_grads[k], local_grads[k], rtol=0, atol=1e-6)
        # training steps (momentum SGD, engine.optim on each agent) equal the local ones
        options = {"method": "SGD", "learningRate": "0.1", "momentum": "0.9"}
        local_opt = Optimizer([(mod.params[k], g) for mod in net.modules.values()
                               for k, g in mod.grads.items()], options)
        for it in range(3):
            if it:
                dep.zero_grad()
                net.zero_grad()
                x = rng.random((1, 28, 28), dtype=np.float32)
                g = rng.standard_normal(10).astype(np.float32)
                dep.forward(x), net.forward(x)
                dep.backward(g), net.backward(g)
            dep.step(options, it)
            local_opt.step(it)
        remote_w, local_w = dep.get_weights(), net.get_weights()
        for k in local_w:
            np.testing.assert_allclose(remote_w[k], local_w[k], rtol=0, atol=1e-6)
        x = rng.random((1, 28, 28), dtype=np.float32)
        np.testing.assert_allclose(dep.forward(x), net.forward(x), rtol=0, atol=1e-6)
        # set_weights goes to the agent that holds each module
        dep.set_weights(start)
        assert all(np.array_equal(w, start[k]) for k, w in dep.get_weights().items())
    finally:
        dep.undeploy()
        dep.session.close()


def test_module_error_names_module_and_agent(trio) -> None:
    """A module failing on the second agent: the caller's error names that agent and module."""
    b = NetworkBuilder("mismatch")
    ids = [b.add("Input"), b.add("Linear", input=8, output=4),
           b.add("Linear", name="wrong", input=5, output=2), b.add("Output")]
    b.chain(*ids)
    desc = b.build()
    placement = dict(zip(ids, ["alpha", "alpha", "beta", "gamma"], strict=True))
    dep = deploy(desc, {}, placement, [a.address for a in trio])
    try:
        wrong = desc.module("wrong").id
        with pytest.raises(AgentError, match=rf"agent beta: Linear 'wrong' \({wrong}\).*"
                                             r"expects 5 input features"):
            dep.forward(np.ones(8, np.float32))
        with pytest.raises(AgentError, match=r"agent alpha: Linear .*expects 8 input"):
            dep.forward(np.ones(3, np.float32))
    finally:
        dep.undeploy()
        dep.session.close()


def test_killed_agent_is_named_within_two_seconds(spawn) -> None:
    agents = spawn(["k-one", "k-two", "k-three"])
    desc, net = mnist_mlp()
    net.train(False)  # what agents run: unfrozen modules (eval() folds weights: rounding)
    dep = deploy(desc, net.get_weights(), split3(net, [a.name for a in agents]),
                 [a.address for a in agents])
    try:
        x = np.zeros((1, 28, 28), np.float32)
        np.testing.assert_array_equal(dep.forward(x), net.forward(x))
        agents[1].kill()
        t0 = time.monotonic()
        with pytest.raises(AgentError, match=rf"agent k-two \({agents[1].id}\).* gone"):
            dep.forward(x)
        assert time.monotonic() - t0 < 2.0
    finally:
        dep.session.close()
