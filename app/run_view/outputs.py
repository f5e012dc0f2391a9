"""The Run tab's output side: probability bars with the Output's labels, the top class large,
the forward time, and a time-series plot of the outputs while a stream plays. A Big-Little
answer shows its label, which network answered, and a status line; a fallback answer (the big
part unreachable: the little network's verdict) is marked in that line."""

from __future__ import annotations

import collections
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

HISTORY = 120
MAX_BARS = 12


class OutputPanel(QtWidgets.QWidget):
    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.labels: list[str] = []
        self.top = QtWidgets.QLabel("\u2014")
        self.top.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        font = self.top.font()
        font.setPointSize(44)
        font.setBold(True)
        self.top.setFont(font)
        self.detail = QtWidgets.QLabel("draw, open an image or pick a sample")
        self.detail.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.status = QtWidgets.QLabel()  # Big-Little: who answered, or why the little one did
        self.status.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.status.setWordWrap(True)
        self.status.hide()
        self.bars_box = QtWidgets.QWidget()
        self.bars_grid = QtWidgets.QGridLayout(self.bars_box)
        self.bars: list[tuple[QtWidgets.QLabel, QtWidgets.QProgressBar]] = []
        self.plot = pg.PlotWidget(title="outputs over time (stream)")
        self.plot.setYRange(0, 1)
        self.plot.setLabel("bottom", "frame")
        self.plot.hide()
        self.curves: list = []
        self.history: collections.deque[np.ndarray] = collections.deque(maxlen=HISTORY)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(self.top)
        lay.addWidget(self.detail)
        lay.addWidget(self.status)
        lay.addWidget(self.bars_box)
        lay.addWidget(self.plot, 1)

    def set_labels(self, labels: list[str]) -> None:
        self.labels = list(labels)
        for name, bar in self.bars:
            name.deleteLater()
            bar.deleteLater()
        self.bars = []
        for i in range(min(MAX_BARS, len(labels))):
            name, bar = QtWidgets.QLabel(), QtWidgets.QProgressBar()
            bar.setRange(0, 1000)
            bar.setFormat("")
            self.bars_grid.addWidget(name, i, 0)
            self.bars_grid.addWidget(bar, i, 1)
            self.bars.append((name, bar))
        self.plot.clear()
        self.plot.addLegend(offset=(-10, 10), colCount=2 if len(labels) > 6 else 1)
        self.curves = [self.plot.plot(pen=pg.intColor(i, max(len(labels), 1)), name=lab)
                       for i, lab in enumerate(labels[:MAX_BARS])]
        self.history.clear()

    def display(self, probs: np.ndarray, seconds: float, where: str, stream: bool) -> str:
        """Show one result; returns the top label."""
        labels = self.labels if len(self.labels) == len(probs) else \
            [str(i) for i in range(len(probs))]
        if labels != self.labels:
            self.set_labels(labels)
        order = np.argsort(-probs)
        shown = sorted(order[:len(self.bars)]) if len(probs) > len(self.bars) else \
            range(len(probs))
        for (name, bar), k in zip(self.bars, shown, strict=False):
            name.setText(labels[k])
            bar.setValue(int(round(probs[k] * 1000)))
            bar.setFormat(f"{probs[k]:.1%}")
        best = labels[int(order[0])]
        self.top.setText(best)
        self.status.hide()
        self.detail.setText(f"{probs[order[0]]:.1%} \u00b7 forward {seconds * 1e3:.2f} ms "
                            f"on {where}")
        if stream:
            self.plot.show()
            self.history.append(probs[:len(self.curves)])
            h = np.asarray(self.history)
            for i, c in enumerate(self.curves):
                c.setData(h[:, i])
        return best

    def display_answer(self, answer: Any, status: str) -> str:
        """Show one Big-Little answer (engine.biglittle.Answer) and the runner's ``status``;
        returns the label. Only the answered label's bar is filled: an answer carries one
        probability, that of its label."""
        self.top.setText(answer.label)
        for (name, bar), label in zip(self.bars, self.labels, strict=False):
            name.setText(label)
            hit = label == answer.label
            bar.setValue(int(round(answer.probability * 1000)) if hit else 0)
            bar.setFormat(f"{answer.probability:.1%}" if hit else "")
        where = getattr(answer, "little_on", None)
        moved = f" (the little part on {where}: the device is gone)" if where else ""
        self.detail.setText(f"{answer.probability:.1%} \u00b7 answered by the "
                            f"{answer.answered_by} network in {answer.latency_ms:.2f} ms{moved}")
        if answer.fallback:
            self.status.setText(f"<font color='#d07000'>\u26a0 fallback ({answer.reason}): the "
                                f"big part is unreachable, so this is the little network's "
                                f"verdict \u00b7 {status}</font>")
        else:
            self.status.setText(status)
        self.status.show()
        return answer.label
