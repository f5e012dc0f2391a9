"""No pickle anywhere: not in files, not on the wire, in any Python file of the repository.

Complements the regex check of ``tests/engine/test_layering.py`` with a syntax-tree check of
every ``.py`` file (engine, agent, app, tools, tests, resources): imports of pickle and its
relatives, dynamic imports of them, ZeroMQ's ``send_pyobj``/``recv_pyobj``, pandas pickles,
``torch.load``, ``allow_pickle=True``, ``np.load`` without ``allow_pickle=False``, and process
pools (which pickle every argument). Data files must not be pickles or object arrays either.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.hardening.conftest import ROOT

PICKLERS = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve",
            "marshal", "copyreg", "multiprocessing", "concurrent.futures.process"}
PICKLING_CALLS = {"send_pyobj", "recv_pyobj", "read_pickle", "to_pickle", "ProcessPoolExecutor"}
FOLDERS = ("engine", "agent", "app", "tools", "tests", "resources")


def _root_name(node: ast.AST) -> str:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else ""


def pickle_uses(source: str, name: str = "<string>") -> list[str]:
    """Every construct of ``source`` that pickles or can unpickle, as ``name:line: what``."""
    hits: list[str] = []
    for node in ast.walk(ast.parse(source, name)):
        what = None
        if isinstance(node, ast.Import):
            bad = [a.name for a in node.names if a.name in PICKLERS
                   or a.name.split(".")[0] in PICKLERS]
            what = f"import {', '.join(bad)}" if bad else None
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            names = {a.name for a in node.names}
            if mod in PICKLERS or mod.split(".")[0] in PICKLERS:
                what = f"from {mod} import"
            elif names & PICKLERS or names & PICKLING_CALLS:
                what = f"from {mod} import {sorted(names & (PICKLERS | PICKLING_CALLS))}"
        elif isinstance(node, ast.Call):
            func = node.func
            attr = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            kwargs = {k.arg: k.value for k in node.keywords}
            if attr in PICKLING_CALLS:
                what = f"{attr}()"
            elif attr in ("import_module", "__import__") and node.args and isinstance(
                    node.args[0], ast.Constant) and str(node.args[0].value).split(".")[0] \
                    in PICKLERS:
                what = f"{attr}({node.args[0].value!r})"
            elif attr == "load" and _root_name(func) == "torch":
                what = "torch.load()"
            elif attr == "load" and _root_name(func) in ("np", "numpy") and not (
                    isinstance(kwargs.get("allow_pickle"), ast.Constant)
                    and kwargs["allow_pickle"].value is False):
                what = "np.load() without allow_pickle=False"
            elif isinstance(kwargs.get("allow_pickle"), ast.Constant) and \
                    kwargs["allow_pickle"].value is True:
                what = "allow_pickle=True"
        if what:
            hits.append(f"{name}:{node.lineno}: {what}")
    return hits


def python_files() -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py")
                  if "__pycache__" not in p.parts)


def test_the_checker_finds_every_form() -> None:
    bad = "\n".join([
        "import pickle", "import dill as d", "from cloudpickle import dumps",
        "from multiprocessing import Pool", "import concurrent.futures.process",
        "from concurrent.futures import ProcessPoolExecutor", "import importlib",
        "m = importlib.import_module('pickle')", "m = __import__('shelve')",
        "sock.send_pyobj(x)", "y = sock.recv_pyobj()", "df.to_pickle('f')",
        "torch.load('w.pt')", "np.load('a.npy')", "np.load('a.npy', allow_pickle=True)",
        "np.save('a', x, allow_pickle=True)",
    ])
    hits = pickle_uses(bad)
    assert len(hits) == 15, "\n".join(hits)  # every line but "import importlib"
    fine = "import json\nnp.load(f, allow_pickle=False)\nsock.send_multipart(frames)\n"
    assert pickle_uses(fine) == []


def test_no_python_file_pickles() -> None:
    files = python_files()
    assert len(files) > 50 and any(f.parts[-2] == "agent" for f in files)
    hits = [h for f in files
            for h in pickle_uses(f.read_text(encoding="utf-8"), str(f.relative_to(ROOT)))]
    assert hits == [], "\n".join(hits)


def test_no_data_file_is_a_pickle() -> None:
    """Pickle streams start with PROTO (0x80) and a protocol number 2..5; .npy object arrays
    can only be read by unpickling."""
    bad = []
    for folder in ("resources", "tests"):
        for path in (ROOT / folder).rglob("*"):
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            if path.suffix in (".pkl", ".pickle", ".joblib", ".pt", ".pth"):
                bad.append(f"{path}: a pickle by its name")
                continue
            with open(path, "rb") as handle:
                head = handle.read(128)
            if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
                bad.append(f"{path}: starts like a pickle stream")
            if head.startswith(b"\x93NUMPY") and b"'descr': '|O'" in head:
                bad.append(f"{path}: a .npy of Python objects")
    assert bad == []
