"""The canvas: a NodeGraphQt graph kept in step with a :class:`NetworkEditor` (thin view).

NodeGraphQt would apply mouse gestures to its own model and undo stack. Here its internal
handlers are disconnected from the viewer, and each gesture becomes one editor call instead:
a wire dragged or detached -> ``rewire``, nodes dragged -> ``move``, a node dropped onto a wire
-> splice (``rewire`` + ``move`` as one step), a title edited -> the ``name`` property, a palette
item dropped or picked from the Tab search -> ``add_module``. The editor then reports a
:class:`Change`, and :meth:`Canvas.sync` redraws exactly what it names: nodes, positions, wires
(repairing any wire the viewer removed on its own) and the info text of every node whose shape
changed. A refused edit leaves the editor as it was; the canvas is redrawn from it and
``refused`` carries the reason.
"""

from __future__ import annotations

import html
import logging
import re

from PySide6 import QtCore

from app.editor import nodes as node_defs
from app.editor.model import Change, NetworkEditor
from app.editor.palette import MIME_TYPE, TEXT_PREFIX
from engine.errors import DianneError
from engine.modules import module_class
from engine.shapes import ModuleShape

log = logging.getLogger(__name__)
MIN_ZOOM = 0.6  # below this the node text is unreadable (and NodeGraphQt hides it)


def _shape_text(shape) -> str:
    if shape is None:
        return "?"
    if isinstance(shape, list):
        return ", ".join(_shape_text(s) for s in shape)
    return "x".join(str(d) for d in shape) or "scalar"


def _short(text: str, limit: int = 20) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "\u2026"


_REASONS = (  # the engine's reason -> a few words for the node (the tooltip has it all)
    (re.compile(r"required property '(\w+)' is missing"), "needs {0}"),
    (re.compile(r"not connected to any input"), "no input"),
    (re.compile(r"input from '.*' has no known shape"), "input unknown"),
    (re.compile(r"Input shape unknown"), "set dims"),
    (re.compile(r"part of a cycle"), "in a cycle"),
    (re.compile(r"unknown module type"), "unknown type"),
    (re.compile(r"property '(\w+)' is not a valid"), "bad {0}"),
)


def short_reason(reason: str) -> str:
    for pattern, words in _REASONS:
        m = pattern.search(reason)
        if m:
            return _short(words.format(*m.groups()))
    return _short(reason.split(". Received:")[0], 18)


def info_lines(type_name: str, name: str, res: ModuleShape | None) -> tuple[str, str]:
    """(text under the title, tooltip) for one module: the type when the name differs, then
    the output shape and the parameter count, or a warning and the start of the reason."""
    head = "" if name == type_name else f"{type_name}\n"  # the title already says it
    who = f"<b>{html.escape(name, False)}</b> ({html.escape(type_name, False)})"
    if res is None:
        return head.strip(), who
    if res.error:
        # The engine names the module first ("Linear (uuid): ..."): the tooltip already does.
        reason = res.error.split("): ", 1)[-1] if res.error.startswith(type_name) else \
            res.error
        return (f"{head}\u26a0 {short_reason(reason)}\nhover for details",
                f"{who}<br/><font color='#ff8080'>{html.escape(reason, False)}</font>")
    params = f"{res.params:,} params" if res.params else "no params"
    shape = _shape_text(res.out_shape)
    return (f"{head}\u2192 {shape}\n{params}",
            f"{who}<br/>output {shape}, {res.params:,} parameters, {res.macs:,} MACs")


class Canvas(QtCore.QObject):
    """Owns the NodeGraph; ``widget`` is what goes into the layout."""

    refused = QtCore.Signal(str)
    selection_changed = QtCore.Signal(list)
    module_activated = QtCore.Signal(str)  # double-click on a node: its UUID

    def __init__(self, editor: NetworkEditor, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.editor = editor
        self.graph = node_defs.NodeGraph()
        self.graph.set_acyclic(False)  # the editor decides which cycles are allowed
        self.graph.set_pipe_style(2)  # angled wires, like the original's flowchart connectors
        self._classes = node_defs.node_classes()
        self.graph.register_nodes(list(self._classes.values()))
        self._nodes: dict[str, object] = {}  # DIANNE UUID -> node
        self._uuid: dict[str, str] = {}  # NodeGraphQt node id -> DIANNE UUID
        self._take_over_viewer()
        self.widget = self.graph.widget
        editor.subscribe(self.sync)
        self.sync(Change(set(editor.desc.modules), network=True, reset=True))

    # ------------------------------------------------------------------ viewer plumbing ---
    def _take_over_viewer(self) -> None:
        viewer, g = self.graph.viewer(), self.graph
        for signal, theirs, ours in (
                (viewer.connection_changed, g._on_connection_changed, self._on_connection_changed),
                (viewer.connection_sliced, g._on_connection_sliced, self._on_connection_sliced),
                (viewer.moved_nodes, g._on_nodes_moved, self._on_nodes_moved),
                (viewer.insert_node, g._on_insert_node, self._on_insert_node),
                (viewer.node_name_changed, g._on_node_name_changed, self._on_name_changed),
                (viewer.data_dropped, g._on_node_data_dropped, self._on_data_dropped),
                (viewer.search_triggered, g._on_search_triggered, self._on_search)):
            signal.disconnect(theirs)
            signal.connect(ours)
        viewer.viewport().installEventFilter(self)
        g.node_double_clicked.connect(self._on_double_clicked)
        g.node_selection_changed.connect(lambda *_: self.selection_changed.emit(self.selected()))

    _MOUSE = (QtCore.QEvent.Type.MouseButtonPress, QtCore.QEvent.Type.MouseButtonRelease,
              QtCore.QEvent.Type.MouseMove)

    def eventFilter(self, obj: QtCore.QObject, event: QtCore.QEvent) -> bool:  # noqa: N802
        """NodeGraphQt keeps Shift/Ctrl/Alt states from key events, but on X11 the press of a
        modifier key reports the modifiers from before it (none), so shift-click would not
        extend the selection. Every mouse event carries the true state: take it from there."""
        if event.type() in self._MOUSE:
            mods, viewer = event.modifiers(), self.graph.viewer()
            viewer.SHIFT_state = bool(mods & QtCore.Qt.KeyboardModifier.ShiftModifier)
            viewer.CTRL_state = bool(mods & QtCore.Qt.KeyboardModifier.ControlModifier)
            viewer.ALT_state = bool(mods & QtCore.Qt.KeyboardModifier.AltModifier)
        return False

    def uuid_of(self, node) -> str:
        return self._uuid[node.id]

    def node(self, mid: str):
        return self._nodes[mid]

    def selected(self) -> list[str]:
        return [self._uuid[n.id] for n in self.graph.selected_nodes() if n.id in self._uuid]

    def select(self, ids: list[str]) -> None:
        self.graph.clear_selection()
        for mid in ids:
            if mid in self._nodes:
                self._nodes[mid].set_selected(True)
        self.selection_changed.emit(self.selected())

    def _try(self, action, *args) -> bool:
        try:
            action(*args)
            return True
        except DianneError as exc:
            self.refused.emit(str(exc))
            self.sync(Change(set(self.editor.desc.modules)))  # undo what the viewer drew
            return False

    def _pairs(self, port_pairs) -> list[tuple[str, str]]:
        out = []
        for p1, p2 in port_pairs:
            a, b = (p1, p2) if p1.port_type == "out" else (p2, p1)
            out.append((self._uuid[a.node.id], self._uuid[b.node.id]))
        return out

    def _on_connection_changed(self, disconnected, connected) -> None:
        if disconnected or connected:
            self._try(self.editor.rewire, self._pairs(disconnected), self._pairs(connected))

    def _on_connection_sliced(self, ports) -> None:
        if ports:
            self._try(self.editor.rewire, self._pairs(ports), [])

    def _on_nodes_moved(self, moved) -> None:
        pos = {self._uuid[v.id]: tuple(v.xy_pos) for v in moved if v.id in self._uuid}
        self._try(self.editor.move, pos)

    def _on_insert_node(self, pipe, node_id, prev_pos) -> None:
        """A node dropped onto a wire a -> b: a -> node -> b, and the node stays there."""
        mid = self._uuid.get(node_id)
        a, b = self._pairs([(pipe.output_port, pipe.input_port)])[0]
        if mid is None or mid in (a, b):
            return
        pos = {self._uuid[v.id]: tuple(v.xy_pos) for v in prev_pos if v.id in self._uuid}

        def splice() -> None:
            with self.editor.batch("Insert into a wire"):
                self.editor.rewire([(a, b)], [(a, mid), (mid, b)])
                self.editor.move(pos)
        self._try(splice)

    def _on_name_changed(self, node_id: str, name: str) -> None:
        mid = self._uuid.get(node_id)
        if mid is not None:
            self._try(self.editor.set_properties, mid, {"name": name})

    def _on_data_dropped(self, mime: QtCore.QMimeData, pos) -> None:
        if mime.hasFormat(MIME_TYPE):
            type_name = bytes(mime.data(MIME_TYPE)).decode()
        elif mime.hasText() and mime.text().startswith(TEXT_PREFIX):
            type_name = mime.text()[len(TEXT_PREFIX):]
        else:
            return
        self.add_at(type_name, (pos.x(), pos.y()))

    def _on_search(self, node_type: str, pos) -> None:
        self.add_at(node_type.rsplit(".", 1)[-1], tuple(pos))

    def add_at(self, type_name: str, pos) -> str | None:
        """Add a module at a scene position (the palette's drop and double-click)."""
        added: list[str] = []
        ok = self._try(lambda: added.append(self.editor.add_module(type_name, pos)))
        if ok:
            self.select(added)
        return added[0] if added else None

    def _on_double_clicked(self, node) -> None:
        if node is not None and node.id in self._uuid:
            self.module_activated.emit(self._uuid[node.id])

    def view_center(self) -> tuple[float, float]:
        viewer = self.graph.viewer()
        c = viewer.mapToScene(viewer.viewport().rect().center())
        return c.x(), c.y()

    def _ensure_class(self, type_name: str) -> None:
        """A node class for a type registered after the canvas was made (a composite found on
        first use, or just made by grouping); NodeGraphQt drops unregistered node types."""
        if type_name in self._classes:
            return
        try:
            category = module_class(type_name).category
        except DianneError:
            return  # unknown: drawn with the stand-in
        cls = self._classes[type_name] = node_defs.make_class(type_name, category)
        self.graph.register_node(cls)

    # ---------------------------------------------------------------------------- sync ---
    def sync(self, change: Change) -> None:
        """Redraw what ``change`` names (everything on a reset)."""
        desc = self.editor.desc
        if change.reset:
            for node in list(self._nodes.values()):
                self.graph.remove_node(node, push_undo=False)
            self._nodes.clear()
            self._uuid.clear()
        touched = set(change.modules) | (set(desc.modules) if change.reset else set())
        shown = self.editor.display_positions() if touched else {}
        for mid in touched:
            md = desc.modules.get(mid)
            node = self._nodes.get(mid)
            if md is not None:
                self._ensure_class(md.type)
            if node is not None and (md is None or node.type_ != node_defs.node_type(md.type)):
                self.graph.remove_node(node, push_undo=False)
                del self._nodes[mid]
                del self._uuid[node.id]
                node = None
            if md is None:
                continue
            if node is None:
                node = self.graph.create_node(node_defs.node_type(md.type), selected=False,
                                              push_undo=False)
                node.set_property("dianne_id", mid, push_undo=False)
                self._nodes[mid] = node
                self._uuid[node.id] = mid
            name = md.name
            if node.model.name != name:
                node.model.name = name
                node.view.name = name
            x, y = shown[mid]
            if list(node.view.xy_pos) != [x, y]:
                node.model.pos = [float(x), float(y)]
                node.view.xy_pos = [float(x), float(y)]
        wired = set(touched)
        for mid in touched:
            md = desc.modules.get(mid)
            if md is not None:
                wired.update(md.prev)
        self._sync_wires(wired)
        self._sync_info()

    def _sync_wires(self, ids: set[str]) -> None:
        desc, viewer = self.editor.desc, self.graph.viewer()
        for mid in ids:
            node, md = self._nodes.get(mid), desc.modules.get(mid)
            if node is None or md is None or not node.output_ports():
                continue
            out = node.output_ports()[0]
            want = [self._nodes[n] for n in dict.fromkeys(md.next) if n in self._nodes]
            want_ports = [n.input_ports()[0] for n in want if n.input_ports()]
            for port in out.connected_ports():
                if port not in want_ports:
                    out.disconnect_from(port, push_undo=False, emit_signal=False)
            have = out.connected_ports()
            for port in want_ports:
                if port not in have:
                    out.connect_to(port, push_undo=False, emit_signal=False)
                pipes = [p for p in out.view.connected_pipes if p.input_port is port.view]
                if not pipes:  # the viewer deleted the pipe item during a refused drag
                    viewer.establish_connection(out.view, port.view)

    def _sync_info(self) -> None:
        shapes = self.editor.shapes
        for mid, node in self._nodes.items():
            md = self.editor.desc.modules[mid]
            res = shapes.modules.get(mid)
            text, tip = info_lines(md.type, md.name, res)
            view = node.view
            if res is not None and res.error:
                color, border = (*node_defs.ERROR_COLOR, 255), node_defs.ERROR_BORDER
            else:
                color = (*node_defs.CATEGORY_COLORS.get(node.CATEGORY, (80, 80, 80)), 255)
                border = node_defs.NORMAL_BORDER
            if tuple(view.color) != color or tuple(view.border_color) != border:
                node.model.color = view.color = color
                node.model.border_color = view.border_color = border
                view.update()
            view.set_info(text, tip)

    def fit(self) -> None:
        """Show the network: all of it when that is readable (zoom between MIN_ZOOM and 100 %),
        else its start (inputs are on the left) at MIN_ZOOM; pan or zoom for the rest."""
        if not self._nodes:
            return
        viewer = self.graph.viewer()
        rect = viewer._combined_rect([n.view for n in self._nodes.values()])  # noqa: SLF001
        rect.adjust(-40, -40, 40, 40)
        port = viewer.viewport().size()
        pw, ph = max(port.width(), 1), max(port.height(), 1)
        scale = max(MIN_ZOOM, min(1.0, pw / rect.width(), ph / rect.height()))
        view = QtCore.QRectF(0, 0, pw / scale, ph / scale)
        view.moveCenter(rect.center())
        if rect.width() > view.width():
            view.moveLeft(rect.left())
        if rect.height() > view.height():
            view.moveTop(rect.top())
        # NodeGraphQt's viewer shows exactly its _scene_range (it has no public setter).
        viewer._scene_range = view  # noqa: SLF001
        viewer._update_scene()  # noqa: SLF001
