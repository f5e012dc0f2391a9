"""Composite types in the Build tab: the palette's Composite group (bundled and the
repository's own), "Group into composite…" (model call, Edit-menu action with its dialog,
refusals, undo, weights), and Save As carrying the network's weight files along."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PySide6 import QtWidgets

from app.editor import grouping
from app.editor.document import open_folder, serialize
from app.editor.model import EditRefused, NetworkEditor
from app.editor.props import fields
from app.examples import examples_dir
from app.gui_settings import Settings
from app.main_window import MainWindow
from engine.composite import builtin_dir, unregister_composites
from engine.graph import Network
from engine.repository import Repository
from engine.shapes import infer_shapes
from engine.weights import read_weights
from tests.app.gui.conftest import _discard_changes

LENET = "d1a00e02-0000-4000-8000-0000000000"  # + two hex digits
BLOCK = [LENET + "01", LENET + "02", LENET + "03"]  # conv -> relu -> max pool


@pytest.fixture(autouse=True)
def _forget_composites():
    yield
    unregister_composites()  # types made here must not leak into other tests


def _texts(ed: NetworkEditor) -> tuple[str, str]:
    return serialize(ed.desc, ed.layout, ed.display_positions(), ed.known_ids)


def _open(win: MainWindow, qtbot, example: str) -> None:
    with qtbot.waitSignal(win.loaded, timeout=5000):
        win.open_folder(examples_dir() / example)


def test_palette_lists_bundled_and_repository_composites(qtbot, tmp_path):
    repo = tmp_path / "myrepo"
    shutil.copytree(builtin_dir() / "ConvLayer", repo / "composites" / "MyConv")
    win = MainWindow(Settings.load(), repository=Repository(repo))
    qtbot.addWidget(win, before_close_func=_discard_changes)
    palette = win.build.palette
    assert "Composite" in palette.categories()
    cat = palette.tree.findItems("Composite", QtCore_match())[0]
    names = {cat.child(i).text(0) for i in range(cat.childCount())}
    assert {"ConvLayer", "Residual", "GRU", "LSTM", "Inception_v1", "MyConv"} <= names

    palette.filter.setText("myconv")
    assert palette.visible_types() == ["MyConv"]
    palette.filter.clear()

    ed = win.editor
    inp = ed.add_module("Input", (0, 0), {"dims": "3,16,16"})
    mid = win.build.add_from_palette("MyConv")
    assert ed.desc.modules[mid].type == "MyConv"
    assert win.build.canvas.node(mid).type_.endswith(".MyConv")  # its own node class
    keys = [f.key for f in fields("MyConv")]
    assert keys[:4] == ["name", "activation", "noInputPlanes", "noOutputPlanes"]
    ed.connect(inp, mid)
    ed.set_properties(mid, {"activation": "ReLU", "noInputPlanes": "3", "noOutputPlanes": "8",
                            "kernelWidth": "3", "kernelHeight": "3", "padX": "1", "padY": "1",
                            "strideX": "1", "strideY": "1"})
    res = ed.shapes.modules[mid]
    assert res.error is None and res.out_shape == (8, 16, 16)
    assert res.params == 3 * 8 * 9 + 8 + 4 * 8  # conv + bias; BN weight, bias, mean, var
    assert "\u2192 8x16x16" in win.build.canvas.node(mid).view.info_text()


def QtCore_match():  # noqa: N802 - a tiny helper for findItems' flags
    from PySide6 import QtCore

    return QtCore.Qt.MatchFlag.MatchExactly


def test_group_lenet_block_keeps_shapes_and_undo_restores(tmp_path):
    opened = open_folder(examples_dir() / "lenet")
    ed = NetworkEditor(opened.desc, opened.layout, None)
    before_texts = _texts(ed)
    before = infer_shapes(ed.desc)
    res = grouping.group(ed, BLOCK, "ConvBlock", tmp_path / "composites")

    assert [m.type for m in ed.desc.modules.values()].count("ConvBlock") == 1
    assert not set(BLOCK) & set(ed.desc.modules)
    after = ed.shapes
    assert not after.errors
    pooled = before.modules[BLOCK[-1]].out_shape  # MaxPooling: one tensor per successor
    assert pooled == [(6, 14, 14)]
    assert after.modules[res.composite_id].out_shape == (6, 14, 14)
    for mid, shape in before.modules.items():
        if mid not in BLOCK:
            assert after.modules[mid].out_shape == shape.out_shape, mid
    assert after.params == before.params and after.macs == before.macs
    assert (tmp_path / "composites" / "ConvBlock" / "modules.txt").is_file()
    assert ed.undo_stack.undo_label() == "Group 3 modules into ConvBlock"

    assert ed.undo() and _texts(ed) == before_texts  # one step, byte-identical
    assert not ed.dirty
    assert ed.redo() and res.composite_id in ed.desc.modules


def test_group_refusals_change_nothing(tmp_path):
    opened = open_folder(examples_dir() / "lenet")
    ed = NetworkEditor(opened.desc, opened.layout, None)
    texts = _texts(ed)
    root = tmp_path / "composites"
    with pytest.raises(EditRefused, match="ONE input"):  # conv and the second conv: 2 inputs
        grouping.group(ed, [LENET + "01", LENET + "04"], "Two", root)
    with pytest.raises(EditRefused, match="exists already"):
        grouping.group(ed, BLOCK, "Linear", root)
    with pytest.raises(EditRefused, match="Input and Output"):
        grouping.group(ed, [LENET + "00", LENET + "01"], "WithInput", root)
    assert _texts(ed) == texts and not ed.undo_stack.can_undo()
    assert not root.exists() or not any(root.iterdir())


def test_group_through_the_edit_menu_with_weights(qtbot, window):
    win, build = window, window.build
    _open(win, qtbot, "lenet")
    ed = win.editor
    x = np.random.default_rng(3).standard_normal((2, 1, 28, 28)).astype(np.float32)

    def output() -> np.ndarray:
        net = Network(ed.desc)
        net.set_weights(win.net_state.weights())
        return net.forward(x)

    reference = output()
    build.canvas.select(BLOCK)
    edit_menu = next(m for m in win.menuBar().findChildren(QtWidgets.QMenu)
                     if m.title() == "&Edit")
    assert win.group_action in edit_menu.actions()
    win.group_action.trigger()
    box = build.group_input
    assert box is not None and box.isVisible()
    box.setTextValue("Conv5Block")
    box.accept()

    cid = build.canvas.selected()[0]
    assert ed.desc.modules[cid].type == "Conv5Block"
    assert "Conv5Block" in build.palette.visible_types()
    assert (Repository().root / "composites" / "Conv5Block" / "composite.txt").is_file()
    w = win.net_state.weights()
    conv = read_weights(examples_dir() / "lenet" / (LENET + "01"))
    np.testing.assert_array_equal(w[cid], conv)  # the only part with parameters
    np.testing.assert_allclose(output(), reference, rtol=0, atol=1e-6)

    ed.undo()
    assert LENET + "01" in win.net_state.weights() and cid not in ed.desc.modules
    np.testing.assert_allclose(output(), reference, rtol=0, atol=1e-6)

    build.canvas.select([LENET + "01", LENET + "04"])
    build.group_selection("Bad")
    assert "ONE input" in win.statusBar().currentMessage()


def test_save_as_copies_weight_files_plain_save_leaves_them(qtbot, window, tmp_path):
    win = window
    win.open_example("mnist-mlp")
    win.workers.wait_idle()
    source = examples_dir() / "mnist-mlp"
    weight_files = sorted(p.name for p in source.iterdir() if p.name.startswith("d1a00e01"))
    assert weight_files
    extra = tmp_path / "tagged-source"  # a folder with a tagged weight file too
    shutil.copytree(source, extra)
    (extra / (weight_files[0] + "-best")).write_bytes((source / weight_files[0]).read_bytes())

    with qtbot.waitSignal(win.saved, timeout=5000):
        win.save_to(tmp_path / "copy")
    copy = tmp_path / "copy"
    for name in weight_files:
        assert (copy / name).read_bytes() == (source / name).read_bytes()
    mid = weight_files[0]
    np.testing.assert_array_equal(win.net_state.weights()[mid], read_weights(source / mid))

    (copy / mid).write_bytes((copy / mid).read_bytes())  # untouched by a plain save below
    stamp = (copy / mid).stat().st_mtime_ns
    win.editor.rename("renamed")
    with qtbot.waitSignal(win.saved, timeout=5000):
        win.save()
    assert (copy / mid).stat().st_mtime_ns == stamp

    win.open_folder(extra)
    win.workers.wait_idle()
    with qtbot.waitSignal(win.saved, timeout=5000):
        win.save_to(tmp_path / "copy2")
    win.workers.wait_idle()  # the Deploy/Run tabs write their files after "saved"
    names = sorted(p.name for p in (tmp_path / "copy2").iterdir() if p.name.startswith("d1a"))
    assert names == sorted([*weight_files, weight_files[0] + "-best"])


def test_connected_linear_gets_its_input_size_in_the_same_step():
    ed = NetworkEditor()
    inp = ed.add_module("Input", (0, 0), {"dims": "1,28,28"})
    lin = ed.add_module("Linear", (150, 0), {"output": "10"})
    steps = ed.undo_stack.index
    ed.connect(inp, lin)
    assert ed.desc.modules[lin].properties["input"] == "784"
    assert ed.shapes.modules[lin].out_shape == (10,) and ed.undo_stack.index == steps + 1
    ed.undo()
    assert "input" not in ed.desc.modules[lin].properties and not ed.desc.modules[lin].prev
    ed.redo()
    fixed = ed.add_module("Linear", (300, 0), {"input": "7", "output": "3"})
    ed.connect(lin, fixed)
    assert ed.desc.modules[fixed].properties["input"] == "7"  # a value set stays
    split = ed.add_module("Split", (150, 100), {"dim": "0"})
    ed.disconnect(inp, lin)
    ed.connect(inp, split)
    a, b = ed.add_module("Linear", (300, 100)), ed.add_module("Linear", (300, 200))
    ed.connect(split, a)
    ed.connect(split, b)  # a fork: the new reader gets its own slot's size
    halves = ed.shapes.modules[split].out_shape
    assert halves == [(1, 28, 14), (1, 28, 14)]  # DIANNE counts dim from the last axis
    assert ed.desc.modules[b].properties["input"] == "392"


def test_canvas_context_menu_offers_grouping(build):
    names = [a.text() for a in build.context_menu.qmenu.actions()]
    assert "Group into composite…" in names and "Delete" in names
