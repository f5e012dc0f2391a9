"""Layout shared by the tabs: a control column on the left, a stack of views on the right."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6 import QtCore, QtWidgets


def side_by_side(owner: QtWidgets.QWidget, left: QtWidgets.QWidget,
                 right: Sequence[QtWidgets.QWidget], sizes: Sequence[int],
                 right_sizes: Sequence[int] | None = None) -> QtWidgets.QSplitter:
    """Fill ``owner`` with ``left`` beside the ``right`` widgets stacked vertically, both in
    splitters the user can drag (initial widths ``sizes``, heights ``right_sizes``)."""
    stack = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
    for widget in right:
        stack.addWidget(widget)
    if right_sizes:
        stack.setSizes(list(right_sizes))
    split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
    split.addWidget(left)
    split.addWidget(stack)
    split.setSizes(list(sizes))
    outer = QtWidgets.QVBoxLayout(owner)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(split)
    return split
