"""A network split over three real agent processes gives the local results."""

from __future__ import annotations

import numpy as np
import pytest

from agent.client import AgentClient, deploy
from engine.builder import NetworkBuilder
from engine.graph import Network
from engine.repository import resolve_model
from tests.conftest import ROOT


def mnist_mlp() -> tuple:
    src = resolve_model(str(ROOT / "resources" / "examples" / "mnist-mlp"))
    net = Network(src.description)
    net.set_weights(src.load_weights(sizes=net.parameter_sizes()))
    return src.description, net


def lenet_fork() -> tuple:
    """LeNet whose second convolution is two parallel branches (Duplicate -> 2 Conv -> Concat)."""
    b = NetworkBuilder("lenet-fork")
    i = b.add("Input", dims="1,28,28")
    c1 = b.add("Convolution", noInputPlanes=1, noOutputPlanes=6, kernelWidth=5, kernelHeight=5,
               padX=2, padY=2)
    r1, p1, dup = b.add("ReLU"), b.add("MaxPooling", width=2, height=2), b.add("Duplicate")
    ca = b.add("Convolution", name="left", noInputPlanes=6, noOutputPlanes=8, kernelWidth=5,
               kernelHeight=5)
    cb = b.add("Convolution", name="right", noInputPlanes=6, noOutputPlanes=8, kernelWidth=5,
               kernelHeight=5)
    cat = b.add("Concat", dim=2)
    rest = [b.add("ReLU"), b.add("MaxPooling", width=2, height=2),
            b.add("Linear", input=400, output=120), b.add("ReLU"),
            b.add("Linear", input=120, output=10), b.add("LogSoftmax"),
            b.add("Output", labels="[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]")]
    b.chain(i, c1, r1, p1, dup)
    b.chain(dup, ca, cat)
    b.chain(dup, cb, cat)
    b.chain(cat, *rest)
    desc = b.build()
    return desc, Network(desc, seed=3)


def split3(net: Network, names: list[str]) -> dict[str, str]:
    """Consecutive thirds of the topological order on the three agents."""
    n = len(net.order)
    return {m: names[i * 3 // n] for i, m in enumerate(net.order)}


@pytest.mark.parametrize("make", [mnist_mlp, lenet_fork], ids=["mlp", "lenet-fork"])
def test_three_agent_split_equals_local_bit_for_bit(trio, make) -> None:
    desc, net = make()
    net.train(False)  # what agents run: unfrozen modules (eval() folds weights: rounding)
    placement = split3(net, [a.name for a in trio])
    assert len(set(placement.values())) == 3
    dep = deploy(desc, net.get_weights(), placement, [a.address for a in trio])
    try:
        xs = np.random.default_rng(1).random((5, 1, 28, 28), dtype=np.float32)
        frozen = Network(desc, seed=3).eval()  # folded/rearranged weights: float32 rounding
        frozen.set_weights(net.get_weights())
        for x in xs:
            assert np.array_equal(dep.forward(x), net.forward(x))
            np.testing.assert_allclose(dep.forward(x), frozen.forward(x), rtol=1e-5, atol=1e-5)
        # a batch, and pipelined samples: same values, same order, none lost
        assert np.array_equal(dep.forward(xs), net.forward(xs))
        streamed = list(dep.forward_many(list(xs) * 4, window=6))
        assert len(streamed) == 20
        for k, y in enumerate(streamed):
            assert np.array_equal(y, net.forward(xs[k % 5]))
    finally:
        dep.undeploy()
        dep.session.close()


def test_fork_branches_on_different_agents(trio) -> None:
    """Each Duplicate branch on its own agent, the Concat on a third: agent-to-agent joins."""
    desc, net = lenet_fork()
    net.train(False)  # what agents run: unfrozen modules (eval() folds weights: rounding)
    names = [a.name for a in trio]
    placement = {m: names[0] for m in net.order}
    placement[desc.module("left").id] = names[1]
    placement[desc.module("right").id] = names[2]
    dep = deploy(desc, net.get_weights(), placement, [a.address for a in trio])
    try:
        assert dep.agent_of("left").name == names[1]
        x = np.random.default_rng(2).random((1, 28, 28), dtype=np.float32)
        assert np.array_equal(dep.forward(x), net.forward(x))
        out = list(dep.forward_many([x, x * 0.5, x * 2], window=3))
        for y, s in zip(out, (1, 0.5, 2), strict=True):
            assert np.array_equal(y, net.forward(x * np.float32(s)))
    finally:
        dep.undeploy()
        dep.session.close()


def test_info_names_the_deployment(trio) -> None:
    desc, net = mnist_mlp()
    dep = deploy(desc, net.get_weights(), {m: trio[1].id for m in net.order},
                 [trio[1].address])
    try:
        with AgentClient(trio[1].address) as client:
            info = client.hello()
            assert info["id"] == trio[1].id and info["name"] == "beta"
            assert info["protocol"] == 1 and "numpy" in info["backends"]
            assert [d["name"] for d in info["deployments"]] == [desc.name]
            assert client.info.address == trio[1].address
    finally:
        dep.undeploy()
        dep.session.close()


def test_move_module_keeps_its_parameters(trio) -> None:
    desc, net = mnist_mlp()
    net.train(False)  # what agents run: unfrozen modules (eval() folds weights: rounding)
    dep = deploy(desc, net.get_weights(), {m: "alpha" for m in net.order},
                 [a.address for a in trio])
    try:
        second = "d1a00e01-0000-4000-8000-000000000003"
        dep.move(second, "gamma")
        assert dep.agent_of(second).name == "gamma"
        with AgentClient(trio[2].address) as gamma, AgentClient(trio[0].address) as alpha:
            assert gamma.hello()["deployments"][0]["modules"] == [second]
            assert second not in alpha.hello()["deployments"][0]["modules"]
        x = np.random.default_rng(3).random((1, 28, 28), dtype=np.float32)
        assert np.array_equal(dep.forward(x), net.forward(x))
        assert np.array_equal(dep.get_weights([second])[second], net.get_weights()[second])
    finally:
        dep.undeploy()
        dep.session.close()
