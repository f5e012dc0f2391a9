"""One agent given twice (the same address twice, or under two addresses) is one agent; two
agents that share a name are a clear one-line error naming both. Real agent processes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agent.client import AgentClient, AgentError, AgentInfo, deploy
from agent.session import Session
from engine.graph import Network
from engine.repository import resolve_model
from tests.agent.test_cli import MLP, run_cli, run_local_and_remote

LAST_LINEAR = "d1a00e01-0000-4000-8000-000000000003"


def mlp() -> tuple:
    src = resolve_model(MLP)
    net = Network(src.description)
    net.set_weights(src.load_weights(sizes=net.parameter_sizes()))
    net.train(False)  # what agents run: unfrozen modules
    return src.description, net


def alias(address: str) -> str:
    """The same agent under another name for its host."""
    assert address.startswith("tcp://127.0.0.1:")
    return address.replace("127.0.0.1", "localhost")


@pytest.mark.parametrize("twice", ["same", "alias", "stale"])
def test_deploy_with_an_agent_listed_twice(trio, twice) -> None:
    """The same address twice, another address of the agent, or a stale discovery record of an
    agent that used to answer at its address (another id, same name): one agent, the one that
    answers."""
    alpha, beta = trio[:2]
    again = {"same": alpha.address, "alias": alias(alpha.address),
             "stale": AgentInfo(id="0ld0-agent", name="alpha", address=alpha.address)}[twice]
    desc, net = mlp()
    x = np.random.default_rng(3).random((1, 28, 28), dtype=np.float32)
    want = net.forward(x).copy()
    session = Session()
    try:
        dep = deploy(desc, net.get_weights(), {"Input": "alpha", LAST_LINEAR: "beta"},
                     [alpha.address, again, beta.address, alpha.address], session=session)
        try:
            assert sorted(dep.all_conns) == sorted([alpha.id, beta.id])
            # one connection serves both addresses (a second one would be refused by the agent)
            address = getattr(again, "address", again)
            assert session.conns[address] is session.conns[alpha.address]
            np.testing.assert_array_equal(dep.forward(x), want)
            with AgentClient(alpha.address) as c:
                assert [d["id"] for d in c.hello()["deployments"]] == [dep.id]
        finally:
            dep.undeploy()
    finally:
        session.close()
    with AgentClient(alpha.address) as c:
        assert c.hello()["deployments"] == []


def test_cli_lists_and_runs_on_an_agent_given_twice(trio, capsys, tmp_path) -> None:
    alpha, beta = trio[:2]
    twice = ["--agent", alpha.address, "--agent", alias(alpha.address), "--agent",
             alpha.address, "--agent", beta.address]
    code, out, err = run_cli(capsys, "agents", "--json", *twice)
    assert code == 0, err
    assert [r["id"] for r in json.loads(out)] == [alpha.id, beta.id]
    local, remote = run_local_and_remote(capsys, tmp_path, 4, "--on", "alpha", *twice)
    assert remote["top"][0][0] == local["top"][0][0]
    np.testing.assert_allclose(remote["output"], local["output"], rtol=1e-5, atol=1e-6)


def test_two_agents_with_one_name_are_a_clear_error(spawn, capsys) -> None:
    twins = spawn(["twin", "twin"])
    desc, net = mlp()
    with pytest.raises(AgentError) as info:
        deploy(desc, net.get_weights(), {"Input": "twin"}, [a.address for a in twins])
    text = str(info.value)
    assert "'twin' matches several agents" in text and "\n" not in text
    assert all(a.id in text and a.address in text for a in twins)
    for a in twins:  # nothing was deployed
        with AgentClient(a.address) as c:
            assert c.hello()["deployments"] == []
    code, out, err = run_cli(capsys, "eval", MLP, "--dataset", "mnist", "--range", "0,5",
                             "--no-progress", "--on", "twin",
                             *[x for a in twins for x in ("--agent", a.address)])
    assert code == 1 and out == "" and err.count("\n") == 1, err
    assert "'twin' matches several agents" in err and all(a.id in err for a in twins)
