"""Deployments belong to their client: no other client can inject tensors or take results, and
an agent holds a bounded number of deployments (real agent processes on loopback)."""

from __future__ import annotations

import numpy as np
import pytest

from agent import protocol as P
from agent.client import AgentError, deploy
from agent.session import Session
from engine.description import dumps_network
from engine.graph import Network
from engine.zoo import mlp


def test_a_tensor_from_a_client_cannot_redirect_results(spawn) -> None:
    one, two = spawn(["s-one", "s-two"])
    desc = mlp([12, 6, 4])
    net = Network(desc, seed=2)
    half = len(net.order) // 2
    placement = {m: (one.id if i < half else two.id) for i, m in enumerate(net.order)}
    dep = deploy(desc, net.get_weights(), placement, [one.address, two.address])
    x = np.linspace(-1, 1, 12, dtype=np.float32)
    intruder = Session()
    try:
        np.testing.assert_allclose(dep.forward(x), net.forward(x), rtol=0, atol=1e-6)
        conn = intruder.connect(two.address)
        # the last module on agent two, fed as if by its predecessor on agent one
        dst = next(m for m in net.order if placement[m] == two.id)
        src = net.order[net.order.index(dst) - 1]
        width = desc.modules[src].properties.get("output", "6")
        guess = {"deployment": dep.id, "sample": "stolen", "dir": "forward", "from": src,
                 "to": dst, "outputs": None, "client": intruder.identity.hex()}
        for token in (None, "0" * 32):
            msg = P.Message("tensor", dict(guess, token=token),
                            [np.ones(int(width), np.float32)])
            with pytest.raises(AgentError, match="refused") as caught:
                intruder.request(conn, msg, timeout=2.0)
            assert caught.value.code == P.E_REFUSED
        feed = P.Message("forward", {"deployment": dep.id, "sample": "mine", "outputs": None,
                                     "feeds": {net.order[0]: 0}}, [x])
        with pytest.raises(AgentError, match="refused"):  # not its client, no token
            intruder.request(intruder.connect(one.address), feed, timeout=2.0)
        takeover = P.Message("deploy", {"deployment": dep.id, "network": dumps_network(desc),
                                        "placement": dict.fromkeys(placement, two.id),
                                        "agents": {two.id: two.address}, "weights": {}})
        with pytest.raises(AgentError, match="refused"):  # nor re-place it
            intruder.request(conn, takeover, timeout=2.0)
        intruder.pump(0.3)
        assert intruder.results == {} and intruder.errors == {}
        # the deployment's own client is served as before, results come back to it
        ys = list(dep.forward_many([x, 2 * x, 3 * x]))
        for k, y in enumerate(ys, 1):
            np.testing.assert_allclose(y, net.forward(k * x), rtol=0, atol=1e-5)
    finally:
        intruder.close()
        dep.session.close()
    two.kill()
    two.proc.log.seek(0)
    assert "refused a tensor for deployment" in two.proc.log.read()


def test_an_agent_holds_a_bounded_number_of_deployments(spawn) -> None:
    (agent,) = spawn(["s-bounded"], "--max-deployments", "2")
    desc = mlp([4, 2])
    weights = Network(desc, seed=1).get_weights()
    place = dict.fromkeys(desc.modules, agent.id)
    session = Session()
    try:
        first = deploy(desc, weights, place, [agent.address], session=session)
        deploy(desc, weights, place, [agent.address], session=session)
        with pytest.raises(AgentError, match=r"holds 2 deployments.*--max-deployments"):
            deploy(desc, weights, place, [agent.address], session=session)
        first.place(dict(place))  # re-placing one it holds is no new deployment
        first.undeploy()
        third = deploy(desc, weights, place, [agent.address], session=session)
        assert third.forward(np.ones(4, np.float32)).shape == (2,)
    finally:
        session.close()
