"""The Build tab driven like a person would: palette drops, wires dragged with the mouse,
property dialogs filled in and confirmed; then saved, reopened and compared."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from app.editor import nodes as node_defs
from app.editor.document import open_folder, serialize
from app.examples import examples_dir
from engine.modules import CATEGORIES, module_types
from engine.shapes import infer_shapes
from tests.app.gui.mouse import (
    canvas_point,
    click_node,
    double_click_node,
    drag_node,
    drag_wire,
    drop_from_palette,
)

LENET = [  # (type, properties typed into the dialog), in data-flow order
    ("Input", {"dims": "1,28,28"}),
    ("Convolution", {"noInputPlanes": "1", "noOutputPlanes": "6", "kernelWidth": "5",
                     "kernelHeight": "5", "padX": "2", "padY": "2"}),
    ("ReLU", {}), ("MaxPooling", {"width": "2", "height": "2"}),
    ("Convolution", {"noInputPlanes": "6", "noOutputPlanes": "16", "kernelWidth": "5",
                     "kernelHeight": "5"}),
    ("ReLU", {}), ("MaxPooling", {"width": "2", "height": "2"}),
    ("Linear", {"input": "400", "output": "120"}), ("ReLU", {}),
    ("Linear", {"input": "120", "output": "84"}), ("ReLU", {}),
    ("Linear", {"input": "84", "output": "10"}), ("LogSoftmax", {}),
    ("Output", {"labels": "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"}),
]


def fill_dialog(qtbot, build, mid: str, values: dict[str, str]) -> None:
    double_click_node(build, mid)
    dialog = build.dialog
    assert dialog is not None and dialog.isVisible() and dialog.mid == mid
    for key, value in values.items():
        editor = dialog.form.editors[key]
        editor.clear()
        qtbot.keyClicks(editor, value)
    qtbot.mouseClick(dialog.ok_button(), QtCore.Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()


def test_build_lenet_with_the_mouse_save_reopen_compare(qtbot, window, tmp_path):
    build, editor = window.build, window.editor
    for i, (type_name, _) in enumerate(LENET):
        drop_from_palette(build, type_name, canvas_point(build, 0.1 + 0.12 * (i % 7),
                                                         0.3 + 0.4 * (i // 7)))
    ids = list(editor.desc.modules)
    assert [editor.module(m).type for m in ids] == [t for t, _ in LENET]
    window.build.auto_layout()  # Ctrl+L
    for a, b in zip(ids, ids[1:], strict=False):
        drag_wire(build, a, b)
    assert editor.edges() == list(zip(ids, ids[1:], strict=False))
    for mid, (_, values) in zip(ids, LENET, strict=True):
        if values:
            fill_dialog(qtbot, build, mid, values)
    shapes = editor.shapes
    assert not shapes.errors and shapes.params == 61706
    assert "61,706 parameters" in window.totals_label.text()
    assert "\u2192 16x5x5" in build.canvas.node(ids[6]).view.info_text()
    # Same shapes, parameters and MACs as the bundled LeNet written by tools/make_examples.
    reference = infer_shapes(open_folder(examples_dir() / "lenet").desc)
    assert [(r.type, r.out_shape, r.params, r.macs) for r in shapes.modules.values()] == \
        [(r.type, r.out_shape, r.params, r.macs) for r in reference.modules.values()]

    folder = tmp_path / "my-lenet"
    with qtbot.waitSignal(window.saved, timeout=5000):
        window.save_to(folder)
    assert not editor.dirty and editor.desc.name == "my-lenet"
    saved = {n: (folder / n).read_bytes() for n in ("modules.txt", "layout.txt")}
    before = editor.desc.copy()
    positions = dict(editor.positions)
    editor.replace(None)
    with qtbot.waitSignal(window.loaded, timeout=5000):
        window.open_folder(folder)
    assert editor.desc.modules == before.modules and editor.positions == positions
    assert len(build.canvas.graph.all_nodes()) == len(LENET)
    assert {n.get_property("dianne_id") for n in build.canvas.graph.all_nodes()} == set(ids)
    texts = serialize(editor.desc, editor.layout, editor.display_positions(), editor.known_ids)
    assert (texts[0].encode(), texts[1].encode()) == (saved["modules.txt"], saved["layout.txt"])


def test_every_module_type_dialog_opens_and_accepts_its_defaults(qtbot, build):
    editor = build.editor
    for info in module_types():
        mid = build.add_from_palette(info.type_name)
        depth = editor.undo_stack.index
        dialog = build.open_properties(mid)
        form = dialog.form
        assert [f.key for f in form.fields] == ["name"] + [p.name for p in info.props]
        for p in info.props:
            label = form.layout().labelForField(form.layout().itemAt(
                [f.key for f in form.fields].index(p.name), QtWidgets.QFormLayout.ItemRole
                .FieldRole).layout())
            assert label.text().endswith(" *") == p.required
        assert dialog.ok_button().isEnabled()
        qtbot.mouseClick(dialog.ok_button(), QtCore.Qt.MouseButton.LeftButton)
        assert not dialog.isVisible() and dialog.result() == QtWidgets.QDialog.DialogCode.Accepted
        assert editor.undo_stack.index == depth  # defaults accepted: nothing changed
    assert len(editor.desc.modules) == len(module_types())


def test_dialog_validates_each_field_and_refuses_bad_values(qtbot, build):
    mid = build.add_from_palette("Convolution")
    dialog = build.open_properties(mid)
    form = dialog.form
    assert "required" in form.messages["noInputPlanes"].text()
    assert dialog.problem.text() == ""  # a missing value is the field's message, not twice
    for key, value in (("noInputPlanes", "3"), ("noOutputPlanes", "8"), ("kernelWidth", "0")):
        qtbot.keyClicks(form.editors[key], value)
    assert "kernel sizes and strides must be positive" in dialog.problem.text()  # the engine
    assert dialog.ok_button().isEnabled()  # a module may be left incomplete (drawn red)
    form.editors["kernelWidth"].clear()
    qtbot.keyClicks(form.editors["strideX"], "two")
    assert "must be an integer" in form.messages["strideX"].text()
    assert form.messages["strideX"].isVisibleTo(dialog)
    assert not dialog.ok_button().isEnabled()
    form.editors["strideX"].clear()
    form.set_text("pad", "true")
    qtbot.keyClicks(form.editors["kernelWidth"], "3")
    assert dialog.problem.text() == "" and dialog.ok_button().isEnabled()
    qtbot.mouseClick(dialog.ok_button(), QtCore.Qt.MouseButton.LeftButton)
    props = build.editor.module(mid).properties
    assert props["pad"] == "true" and props["kernelWidth"] == "3" and "strideX" not in props


def test_refused_connection_explains_and_leaves_the_canvas_as_it_was(qtbot, window):
    build, editor = window.build, window.editor
    a = build.canvas.add_at("Linear", (0, 0))
    b = build.canvas.add_at("ReLU", (250, 0))
    c = build.canvas.add_at("Sigmoid", (250, 150))
    build.canvas.fit()
    drag_wire(build, a, b)
    drag_wire(build, a, c)
    assert editor.edges() == [(a, b)]
    assert "only Fork modules" in window.statusBar().currentMessage()
    assert [p.node().get_property("dianne_id")
            for p in build.canvas.node(a).output_ports()[0].connected_ports()] == [b]
    assert len(build.canvas.node(a).output_ports()[0].view.connected_pipes) == 1


def test_a_module_that_cannot_be_inferred_is_red_with_the_reason(build):
    mid = build.add_from_palette("Linear")
    view = build.canvas.node(mid).view
    assert tuple(view.color[:3]) == node_defs.ERROR_COLOR
    assert "required property 'input' is missing" in view.toolTip()
    build.editor.set_properties(mid, {"input": "3", "output": "2"})
    inp = build.add_from_palette("Input")
    build.editor.set_properties(inp, {"dims": "3"})
    build.editor.connect(inp, mid)
    assert tuple(view.color[:3]) == node_defs.CATEGORY_COLORS["Layer"]
    assert "8 parameters" in view.toolTip() and "\u2192 2" in view.info_text()


def test_copy_paste_duplicate_move_delete_and_undo_each(qtbot, window):
    build, editor = window.build, window.editor
    inp, lin = build.canvas.add_at("Input", (0, 0)), build.canvas.add_at("Linear", (200, 0))
    editor.connect(inp, lin)
    build.canvas.fit()
    click_node(build, inp)
    click_node(build, lin, shift=True)
    assert sorted(build.canvas.selected()) == sorted([inp, lin])
    build.copy()
    build.paste()
    new = build.canvas.selected()
    assert len(new) == 2 and not set(new) & {inp, lin}
    assert len(editor.edges()) == 2 and len(build.canvas.graph.all_nodes()) == 4
    build.duplicate()
    assert len(editor.desc.modules) == 6
    x0, y0 = editor.positions[inp]
    build.canvas.select([])
    drag_node(build, inp, 60, 30)
    assert editor.positions[inp] != (x0, y0)
    assert list(build.canvas.node(inp).view.xy_pos) == list(editor.positions[inp])
    build.canvas.select([lin])
    build.delete()
    assert lin not in editor.desc.modules and len(build.canvas.graph.all_nodes()) == 5
    for expected in (6, 6, 4, 2):  # undo delete, move, duplicate, paste
        build.undo()
        assert len(editor.desc.modules) == expected
    assert editor.positions[inp] == (x0, y0) and editor.edges() == [(inp, lin)]
    assert len(build.canvas.graph.all_nodes()) == 2
    assert len(build.canvas.node(inp).output_ports()[0].view.connected_pipes) == 1


def test_palette_is_grouped_by_category_and_filters(build):
    palette = build.palette
    cats = palette.categories()
    assert cats == [c for c in CATEGORIES if any(t.category == c for t in module_types())]
    assert set(palette.visible_types()) == {t.type_name for t in module_types()}
    palette.filter.setText("relu")
    assert set(palette.visible_types()) == {"ReLU", "LeakyReLU", "PReLU"}
    palette.filter.setText("join")  # a category name shows the whole category
    assert set(palette.visible_types()) == {t.type_name for t in module_types("Join")}
    palette.filter.setText("")
    assert len(palette.visible_types()) == len(module_types())


def test_side_panel_follows_the_selection_and_applies(qtbot, build):
    mid = build.canvas.add_at("Dropout", (0, 0))
    build.canvas.select([mid])
    panel = build.panel
    assert panel.mid == mid and panel.form is not None
    qtbot.keyClicks(panel.form.editors["rate"], "0.25")
    qtbot.keyClick(panel.form.editors["rate"], QtCore.Qt.Key.Key_Return)
    assert build.editor.module(mid).properties["rate"] == "0.25"
    build.undo()
    assert "rate" not in build.editor.module(mid).properties
    assert panel.form.text("rate") == ""  # the panel shows the undone value
    build.canvas.select([])
    assert panel.mid is None
    panel.name_edit.setText("renamed")
    panel.apply()
    assert build.editor.desc.name == "renamed"


def test_title_rename_tab_search_and_dropping_a_node_onto_a_wire(build):
    """What the viewer reports after an inline title edit, a Tab-search pick and a node
    dragged onto a wire becomes one editor step each."""
    editor, canvas = build.editor, build.canvas
    viewer = canvas.graph.viewer()
    lin = canvas.add_at("Linear", (0, 0))
    viewer.node_name_changed.emit(canvas.node(lin).id, "fc1")
    assert editor.module(lin).properties["name"] == "fc1"
    assert canvas.node(lin).view.name == "fc1" and "Linear" in canvas.node(lin).view.info_text()
    viewer.search_triggered.emit("dianne.modules.ReLU", (300, 0))
    relu = canvas.selected()[0]
    assert editor.module(relu).type == "ReLU" and editor.positions[relu] == (300, 0)
    inp, out = canvas.add_at("Input", (0, 300)), canvas.add_at("Output", (400, 300))
    editor.connect(inp, out)
    tanh = canvas.add_at("Tanh", (200, 300))
    depth = editor.undo_stack.index
    pipe = canvas.node(inp).output_ports()[0].view.connected_pipes[0]
    view = canvas.node(tanh).view
    old = list(view.xy_pos)
    view.xy_pos = [210.0, 290.0]  # the user dragged it onto the wire
    viewer.insert_node.emit(pipe, view.id, {view: old})
    assert editor.edges()[-2:] == [(inp, tanh), (tanh, out)]
    assert editor.positions[tanh] == (210, 290)
    assert editor.undo_stack.index == depth + 1
    build.undo()
    assert (inp, out) in editor.edges() and editor.positions[tanh] == (200, 300)
    assert list(view.xy_pos) == [200.0, 300.0]
