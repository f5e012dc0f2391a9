"""The Learn tab: dataset and trainer settings, Start / Stop / Resume, live plots, Evaluate.

Training runs as a job on an agent (the local one by default, or the one picked); its progress
events fill a queue that a 10 Hz timer turns into pyqtgraph curves (loss; train and validation
accuracy). When the job ends its weights become the network's weights for Deploy and Run.
Evaluate runs on the agent over the test range and shows accuracy, top-3, the forward time per
sample and the confusion matrix as a heat map.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from app.layouts import side_by_side
from app.learn_view.data import DataPanel
from app.learn_view.job import JobRunner
from engine.losses import CRITERIA
from engine.optim import METHODS

# No antialiasing: antialiased wide paths cost the raster engine ~2 ms per curve per repaint,
# which showed up as the largest GUI-thread block in ``dianne bench gui-frames``.


def _spin(value: float, lo: float, hi: float, decimals: int = 4,
          step: float = 0.001) -> QtWidgets.QDoubleSpinBox:
    s = QtWidgets.QDoubleSpinBox(decimals=decimals, minimum=lo, maximum=hi, singleStep=step)
    s.setValue(value)
    return s


class LearnTab(QtWidgets.QWidget):
    message = QtCore.Signal(str)

    def __init__(self, state: Any, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.runner = JobRunner(self)
        self.runner.finished.connect(self._finished)
        self.runner.started.connect(lambda j: self.status.setText(f"training (job {j[:8]})"))
        self.points: dict[str, list[float]] = {k: [] for k in
                                               ("it", "loss", "train", "val_it", "val")}
        self.resume_weights: dict[str, np.ndarray] | None = None
        self.last_eval: dict[str, Any] | None = None
        self.data = DataPanel(state.workers)
        self._build()
        self.timer = QtCore.QTimer(self, interval=100)
        self.timer.timeout.connect(self.drain)

    # ------------------------------------------------------------------------- layout ---
    def _build(self) -> None:
        self.method = QtWidgets.QComboBox()
        self.method.addItems(METHODS)
        self.criterion = QtWidgets.QComboBox()
        self.criterion.addItems(["AUTO", *CRITERIA])
        self.lr = _spin(0.01, 1e-6, 10.0, 5)
        self.batch = QtWidgets.QSpinBox(minimum=1, maximum=65536, value=32)
        self.momentum = _spin(0.9, 0.0, 0.999, 3, 0.05)
        self.l2 = _spin(0.0, 0.0, 1.0, 6, 1e-4)
        self.unit = QtWidgets.QComboBox()
        self.unit.addItems(["iterations", "epochs"])
        self.amount = QtWidgets.QSpinBox(minimum=1, maximum=10_000_000, value=1000)
        self.clean = QtWidgets.QCheckBox("clean start (fresh random weights)")
        self.tag = QtWidgets.QLineEdit(placeholderText="tag for the trained weights")
        how = QtWidgets.QHBoxLayout()
        how.addWidget(self.amount, 1)
        how.addWidget(self.unit)
        trainer = QtWidgets.QGroupBox("Trainer")
        form = QtWidgets.QFormLayout(trainer)
        for label, w in (("Method", self.method), ("Criterion", self.criterion),
                         ("Learning rate", self.lr), ("Batch size", self.batch),
                         ("Momentum", self.momentum), ("L2", self.l2)):
            form.addRow(label, w)
        form.addRow("Run for", how)
        form.addRow(self.clean)
        form.addRow("Tag", self.tag)
        self.start_button = QtWidgets.QPushButton("Start")
        self.stop_button = QtWidgets.QPushButton("Stop")
        self.resume_button = QtWidgets.QPushButton("Resume")
        self.eval_button = QtWidgets.QPushButton("Evaluate")
        self.start_button.clicked.connect(lambda: self.start(resume=False))
        self.resume_button.clicked.connect(lambda: self.start(resume=True))
        self.stop_button.clicked.connect(self.stop)
        self.eval_button.clicked.connect(self.evaluate)
        buttons = QtWidgets.QHBoxLayout()
        for b in (self.start_button, self.stop_button, self.resume_button, self.eval_button):
            buttons.addWidget(b)
        self.status = QtWidgets.QLabel("idle")
        self.status.setWordWrap(True)
        left = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(left)
        lay.addWidget(self.data)
        lay.addWidget(trainer)
        lay.addLayout(buttons)
        lay.addWidget(self.status)
        lay.addStretch(1)

        self.loss_plot = pg.PlotWidget(title="loss")
        self.loss_plot.setLabel("bottom", "iteration")
        self.loss_curve = self.loss_plot.plot(pen=pg.mkPen("#e07b39", width=2))
        self.acc_plot = pg.PlotWidget(title="accuracy")
        self.acc_plot.setLabel("bottom", "iteration")
        self.acc_plot.setYRange(0, 1)
        self.acc_plot.addLegend(offset=(-10, -10))
        self.train_curve = self.acc_plot.plot(pen=pg.mkPen("#3b8bd4", width=2), name="train")
        self.val_curve = self.acc_plot.plot(pen=pg.mkPen("#43b047", width=2), symbol="o",
                                            symbolSize=6, symbolBrush="#43b047",
                                            name="validation")
        self.eval_text = QtWidgets.QLabel("Evaluate: accuracy on the test range")
        self.heat = pg.PlotWidget(title="confusion (rows: true, columns: predicted)")
        self.heat.invertY(True)
        self.heat.setAspectLocked(True)
        self.heat_image = pg.ImageItem()
        self.heat_image.setColorMap(pg.colormap.get("viridis"))
        self.heat.addItem(self.heat_image)
        self.heat.hide()  # until an evaluation has a matrix to show
        bottom = QtWidgets.QWidget()
        blay = QtWidgets.QVBoxLayout(bottom)
        blay.setContentsMargins(0, 0, 0, 0)
        blay.addWidget(self.eval_text)
        blay.addWidget(self.heat, 1)
        side_by_side(self, left, [self.loss_plot, self.acc_plot, bottom], [430, 850])
        self._buttons(False)

    def _buttons(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.resume_button.setEnabled(not running and self.state.trained is not None)
        self.stop_button.setEnabled(running)

    # ----------------------------------------------------------------------- training ---
    def options(self) -> dict[str, str]:
        opts = {"method": self.method.currentText(), "criterion": self.criterion.currentText(),
                "learningRate": f"{self.lr.value():g}", "batchSize": str(self.batch.value()),
                "momentum": f"{self.momentum.value():g}", "l2": f"{self.l2.value():g}",
                "clean": "true" if self.clean.isChecked() else "false",
                "traceInterval": "10", "validationInterval": "50"}
        if self.tag.text().strip():
            opts["tag"] = self.tag.text().strip()
        return opts

    def start(self, resume: bool = False) -> bool:
        agent = self.state.default_agent()
        if agent is None:
            self.status.setText("no agent is running yet (the local agent starts with the "
                                "Deploy/Learn/Run tabs)")
            return False
        if self.data.info is None:
            self.status.setText("no dataset yet")
            return False
        content = self.data.job_content()
        content[self.unit.currentText()] = self.amount.value()
        if not resume:
            for v in self.points.values():
                v.clear()
        offset = self.points["it"][-1] if resume and self.points["it"] else 0
        self._offset = offset
        self.status.setText(f"starting on {agent.name}\u2026")
        self._buttons(True)
        clean = self.clean.isChecked() and not resume

        def begin(weights: dict) -> None:
            self.runner.start(agent.address, self.state.editor.desc, {} if clean else weights,
                              self.data.info.spec, self.options(), content)
            self.timer.start()
        self.state.workers.start(self.state.weights, on_done=begin,
                                 on_error=self._failed, label="reading weights")
        return True

    def stop(self) -> None:
        self.status.setText("stopping\u2026")
        self.runner.stop()

    def drain(self) -> None:
        """Move queued progress events into the curves (at most every 100 ms)."""
        q, pts, got = self.runner.progress, self.points, False
        while q:
            p = q.popleft()
            it = p["iteration"] + getattr(self, "_offset", 0)
            pts["it"].append(it)
            pts["loss"].append(p["loss"])
            pts["train"].append(p["train_accuracy"] if p["train_accuracy"] is not None
                                else np.nan)
            if p.get("val_accuracy") is not None:
                pts["val_it"].append(it)
                pts["val"].append(p["val_accuracy"])
            got = True
        if got:
            self.loss_curve.setData(pts["it"], pts["loss"])
            self.train_curve.setData(pts["it"], pts["train"], connect="finite")
            self.val_curve.setData(pts["val_it"], pts["val"])
            last = f"iteration {pts['it'][-1]}: loss {pts['loss'][-1]:.4f}"
            if pts["val"]:
                last += f", validation {pts['val'][-1]:.1%}"
            self.status.setText(last)

    def _finished(self, out: dict) -> None:
        self.drain()
        self.timer.stop()
        if "weights" in out:
            self.state.set_trained(out["weights"])
            self._store(out["weights"])
        if out.get("error"):
            self.status.setText(f"training failed: {out['error']}")
        else:
            st = out["status"]
            self.status.setText(f"training {st.get('state')}: {self.status.text()}")
        self._buttons(False)

    def _store(self, weights: dict) -> None:
        """With a tag and a network folder, the trained weights are saved there as
        ``<uuid>-<tag>`` files (the Deploy tab's tag chooser lists them)."""
        from app.deploy_view.state import store_weights  # noqa: PLC0415

        tag, folder = self.tag.text().strip(), self.state.editor.folder
        if not tag:
            return
        if folder is None:
            self.message.emit("save the network to keep tagged weights with it")
            return
        self.state.workers.start(store_weights, folder, weights, tag, label="saving weights",
                                 on_done=lambda p: self.message.emit(
                                     f"saved {len(p)} weight files tagged {tag} in {folder}"),
                                 on_error=self.message.emit)

    def _failed(self, msg: str) -> None:
        self.timer.stop()
        self.status.setText(f"cannot train: {msg}")
        self._buttons(False)

    # --------------------------------------------------------------------- evaluation ---
    def evaluate(self) -> None:
        agent = self.state.default_agent()
        if agent is None or self.data.info is None:
            self.eval_text.setText("Evaluate needs a running agent and a dataset")
            return
        spec, content = self.data.info.spec, self.data.test_content()
        desc = self.state.editor.desc

        def run() -> dict:
            from agent.client import AgentClient  # noqa: PLC0415

            with AgentClient(agent.address) as client:
                return client.evaluate(desc, self.state.weights(), spec, **content)
        self.eval_text.setText(f"evaluating on {agent.name}\u2026")
        self.state.workers.start(run, on_done=self._evaluated, label="evaluating",
                                 on_error=lambda m: self.eval_text.setText(f"Evaluate: {m}"))

    def _evaluated(self, ev: dict) -> None:
        self.last_eval = ev
        top3 = f"{ev['top3']:.2%}" if ev.get("top3") is not None else "n/a"
        self.eval_text.setText(f"<b>accuracy {ev['accuracy']:.2%}</b> \u00b7 top-3 {top3} "
                               f"\u00b7 {ev['forward_ms']:.3f} ms per sample \u00b7 "
                               f"{ev['samples']:,} samples")
        self.heat.show()
        m = np.asarray(ev["confusion"], dtype=np.float64)
        norm = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
        self.heat_image.setImage(norm.T, levels=(0, 1))  # ImageItem: axis 0 is x
        labels = ev.get("labels") or [str(i) for i in range(len(m))]
        ticks = [[(i + 0.5, str(lab)) for i, lab in enumerate(labels)]]
        for axis in ("bottom", "left"):
            self.heat.getAxis(axis).setTicks(ticks)
