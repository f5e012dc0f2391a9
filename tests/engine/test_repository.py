"""Tests of engine.repository: listing, loading, storing, locking, zips, global weight lookup.

Every repository is built in ``tmp_path`` (folders, ``.locked`` markers, zips made with
``zipfile``); weight files are compared with ``struct.pack`` references.
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from engine.description import NetworkDescription, dumps_network, parse_network
from engine.errors import FormatError, RepositoryError
from engine.layout import Layout
from engine.repository import Repository, default_root, resolve_model

IN = "11111111-1111-1111-1111-111111111111"
LIN = "22222222-2222-2222-2222-222222222222"
OUT = "33333333-3333-3333-3333-333333333333"
SIG = "44444444-4444-4444-4444-444444444444"


def net(name: str | None = "mlp") -> dict:
    modules = {
        IN: {"id": IN, "type": "Input", "next": [LIN]},
        LIN: {"id": LIN, "type": "Linear", "next": [OUT], "prev": [IN], "input": 2,
              "output": 1, "trainable": True},
        OUT: {"id": OUT, "type": "Output", "prev": [LIN]},
    }
    return modules if name is None else {"name": name, "modules": modules}


def put_network(root: Path, folder: str, doc: dict, locked: bool = False) -> Path:
    d = root / folder
    d.mkdir(parents=True)
    (d / "modules.txt").write_text(json.dumps(doc), encoding="utf-8")
    if locked:
        (d / ".locked").write_bytes(b"")
    return d


def wbytes(values: list[float]) -> bytes:
    return struct.pack(">i", len(values)) + struct.pack(f">{len(values)}f", *values)


def put_zip(path: Path, entries: dict[str, bytes | str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def test_default_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("DIANNE_REPOSITORY", str(tmp_path / "r"))
    assert default_root() == tmp_path / "r"
    assert Repository().root == tmp_path / "r"
    monkeypatch.delenv("DIANNE_REPOSITORY")
    if os.name == "posix" and os.uname().sysname == "Linux":
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
        assert default_root() == tmp_path / "xdg" / "dianne" / "models"
        monkeypatch.delenv("XDG_DATA_HOME")
        assert default_root() == Path.home() / ".local" / "share" / "dianne" / "models"
    assert Repository(tmp_path).root == tmp_path


def test_list_networks(tmp_path: Path):
    repo = Repository(tmp_path)
    assert repo.list_networks() == []
    put_network(tmp_path, "zeta", net("zeta"))
    put_network(tmp_path, "alpha", net(None))
    put_network(tmp_path, "v1.2", net("v1"))  # cut at the first dot
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "modules.txt").write_text("{}")
    (tmp_path / "empty-folder").mkdir()
    put_zip(tmp_path / "packed.zip", {"modules.txt": json.dumps(net("packed"))})
    put_zip(tmp_path / "other.zip", {"readme.txt": "no network"})
    (tmp_path / "notes.txt").write_text("not a zip")
    assert repo.list_networks() == ["alpha", "packed", "v1", "zeta"]


def test_load_network_folder_zip_and_unknown(tmp_path: Path):
    repo = Repository(tmp_path)
    put_network(tmp_path, "legacy", net(None))
    put_network(tmp_path, "wrapped", net("stored-name"))
    put_zip(tmp_path / "packed.v2.zip", {"modules.txt": json.dumps(net(None)),
                                         "layout.txt": '{"nodes":[],"connections":[]}'})
    assert repo.load_network("legacy").name == "legacy"  # folder name fills the bare form
    assert repo.load_network("wrapped").name == "stored-name"
    packed = repo.load_network("packed")
    assert packed.name == "packed" and list(packed.modules) == [IN, LIN, OUT]
    assert str(tmp_path / "packed.v2.zip") in packed.source
    assert repo.load_layout("packed").text == '{"nodes":[],"connections":[]}'
    assert repo.load_layout("legacy") is None
    with pytest.raises(RepositoryError, match=r"no network 'nope'.*legacy, packed, wrapped"):
        repo.load_network("nope")
    (tmp_path / "broken").mkdir()
    with pytest.raises(RepositoryError, match="has no modules.txt"):
        repo.load_network("broken")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "modules.txt").write_text("{oops")
    with pytest.raises(FormatError, match=r"bad[/\\]modules\.txt: not valid JSON"):
        repo.load_network("bad")
    with pytest.raises(RepositoryError, match="cannot be a network name"):
        repo.load_network("../escape")


def test_store_network_writes_java_text_and_layout(tmp_path: Path):
    repo = Repository(tmp_path / "models")
    desc = parse_network(json.dumps(net(None)), name="fresh")
    layout = Layout({IN: (200, 100)})
    folder = repo.store_network(desc, layout)
    assert folder == tmp_path / "models" / "fresh"
    assert (folder / "modules.txt").read_text(encoding="utf-8") == dumps_network(desc)
    assert (folder / "layout.txt").read_text() == (
        f'{{"nodes":[{{"id":"{IN}","positionX":200,"positionY":100}}],"connections":[]}}')
    assert repo.list_networks() == ["fresh"]
    back = repo.load_network("fresh")
    assert back.modules == desc.modules and back.name == "fresh"
    assert not (tmp_path / "models" / "weights").exists()  # created on first weight store
    with pytest.raises(RepositoryError, match="cannot contain '.'"):
        repo.store_network(NetworkDescription("a.b", {}))
    with pytest.raises(RepositoryError, match="cannot be a network name"):
        repo.store_network(NetworkDescription("weights", {}))


def test_store_network_refuses_locked_and_is_atomic(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch):
    repo = Repository(tmp_path)
    put_network(tmp_path, "mnist-20", net(None), locked=True)
    before = (tmp_path / "mnist-20" / "modules.txt").read_bytes()
    desc = repo.load_network("mnist-20")
    with pytest.raises(RepositoryError, match=r"locked.*Received: mnist-20"):
        repo.store_network(desc)
    with pytest.raises(RepositoryError, match="locked"):
        repo.delete_network("mnist-20")
    assert (tmp_path / "mnist-20" / "modules.txt").read_bytes() == before
    # unlocked: a failure in the final rename leaves the old file and no temp file
    (tmp_path / "mnist-20" / ".locked").unlink()

    def boom(*_a: object) -> None:
        raise OSError("rename failed")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="rename failed"):
        repo.store_network(desc)
    assert (tmp_path / "mnist-20" / "modules.txt").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "mnist-20").iterdir()) == ["modules.txt"]
    monkeypatch.undo()
    repo.store_network(desc)
    assert json.loads((tmp_path / "mnist-20" / "modules.txt").read_text())["name"] == "mnist-20"


def test_delete_network(tmp_path: Path):
    repo = Repository(tmp_path)
    put_network(tmp_path, "a", net("a"))
    put_zip(tmp_path / "b.zip", {"modules.txt": json.dumps(net("b"))})
    repo.store_weights(LIN, [1.0, 2.0, 3.0])
    repo.delete_network("a")
    repo.delete_network("b")
    assert repo.list_networks() == []
    assert repo.find_weights(LIN) == tmp_path / "weights" / LIN  # weights are not the network's
    with pytest.raises(RepositoryError, match="no network 'a'"):
        repo.delete_network("a")


def test_global_weight_lookup_order(tmp_path: Path):
    repo = Repository(tmp_path)
    put_network(tmp_path, "b-net", net("b-net"))
    put_network(tmp_path, "a-net", net("a-net"))
    put_zip(tmp_path / "0zip.zip", {"modules.txt": json.dumps(net("z")), LIN: wbytes([9.0])})
    assert repo.find_weights(LIN) == (tmp_path / "0zip.zip", LIN)  # sorted: 0zip first
    np.testing.assert_array_equal(repo.read_module_weights(LIN), [9.0])
    (tmp_path / "a-net" / LIN).write_bytes(wbytes([1.0]))
    (tmp_path / "b-net" / LIN).write_bytes(wbytes([2.0]))
    (tmp_path / "0zip.zip").unlink()
    assert repo.find_weights(LIN) == tmp_path / "a-net" / LIN
    stored = repo.store_weights(LIN, np.array([5.0, 6.0]))
    assert stored == tmp_path / "weights" / LIN
    assert stored.read_bytes() == wbytes([5.0, 6.0])
    assert repo.find_weights(LIN) == stored  # weights/ beats every network folder
    assert repo.find_weights(OUT) is None and repo.read_module_weights(OUT) is None
    with pytest.raises(FormatError, match="expected 3 values"):
        repo.read_module_weights(LIN, expected=3)


def test_tags_order_and_listing(tmp_path: Path):
    repo = Repository(tmp_path)
    put_network(tmp_path, "n", net("n"))
    job = "99999999-aaaa-bbbb-cccc-dddddddddddd"
    p = repo.store_weights(LIN, [1.0], tags=("run", "best"))
    assert p.name == f"{LIN}-run-best"
    repo.store_weights(LIN, [2.0], tags=(job, 100))
    repo.store_weights(LIN, [3.0], network="n")
    assert (tmp_path / "n" / LIN).read_bytes() == wbytes([3.0])
    assert repo.find_weights(LIN, ("best", "run")) is None  # order matters
    np.testing.assert_array_equal(repo.read_module_weights(LIN, ("run", "best")), [1.0])
    np.testing.assert_array_equal(repo.read_module_weights(LIN, [job, "100"]), [2.0])
    np.testing.assert_array_equal(repo.read_module_weights(LIN), [3.0])
    assert sorted(repo.list_tags(LIN)) == sorted([["run", "best"], [job, "100"], []])
    assert repo.list_tags(OUT) == []


def test_load_weights_for_a_network(tmp_path: Path):
    repo = Repository(tmp_path)
    put_network(tmp_path, "n", net("n"))
    desc = repo.load_network("n")
    with pytest.raises(RepositoryError, match=r"no weight file for any module of 'n'"):
        repo.load_weights(desc)
    repo.store_weights(LIN, [0.5, -0.5, 0.25])
    got = repo.load_weights(desc, sizes={LIN: 3})
    assert list(got) == [LIN] and got[LIN].dtype == np.float32
    np.testing.assert_array_equal(got[LIN], [0.5, -0.5, 0.25])
    with pytest.raises(FormatError, match="expected 4 values"):
        repo.load_weights(desc, sizes={LIN: 4})
    with pytest.raises(RepositoryError, match=r"tags \['x'\]"):
        repo.load_weights(desc, tags=["x"])


def test_resolve_model_folder_outside_repository(tmp_path: Path):
    repo = Repository(tmp_path / "repo")
    repo.store_weights(LIN, [7.0, 7.0, 7.0])
    repo.store_weights(SIG, [8.0])
    folder = put_network(tmp_path / "work", "mine", net(None))
    doc = net(None)
    doc[OUT]["prev"] = [SIG]
    doc[LIN]["next"] = [SIG]
    doc[SIG] = {"id": SIG, "type": "Sigmoid", "prev": [LIN], "next": [OUT]}
    (folder / "modules.txt").write_text(json.dumps(doc))
    (folder / LIN).write_bytes(wbytes([1.0, 2.0, 3.0]))
    src = resolve_model(str(folder), repo)
    assert src.folder == folder and src.description.name == "mine" and src.layout is None
    got = src.load_weights(sizes={LIN: 3})
    np.testing.assert_array_equal(got[LIN], [1, 2, 3])  # the folder's own file wins
    np.testing.assert_array_equal(got[SIG], [8])  # then the repository
    by_file = resolve_model(str(folder / "modules.txt"), repo)
    assert by_file.folder == folder and by_file.description.modules == src.description.modules


def test_resolve_model_inside_a_repository_uses_the_global_order(tmp_path: Path):
    root = tmp_path / "models"
    repo = Repository(root)
    folder = put_network(root, "mnist-20", net(None), locked=True)
    (folder / LIN).write_bytes(wbytes([1.0, 2.0, 3.0]))
    repo.store_weights(LIN, [4.0, 5.0, 6.0])  # trained copy in weights/
    other = Repository(tmp_path / "elsewhere")
    by_path = resolve_model(str(folder), other)
    by_name = resolve_model("mnist-20", repo)
    assert by_name.folder == folder and by_name.description.name == "mnist-20"
    for src in (by_path, by_name):
        np.testing.assert_array_equal(src.load_weights()[LIN], [4, 5, 6])


def test_resolve_model_zip_and_errors(tmp_path: Path):
    repo = Repository(tmp_path / "repo")
    put_network(tmp_path / "repo", "known", net("known"))
    z = put_zip(tmp_path / "packed.zip", {"modules.txt": json.dumps(net(None)),
                                          LIN: wbytes([1.0, 1.0, 1.0])})
    src = resolve_model(str(z), repo)
    assert src.folder is None and src.zip == z and src.description.name == "packed"
    np.testing.assert_array_equal(src.load_weights()[LIN], [1, 1, 1])
    zipped_repo = Repository(tmp_path / "zr")
    zipped_repo.root.mkdir()
    put_zip(zipped_repo.root / "zn.zip", {"modules.txt": json.dumps(net(None)),
                                          LIN: wbytes([2.0, 2.0, 2.0])})
    zs = resolve_model("zn", zipped_repo)
    assert zs.zip == zipped_repo.root / "zn.zip" and zs.folder is None
    np.testing.assert_array_equal(zs.load_weights()[LIN], [2, 2, 2])
    with pytest.raises(RepositoryError, match=r"'nothing' is not a network.*known.*nothing"):
        resolve_model("nothing", repo)
    (tmp_path / "plain").mkdir()
    with pytest.raises(RepositoryError, match=r"has no modules.txt.*known"):
        resolve_model(str(tmp_path / "plain"), repo)
    with pytest.raises(RepositoryError, match="no weight file for any module"):
        resolve_model("known", repo).load_weights()
