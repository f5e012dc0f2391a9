"""The Run tab on the app's local agent: a drawn "1" (synthesised mouse strokes), dataset
samples whose shown label is the network's output, and action rules run by the app."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore
from pytestqt.qtbot import QtBot

from app.deploy_view.state import network_folder, read_weights
from engine.graph import Network


def _stroke(qtbot: QtBot, widget, points) -> None:
    qtbot.mousePress(widget, QtCore.Qt.MouseButton.LeftButton, pos=QtCore.QPoint(*points[0]))
    for p in points[1:]:
        qtbot.mouseMove(widget, QtCore.QPoint(*p))
    qtbot.mouseRelease(widget, QtCore.Qt.MouseButton.LeftButton, pos=QtCore.QPoint(*points[-1]))


def _wait_result(qtbot, tab, before):
    qtbot.waitUntil(lambda: tab.last is not None and tab.last is not before and not tab.busy,
                    timeout=10000)
    return tab.last


def test_drawn_one_is_recognised(qtbot, local_window):
    win = local_window
    tab = win.run_tab
    win.tabs.setCurrentWidget(tab)
    tab.sources.setCurrentIndex(0)
    canvas = tab.sources.canvas
    _stroke(qtbot, canvas, [(140, 40 + 10 * i) for i in range(21)])  # one vertical line
    probs, best = _wait_result(qtbot, tab, None)
    assert best == "1", probs
    assert tab.outputs.top.text() == "1"
    assert "forward" in tab.outputs.detail.text()
    seen = tab.sources.preview.pixmap()
    assert seen is not None and seen.width() == 28 * 4
    # the network saw a centred vertical bar: ink in the middle columns only
    from app.run_view.draw import to_input
    x = to_input(canvas.image, (1, 28, 28))[0]
    assert x[4:24, 12:16].max(axis=1).min() > 0.5 and x[:, :8].max() == 0 and x[:, 20:].max() == 0


def test_dataset_sample_label_is_network_output(qtbot, local_window, tmp_path):
    win = local_window
    tab = win.run_tab
    win.tabs.setCurrentWidget(tab)
    src = tab.sources
    qtbot.waitUntil(lambda: src.dataset is not None, timeout=5000)
    desc = win.editor.desc
    net = Network(desc)
    net.set_weights(read_weights(desc, network_folder(win.editor)))
    last = None
    for i in (0, 1, 2, 9000, 9001):
        src.show_sample(i)
        last = _wait_result(qtbot, tab, last)
        probs, best = last
        expected = np.asarray(net.forward(src.dataset.input(i)[None]))[0]
        assert best == tab.outputs.labels[int(np.argmax(expected))]
        assert tab.outputs.top.text() == best
        np.testing.assert_allclose(probs, np.exp(expected), rtol=1e-4, atol=1e-6)
        assert f"true label <b>{src.true_label}</b>" in src.sample_info.text()

    # rules: notify when "7" >= 0.5 for 2 frames; a command rule writes a file
    from app.run_view.actions import Rule
    flag = tmp_path / "fired.txt"
    tab.set_rules([Rule("7", 0.5, 2, "notify"),
                   Rule("7", 0.5, 2, "command", f"echo door > {flag}")])
    sevens = [i for i in range(50) if src.dataset.target_index(i) == 7][:2]
    for i in sevens:
        src.show_sample(i, stream=True)
        last = _wait_result(qtbot, tab, last)
    assert len(tab.fired) == 2 and tab.outputs.plot.isVisible()
    qtbot.waitUntil(flag.exists, timeout=5000)
    assert flag.read_text().strip() == "door"
