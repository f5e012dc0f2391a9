"""The agent never runs a command or code that a message could name: no process spawning, no
``eval``/``exec``/``compile``, no module imported by a computed name, in any file of ``agent/``
(the one exception: the handler package imports its own modules, listed by ``pkgutil``).
Action commands run only in the app, from the user's saved rules."""

from __future__ import annotations

import ast

from tests.hardening.conftest import ROOT

FORBIDDEN_MODULES = {"subprocess", "pty", "runpy", "code", "codeop", "ctypes"}
FORBIDDEN_OS = {"system", "popen", "execv", "execve", "execl", "execle", "execlp", "execvp",
                "execvpe", "spawnv", "spawnve", "spawnl", "spawnle", "posix_spawn",
                "posix_spawnp", "startfile", "fork", "forkpty"}
FORBIDDEN_BUILTINS = {"eval", "exec", "compile", "__import__"}
# agent/handlers/__init__.py: importlib.import_module(f"{__name__}.{info.name}") over pkgutil.
DYNAMIC_IMPORT_ALLOWED = {"agent/handlers/__init__.py"}


def exec_uses(source: str, name: str) -> list[str]:
    hits = []
    for node in ast.walk(ast.parse(source, name)):
        what = None
        if isinstance(node, ast.Import):
            bad = [a.name for a in node.names if a.name.split(".")[0] in FORBIDDEN_MODULES]
            what = f"import {bad}" if bad else None
        elif isinstance(node, ast.ImportFrom):
            mod = (node.module or "").split(".")[0]
            names = {a.name for a in node.names}
            if mod in FORBIDDEN_MODULES or (mod == "os" and names & FORBIDDEN_OS):
                what = f"from {node.module} import {sorted(names)}"
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_BUILTINS:
                what = f"{func.id}()"
            elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                if func.value.id == "os" and func.attr in FORBIDDEN_OS:
                    what = f"os.{func.attr}()"
                elif func.attr == "import_module" and name not in DYNAMIC_IMPORT_ALLOWED and \
                        not (node.args and isinstance(node.args[0], ast.Constant)):
                    what = "import_module(<computed name>)"
        if what:
            hits.append(f"{name}:{node.lineno}: {what}")
    return hits


def test_the_checker_finds_every_form() -> None:
    bad = ("import subprocess\nfrom os import system\nos.popen(c)\neval(s)\nexec(s)\n"
           "importlib.import_module(msg['module'])\nos.execv(p, a)\n")
    assert len(exec_uses(bad, "agent/x.py")) == 7
    assert exec_uses("importlib.import_module('json')\nos.getpid()\n", "agent/x.py") == []


def test_agent_code_runs_nothing_a_message_names() -> None:
    files = sorted((ROOT / "agent").rglob("*.py"))
    assert files
    hits = [h for f in files for h in exec_uses(f.read_text(encoding="utf-8"),
                                                 f.relative_to(ROOT).as_posix())]
    assert hits == [], "\n".join(hits)
