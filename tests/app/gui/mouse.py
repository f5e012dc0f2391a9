"""Driving the Build tab the way a person does: real mouse events on the canvas viewport, and
drop events for palette drags (a real QDrag does nothing offscreen)."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

LEFT = QtCore.Qt.MouseButton.LeftButton
NOMOD = QtCore.Qt.KeyboardModifier.NoModifier


def _viewport(build):
    viewer = build.canvas.graph.viewer()
    return viewer, viewer.viewport()


def _point(build, item) -> QtCore.QPoint:
    viewer, _ = _viewport(build)
    return viewer.mapFromScene(item.sceneBoundingRect().center())


def _send(vp, kind, p: QtCore.QPoint, button=LEFT, buttons=LEFT, modifier=NOMOD) -> None:
    pt = QtCore.QPointF(p)
    ev = QtGui.QMouseEvent(kind, pt, QtCore.QPointF(vp.mapToGlobal(p)), button, buttons,
                           modifier)
    QtWidgets.QApplication.sendEvent(vp, ev)


def _click(vp, p: QtCore.QPoint, double: bool = False, modifier=NOMOD) -> None:
    """The events of a real click (press, release) or double click (press, release,
    double-click, release); QTest.mouseDClick leaves the scene's mouse grabber set."""
    E = QtCore.QEvent.Type
    NONE = QtCore.Qt.MouseButton.NoButton
    _send(vp, E.MouseMove, p, NONE, NONE, modifier)
    _send(vp, E.MouseButtonPress, p, modifier=modifier)
    _send(vp, E.MouseButtonRelease, p, buttons=NONE, modifier=modifier)
    if double:
        _send(vp, E.MouseButtonDblClick, p, modifier=modifier)
        _send(vp, E.MouseButtonRelease, p, buttons=NONE, modifier=modifier)
    QtWidgets.QApplication.processEvents()


def _drag(build, p1: QtCore.QPoint, p2: QtCore.QPoint, steps: int = 8) -> None:
    _, vp = _viewport(build)
    E = QtCore.QEvent.Type
    NONE = QtCore.Qt.MouseButton.NoButton
    _send(vp, E.MouseMove, p1, NONE, NONE)
    _send(vp, E.MouseButtonPress, p1)
    for i in range(1, steps + 1):
        _send(vp, E.MouseMove, p1 + (p2 - p1) * (i / steps), NONE, LEFT)
    _send(vp, E.MouseButtonRelease, p2, buttons=NONE)
    QtWidgets.QApplication.processEvents()


def drag_wire(build, src: str, dst: str) -> None:
    """Press on ``src``'s output port, drag to ``dst``'s input port, release."""
    canvas = build.canvas
    out_view = canvas.node(src).output_ports()[0].view
    in_view = canvas.node(dst).input_ports()[0].view
    _drag(build, _point(build, out_view), _point(build, in_view))


def drag_node(build, mid: str, dx: int, dy: int) -> None:
    """Drag a node by its title bar."""
    view = build.canvas.node(mid).view
    viewer, _ = _viewport(build)
    top = view.sceneBoundingRect().topLeft() + QtCore.QPointF(view.boundingRect().width() / 2, 6)
    p1 = viewer.mapFromScene(top)
    _drag(build, p1, p1 + QtCore.QPoint(dx, dy))


def double_click_node(build, mid: str) -> None:
    """Double-click the node body (not its title, which starts renaming)."""
    view = build.canvas.node(mid).view
    viewer, vp = _viewport(build)
    rect = view.sceneBoundingRect()
    _click(vp, viewer.mapFromScene(QtCore.QPointF(rect.center().x(), rect.bottom() - 8)),
           double=True)


def click_node(build, mid: str, shift: bool = False) -> None:
    """Click a node; with ``shift`` toggle it in the selection."""
    view = build.canvas.node(mid).view
    viewer, vp = _viewport(build)
    rect = view.sceneBoundingRect()
    _click(vp, viewer.mapFromScene(QtCore.QPointF(rect.center().x(), rect.bottom() - 8)),
           modifier=QtCore.Qt.KeyboardModifier.ShiftModifier if shift else NOMOD)


def drop_from_palette(build, type_name: str, at: QtCore.QPoint) -> None:
    """What dragging a palette entry onto the canvas delivers: the palette's own MIME data in
    drag-enter, drag-move and drop events at viewport point ``at``."""
    mime = build.palette.tree.mimeData([build.palette.item(type_name)])
    _, vp = _viewport(build)
    pos = QtCore.QPointF(at)
    action = QtCore.Qt.DropAction.CopyAction
    buttons = QtCore.Qt.MouseButton.LeftButton
    for ev in (QtGui.QDragEnterEvent(pos, action, mime, buttons, NOMOD),
               QtGui.QDragMoveEvent(pos, action, mime, buttons, NOMOD),
               QtGui.QDropEvent(pos, action, mime, buttons, NOMOD)):
        QtWidgets.QApplication.sendEvent(vp, ev)
    QtWidgets.QApplication.processEvents()


def canvas_point(build, fx: float, fy: float) -> QtCore.QPoint:
    """A viewport point at fractions of the canvas size."""
    _, vp = _viewport(build)
    return QtCore.QPoint(int(vp.width() * fx), int(vp.height() * fy))
