"""Layering: the engine imports nothing above it (no Qt, ZeroMQ, zeroconf, eager cupy), and
no pickle appears in the code base."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ["PySide6", "NodeGraphQt", "Qt", "pyqtgraph", "zmq", "zeroconf", "cupy", "app",
             "agent"]


def test_engine_imports_nothing_above_it():
    code = (
        "import sys, json, importlib, pkgutil, engine\n"
        "for m in pkgutil.walk_packages(engine.__path__, 'engine.'):\n"
        "    importlib.import_module(m.name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True, env={"DIANNE_BACKEND": "numpy", "PATH": ""})
    loaded = set(json.loads(out.stdout))
    bad = sorted(m for m in loaded if m.split(".")[0] in FORBIDDEN)
    assert bad == [], f"engine loaded {bad}"


def test_no_pickle_anywhere():
    pattern = re.compile(r"\bimport\s+pickle\b|\bfrom\s+pickle\b|allow_pickle\s*=\s*True"
                         r"|\bcloudpickle\b|\bdill\b")
    hits = []
    for folder in ("engine", "agent", "app"):
        for file in (ROOT / folder).rglob("*.py"):
            for n, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
                if pattern.search(line):
                    hits.append(f"{file.relative_to(ROOT)}:{n}: {line.strip()}")
    assert hits == []
