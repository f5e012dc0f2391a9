"""A canvas to draw a digit with the mouse, and its downscaling to the network's Input.

The drawing is white on black, as MNIST. :func:`to_input` crops the ink, scales it to fit a box
of 20/28 of the Input's size keeping its aspect, and centres it (MNIST's own preparation), so a
digit drawn anywhere on the canvas reaches the network as the training data looked.
"""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

SIZE = 280
PEN = 22


def image_to_array(img: QtGui.QImage) -> np.ndarray:
    """Grey levels of a QImage as float32 in [0, 1], shape (height, width)."""
    img = img.convertToFormat(QtGui.QImage.Format.Format_Grayscale8)
    w, h, stride = img.width(), img.height(), img.bytesPerLine()
    raw = np.frombuffer(img.constBits(), dtype=np.uint8, count=stride * h).reshape(h, stride)
    return raw[:, :w].astype(np.float32) / 255.0


def to_input(img: QtGui.QImage, shape: tuple[int, ...]) -> np.ndarray:
    """The drawing as one Input sample of ``shape`` (C, H, W) or (N,) for a square N."""
    if len(shape) == 3:
        c, h, w = shape
    else:
        side = int(round(np.sqrt(int(np.prod(shape)))))
        c, h, w = 1, side, side
    grey = image_to_array(img)
    ys, xs = np.nonzero(grey > 0.05)
    out = QtGui.QImage(w, h, QtGui.QImage.Format.Format_Grayscale8)
    out.fill(0)
    if len(xs):
        crop = img.copy(int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1),
                        int(ys.max() - ys.min() + 1))
        box = QtCore.QSize(max(1, round(w * 20 / 28)), max(1, round(h * 20 / 28)))
        small = crop.scaled(box, QtCore.Qt.AspectRatioMode.KeepAspectRatio,
                            QtCore.Qt.TransformationMode.SmoothTransformation)
        p = QtGui.QPainter(out)
        p.drawImage((w - small.width()) // 2, (h - small.height()) // 2, small)
        p.end()
    arr = image_to_array(out)
    return np.repeat(arr[None], c, axis=0).reshape(shape).astype(np.float32)


def array_to_pixmap(arr: np.ndarray, scale: int = 4) -> QtGui.QPixmap:
    """A (C, H, W) or (H, W) sample in [0, 1] as a pixmap, ``scale`` pixels per value."""
    a = np.asarray(arr, dtype=np.float32)
    if a.ndim == 3:
        a = a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)
    elif a.ndim == 1:
        side = int(round(np.sqrt(a.size)))
        a = a.reshape(side, side) if side * side == a.size else a[None]
    u8 = np.ascontiguousarray(np.clip(a * 255, 0, 255).astype(np.uint8))
    if u8.ndim == 3:
        img = QtGui.QImage(u8.data, u8.shape[1], u8.shape[0], u8.strides[0],
                           QtGui.QImage.Format.Format_RGB888).copy()
    else:
        img = QtGui.QImage(u8.data, u8.shape[1], u8.shape[0], u8.strides[0],
                           QtGui.QImage.Format.Format_Grayscale8).copy()
    return QtGui.QPixmap.fromImage(img).scaled(img.width() * scale, img.height() * scale)


class DrawCanvas(QtWidgets.QWidget):
    """``drawn`` when a stroke ends."""

    drawn = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFixedSize(SIZE, SIZE)
        self.image = QtGui.QImage(SIZE, SIZE, QtGui.QImage.Format.Format_Grayscale8)
        self.image.fill(0)
        self._last: QtCore.QPointF | None = None
        self.setCursor(QtCore.Qt.CursorShape.CrossCursor)
        self.setToolTip("draw with the mouse; the network sees it when you let go")

    def clear(self) -> None:
        self.image.fill(0)
        self.update()

    def _line(self, a: QtCore.QPointF, b: QtCore.QPointF) -> None:
        p = QtGui.QPainter(self.image)
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        p.setPen(QtGui.QPen(QtGui.QColor(255, 255, 255), PEN, QtCore.Qt.PenStyle.SolidLine,
                            QtCore.Qt.PenCapStyle.RoundCap, QtCore.Qt.PenJoinStyle.RoundJoin))
        p.drawLine(a, b)
        p.end()
        self.update()

    def mousePressEvent(self, e: QtGui.QMouseEvent) -> None:  # noqa: N802
        self._last = e.position()
        self._line(self._last, self._last)

    def mouseMoveEvent(self, e: QtGui.QMouseEvent) -> None:  # noqa: N802
        if self._last is not None:
            self._line(self._last, e.position())
            self._last = e.position()

    def mouseReleaseEvent(self, e: QtGui.QMouseEvent) -> None:  # noqa: N802
        if self._last is not None:
            self._last = None
            self.drawn.emit()

    def paintEvent(self, _e: QtGui.QPaintEvent) -> None:  # noqa: N802
        p = QtGui.QPainter(self)
        p.drawImage(0, 0, self.image)
        p.setPen(QtGui.QColor(90, 90, 90))
        p.drawRect(0, 0, SIZE - 1, SIZE - 1)
        p.end()
