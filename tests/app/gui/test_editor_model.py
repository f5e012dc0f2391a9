"""The editor model without Qt: rules, undo/redo, copy/paste, auto layout, files."""

from __future__ import annotations

import random
import shutil

import pytest

from app.editor import props
from app.editor.document import open_folder, serialize, write_folder
from app.editor.model import EditRefused, NetworkEditor
from app.examples import examples_dir
from engine.description import read_network
from engine.errors import FormatError
from engine.modules import module_types
from tests.conftest import COMPOSITE_NAMES, COMPOSITES


def _open(folder) -> NetworkEditor:
    o = open_folder(folder)
    return NetworkEditor(o.desc, o.layout, o.folder)


def _texts(ed: NetworkEditor) -> tuple[str, str]:
    return serialize(ed.desc, ed.layout, ed.display_positions(), ed.known_ids)


def _chain(ed: NetworkEditor, *types: str) -> list[str]:
    ids = [ed.add_module(t, (100 * i, 0)) for i, t in enumerate(types)]
    for a, b in zip(ids, ids[1:], strict=False):
        ed.connect(a, b)
    return ids


def test_connection_rules_refuse_with_a_reason():
    ed = NetworkEditor()
    inp, lin, relu, out = _chain(ed, "Input", "Linear", "ReLU", "Output")
    sig = ed.add_module("Sigmoid")
    cases = [
        ((lin, lin), "itself"),
        ((out, sig), "Output"),
        ((sig, inp), "Input"),
        ((lin, relu), "already connected"),
        ((lin, sig), "only Fork"),        # Linear already feeds ReLU
        ((sig, relu), "only Join"),       # ReLU already takes Linear
    ]
    dup, acc = ed.add_module("Duplicate"), ed.add_module("Accumulate")
    ed.connect(dup, acc)
    cases.append(((acc, dup), "cycle"))
    before = _texts(ed)
    depth = ed.undo_stack.index
    for (a, b), reason in cases:
        with pytest.raises(EditRefused, match=reason):
            ed.connect(a, b)
    assert _texts(ed) == before and ed.undo_stack.index == depth
    # Forks feed several modules, joins take several inputs, in connection order.
    dup, cat = ed.add_module("Duplicate"), ed.add_module("Concat")
    ed.rewire([(lin, relu), (relu, out)],
              [(lin, dup), (dup, relu), (dup, sig), (relu, cat), (sig, cat), (cat, out)])
    assert ed.module(dup).next == [relu, sig] and ed.module(cat).prev == [relu, sig]
    assert ed.module(relu).prev == [dup] and ed.module(out).prev == [cat]
    assert ed.undo_stack.undo_label() == "Connect"


def test_rewire_is_atomic():
    ed = NetworkEditor()
    a, b, c = _chain(ed, "Input", "Linear", "ReLU")
    before = _texts(ed)
    with pytest.raises(EditRefused):  # second part refused: first part must not stay
        ed.rewire([(a, b)], [(b, b)])
    assert _texts(ed) == before


def test_shapes_follow_every_edit_and_errors_name_the_reason():
    ed = NetworkEditor()
    inp, lin, out = _chain(ed, "Input", "Linear", "Output")
    assert "dims" in ed.shapes[inp].error
    ed.set_properties(inp, {"dims": " 1, 28 ,28 "})
    assert ed.module(inp).properties["dims"] == "1,28,28"  # written the DIANNE way
    assert "required property 'input'" in ed.shapes[lin].error
    ed.set_properties(lin, {"input": "784", "output": "10"})
    assert ed.shapes[lin].out_shape == (10,) and ed.shapes[lin].params == 7850
    assert ed.shapes.params == 7850 and ed.shapes[out].ok
    ed.set_properties(lin, {"input": "100"})
    assert ed.shapes[lin].error and not ed.shapes[out].ok
    ed.undo()
    assert ed.shapes[out].ok
    with pytest.raises(EditRefused, match="'output' must be an integer"):
        ed.set_properties(lin, {"output": "ten"})
    ed.set_properties(lin, {"output": ""})  # empty removes the property
    assert "output" not in ed.module(lin).properties


def test_paste_gives_new_ids_and_keeps_internal_connections():
    ed = NetworkEditor()
    inp, lin, relu, out = _chain(ed, "Input", "Linear", "ReLU", "Output")
    ed.set_properties(lin, {"input": "4", "output": "3", "name": "fc"})
    new = ed.duplicate([lin, relu])
    assert len(new) == 2 and not set(new) & {inp, lin, relu, out}
    nl, nr = new
    assert ed.module(nl).properties == ed.module(lin).properties
    assert ed.module(nl).next == [nr] and ed.module(nr).prev == [nl]
    assert ed.module(nl).prev == [] and ed.module(nr).next == []  # outside links dropped
    px, py = ed.positions[lin]
    assert ed.positions[nl] == (px + 40, py + 40)
    with pytest.raises(FormatError):
        ed.paste("not modules")


def test_auto_layout_places_by_topological_depth():
    ed = NetworkEditor()
    inp = ed.add_module("Input", (500, 500))
    dup = ed.add_module("Duplicate", (0, 0))
    a, b = ed.add_module("ReLU", (9, 9)), ed.add_module("Sigmoid", (3, 3))
    cat = ed.add_module("Concat", (7, 7))
    ed.rewire([], [(inp, dup), (dup, a), (dup, b), (a, cat), (b, cat)])
    ed.auto_layout()
    xs = {m: ed.positions[m][0] for m in (inp, dup, a, b, cat)}
    assert xs[inp] < xs[dup] < xs[a] == xs[b] < xs[cat]
    assert ed.positions[a][1] != ed.positions[b][1]
    assert ed.undo_stack.undo_label() == "Auto layout"
    ed.undo()
    assert ed.positions[inp] == (500, 500)


def _random_edit(ed: NetworkEditor, rng: random.Random, types: list[str], step: int) -> bool:
    ids = list(ed.desc.modules)
    op = rng.randrange(9)
    if op == 0 or not ids:
        ed.add_module(rng.choice(types), (rng.randrange(1500), rng.randrange(600)))
    elif op == 1:
        ed.delete(rng.sample(ids, min(len(ids), rng.randrange(1, 3))))
    elif op == 2 and len(ids) > 1:
        ed.connect(*rng.sample(ids, 2))
    elif op == 3 and ed.edges():
        ed.disconnect(*rng.choice(ed.edges()))
    elif op == 4:
        ed.move({m: (rng.randrange(1500), rng.randrange(600)) for m in rng.sample(ids, 2)
                 if len(ids) > 1})
    elif op == 5:
        ed.set_properties(rng.choice(ids), {"name": f"m{step}"})
    elif op == 6:
        mid = rng.choice(ids)
        field = rng.choice(props.fields(ed.module(mid).type))
        value = {"int": "3", "float": "0.5", "bool": "false", "ints": "1,2", "floats": "1.5",
                 "str": "x"}[field.prop.kind]
        ed.set_properties(mid, {field.key: rng.choice([value, None])})
    elif op == 7:
        ed.paste(ed.copy(rng.sample(ids, min(len(ids), 3))))
    elif op == 8:
        ed.auto_layout()
    else:
        return False
    return True


@pytest.mark.parametrize("example", ["lenet", "mnist-mlp"])
def test_500_random_edits_undo_to_the_original_files(example):
    ed = _open(examples_dir() / example)
    original = (examples_dir() / example / "modules.txt").read_text(), \
        (examples_dir() / example / "layout.txt").read_text()
    assert _texts(ed) == original
    rng = random.Random(6)
    types = [t.type_name for t in module_types()]
    done = refused = 0
    while done < 500:
        try:
            done += _random_edit(ed, rng, types, done)
        except EditRefused:
            refused += 1
    assert refused < 250
    edited = _texts(ed)
    assert edited != original
    while ed.undo():
        pass
    assert _texts(ed) == original and not ed.dirty
    while ed.redo():
        pass
    assert _texts(ed) == edited


def test_saved_network_reopens_byte_identical(tmp_path):
    ed = NetworkEditor()
    ids = _chain(ed, "Input", "Convolution", "ReLU", "Output")
    ed.set_properties(ids[0], {"dims": "3,8,8"})
    ed.set_properties(ids[1], {"noInputPlanes": "3", "noOutputPlanes": "4",
                               "kernelWidth": "3", "pad": "true"})
    write_folder(tmp_path / "net", *_texts(ed))
    again = _open(tmp_path / "net")
    assert again.desc.modules == ed.desc.modules and again.positions == ed.positions
    write_folder(tmp_path / "net2", *_texts(again))
    for name in ("modules.txt", "layout.txt"):
        assert (tmp_path / "net" / name).read_bytes() == (tmp_path / "net2" / name).read_bytes()
    conns = again.layout.document["connections"]
    assert [(c["sourceId"], c["targetId"]) for c in conns] == list(zip(ids, ids[1:],
                                                                       strict=False))


@pytest.mark.parametrize("name", COMPOSITE_NAMES)
def test_original_layouts_open_with_their_positions_and_keep_their_text(name, tmp_path):
    """Files written by the original: positions come from layout.txt; saving without an
    edit writes layout.txt back unchanged; stale jsPlumb connections survive edits."""
    ed = _open(COMPOSITES / name)
    layout_text = (COMPOSITES / name / "layout.txt").read_text()
    assert _texts(ed)[1] == layout_text
    assert set(ed.positions) <= set(ed.desc.modules) and ed.positions
    stale = [c for c in ed.layout.connections if c["sourceId"] not in ed.desc.modules]
    victim = next(iter(ed.desc.modules))
    ed.delete([victim])
    doc_after = _texts(ed)[1]
    assert all(c["connectionId"] in doc_after for c in stale)
    assert victim not in doc_after


def test_open_errors_name_the_file_and_the_module(tmp_path):
    folder = tmp_path / "broken"
    shutil.copytree(examples_dir() / "mnist-mlp", folder)
    text = (folder / "modules.txt").read_text()
    (folder / "modules.txt").write_text(text.replace('"output": "10"', '"output": [1, 2]', 1))
    with pytest.raises(FormatError) as info:
        open_folder(folder)
    assert "modules.txt" in str(info.value) and "d1a00e01-0000-4000-8000-000000000003" in \
        str(info.value)
    with pytest.raises(FormatError, match="no modules.txt"):
        open_folder(tmp_path)


def test_property_fields_come_from_the_registry():
    for info in module_types():
        fields = props.fields(info.type_name)
        assert [f.key for f in fields] == ["name"] + [p.name for p in info.props]
        for f in fields:
            assert props.check_field(f, "") == ("required" if f.prop.required else None)
    conv = {f.key: f for f in props.fields("Convolution")}
    assert props.check_field(conv["strideX"], "2") is None
    assert "must be an integer" in props.check_field(conv["strideX"], "2.5")
    assert conv["strideX"].placeholder == "default: 1"
    assert "must be true or false" in props.check_field(conv["pad"], "maybe")
    assert props.normalise("Convolution", "pad", "TRUE") == "true"
    assert props.normalise("Dropout", "rate", "0.50") == "0.50"  # floats keep their text


def test_unknown_types_are_kept_as_they_are(tmp_path):
    folder = tmp_path / "net"
    shutil.copytree(examples_dir() / "mnist-mlp", folder)
    text = (folder / "modules.txt").read_text().replace('"type": "ReLU"', '"type": "Swish"')
    (folder / "modules.txt").write_text(text)
    ed = _open(folder)
    relu = "d1a00e01-0000-4000-8000-000000000002"
    assert "unknown module type" in ed.shapes[relu].error
    ed.set_properties(relu, {"beta": "2"})
    assert read_network(folder).modules[relu].type == "Swish"
    assert ed.module(relu).properties["beta"] == "2"


def test_batch_is_one_step_and_all_or_nothing():
    ed = NetworkEditor()
    a, b = _chain(ed, "Input", "ReLU")
    depth = ed.undo_stack.index
    with ed.batch("two things"):
        ed.move({a: (5, 5)})
        ed.set_properties(b, {"name": "r"})
    assert ed.undo_stack.index == depth + 1 and ed.undo_stack.undo_label() == "two things"
    before = _texts(ed)
    with pytest.raises(EditRefused), ed.batch("half"):
        ed.move({a: (9, 9)})
        ed.connect(b, b)
    assert _texts(ed) == before and ed.undo_stack.index == depth + 1
    ed.undo()
    assert ed.positions[a] == (0, 0) and ed.module(b).properties["name"] == "ReLU"
