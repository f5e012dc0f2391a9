"""``dianne bench gui-frames``: how long the GUI thread is blocked while training is plotted.

The main window (offscreen without a display) opens the MNIST example and starts its local
agent. A 5 ms ``QTimer`` on the GUI thread records the time between its ticks; the excess over
5 ms is how long the GUI thread could not run (a frame's delay). Two phases in the same run:

- ``idle``: the window shown, nothing running (the reference),
- ``busy``: a training job on the local agent with the Learn tab's live plots updating, while
  the Run tab plays dataset samples through the network (forward on the agent, bars and the
  stream plot redrawn) and the tabs are switched every 500 ms.

Reported: p50 / p99 / max of the block per tick (ms), and ``ratio`` = busy p99 / idle p99. The
target is a p99 block <= 50 ms. Tab switches force full repaints, so they are in the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import time

NAME = "gui-frames"
HELP = "GUI-thread blocking (p99) while training runs and plots update"
TICK_MS = 5
TARGET_MS = 50.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seconds", type=float, default=8.0, help="length of each phase (8)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))] if s else 0.0


def _measure(app, seconds: float, each_500ms=None) -> dict[str, float]:
    from PySide6 import QtCore  # noqa: PLC0415

    gaps: list[float] = []
    last = [time.perf_counter()]
    ticks = [0]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(max(0.0, (now - last[0]) * 1e3 - TICK_MS))
        last[0] = now
        ticks[0] += 1
        if each_500ms is not None and ticks[0] % (500 // TICK_MS) == 0:
            each_500ms()
    timer = QtCore.QTimer(interval=TICK_MS)
    timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
    timer.timeout.connect(tick)
    last[0] = time.perf_counter()
    timer.start()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.0005)
    timer.stop()
    return {"ticks": len(gaps), "p50_ms": _pct(gaps, 0.5), "p99_ms": _pct(gaps, 0.99),
            "max_ms": max(gaps) if gaps else 0.0}


def run(args: argparse.Namespace) -> int:
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6 import QtCore  # noqa: PLC0415

    from app.deploy_view import ensure_tabs  # noqa: PLC0415
    from app.gui_app import _application, make_window  # noqa: PLC0415

    app = _application()
    win = make_window(None, start=False)
    win.open_example("mnist-mlp")
    win.workers.wait_idle()
    win.show()
    state = ensure_tabs(win)
    win.tabs_lifetime.start()
    try:
        end = time.monotonic() + 15
        while state.default_agent() is None and time.monotonic() < end:
            app.processEvents()
            time.sleep(0.02)
        if state.default_agent() is None:
            print("dianne: error: the local agent did not come up within 15 s")
            return 1
        idle = _measure(app, args.seconds)
        learn, run_tab = win.learn_tab, win.run_tab
        learn.amount.setValue(1_000_000)
        learn.tag.setText("")
        learn.start()
        run_tab.sources.setCurrentIndex(2)
        while run_tab.sources.dataset is None:
            app.processEvents()
        run_tab.sources.play.setChecked(True)
        order = [win.learn_tab, win.run_tab, win.deploy_tab]
        flip = [0]

        def switch() -> None:
            flip[0] += 1
            win.tabs.setCurrentWidget(order[flip[0] % len(order)])
        busy = _measure(app, args.seconds, switch)
        points = len(learn.points["it"])
        run_tab.sources.play.setChecked(False)
        learn.stop()
        end = time.monotonic() + 10
        while learn.runner.running and time.monotonic() < end:
            app.processEvents()
            time.sleep(0.02)
        win.workers.wait_idle()
        QtCore.QThreadPool.globalInstance().waitForDone(5000)
    finally:
        win.tabs_lifetime.stop()
        win.editor.undo_stack.set_clean()
        win.close()
        win.deleteLater()  # Qt objects go before the interpreter finalises (PySide6 at exit)
        app.processEvents()
        app.sendPostedEvents(None, 0)
    ratio = busy["p99_ms"] / max(idle["p99_ms"], 1e-3)
    out = {"idle": idle, "busy": busy, "ratio": ratio, "plotted_points": points,
           "target_ms": TARGET_MS, "ok": busy["p99_ms"] <= TARGET_MS}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"GUI thread block per {TICK_MS} ms tick (ms)      p50      p99      max   ticks")
        for name, r in (("idle (reference)", idle), ("training + plots + run", busy)):
            print(f"  {name:<34}{r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['max_ms']:8.2f}"
                  f" {r['ticks']:7d}")
        print(f"ratio busy/idle p99: {ratio:.1f}x; {points} loss points plotted; target p99 "
              f"<= {TARGET_MS:.0f} ms: {'met' if out['ok'] else 'NOT met'}")
    return 0
