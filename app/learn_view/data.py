"""The Learn tab's dataset panel: source, split sliders, label checkboxes with "other".

Sources: the bundled MNIST, a folder (MNIST files, or ``<class>/<image>`` folders) or a DIANNE
dataset descriptor (``.json``). The panel reads only the dataset's size and labels (on a
worker); the samples are opened by the agent that trains. Splits follow the builder: test =
the last ``test %`` (default 1/10), validation the ``validation %`` before it, training the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtWidgets

from engine.datasets.splits import Splits, java_round

SOURCES = ("MNIST (bundled)", "Folder\u2026", "Descriptor\u2026")


@dataclass
class DataInfo:
    spec: str
    total: int
    labels: list[str]


def read_info(spec: str) -> DataInfo:
    """(Worker.) Size and labels of the dataset ``spec``."""
    from engine.datasets.spec import open_dataset  # noqa: PLC0415

    ds = open_dataset(spec)
    return DataInfo(spec, len(ds), list(ds.labels or []))


def folder_spec(folder: str) -> str:
    p = Path(folder)
    if any(p.glob("*ubyte*")):
        return f"mnist:{p}"
    return f"images:{p}"


def cut(total: int, test_pct: int, val_pct: int) -> Splits:
    """Train | validation | test ranges; test = round(total * test %), as the builder."""
    test = java_round(total * test_pct / 100)
    val = java_round(total * val_pct / 100)
    train_end = max(1, total - test - val)
    return Splits(total, (0, train_end), (train_end, train_end + val),
                  (train_end + val, total))


class DataPanel(QtWidgets.QGroupBox):
    """``changed`` after a new dataset was read; ``failed(message)``."""

    changed = QtCore.Signal()
    failed = QtCore.Signal(str)

    def __init__(self, workers: Any, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Dataset", parent)
        self.workers = workers
        self.info: DataInfo | None = None
        self.source = QtWidgets.QComboBox()
        self.source.addItems(SOURCES)
        self.source.activated.connect(self._pick)
        self.where = QtWidgets.QLabel()
        self.where.setWordWrap(True)
        self.test = self._slider(10)
        self.val = self._slider(10)
        self.split_label = QtWidgets.QLabel()
        self.other = QtWidgets.QCheckBox("other (all unchecked labels as one class)")
        self.labels_box = QtWidgets.QWidget()
        self.labels_grid = QtWidgets.QGridLayout(self.labels_box)
        self.labels_grid.setContentsMargins(0, 0, 0, 0)
        self.checks: list[QtWidgets.QCheckBox] = []
        form = QtWidgets.QFormLayout(self)
        form.addRow("Source", self.source)
        form.addRow(self.where)
        form.addRow("Test %", self.test)
        form.addRow("Validation %", self.val)
        form.addRow(self.split_label)
        form.addRow("Labels", self.labels_box)
        form.addRow(self.other)
        self.load("mnist")

    def _slider(self, value: int) -> QtWidgets.QSlider:
        s = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        s.setRange(0, 50)
        s.setValue(value)
        s.valueChanged.connect(lambda _v: self._show_split())
        return s

    def _pick(self, index: int) -> None:
        if index == 0:
            self.load("mnist")
        elif index == 1:
            folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Dataset folder")
            if folder:
                self.load(folder_spec(folder))
        else:
            path, _ = QtWidgets.QFileDialog.getOpenFileName(
                self, "DIANNE dataset descriptor", "", "Descriptor (*.json)")
            if path:
                self.load(f"json:{path}")

    def load(self, spec: str) -> None:
        self.where.setText(f"reading {spec}\u2026")
        self.workers.start(read_info, spec, on_done=self._loaded, on_error=self._failed,
                           label=f"reading dataset {spec}")

    def _failed(self, msg: str) -> None:
        self.where.setText(f"<font color='#d04040'>{msg}</font>")
        self.failed.emit(msg)

    def _loaded(self, info: DataInfo) -> None:
        self.info = info
        self.where.setText(f"{info.spec}: {info.total:,} samples, {len(info.labels)} classes")
        for c in self.checks:
            c.deleteLater()
        self.checks = []
        for i, label in enumerate(info.labels):
            c = QtWidgets.QCheckBox(label)
            c.setChecked(True)
            self.labels_grid.addWidget(c, i // 5, i % 5)
            self.checks.append(c)
        self._show_split()
        self.changed.emit()

    def splits(self) -> Splits | None:
        if self.info is None:
            return None
        return cut(self.info.total, self.test.value(), self.val.value())

    def _show_split(self) -> None:
        s = self.splits()
        if s is not None:
            self.split_label.setText(
                f"train {s.train[0]}\u2013{s.train[1] - 1} \u00b7 validation "
                f"{s.validation[1] - s.validation[0]} \u00b7 test {s.test[0]}\u2013"
                f"{s.test[1] - 1}")

    def labels(self) -> tuple[list[str] | None, bool]:
        """(labels to keep, other): None when every label is checked and no "other"."""
        chosen = [c.text() for c in self.checks if c.isChecked()]
        if len(chosen) == len(self.checks) and not self.other.isChecked():
            return None, False
        return chosen, self.other.isChecked()

    def job_content(self) -> dict[str, Any]:
        """``start_job`` / ``evaluate`` content for the current choice (ranges [a, b))."""
        s = self.splits()
        labels, other = self.labels()
        extra = {"labels": labels, "other": other} if labels is not None else {}
        out: dict[str, Any] = {"range": list(s.train), **extra}
        if s.validation[1] > s.validation[0]:
            out["validation"] = {"dataset": self.info.spec, "range": list(s.validation),
                                 **extra}
        return out

    def test_content(self) -> dict[str, Any]:
        s = self.splits()
        labels, other = self.labels()
        extra = {"labels": labels, "other": other} if labels is not None else {}
        return {"range": list(s.test), **extra}
