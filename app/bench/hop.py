"""``dianne bench hop``: what one module hop between two agents adds, next to raw pyzmq.

Two ``dianne-agent`` processes on 127.0.0.1 host an ``Input -> Output`` network of N float32
values, either both modules on agent A (client -> A -> client) or the Output on agent B
(client -> A -> B -> client: the Input's output hops to B, agent to agent). The *hop* is the
difference: ``hop_us_median`` = median(split) - median(local), ``hop_us_p99`` = p99(split) -
median(local). The reference is a raw pyzmq REQ/REP round trip of the same payload (JSON header
+ one zero-copy frame) to an echo process, measured in the same run, interleaved with the
others so all three see the same machine load. ``ratio`` = hop_us_median / raw_us_median; the
target is <= 1.2. A hop moves the payload once, a round trip twice, so the ratio also shows how
much of the hop is protocol and dispatch rather than transfer.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy is imported where it is used: dianne --help stays fast
    import numpy as np


NAME = "hop"
HELP = "added latency of one module hop between two loopback agents vs raw pyzmq REQ/REP"

SIZES = (1024, 16 * 1024, 144 * 1024, 625 * 1024, 4 * 1024 * 1024)

_ECHO = """
import sys, zmq
ctx = zmq.Context(); s = ctx.socket(zmq.REP); port = s.bind_to_random_port("tcp://127.0.0.1")
print(port, flush=True)
while True:
    frames = s.recv_multipart(copy=False)
    if frames[0].bytes == b"stop":
        s.send(b""); break
    s.send_multipart(frames, copy=False)
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--iterations", type=int, default=300, metavar="N",
                   help="timed round trips per size and path (4 MiB: a third; default 300)")
    p.add_argument("--sizes", metavar="BYTES,...",
                   help="payload sizes in bytes (default 1KiB,16KiB,144KiB,625KiB,4MiB)")
    p.add_argument("--json", action="store_true", help="print a JSON list of rows")


def _start(cmd: list[str]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        from engine.errors import DianneError  # noqa: PLC0415

        raise DianneError(f"benchmark helper did not start: {' '.join(cmd)}")
    return proc, line


def _network(n: int) -> Any:
    from engine.builder import NetworkBuilder  # noqa: PLC0415

    b = NetworkBuilder(f"hop-{n}")
    i, o = b.add("Input", dims=str(n)), b.add("Output")
    b.chain(i, o)
    return b.build(), i, o


def _raw_round_trip(sock: Any, header: bytes, x: np.ndarray) -> float:
    import numpy as np  # noqa: PLC0415
    t0 = time.perf_counter()
    sock.send_multipart([header, x], copy=False)
    frames = sock.recv_multipart(copy=False)
    np.frombuffer(frames[1].buffer, np.float32)
    return time.perf_counter() - t0


def _timed(dep: Any, x: np.ndarray) -> float:
    t0 = time.perf_counter()
    dep.forward(x)
    return time.perf_counter() - t0


def measure(sizes: tuple[int, ...], iterations: int) -> list[dict[str, Any]]:
    import numpy as np  # noqa: PLC0415
    import zmq  # noqa: PLC0415

    from agent.client import deploy  # noqa: PLC0415

    agent_cmd = [sys.executable, "-m", "agent", "--no-discovery", "--backend", "numpy"]
    procs: list[subprocess.Popen] = []
    ctx = zmq.Context()
    rows = []
    try:
        started = [_start(agent_cmd + ["--name", n]) for n in ("hop-a", "hop-b")]
        procs += [p for p, _ in started]
        a, b = (json.loads(line) for _, line in started)
        echo, port = _start([sys.executable, "-c", _ECHO])
        procs.append(echo)
        raw = ctx.socket(zmq.REQ)
        raw.setsockopt(zmq.LINGER, 0)
        raw.connect(f"tcp://127.0.0.1:{int(port)}")
        for size in sizes:
            n = max(1, size // 4)
            desc, i, o = _network(n)
            local = deploy(desc, {}, {i: a["id"], o: a["id"]}, [a["address"]])
            split = deploy(desc, {}, {i: a["id"], o: b["id"]}, [a["address"], b["address"]],
                           session=local.session)
            x = np.random.default_rng(0).random(n, dtype=np.float32)
            header = json.dumps({"v": 1, "type": "echo", "tensors": [
                {"dtype": "float32", "shape": [n]}]}).encode()
            reps = iterations if size < 1 << 21 else max(20, iterations // 3)
            t_local, t_split, t_raw = [], [], []
            for k in range(reps + 10):  # 10 warm-up rounds, then interleaved timing
                tl, ts = _timed(local, x), _timed(split, x)
                tr = _raw_round_trip(raw, header, x)
                if k >= 10:
                    t_local.append(tl), t_split.append(ts), t_raw.append(tr)
            assert np.array_equal(split.forward(x), x)
            split.undeploy()
            local.undeploy()
            local.session.close()
            med_local = float(np.median(t_local))
            hop = (float(np.median(t_split)) - med_local) * 1e6
            raw_med = float(np.median(t_raw)) * 1e6
            rows.append({"bytes": n * 4, "hop_us_median": hop,
                         "hop_us_p99": (float(np.percentile(t_split, 99)) - med_local) * 1e6,
                         "raw_us_median": raw_med, "ratio": hop / raw_med,
                         "local_us_median": med_local * 1e6,
                         "split_us_median": float(np.median(t_split)) * 1e6,
                         "iterations": reps})
        raw.send(b"stop")
        raw.recv()
        raw.close(0)
    finally:
        ctx.term()
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
    return rows


def _size(text: str) -> int:
    text = text.strip().upper()
    for suffix, mult in (("KIB", 1024), ("MIB", 1 << 20), ("K", 1024), ("M", 1 << 20)):
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * mult)
    return int(text)


def run(args: argparse.Namespace) -> int:
    from app.cli import print_json  # noqa: PLC0415
    from engine.errors import DianneError  # noqa: PLC0415

    try:
        sizes = tuple(_size(s) for s in args.sizes.split(",")) if args.sizes else SIZES
    except ValueError:
        raise DianneError(f"--sizes takes byte counts like 1024,16KiB,4MiB. "
                          f"Received: {args.sizes!r}") from None
    if args.iterations < 1:
        raise DianneError(f"--iterations must be at least 1. Received: {args.iterations}")
    rows = measure(sizes, args.iterations)
    if args.json:
        print_json(rows)
        return 0
    print(f"{'bytes':>9} {'hop med us':>11} {'hop p99 us':>11} {'raw med us':>11} "
          f"{'ratio':>6} {'local med us':>13} {'split med us':>13}")
    for r in rows:
        print(f"{r['bytes']:>9} {r['hop_us_median']:>11.1f} {r['hop_us_p99']:>11.1f} "
              f"{r['raw_us_median']:>11.1f} {r['ratio']:>6.2f} {r['local_us_median']:>13.1f} "
              f"{r['split_us_median']:>13.1f}")
    print("hop = median(client->A->B->client) - median(client->A->client); raw = pyzmq "
          "REQ/REP round trip; target ratio <= 1.2")
    return 0
