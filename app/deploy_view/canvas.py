"""The Deploy tab's canvas: the Build tab's :class:`Canvas` over the same editor, read-only,
with every module tinted by the colour of its agent and its deployment state under its info.

Structure gestures (wiring, renaming, dropping modules, moving boxes) are refused with a hint
and redrawn from the editor, so the network cannot change from this view; selecting works.
"""

from __future__ import annotations

from app.editor.canvas import Canvas, info_lines
from app.editor.model import Change

UNASSIGNED = (70, 70, 70)
READ_ONLY = "the Deploy tab shows the structure read-only: edit the network in the Build tab"


class PlacementCanvas(Canvas):
    def __init__(self, editor, parent=None) -> None:
        self.tint: dict[str, tuple[tuple[int, int, int], str]] = {}  # uuid -> (rgb, state)
        super().__init__(editor, parent)

    def _refuse(self, *_args) -> None:
        self.refused.emit(READ_ONLY)
        self.sync(Change(set(self.editor.desc.modules)))

    _on_connection_changed = _on_connection_sliced = _on_insert_node = _refuse
    _on_name_changed = _on_data_dropped = _on_search = _refuse

    def _on_nodes_moved(self, moved) -> None:
        self.sync(Change(set(self.editor.desc.modules)))  # boxes go back to where Build has them

    def add_at(self, type_name, pos):
        self._refuse()
        return None

    def set_tint(self, tint: dict[str, tuple[tuple[int, int, int], str]]) -> None:
        self.tint = dict(tint)
        self._sync_info()

    def _sync_info(self) -> None:
        """Like the Build canvas's, with the agent's colour and the state line (each node's
        text is set once, so unchanged nodes are not re-laid out)."""
        shapes = self.editor.shapes
        for mid, node in self._nodes.items():
            md = self.editor.desc.modules[mid]
            text, tip = info_lines(md.type, md.name, shapes.modules.get(mid))
            rgb, state = self.tint.get(mid, (UNASSIGNED, ""))
            view = node.view
            color = (*rgb, 255)
            if tuple(view.color) != color:
                node.model.color = view.color = color
                view.update()
            view.set_info(f"{text}\n\u25cf {state}" if state else text, tip)

    def state_text(self, mid: str) -> str:
        """The state line shown under a module (for tests and screenshots)."""
        text = self._nodes[mid].view.info_text()
        return text.split("\n\u25cf ")[1] if "\n\u25cf " in text else ""
