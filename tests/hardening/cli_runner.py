"""Run many ``dianne`` command lines fast: one fresh interpreter imports the CLI once, then forks
one child process per command line (a real process: its own exit status, stdout, stderr).

Each child runs ``app.cli.main(argv)`` exactly as ``python -m app`` does (an uncaught exception
prints a traceback and exits 1, like the interpreter), under a hard address-space limit
(``RLIMIT_AS``: an allocation beyond it fails instead of swapping the machine) and an alarm
(a hang is killed). The parent reports, per command line, the exit status, both outputs, the
child's peak resident memory (``wait4``) and whether it was killed.

Usage (tests do this): ``python cli_runner.py < jobs.json > results.json`` where jobs is
``{"jobs": [{"argv": [...], "cwd": "..."}], "timeout_s": 10, "extra_mib": 1024}``.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import tempfile
import time


def _vm_size() -> int:
    """This process's virtual size in bytes (the children start from it)."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _child(argv: list[str], cwd: str, out: int, err: int, limit: int, timeout: int) -> None:
    os.dup2(out, 1)
    os.dup2(err, 2)
    os.chdir(cwd)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.alarm(timeout)
    code = 1
    try:
        from app.cli import main

        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # what the interpreter would print for an uncaught exception
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def run_jobs(jobs: list[dict], timeout_s: int, extra_mib: int) -> list[dict]:
    import app.cli  # import once, before forking
    import app.commands  # noqa: F401
    import engine.shapes  # noqa: F401

    app.cli.build_parser()  # imports every app/cmds module too

    limit = _vm_size() + extra_mib * 1024 * 1024
    results = []
    for job in jobs:
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            start = time.monotonic()
            pid = os.fork()
            if pid == 0:
                _child(job["argv"], job.get("cwd", "."), out.fileno(), err.fileno(), limit,
                       timeout_s)
            _, status, usage = os.wait4(pid, 0)
            elapsed = time.monotonic() - start
            out.seek(0)
            err.seek(0)
            results.append({
                "argv": job["argv"],
                "rc": os.waitstatus_to_exitcode(status),
                "killed_by": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                "stdout": out.read().decode("utf-8", "replace"),
                "stderr": err.read().decode("utf-8", "replace"),
                "maxrss_mib": usage.ru_maxrss / 1024,
                "seconds": elapsed,
            })
    return results


if __name__ == "__main__":
    request = json.load(sys.stdin)
    found = run_jobs(request["jobs"], int(request.get("timeout_s", 10)),
                     int(request.get("extra_mib", 1024)))
    json.dump({"results": found, "parent_rss_mib":
               resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}, sys.stdout)
