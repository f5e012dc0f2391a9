"""``dianne agents/deploy/undeploy`` and ``dianne eval/run --placement FILE|auto / --on`` with real
agents."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agent.client import AgentClient
from app.cli import main
from tests.conftest import ROOT

MLP = str(ROOT / "resources" / "examples" / "mnist-mlp")
LENET = str(ROOT / "resources" / "examples" / "lenet")


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def agent_args(agents) -> list[str]:
    return [x for a in agents for x in ("--agent", a.address)]


def test_agents_json_lists_explicit_agents(trio, capsys, monkeypatch) -> None:
    code, out, _ = run_cli(capsys, "agents", "--json", *agent_args(trio[:2]))
    assert code == 0
    rows = json.loads(out)
    assert [r["name"] for r in rows] == ["alpha", "beta"]
    assert {"id", "name", "address", "backends"} <= set(rows[0])
    assert rows[1]["id"] == trio[1].id and rows[1]["address"] == trio[1].address
    monkeypatch.setenv("DIANNE_AGENTS", f"{trio[2].address}")
    code, out, _ = run_cli(capsys, "agents")
    assert code == 0 and out.startswith("gamma ") and trio[2].id in out


def test_eval_with_placement_equals_local(trio, capsys, tmp_path) -> None:
    placement = tmp_path / "placement.json"
    ids = [f"d1a00e02-0000-4000-8000-{i:012x}" for i in range(14)]
    placement.write_text(json.dumps({m: trio[i * 3 // 14].name for i, m in enumerate(ids)}))
    common = ["eval", LENET, "--dataset", "mnist", "--range", "0,150", "--json",
              "--no-progress"]
    code, out, _ = run_cli(capsys, *common)
    assert code == 0
    local = json.loads(out)
    code, out, err = run_cli(capsys, *common, "--placement", str(placement),
                             *agent_args(trio))
    assert code == 0, err
    remote = json.loads(out)
    for key in ("forward_ms", "total_ms"):
        local.pop(key), remote.pop(key)
    assert remote == local and local["samples"] == 150
    for a in trio:  # undeployed when done
        with AgentClient(a.address) as c:
            assert c.hello()["deployments"] == []


def assert_same_json(got, want, where="") -> None:
    """Equal JSON, numbers to float32 rounding (rtol 1e-5, atol 1e-6)."""
    if isinstance(want, float):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=where)
    elif isinstance(want, dict):
        assert got.keys() == want.keys(), where
        for key in want:
            assert_same_json(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same_json(g, w, f"{where}[{i}]")
    else:
        assert got == want, where


def run_local_and_remote(capsys, tmp_path, seed: int, *remote: str) -> tuple[dict, dict]:
    """``dianne run MLP --json`` on one random digit locally and with the ``remote`` options;
    both JSON outputs without their forward times."""
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(seed).random((1, 28, 28), dtype=np.float32))
    code, out, _ = run_cli(capsys, "run", MLP, "--input", str(x), "--json")
    local = json.loads(out)
    code, out, err = run_cli(capsys, "run", MLP, "--input", str(x), "--json", *remote)
    assert code == 0, err
    remote_out = json.loads(out)
    local.pop("forward_ms"), remote_out.pop("forward_ms")
    return local, remote_out


def test_run_on_one_agent_equals_local(trio, capsys, tmp_path) -> None:
    local, remote = run_local_and_remote(capsys, tmp_path, 5, "--on", "beta", *agent_args(trio))
    # locally the network runs frozen (eval: folded weights), the agent module by module
    assert_same_json(remote, local)
    x = tmp_path / "x.npy"
    code, out, err = run_cli(capsys, "run", MLP, "--input", str(x), "--on", "nobody",
                             *agent_args(trio))
    assert code == 1 and "'nobody' is not a known agent" in err and "alpha" in err


def test_run_and_eval_with_placement_auto_equal_local(trio, capsys, tmp_path) -> None:
    """``--placement auto`` plans as ``dianne deploy`` does, says on stderr where the modules
    went, runs there and undeploys; stdout is the local run's JSON (to float32 rounding)."""
    pair, last = trio[:2], "d1a00e01-0000-4000-8000-000000000003"
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(7).random((1, 28, 28), dtype=np.float32))
    code, out, _ = run_cli(capsys, "run", MLP, "--input", str(x), "--json")
    local = json.loads(out)
    # pinned apart, so that the forward really crosses from one agent to the other
    code, out, err = run_cli(capsys, "run", MLP, "--input", str(x), "--json", "--placement",
                             "auto", "--pin", "Input=alpha", "--pin", f"{last}=beta",
                             *agent_args(pair))
    assert code == 0, err
    remote = json.loads(out)  # nothing but the JSON object on stdout
    local.pop("forward_ms"), remote.pop("forward_ms")
    assert_same_json(remote, local)
    assert "objective latency" in err and "placed mnist-mlp on agents alpha, beta:" in err
    where = {line.split(" (")[0].strip(): line for line in err.splitlines()
             if line.startswith("  alpha (") or line.startswith("  beta (")}
    assert "Input (" in where["alpha"] and pair[0].address in where["alpha"]
    assert f"Linear ({last})" in where["beta"] and pair[1].address in where["beta"]
    common = ["eval", MLP, "--dataset", "mnist", "--range", "0,40", "--json", "--no-progress"]
    code, out, _ = run_cli(capsys, *common)
    local = json.loads(out)
    code, out, err = run_cli(capsys, *common, "--placement", "auto", "--objective", "bytes",
                             *agent_args(pair))
    assert code == 0, err
    remote = json.loads(out)
    for key in ("forward_ms", "total_ms"):
        local.pop(key), remote.pop(key)
    assert remote == local and local["samples"] == 40
    assert "objective bytes" in err and "placed mnist-mlp on agent" in err
    for a in pair:  # undeployed when done
        with AgentClient(a.address) as c:
            assert c.hello()["deployments"] == []
    code, out, err = run_cli(capsys, "run", MLP, "--input", str(x), "--placement", "auto",
                             "--pin", "Input=nobody", *agent_args(pair))
    assert code == 1 and out == "" and err.count("\n") == 1 and "'nobody'" in err


def test_deploy_stays_until_undeploy(trio, capsys, tmp_path) -> None:
    placement = tmp_path / "p.json"
    placement.write_text(json.dumps({"d1a00e01-0000-4000-8000-000000000000": "alpha",
                                     "d1a00e01-0000-4000-8000-000000000003": "gamma"}))
    code, out, err = run_cli(capsys, "deploy", MLP, "--placement", str(placement), "--json",
                             *agent_args(trio))
    assert code == 0, err
    result = json.loads(out)
    assert result["name"] == "mnist-mlp"
    by_name = {a.id: a.name for a in trio}
    # unplaced modules follow their predecessor
    assert [by_name[result["placement"][f"d1a00e01-0000-4000-8000-00000000000{i}"]]
            for i in range(6)] == ["alpha", "alpha", "alpha", "gamma", "gamma", "gamma"]
    with AgentClient(trio[2].address) as c:
        assert [d["id"] for d in c.hello()["deployments"]] == [result["deployment"]]
    code, out, _ = run_cli(capsys, "undeploy", MLP, *agent_args(trio))
    assert code == 0 and "from alpha" in out and "from gamma" in out
    code, _, err = run_cli(capsys, "undeploy", MLP, *agent_args(trio))
    assert code == 1 and "not deployed" in err


def test_bad_placement_file_is_one_line(trio, capsys, tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('["alpha"]')
    code, _, err = run_cli(capsys, "deploy", MLP, "--placement", str(bad), *agent_args(trio))
    assert code == 1 and err.count("\n") == 1 and "placement file" in err
    bad.write_text('{"no-such-module": "alpha"}')
    code, _, err = run_cli(capsys, "eval", MLP, "--dataset", "mnist", "--placement", str(bad),
                           *agent_args(trio))
    assert code == 1 and "no-such-module" in err


@pytest.mark.parametrize("argv", [["--agent", "tcp://127.0.0.1:9"], ["--interface", "127.0.0.1"]])
def test_agent_options_need_placement_or_on(capsys, argv) -> None:
    code, _, err = run_cli(capsys, "eval", MLP, "--dataset", "mnist", *argv)
    assert code == 1 and "--placement FILE or --on AGENT" in err


def test_bench_hop_json_rows(capsys) -> None:
    code, out, _ = run_cli(capsys, "bench", "hop", "--sizes", "1KiB,64", "--iterations", "3",
                           "--json")
    assert code == 0
    rows = json.loads(out)
    assert [r["bytes"] for r in rows] == [1024, 64]
    for r in rows:
        assert {"bytes", "hop_us_median", "hop_us_p99", "raw_us_median", "ratio"} <= set(r)
        assert r["raw_us_median"] > 0 and r["ratio"] == r["hop_us_median"] / r["raw_us_median"]


def test_help_imports_no_agent_client_nor_zmq() -> None:
    """``dianne --help`` builds every subcommand's parser; none may pull in the agent stack."""
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    code = ("import sys\nfrom app.cli import main\ntry:\n    main(['--help'])\n"
            "except SystemExit:\n    pass\n"
            "print(sorted(m for m in ('zmq', 'agent.client', 'agent.session') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout[-300:]
