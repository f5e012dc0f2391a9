"""NodeGraphQt node classes for DIANNE module types, generated from the engine registry.

NodeGraphQt silently drops node types it has not registered, so every registered DIANNE type
gets a class (``dianne.modules.<Type>``), plus one stand-in for types this build does not know
(a file may name a composite or a newer type; it must still be shown and saved unchanged).

A node shows the module's name as its title and, below it, the type, the output shape and the
parameter count. Ports carry no labels: one input on the left (absent on Input) and one output
on the right (absent on Output). NodeGraphQt's own connection rules are switched off (every
port accepts several wires): the editor model decides and explains refusals.
"""

from __future__ import annotations

from app.editor import qt_compat

qt_compat.ensure()

from NodeGraphQt import BaseNode, NodeGraph  # noqa: E402, F401 (NodeGraph: for canvas.py)
from NodeGraphQt.qgraphics.node_base import NodeItem  # noqa: E402
from PySide6 import QtCore, QtGui, QtWidgets  # noqa: E402

from engine.modules import REGISTRY  # noqa: E402

IDENTIFIER = "dianne.modules"
UNKNOWN = "UnknownModule"

# Dark, saturated fills that keep white text readable; one per DIANNE category.
CATEGORY_COLORS = {
    "Input-Output": (46, 110, 60), "Layer": (35, 84, 150), "Activation": (150, 86, 20),
    "Fork": (104, 52, 140), "Join": (20, 112, 120), "Preprocessing": (96, 74, 58),
    "Regularization": (78, 96, 110), "Variational": (120, 60, 90), "Composite": (140, 40, 80),
    "Memory": (110, 110, 40),
}
ERROR_COLOR = (170, 30, 30)
ERROR_BORDER = (255, 90, 90, 255)
NORMAL_BORDER = (30, 30, 30, 255)
INFO_COLOR = QtGui.QColor(225, 225, 225)
MIN_WIDTH, MIN_HEIGHT = 104.0, 48.0
INFO_MARGIN = 24.0


class DianneNodeItem(NodeItem):
    """NodeItem with an info block (type, output shape, parameters) under the title."""

    def __init__(self, name: str = "node", parent: QtWidgets.QGraphicsItem | None = None) -> None:
        super().__init__(name, parent)
        self._info_item = QtWidgets.QGraphicsTextItem("", self)
        font = QtGui.QFont(self._info_item.font())
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.95))
        self._info_item.setFont(font)
        self._info_item.setDefaultTextColor(INFO_COLOR)
        self._info_item.setAcceptedMouseButtons(QtCore.Qt.MouseButton.NoButton)
        self.dianne_tooltip = ""
        # NodeGraphQt hides the text of nodes narrower than 70 screen px ("proxy mode"); ours
        # are 104 px wide, so at the canvas's 60 % minimum fit zoom titles would vanish.
        self._proxy_mode_threshold = 45

    def set_proxy_mode(self, mode: bool) -> None:
        super().set_proxy_mode(mode)
        self._info_item.setVisible(not mode)

    def set_info(self, text: str, tooltip: str) -> None:
        item = self._info_item
        if text != item.toPlainText():
            old_lines, old_w = item.toPlainText().count("\n"), item.boundingRect().width()
            item.setTextWidth(-1)
            item.setPlainText(text)
            item.document().setDefaultTextOption(
                QtGui.QTextOption(QtCore.Qt.AlignmentFlag.AlignHCenter))
            new_w = item.boundingRect().width()
            item.setTextWidth(new_w)
            shaped_by_info = old_w + INFO_MARGIN >= self._width - 1
            if (text.count("\n") == old_lines and new_w + INFO_MARGIN <= self._width
                    and not (shaped_by_info and new_w < old_w)):
                # Same height, fits the node: recentre only. A full draw_node moves every
                # port and redraws its wires; after an edit that reaches 150 nodes, that
                # would be most of the edit's time.
                item.setX((self._width - new_w) / 2)
            else:
                self.draw_node()
        self.dianne_tooltip = tooltip
        self.setToolTip(tooltip)

    def info_text(self) -> str:
        return self._info_item.toPlainText()

    def _tooltip_disable(self, state: bool) -> None:  # NodeItem would overwrite our tooltip
        self.setToolTip(self.dianne_tooltip)

    def _set_base_size(self, add_w: float = 0.0, add_h: float = 0.0) -> None:
        # NodeGraphQt's minimum is 160 px wide: too wide for the original's 170 px grid.
        width, height = self.calc_size(add_w, add_h)
        self._width, self._height = max(width, MIN_WIDTH), max(height, MIN_HEIGHT)

    def _calc_size_horizontal(self) -> tuple[float, float]:
        width, height = super()._calc_size_horizontal()
        info = self._info_item.boundingRect()
        return max(width, info.width() + INFO_MARGIN), max(height, info.height() + 6.0)

    def _align_ports_horizontal(self, v_offset: float) -> None:
        # One port a side, at the middle of the info block rather than under the title; placed
        # once, so an unchanged node does not move its ports (which would redraw its wires).
        ports = [p for p in list(self.inputs) + list(self.outputs) if p.isVisible()]
        if ports:
            port_h = ports[0].boundingRect().height()
            v_offset += (self._height - v_offset - port_h) / 2
        super()._align_ports_horizontal(v_offset)

    def _draw_node_horizontal(self) -> None:
        super()._draw_node_horizontal()
        info = self._info_item.boundingRect()
        title_h = self._text_item.boundingRect().height() + 4.0
        self._info_item.setPos((self._width - info.width()) / 2, title_h)


class DianneNode(BaseNode):
    """Base of the generated classes; ``DIANNE_TYPE`` names the module type."""

    __identifier__ = IDENTIFIER
    NODE_NAME = "Module"
    DIANNE_TYPE = ""
    CATEGORY = "Layer"

    def __init__(self) -> None:
        super().__init__(qgraphics_item=DianneNodeItem)
        if self.DIANNE_TYPE != "Input":
            self.add_input("in", multi_input=True, display_name=False)
        if self.DIANNE_TYPE != "Output":
            self.add_output("out", multi_output=True, display_name=False)
        # The DIANNE UUID: NodeGraphQt's own node ids change with every session.
        self.create_property("dianne_id", "")
        self.model.color = (*CATEGORY_COLORS.get(self.CATEGORY, (80, 80, 80)), 255)
        self.view.color = self.model.color

    @property
    def dianne_id(self) -> str:
        return self.get_property("dianne_id")


def make_class(type_name: str, category: str) -> type[DianneNode]:
    return type(type_name, (DianneNode,), {"NODE_NAME": type_name, "DIANNE_TYPE": type_name,
                                           "CATEGORY": category})


def node_classes() -> dict[str, type[DianneNode]]:
    """One class per registered type, plus the stand-in; keyed by DIANNE type name."""
    classes = {name: make_class(name, cls.category) for name, cls in REGISTRY.items()}
    classes[UNKNOWN] = make_class(UNKNOWN, "Composite")
    return classes


def node_type(type_name: str) -> str:
    """The NodeGraphQt type string for a DIANNE type (the stand-in for unknown types)."""
    return f"{IDENTIFIER}.{type_name if type_name in REGISTRY else UNKNOWN}"
