"""``dianne bench editor``: time from an edit in the Build tab to the updated shapes on screen.

A network of N modules (default 200: Input, then Linear/ReLU pairs and a Dropout every tenth
module, then Output) is opened in the Build tab (offscreen when there is no display). Each
timed edit is one editor call as the canvas makes it, measured until the editor has re-inferred
every shape and the canvas has redrawn every node whose text changed (all synchronous):

- ``property``: a Linear in the middle of the network changes its output size (alternating, so
  everything downstream turns red and back),
- ``connect``: one wire removed and put back (two edits),
- ``add``: a module dropped onto the canvas, then ``delete`` it,
- ``move``: one node moved (no shape changes, redraw only),
- ``undo``: the property edit undone.

The reference, measured in the same run, is one bare ``engine.shapes.infer_shapes`` of the same
network: ``ratio`` = median edit time / median inference time, i.e. what the editor adds on top
of the engine's work. The target is <= 100 ms per edit.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

NAME = "editor"
HELP = "Build tab: time from an edit to the updated shapes on a 200-module network"
TARGET_MS = 100.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--modules", type=int, default=200, metavar="N",
                   help="modules in the network (default 200)")
    p.add_argument("--edits", type=int, default=30, metavar="N",
                   help="timed edits of each kind (default 30)")
    p.add_argument("--no-view", action="store_true",
                   help="time the editor model alone (no Qt canvas)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def big_network(n: int):
    """Input -> (Linear 64->64, ReLU, ... a Dropout every tenth) -> Output: ``n`` modules."""
    from engine.builder import NetworkBuilder  # noqa: PLC0415

    b = NetworkBuilder(f"bench-{n}")
    ids = [b.add("Input", dims="64")]
    while len(ids) < n - 1:
        k = len(ids)
        if k % 10 == 0:
            ids.append(b.add("Dropout", rate="0.1"))
        elif k % 2:
            ids.append(b.add("Linear", input="64", output="64"))
        else:
            ids.append(b.add("ReLU"))
    ids.append(b.add("Output"))
    b.chain(*ids)
    return b.build()


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return {"median_ms": round(statistics.median(samples) * 1e3, 2),
            "p90_ms": round(p90 * 1e3, 2), "max_ms": round(ordered[-1] * 1e3, 2)}


def run(args: argparse.Namespace) -> int:
    from app.editor.autolayout import layered_positions  # noqa: PLC0415
    from app.editor.model import NetworkEditor  # noqa: PLC0415
    from engine.layout import Layout  # noqa: PLC0415
    from engine.shapes import infer_shapes  # noqa: PLC0415

    desc = big_network(args.modules)
    editor = NetworkEditor(desc, Layout(dict(layered_positions(desc))))
    app = canvas = None
    if not args.no_view:
        if not os.environ.get("DISPLAY"):
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        from PySide6 import QtWidgets  # noqa: PLC0415

        from app.editor.canvas import Canvas  # noqa: PLC0415 (guards PySide6 on import)

        app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["dianne-bench"])
        canvas = Canvas(editor)
        canvas.widget.resize(1000, 700)

    def timed(action) -> float:
        t0 = time.perf_counter()
        action()
        editor.shapes  # noqa: B018 (the canvas has read it already when there is one)
        if app is not None:
            app.processEvents()
        return time.perf_counter() - t0

    ids = list(editor.desc.modules)
    linears = [m for m in ids if editor.desc.modules[m].type == "Linear"]
    middle = linears[len(linears) // 2]
    src, dst = ids[len(ids) // 3], ids[len(ids) // 3 + 1]
    times: dict[str, list[float]] = {k: [] for k in
                                     ("property", "undo", "connect", "add", "delete", "move")}
    reference: list[float] = []
    for i in range(args.edits):
        t0 = time.perf_counter()
        infer_shapes(editor.desc)
        reference.append(time.perf_counter() - t0)
        times["property"].append(timed(lambda i=i: editor.set_properties(
            middle, {"output": "32" if i % 2 == 0 else "64"})))
        times["undo"].append(timed(editor.undo))
        times["connect"].append(timed(lambda: editor.disconnect(src, dst)))
        times["connect"].append(timed(lambda: editor.connect(src, dst)))
        added: list[str] = []
        times["add"].append(timed(lambda a=added: a.append(editor.add_module("Tanh", (0, -9)))))
        times["delete"].append(timed(lambda a=added: editor.delete(a)))
        times["move"].append(timed(lambda i=i: editor.move({ids[0]: (80 + i % 2 * 10, 200)})))
    ref = statistics.median(reference)
    every = [t for ts in times.values() for t in ts]
    result = {
        "modules": len(ids), "view": canvas is not None, "edits": len(every),
        "reference_infer_shapes": _ms(reference),
        "per_kind": {k: _ms(v) for k, v in times.items()},
        "all_edits": _ms(every),
        "ratio_to_infer_shapes": round(statistics.median(every) / ref, 2),
        "target_ms": TARGET_MS,
        "target_met": max(statistics.median(v) for v in times.values()) * 1e3 <= TARGET_MS,
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"editor bench: {result['modules']} modules, "
          f"{'Build tab canvas (offscreen)' if result['view'] else 'model only'}, "
          f"{result['edits']} edits")
    print(f"  reference infer_shapes: median {result['reference_infer_shapes']['median_ms']} ms")
    for kind, stats in result["per_kind"].items():
        print(f"  {kind:9s} median {stats['median_ms']:7.2f} ms  p90 {stats['p90_ms']:7.2f} ms"
              f"  max {stats['max_ms']:7.2f} ms")
    print(f"  all edits: median {result['all_edits']['median_ms']} ms = "
          f"{result['ratio_to_infer_shapes']}x one infer_shapes; target <= {TARGET_MS:.0f} ms "
          f"per edit: {'met' if result['target_met'] else 'NOT met'}")
    return 0
