"""CURVE: with --keys an agent serves only clients whose public key it lists."""

from __future__ import annotations

import time

import numpy as np
import pytest

from agent.client import AgentClient, AgentError, deploy
from agent.keys import Keys, generate, load
from app.cli import main
from tests.agent.test_distributed import mnist_mlp, split3


def test_keys_authorize_clients_and_agents(spawn, tmp_path, capsys) -> None:
    site = tmp_path / "site"
    assert main(["keys", "generate", str(site)]) == 0
    assert "agent.key_secret" in capsys.readouterr().out
    assert sorted(p.name for p in (site / "authorized").iterdir()) == ["agent.key",
                                                                      "client.key"]
    agents = spawn(["safe-a", "safe-b", "safe-c"], "--keys", str(site))
    keys = load(site)
    desc, net = mnist_mlp()
    net.train(False)  # what agents run: unfrozen modules (eval() folds weights: rounding)
    # tensors travel agent to agent encrypted, with the agents' own keypair
    dep = deploy(desc, net.get_weights(), split3(net, [a.name for a in agents]),
                 [a.address for a in agents], keys=keys)
    try:
        x = np.random.default_rng(0).random((1, 28, 28), dtype=np.float32)
        assert np.array_equal(dep.forward(x), net.forward(x))
        assert dep.conns[agents[0].id].info.secure
    finally:
        dep.undeploy()
        dep.session.close()
    # a client without keys, and one whose key is not listed, are refused
    with pytest.raises(AgentError, match="no agent answers"):
        AgentClient(agents[0].address, timeout=1.0)
    other = tmp_path / "other"
    generate(other, "mallory")
    stranger = load(other, "mallory")
    unlisted = Keys(stranger.public, stranger.secret, keys.server_public, keys.authorized)
    with pytest.raises(AgentError, match="authorized"):
        AgentClient(agents[0].address, keys=unlisted, timeout=1.0)
    # listing a new key lets it in (the agent rereads the folder within a second)
    generate(site, "carol")
    time.sleep(1.3)
    with AgentClient(agents[0].address, keys=load(site, "carol")) as c:
        assert c.hello()["secure"] is True


def test_all_interfaces_without_keys_warns(spawn) -> None:
    (agent,) = spawn(["open"], "--bind", "tcp://0.0.0.0:0")
    with AgentClient(agent.address) as c:  # reachable, by this host's address
        assert c.hello()["name"] == "open"
    agent.kill()
    agent.proc.log.seek(0)
    assert "without --keys" in agent.proc.log.read()
