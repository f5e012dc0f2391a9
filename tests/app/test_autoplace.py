"""Automatic placement against real agent processes on loopback: the placement messages
(profile, module_times, randomize, emulate), links measured on the data path, plan_for_agents, and
``dianne deploy MODEL --placement auto``. No timing is asserted except lower bounds that the
emulation guarantees (an emulated delay is never shorter than asked)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator

import numpy as np
import pytest

from agent import protocol as P
from agent.client import deploy
from agent.handlers import placement as H
from agent.session import AgentError, Session
from app.autoplace import plan_for_agents, profile_agents
from app.autoplace_cli import parse_pins
from app.planner import Link
from engine import zoo
from engine.description import dumps_network
from engine.errors import DianneError
from engine.graph import Network
from tests.agent.conftest import AgentProc, start_agents
from tests.conftest import ROOT

RTT = 0.02  # the emulated device-server link: 20 ms round trip, 1 Mbit/s
SLOW = Link.mbit(1, RTT * 1e3)


@pytest.fixture(scope="module")
def pair() -> Iterator[list[AgentProc]]:
    agents = start_agents(["device", "server"])
    yield agents
    for a in agents:
        a.kill()


@pytest.fixture
def session(pair) -> Iterator[Session]:
    s = Session()
    yield s
    s.close()


def _emulate(session: Session, pair: list[AgentProc], slowdown: float = 1.0) -> None:
    device, server = pair
    c_dev, c_srv = session.connect(device.address), session.connect(server.address)
    session.request(c_dev, P.Message("emulate", {"slowdown": slowdown,
                                                 "links": {server.id: SLOW.to_json()}}))
    session.request(c_srv, P.Message("emulate", {"links": {device.id: SLOW.to_json(),
                                                           "client": SLOW.to_json()}}))


def test_slow_link_keeps_everything_on_the_device(pair, session) -> None:
    device, server = pair
    _emulate(session, pair, slowdown=2.0)
    desc = zoo.mlp([784, 20, 10])
    inp = desc.inputs()[0].id
    auto = plan_for_agents(desc, [device.address, server.address], pins={"Input": "device"},
                           repeat=5, link_repeat=3, session=session)
    # every module profiled on both agents, output bytes as shape inference says
    for aid in (device.id, server.id):
        prof = auto.profiles[aid]
        assert set(prof) == set(desc.modules)
        assert all(p["forward_s"] > 0 for p in prof.values())
        assert prof[inp]["out_bytes"] == 784 * 4
    # the emulated 20 ms round trip is a floor for every measured path through the link
    assert auto.links.get(device.id, server.id).rtt >= RTT * 0.99
    assert auto.links.get("client", server.id).rtt >= RTT * 0.99
    assert auto.links.get("client", device.id).rtt < RTT
    # shipping the image over 1 Mbit/s costs far more than the whole MLP on the device
    assert set(auto.placement.values()) == {device.id}
    assert auto.plan.method == "dp" and auto.plan.exact
    on_server = auto.plan.alternatives[f"all on {server.id}"]
    assert on_server.placement[inp] == device.id  # the pin holds
    assert on_server.latency_s > auto.plan.predicted_s + RTT
    # a split placement deployed through the emulated link still computes the local result
    net = Network(desc, seed=1)
    x = np.random.default_rng(2).standard_normal((1, 28, 28)).astype(np.float32)
    split = {m: device.id if m == inp else server.id for m in desc.modules}
    dep = deploy(desc, net.get_weights(), split, [device.address, server.address],
                 session=session)
    try:
        t0 = time.perf_counter()
        y = dep.forward(x)
        elapsed = time.perf_counter() - t0
    finally:
        dep.undeploy()
    np.testing.assert_array_equal(y, net.forward(x))
    assert elapsed >= RTT * 0.99  # device -> server, then server -> client: two half trips
    _emulate(session, pair)  # back to full speed for the other tests


def test_module_times_and_profile_errors(pair, session) -> None:
    device, _ = pair
    conn = session.connect(device.address)
    desc = zoo.lenet5()
    live = profile_agents(session, [conn], desc, repeat=3, warmup=1)[device.id]
    assert set(live) == set(desc.modules) and all(p["forward_s"] > 0 for p in live.values())
    dep = deploy(desc, {}, dict.fromkeys(desc.modules, device.id), [device.address],
                 session=session)
    try:
        assert not any(np.any(v) for v in dep.get_weights().values())  # never written: zeros
        session.request(conn, P.Message("randomize", {"deployment": dep.id, "seed": 3}))
        weights = dep.get_weights()
        assert weights and all(np.any(v) for v in weights.values())
    finally:
        dep.undeploy()
    with pytest.raises(AgentError, match="randomize: no deployment"):
        session.request(conn, P.Message("randomize", {"deployment": dep.id}))
    with pytest.raises(AgentError, match="no timed deployment"):
        session.request(conn, P.Message("module_times", {"deployment": "nope"}))
    with pytest.raises(AgentError, match="input_shape"):
        session.request(conn, P.Message("profile", {"network": dumps_network(desc),
                                                    "input_shape": [0, 28]}))
    with pytest.raises(AgentError, match="slowdown"):
        session.request(conn, P.Message("emulate", {"slowdown": 0.5}))
    with pytest.raises(AgentError, match="link 'x'"):
        session.request(conn, P.Message("emulate", {"links": {"x": {"rtt": -1}}}))
    session.request(conn, P.Message("ping"))  # and the agent still serves


def test_slowdown_pads_to_a_steady_target() -> None:
    class Fake:
        cfg = {"n": 3}

        def forward(self, x):
            return x + 1

    fn = H.Slowdown(3.0, 0.002)(Fake().forward)
    x = np.zeros(4, np.float32)
    for _ in range(H.CALIBRATE + 2):
        t0 = time.perf_counter()
        np.testing.assert_array_equal(fn(x), x + 1)
        assert time.perf_counter() - t0 >= 0.002  # the fixed delay is a floor
    key = ("Fake", (("n", "3"),), (4,))
    assert isinstance(H._REFERENCE[key], float)  # calibrated, steady from now on
    plain = Fake().forward
    assert H.Slowdown()(plain) is plain


def test_deploy_placement_auto_cli(pair) -> None:
    device, server = pair
    net_dir = ROOT / "resources" / "examples" / "mnist-mlp"
    cmd = [sys.executable, "-m", "app", "deploy", str(net_dir), "--placement", "auto",
           "--agent", device.address, "--agent", server.address, "--pin", "Input=device",
           "--objective", "bytes", "--json"]
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert set(out["placement"].values()) == {device.id}  # least bytes: nothing leaves
    assert "objective bytes" in run.stderr and "all on server" in run.stderr
    undo = subprocess.run([sys.executable, "-m", "app", "undeploy", out["deployment"],
                           "--agent", device.address, "--agent", server.address],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert undo.returncode == 0, undo.stderr
    bad = subprocess.run(cmd[:-5] + ["--pin", "Input=phone"], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert bad.returncode == 1 and "phone" in bad.stderr and "Traceback" not in bad.stderr


def test_parse_pins() -> None:
    assert parse_pins(["Input=camera", " fc1 = server "]) == {"Input": "camera",
                                                              "fc1": "server"}
    with pytest.raises(DianneError, match="MODULE=AGENT"):
        parse_pins(["Input"])


@pytest.mark.parametrize(("extra", "named"), [
    (["--objective", "bytes"], "--objective applies"),
    (["--pin", "Input=device"], "--pin applies"),
    (["--placement", "plan.json", "--objective", "bytes", "--pin", "Input=device"],
     "--objective and --pin apply"),
])
def test_auto_options_without_placement_auto_are_a_usage_error(extra, named, capsys) -> None:
    """--objective and --pin mean something only to the planner: given without --placement
    auto they would be ignored, so the command stops with a usage error naming them."""
    from app.cli import main  # noqa: PLC0415

    command = ["eval", "mnist-mlp", "--dataset", "MNIST", *extra]
    if "--placement" in extra:
        command = ["deploy", "mnist-mlp", *extra]
    with pytest.raises(SystemExit) as stop:
        main(command)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert f"{command[0]}: {named} only with --placement auto" in err
