"""The bounds of the engine readers, checked directly: declared sizes are refused before
anything of that size is allocated (``tracemalloc`` peak), and hostile JSON gives a
``FormatError`` rather than a Python error."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from engine.description import parse_network
from engine.errors import FormatError, ModuleError
from engine.fileio import load_json, read_text, read_zip_entry
from engine.modules import base as module_base
from engine.modules import create_module
from engine.shapes import infer_shapes
from engine.weights import read_weights, weights_from_bytes
from tests.hardening.corpus_cases import IN, LIN, POOL, SOFT, network_text, tiny_modules

MIB = 1 << 20


def peak_of(fn, *args, **kwargs) -> tuple[int, BaseException | None]:
    """Peak bytes Python allocated while ``fn`` ran, and what it raised."""
    tracemalloc.start()
    raised = None
    try:
        fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - returned to the caller to check
        raised = exc
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, raised


def test_weight_header_claiming_2g_floats_allocates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "w"
    path.write_bytes(struct.pack(">i", 2**31 - 1) + b"\0" * 64)
    peak, raised = peak_of(read_weights, path)
    assert isinstance(raised, FormatError) and "2147483647" in str(raised)
    assert peak < MIB
    peak, raised = peak_of(weights_from_bytes, path.read_bytes(), "w")
    assert isinstance(raised, FormatError) and peak < MIB


def zip_with(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, data)
    return buf.getvalue()


def test_zip_bomb_is_not_inflated(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.zip"
    bomb.write_bytes(zip_with("w", b"\0" * (32 * MIB)))
    assert bomb.stat().st_size < MIB  # it is a bomb: small outside, 32 MiB inside
    peak, raised = peak_of(read_zip_entry, bomb, "w", 1000)
    assert isinstance(raised, FormatError) and "declares" in str(raised)
    assert peak < 2 * MIB


def test_zip_directory_understating_the_size_stops_inflation(tmp_path: Path) -> None:
    """A directory that lies small: inflation stops at the limit (the CRC check then fails)."""
    raw = zip_with("w", b"\0" * (8 * MIB))
    size = struct.pack("<I", 8 * MIB)
    lied = raw.replace(size, struct.pack("<I", 100))  # local header and central directory
    path = tmp_path / "lie.zip"
    path.write_bytes(lied)
    peak, raised = peak_of(read_zip_entry, path, "w", 1000)
    assert isinstance(raised, FormatError) and "CRC" in str(raised)
    assert peak < 2 * MIB


def test_text_files_are_bounded_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "modules.txt"
    with open(big, "wb") as handle:
        handle.truncate(3 * MIB)  # sparse: costs no disk
    peak, raised = peak_of(read_text, big, "the network file", limit=MIB)
    assert isinstance(raised, FormatError) and "too large" in str(raised)
    assert peak < MIB // 2


def test_deep_json_is_a_format_error() -> None:
    with pytest.raises(FormatError, match="nested too deeply"):
        load_json("[" * 100_000 + "]" * 100_000, "deep.json")


def test_duplicate_module_uuid_is_refused() -> None:
    text = network_text(tiny_modules()).decode()
    dup = text.replace('"modules": {', f'"modules": {{\n "{LIN}": {{"type": "ReLU"}},', 1)
    with pytest.raises(FormatError, match=f"module '{LIN}' appears twice"):
        parse_network(dup, "dup/modules.txt")
    prop = text.replace('"output": "10"', '"output": "10", "output": "11"')
    with pytest.raises(FormatError, match="key 'output' appears twice"):
        parse_network(prop, "dup/modules.txt")


def test_linear_beyond_a_weight_file_is_refused_before_allocating() -> None:
    peak, raised = peak_of(create_module, "Linear", input=16, output=2**27)
    assert isinstance(raised, ModuleError) and "too large" in str(raised)
    assert peak < MIB


def test_parameters_beyond_free_memory_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a machine with 100 MiB free, a 2^24-value (64 MiB + its gradient) Linear is refused;
    the same Linear builds when the memory is there."""
    monkeypatch.setattr(module_base, "available_memory", lambda: 100 * MIB)
    with pytest.raises(ModuleError, match="free memory"):
        create_module("Linear", input=2**12, output=2**12)
    monkeypatch.setattr(module_base, "available_memory", lambda: 1 << 40)
    assert create_module("Linear", input=2**12, output=2**12).parameter_size() == 2**24 + 2**12


def test_input_dims_must_be_positive_and_bounded() -> None:
    with pytest.raises(ModuleError, match="positive"):
        create_module("Input", dims="1,0,28")
    with pytest.raises(ModuleError, match="more than"):
        create_module("Input", dims=f"{2**20},{2**20}")


def test_shape_inference_flags_fan_in_without_join_and_huge_outputs() -> None:
    mods = tiny_modules()
    mods[SOFT]["prev"].append(POOL)
    mods[POOL]["next"].append(SOFT)
    shapes = infer_shapes(parse_network(network_text(mods).decode(), "t/modules.txt"))
    assert "not a Join" in shapes[SOFT].error
    assert SOFT in shapes.first_error()
    mods = tiny_modules()
    mods[IN]["dims"] = f"1,{2**16},{2**16}"  # 2^32 values: too large for any tensor
    shapes = infer_shapes(parse_network(network_text(mods).decode(), "t/modules.txt"))
    assert shapes.first_error() and IN in shapes.first_error()
