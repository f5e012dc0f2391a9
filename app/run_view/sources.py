"""The Run tab's inputs: drawing, image file, dataset sample browser, camera.

Each source turns its input into one sample of the network's Input shape and emits it with
``sample(array, stream)``; the Run tab sends it to the agents. The camera needs Qt Multimedia,
which the PySide6-Essentials wheels do not include: the page says so instead of pretending.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
from PySide6 import QtCore, QtWidgets

from app.run_view.draw import DrawCanvas, array_to_pixmap, to_input


def camera_status() -> str:
    """Why there is no camera input, or '' when Qt Multimedia finds a camera."""
    try:
        from PySide6 import QtMultimedia  # noqa: PLC0415
    except ImportError:
        return ("No camera input: this PySide6 has no Qt Multimedia module (the "
                "PySide6-Essentials wheels leave it out; the full PySide6 package has it).")
    if not QtMultimedia.QMediaDevices.videoInputs():
        return "No camera input: Qt Multimedia finds no camera on this computer."
    return ""


class Sources(QtWidgets.QTabWidget):
    sample = QtCore.Signal(object, bool)  # (C,H,W) array, part of a stream
    message = QtCore.Signal(str)

    def __init__(self, workers: Any, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.workers = workers
        self.shape: tuple[int, ...] = (1, 28, 28)
        self.dataset: Any = None
        self.index = 0
        self.true_label = ""
        self._build_draw()
        self._build_image()
        self._build_dataset()
        self.camera = QtWidgets.QLabel(camera_status() or "A camera is present (streaming "
                                       "camera frames is not part of this version).")
        self.camera.setWordWrap(True)
        self.camera.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.addTab(self.camera, "Camera")
        self.play_timer = QtCore.QTimer(self, interval=200)
        self.play_timer.timeout.connect(lambda: self.step(1, stream=True))

    # --------------------------------------------------------------------------- draw ---
    def _build_draw(self) -> None:
        page = QtWidgets.QWidget()
        self.canvas = DrawCanvas()
        self.preview = QtWidgets.QLabel()
        self.preview.setFixedSize(28 * 4, 28 * 4)
        clear = QtWidgets.QPushButton("Clear")
        clear.clicked.connect(self.canvas.clear)
        self.canvas.drawn.connect(self.send_drawing)
        grid = QtWidgets.QGridLayout(page)
        grid.addWidget(self.canvas, 0, 0, 3, 1)
        grid.addWidget(QtWidgets.QLabel("what the network sees:"), 0, 1)
        grid.addWidget(self.preview, 1, 1)
        grid.addWidget(clear, 2, 1)
        self.addTab(page, "Draw")

    def send_drawing(self) -> None:
        x = to_input(self.canvas.image, self.shape)
        self.preview.setPixmap(array_to_pixmap(x, max(1, 112 // max(self.shape[-1], 1))))
        self.sample.emit(x, False)

    # -------------------------------------------------------------------------- image ---
    def _build_image(self) -> None:
        page = QtWidgets.QWidget()
        self.image_view = QtWidgets.QLabel("no image")
        self.image_view.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        pick = QtWidgets.QPushButton("Open image\u2026")
        pick.clicked.connect(self._pick_image)
        lay = QtWidgets.QVBoxLayout(page)
        lay.addWidget(pick)
        lay.addWidget(self.image_view, 1)
        self.addTab(page, "Image")

    def _pick_image(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Image", "", "Images (*.png *.jpg *.jpeg *.bmp *.gif *.pgm *.ppm)")
        if path:
            self.open_image(path)

    def open_image(self, path: str) -> None:
        from pathlib import Path  # noqa: PLC0415

        from app.commands import load_image  # noqa: PLC0415

        def done(x: np.ndarray) -> None:
            self.image_view.setPixmap(array_to_pixmap(x, max(1, 224 // max(self.shape[-1], 1))))
            self.sample.emit(x, False)
        self.workers.start(load_image, Path(path), self.shape, on_done=done,
                           on_error=self.message.emit, label=f"reading {path}")

    # ------------------------------------------------------------------------ dataset ---
    def _build_dataset(self) -> None:
        page = QtWidgets.QWidget()
        self.spec = QtWidgets.QLineEdit("mnist")
        self.spec.setToolTip("a dataset spec: mnist, mnist:DIR, images:DIR, FILE.json, ...")
        self.spec.editingFinished.connect(lambda: self.open_dataset(self.spec.text().strip()))
        self.sample_view = QtWidgets.QLabel()
        self.sample_view.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.sample_view.setMinimumSize(140, 140)
        self.sample_info = QtWidgets.QLabel("no dataset")
        buttons = QtWidgets.QHBoxLayout()
        for text, slot in (("\u25c0 Previous", lambda: self.step(-1)),
                           ("Random", self.random_sample), ("Next \u25b6", lambda: self.step(1))):
            b = QtWidgets.QPushButton(text)
            b.clicked.connect(slot)
            buttons.addWidget(b)
        self.play = QtWidgets.QCheckBox("Play (5 samples/s, plotted over time)")
        self.play.toggled.connect(lambda on: self.play_timer.start() if on else
                                  self.play_timer.stop())
        lay = QtWidgets.QVBoxLayout(page)
        lay.addWidget(self.spec)
        lay.addWidget(self.sample_view, 1)
        lay.addWidget(self.sample_info)
        lay.addLayout(buttons)
        lay.addWidget(self.play)
        self.addTab(page, "Dataset")

    def open_dataset(self, spec: str) -> None:
        from engine.datasets.spec import open_dataset  # noqa: PLC0415

        def done(ds: Any) -> None:
            self.dataset, self.index = ds, 0
            self.sample_info.setText(f"{spec}: {len(ds):,} samples")
        self.workers.start(open_dataset, spec, on_done=done, on_error=self.message.emit,
                           label=f"opening {spec}")

    def random_sample(self) -> None:
        if self.dataset is not None:
            self.show_sample(random.randrange(len(self.dataset)))

    def step(self, delta: int, stream: bool = False) -> None:
        if self.dataset is not None:
            self.show_sample((self.index + delta) % len(self.dataset), stream)

    def show_sample(self, i: int, stream: bool = False) -> None:
        ds = self.dataset
        self.index = i
        x = np.asarray(ds.input(i), dtype=np.float32)
        labels = ds.labels or []
        t = ds.target_index(i)
        self.true_label = labels[t] if t < len(labels) else str(t)
        self.sample_view.setPixmap(array_to_pixmap(x, max(1, 140 // max(x.shape[-1], 1))))
        self.sample_info.setText(f"sample {i:,} of {len(ds):,} \u00b7 true label "
                                 f"<b>{self.true_label}</b>")
        if x.size == int(np.prod(self.shape)):
            x = x.reshape(self.shape)
        self.sample.emit(x, stream)
