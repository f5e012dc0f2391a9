"""Every broken file of the corpus through the real CLI: ``dianne info``, ``dianne eval`` and
``dianne run`` each print ONE stderr line naming the file and the module at fault and exit
non-zero — no traceback, no hang, no memory blow-up.

CI runs the whole matrix in forked CLI processes (``cli_runner.py``: one interpreter imports the
CLI once, one child process per command line, under an address-space limit and an alarm) plus a
few command lines in fresh ``python -m app`` interpreters; ``-m slow`` runs the whole matrix in
fresh interpreters.
"""

from __future__ import annotations

import filecmp
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.hardening.conftest import CORPUS, HERE, ROOT
from tests.hardening.corpus_cases import CASES, COMMANDS, write_corpus

TIMEOUT_S = 20
EXTRA_MIB = 512  # address space a child may add to what the CLI needs after its imports
RSS_SLACK_MIB = 48  # peak resident memory a case may add over the leanest one


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("harden_cli")
    np.save(work / "x.npy", np.linspace(0, 1, 784, dtype=np.float32).reshape(1, 28, 28))
    (work / "repo").mkdir()
    return work


def env_for(work: Path) -> dict[str, str]:
    return {"DIANNE_BACKEND": "numpy", "DIANNE_REPOSITORY": str(work / "repo"),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work),
            "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}


def argv_for(case_name: str, command: str, work: Path) -> list[str]:
    c = next(c for c in CASES if c.name == case_name)
    model = str(CORPUS / c.name / c.model) if c.model else str(CORPUS / c.name)
    argv = [command, model]
    if command == "eval":
        argv += ["--dataset", "mnist", "--range", "0,5", "--no-progress"]
    elif command == "run":
        argv += ["--input", str(work / "x.npy")]
    return argv


def check(case_name: str, command: str, rc: int, stderr: str) -> None:
    """The contract for one command line on one case."""
    c = next(c for c in CASES if c.name == case_name)
    what = f"{case_name} / dianne {command}"
    assert "Traceback" not in stderr, f"{what}: traceback\n{stderr}"
    lines = stderr.strip().splitlines()
    needles = c.expect.get(command)
    if needles is None:  # this damage is not this command's business: it must just work
        assert rc == 0 and lines == [], f"{what}: expected success, rc={rc}\n{stderr}"
        return
    assert rc == 1, f"{what}: exit status {rc}\n{stderr}"
    assert len(lines) == 1, f"{what}: {len(lines)} stderr lines\n{stderr}"
    assert lines[0].startswith(f"dianne {command}: error: "), lines[0]
    missing = [n for n in needles if n.lower() not in lines[0].lower()]
    assert not missing, f"{what}: the error line does not name {missing}:\n{lines[0]}"


def test_corpus_is_what_the_generator_writes(tmp_path: Path) -> None:
    cases = write_corpus(tmp_path)
    assert len(cases) >= 30
    assert len({c.name for c in cases}) == len(cases)
    for c in cases:
        cmp = filecmp.dircmp(tmp_path / c.name, CORPUS / c.name)
        assert not (cmp.left_only or cmp.right_only or cmp.diff_files), c.name
    manifest = json.loads((CORPUS / "MANIFEST.json").read_text())
    assert sorted(manifest) == sorted(c.name for c in cases)


def test_every_case_every_command_in_cli_processes(workdir: Path) -> None:
    jobs = [{"argv": argv_for(c.name, cmd, workdir), "cwd": str(workdir)}
            for c in CASES for cmd in COMMANDS]
    request = {"jobs": jobs, "timeout_s": TIMEOUT_S, "extra_mib": EXTRA_MIB}
    done = subprocess.run([sys.executable, str(HERE / "cli_runner.py")], cwd=ROOT,
                          input=json.dumps(request), capture_output=True, text=True,
                          env=env_for(workdir), timeout=len(jobs) * TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)["results"]
    assert len(results) == len(jobs) == len(CASES) * len(COMMANDS)
    leanest = min(r["maxrss_mib"] for r in results)
    failures = []
    for (c, cmd), r in zip(((c, cmd) for c in CASES for cmd in COMMANDS), results, strict=True):
        try:
            assert r["killed_by"] is None, f"{c.name} / {cmd}: killed by signal {r['killed_by']}"
            check(c.name, cmd, r["rc"], r["stderr"])
            assert r["maxrss_mib"] <= leanest + RSS_SLACK_MIB, (
                f"{c.name} / {cmd}: peak RSS {r['maxrss_mib']:.0f} MiB "
                f"(leanest case {leanest:.0f} MiB)")
        except AssertionError as exc:
            failures.append(str(exc))
    assert failures == [], "\n\n".join(failures)


def fresh_dianne(argv: list[str], work: Path) -> subprocess.CompletedProcess:
    """``python -m app ARGV`` in a fresh interpreter, the way a user runs it."""
    return subprocess.run([sys.executable, "-m", "app", *argv], cwd=work, capture_output=True,
                          text=True, env=env_for(work), timeout=TIMEOUT_S)


# A few cases of each family also in fresh interpreters (the forked runner is not trusted alone).
FRESH = ["truncated_json", "duplicate_uuid", "huge_linear", "weights_huge_header",
         "zip_bomb_weights", "layout_references_nothing"]


@pytest.mark.parametrize("case_name", FRESH)
def test_fresh_interpreter(case_name: str, workdir: Path) -> None:
    for cmd in COMMANDS:
        res = fresh_dianne(argv_for(case_name, cmd, workdir), workdir)
        check(case_name, cmd, res.returncode, res.stderr)


@pytest.mark.slow
@pytest.mark.parametrize("case_name", [c.name for c in CASES])
def test_fresh_interpreter_full(case_name: str, workdir: Path) -> None:
    for cmd in COMMANDS:
        res = fresh_dianne(argv_for(case_name, cmd, workdir), workdir)
        check(case_name, cmd, res.returncode, res.stderr)
