"""``dianne bench forward``: single-sample forward time of our engine against ONNX Runtime and
PyTorch, on the same network, weights and input, in the same run.

For each network of ``--nets`` (``mlp20`` = MLP 784-20-10, ``mlp1024`` = 784-1024-1024-10,
``lenet`` = LeNet-5, ``overfeat`` = the fast OverFeat; see :mod:`engine.zoo`; random weights,
seed 0) the three engines run interleaved in rounds (so a load change on a shared machine hits
all of them alike); each call is timed on its own and the median and p99 are printed, with the
ratios ours/ORT and ours/torch and the largest absolute difference between the outputs. For
OverFeat the bench also measures, in a fresh process that holds only our network, the peak
resident memory of a forward pass (against the weights' size), and the memory roofline: the
time to stream every weight once. Separately, the Python-level cost of one module call: the
marginal time of one more module in a chain of tiny ReLUs, minus numpy's own call floor.

``--json`` prints one object: ``rows`` (``net``, ``ours_us``, ``ort_us``, ``torch_us`` -- null
when that engine is absent --, ``ratio_ort``, ``ratio_torch``, ``max_abs_diff``, the paired
``ratio_ort_rounds`` and ``ratio_torch_rounds`` (median of the rounds' ratios), p99s, module
and call counts; OverFeat adds ``peak_mb``, ``weights_mb``, ``peak_ratio``, ``roofline_ms``,
``ratio_roofline``), ``overhead`` and ``environment``. Not a pass/fail test: ratios only.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import timeit
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy is imported where it is used: dianne --help stays fast
    import numpy as np


NAME = "forward"
HELP = "single-sample forward time: ours vs ONNX Runtime and PyTorch (same network, same run)"
NETS = ("mlp20", "mlp1024", "lenet", "overfeat")
ROUNDS = 20  # interleaving: every engine runs calls/ROUNDS calls in turn, ROUNDS times
# Pause between two engines' blocks: the thread pools of all three keep spinning on the other
# core for a while after a call (OpenBLAS up to ~0.1 s), which slowed whichever engine came next.
SETTLE_S = 0.12


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nets", default=",".join(NETS), metavar="LIST",
                   help=f"comma-separated networks from {', '.join(NETS)} (default: all)")
    p.add_argument("--repeat", type=int, metavar="N",
                   help="timed calls per engine and network (default 2000; OverFeat 20)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _timed(engines: dict[str, Any], calls: int) -> dict[str, np.ndarray]:
    """Per-call seconds of every engine, interleaved in rounds."""
    import numpy as np  # noqa: PLC0415
    times: dict[str, list[float]] = {k: [] for k in engines}
    rounds = min(calls, ROUNDS)
    per_round = max(1, calls // rounds)
    clock = time.perf_counter
    for _ in range(rounds):
        for name, fn in engines.items():
            if len(engines) > 1:
                time.sleep(SETTLE_S)
            out = times[name]
            for _ in range(per_round):
                t0 = clock()
                fn()
                out.append(clock() - t0)
    return {k: np.asarray(v) for k, v in times.items()}


def _paired(ours: np.ndarray, ref: np.ndarray | None) -> float | None:
    """The median over rounds of each round's ours/ref ratio of medians: a machine that changes
    speed between rounds changes both engines of a round alike, so this ratio moves less than
    the ratio of the whole run's medians (which may mix a quick state of one engine with a slow
    state of the other)."""
    import numpy as np  # noqa: PLC0415
    if ref is None:
        return None
    rounds = min(len(ours), len(ref), ROUNDS)
    a = np.median(ours[: len(ours) // rounds * rounds].reshape(rounds, -1), axis=1)
    b = np.median(ref[: len(ref) // rounds * rounds].reshape(rounds, -1), axis=1)
    return float(np.median(a / b))


def _stats(t: np.ndarray | None) -> tuple[float | None, float | None]:
    import numpy as np  # noqa: PLC0415
    if t is None:
        return None, None
    return float(np.median(t) * 1e6), float(np.percentile(t, 99) * 1e6)


def bench_net(key: str, calls: int | None, backend: Any) -> dict[str, Any]:
    import numpy as np  # noqa: PLC0415

    from app.bench._forward_refs import ort_engine, torch_engine  # noqa: PLC0415
    from engine import zoo  # noqa: PLC0415
    from engine.graph import Network  # noqa: PLC0415

    desc = zoo.NETWORKS[key]()
    net = Network(desc, backend=backend, seed=0)
    net.eval()
    shape = tuple(int(v) for v in desc.inputs()[0].properties["dims"].split(","))
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    xd = net.backend.asarray(x)
    to_host = net.backend.to_host
    ours = (lambda: to_host(net.forward(xd))) if net.backend.name != "numpy" else (
        lambda: net.forward(xd))
    engines: dict[str, Any] = {"ours": ours}
    notes: dict[str, str] = {}
    refs = {"ort": ort_engine(net, shape), "torch": torch_engine(net)}
    want = to_host(net.forward(xd))
    diffs = {}
    for name, (call, note) in refs.items():
        notes[name] = note
        if call is not None:
            engines[name] = (lambda c=call: c(x))
            diffs[name] = float(np.abs(call(x) - want).max())
    for fn in engines.values():  # warm-up: caches, buffers, thread pools
        for _ in range(3):
            fn()
    n = calls or (20 if key == "overfeat" else 2000)
    times = _timed(engines, n)
    row: dict[str, Any] = {"net": key}
    for name in ("ours", "ort", "torch"):
        row[f"{name}_us"], row[f"{name}_p99_us"] = _stats(times.get(name))
    for name in ("ort", "torch"):
        ref = row[f"{name}_us"]
        row[f"ratio_{name}"] = row["ours_us"] / ref if ref else None
        row[f"ratio_{name}_rounds"] = _paired(times["ours"], times.get(name))
    row["max_abs_diff"] = diffs.get("ort", diffs.get("torch"))
    row["max_abs_diff_torch"] = diffs.get("torch")
    plan = net._plan(tuple(net.outputs))
    row["modules"] = len(plan)
    row["calls"] = len(net._programs[tuple(net.outputs)].ops)
    row["params"] = net.parameter_count()
    row["notes"] = notes
    if key == "overfeat":
        row.update(_roofline(net, row["ours_us"]))
    return row


def _roofline(net: Any, ours_us: float) -> dict[str, Any]:
    """The memory roofline: the time to stream every weight from memory once, measured as
    matrix-vector products over all parameters (BLAS on one thread and on all: the better),
    best of 3 passes."""
    from engine import blas  # noqa: PLC0415

    xp = net.xp
    mats = [p.reshape(p.shape[0], -1) for m in net.modules.values() for p in m.params.values()
            if p.ndim > 1]
    vecs = [xp.ones(a.shape[1], dtype=a.dtype) for a in mats]
    outs = [xp.empty(a.shape[0], dtype=a.dtype) for a in mats]
    best = float("inf")
    for threads in sorted({1, blas.CPUS}):
        blas.use(threads)
        for _ in range(3):
            t0 = time.perf_counter()
            for a, v, o in zip(mats, vecs, outs, strict=True):
                xp.dot(a, v, out=o)
            best = min(best, time.perf_counter() - t0)
    nbytes = sum(int(a.nbytes) for a in mats)
    return {"roofline_ms": best * 1e3, "ratio_roofline": ours_us / (best * 1e6),
            "bandwidth_gb_s": nbytes / best / 1e9}


_CHILD = """
import json, numpy as np
from engine import zoo
from engine.graph import Network
def status(key):
    for line in open('/proc/self/status'):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
net = Network(zoo.overfeat_fast(), seed=0).eval()
x = np.random.default_rng(1).standard_normal((3, 231, 231)).astype(np.float32)
before = status('VmRSS:')
with open('/proc/self/clear_refs', 'w') as f:
    f.write('5')
for _ in range(3):
    net.forward(x)
print(json.dumps({'weights': net.parameter_count() * 4, 'before': before,
                  'peak': status('VmHWM:')}))
"""


def overfeat_memory() -> dict[str, Any]:
    """Peak RSS of OverFeat forwards in a fresh process holding only our network (Linux)."""
    try:
        out = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True,
                             timeout=600, check=True).stdout
        got = json.loads(out.strip().splitlines()[-1])
    except (subprocess.SubprocessError, OSError, ValueError, IndexError) as exc:
        return {"peak_mb": None, "memory_note": f"not measured: {exc}"}
    mb = 1e6
    return {"peak_mb": got["peak"] / mb, "weights_mb": got["weights"] / mb,
            "rss_before_forward_mb": got["before"] / mb,
            "peak_ratio": got["peak"] / got["weights"]}


def module_overhead(backend: Any) -> dict[str, float]:
    """Marginal cost of one module call (a 1-value ReLU) in a chain, and numpy's call floor
    (the ``maximum`` that ReLU makes); the difference is the Python-level cost per module."""
    import numpy as np  # noqa: PLC0415

    from engine.builder import NetworkBuilder  # noqa: PLC0415
    from engine.graph import Network  # noqa: PLC0415

    def chain(k: int) -> Any:
        b = NetworkBuilder(f"relu-chain-{k}")
        ids = [b.add("Input", dims="1")] + [b.add("ReLU") for _ in range(k)] + [b.add("Output")]
        b.chain(*ids)
        return Network(b.build(), backend=backend)

    short, long = chain(8), chain(40)
    x = np.ones(1, dtype=np.float32)
    a, z, b = np.ones(1, np.float32), np.zeros(1, np.float32), np.empty(1, np.float32)

    def best(fn: Any, n: int = 5000) -> float:  # the same statistic for all three
        fn()
        return min(timeit.repeat(fn, number=n, repeat=7)) / n * 1e6

    per_call = (best(lambda: long.forward(x)) - best(lambda: short.forward(x))) / 32
    floor = best(lambda: np.maximum(a, z, out=b), 20000)
    return {"per_module_us": per_call, "numpy_call_floor_us": floor,
            "python_us": per_call - floor}


def environment() -> dict[str, Any]:
    import os  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    from engine import blas  # noqa: PLC0415

    return {"cpus": blas.CPUS, "blas": blas.info(), "numpy": np.__version__,
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def run(args: argparse.Namespace) -> int:
    from app.cli import print_json  # noqa: PLC0415
    from engine.errors import DianneError  # noqa: PLC0415

    keys = [k.strip() for k in args.nets.split(",") if k.strip()]
    bad = [k for k in keys if k not in NETS]
    if bad or not keys:
        raise DianneError(f"--nets takes names from {', '.join(NETS)}. Received: {args.nets}")
    if args.repeat is not None and args.repeat < 1:
        raise DianneError(f"--repeat must be at least 1. Received: {args.repeat}")
    backend = getattr(args, "backend", None)
    rows = []
    for key in keys:
        row = bench_net(key, args.repeat, backend)
        if key == "overfeat":
            row.update(overfeat_memory())
        rows.append(row)
        if not args.json:
            print(_line(row), flush=True)
    result = {"rows": rows, "overhead": module_overhead(backend), "environment": environment()}
    if args.json:
        print_json(result)
    else:
        _print_tail(result)
    return 0


def _fmt(v: float | None, spec: str = "9.1f") -> str:
    return format(v, spec) if v is not None else "     n/a"


def _line(r: dict[str, Any]) -> str:
    text = (f"{r['net']:9s} ours {_fmt(r['ours_us'])} us (p99 {_fmt(r['ours_p99_us'], '.1f')})"
            f"  ORT {_fmt(r['ort_us'])}  torch {_fmt(r['torch_us'])}"
            f"  ours/ORT {_fmt(r['ratio_ort'], '5.2f')}"
            f" (rounds {_fmt(r.get('ratio_ort_rounds'), '.2f')})"
            f"  ours/torch {_fmt(r['ratio_torch'], '5.2f')}"
            f"  max|diff| {_fmt(r['max_abs_diff'], '.1e')}")
    if r.get("roofline_ms") is not None:
        text += (f"\n          roofline {r['roofline_ms']:.1f} ms ({r['bandwidth_gb_s']:.1f} GB/s)"
                 f", ours/roofline {r['ratio_roofline']:.2f}")
    if r.get("peak_mb") is not None:
        text += (f"; peak memory {r['peak_mb']:.0f} MB = {r['peak_ratio']:.2f}x the weights "
                 f"({r['weights_mb']:.0f} MB)")
    return text


def _print_tail(result: dict[str, Any]) -> None:
    o, env = result["overhead"], result["environment"]
    print(f"per module call: {o['per_module_us']:.2f} us (numpy call floor "
          f"{o['numpy_call_floor_us']:.2f} us, Python {o['python_us']:.2f} us)")
    notes = {v for r in result["rows"] for v in r["notes"].values()}
    blas_info = env["blas"]
    print(f"engines: {'; '.join(sorted(notes))}; numpy {env['numpy']} with "
          f"{blas_info.get('library')} ({blas_info.get('corename')} kernels); {env['cpus']} CPUs"
          f"; load average {env['load_average']}")
