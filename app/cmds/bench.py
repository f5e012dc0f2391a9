"""``dianne bench NAME``: the benchmarks in ``app/bench/``, discovered by module."""

from __future__ import annotations

import argparse
import importlib
import pkgutil


def _bench_modules() -> list:
    from app import bench  # noqa: PLC0415

    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__)
                   if not m.ispkg and not m.name.startswith("_"))  # _helpers: no benchmark
    modules = [importlib.import_module(f"app.bench.{name}") for name in names]
    return [m for m in modules if hasattr(m, "NAME")]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="speed and memory benchmarks (ratios against a reference "
                                     "measured in the same run)")
    benches = p.add_subparsers(dest="bench", metavar="BENCH", required=True)
    for module in _bench_modules():
        b = benches.add_parser(module.NAME, help=module.HELP)
        module.add_arguments(b)
        b.set_defaults(handler=module.run)
