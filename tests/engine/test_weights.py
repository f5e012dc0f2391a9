"""Tests of engine.weights: the big-endian weight file (spec 3.3) and its name (spec 3.2).

References are built independently with ``struct.pack('>i')`` + ``struct.pack('>f')``.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest

from engine.errors import FormatError
from engine.weights import (
    parse_weight_filename,
    read_weights,
    weight_filename,
    weights_from_bytes,
    write_weights,
)

U = "a36a7229-7d9b-8776-666e-a3adae26e01e"
JOB = "0f3e1111-2222-3333-4444-555566667777"


def reference(values: list[float]) -> bytes:
    return struct.pack(">i", len(values)) + b"".join(struct.pack(">f", v) for v in values)


def test_write_is_byte_exact_and_reads_back(tmp_path: Path):
    values = [0.0, -0.0, 1.0, -1.5, 3.1415927, 1e-40, 3.4e38, float("inf"), -float("inf")]
    path = tmp_path / U
    write_weights(path, np.array(values, dtype=np.float32))
    assert path.read_bytes() == reference(values)
    back = read_weights(path, expected=len(values))
    assert back.dtype == np.float32 and back.dtype.byteorder in ("=", "<", "|")
    assert back.flags.writeable
    np.testing.assert_array_equal(back, np.array(values, dtype=np.float32))
    assert np.signbit(back[1])


def test_write_flattens_c_order_and_converts_float64(tmp_path: Path):
    w = np.arange(6, dtype=np.float64).reshape(2, 3) / 7  # 784->20 style [O][I] matrix
    write_weights(tmp_path / "w", w)
    expected = reference([float(np.float32(v)) for v in w.ravel(order="C")])
    assert (tmp_path / "w").read_bytes() == expected
    assert (tmp_path / "w").stat().st_size == 4 + 4 * 6
    write_weights(tmp_path / "e", np.zeros(0, dtype=np.float32))
    assert (tmp_path / "e").read_bytes() == b"\x00\x00\x00\x00"
    assert read_weights(tmp_path / "e").shape == (0,)


def test_nan_bits_survive(tmp_path: Path):
    bits = np.array([0x7FC00001, 0xFF800000], dtype=np.uint32).view(np.float32)
    write_weights(tmp_path / "n", bits)
    assert (tmp_path / "n").read_bytes()[4:] == struct.pack(">II", 0x7FC00001, 0xFF800000)
    back = read_weights(tmp_path / "n")
    np.testing.assert_array_equal(back.view(np.uint32), bits.view(np.uint32))


@pytest.mark.parametrize(
    ("data", "expected", "pattern"),
    [
        (b"\x00\x00", None, r"at least 4 bytes.*Received: 2 bytes"),
        (struct.pack(">i", -1), None, r"negative value count.*Received: -1"),
        (reference([1.0, 2.0])[:-1], None, r"declares 2 values \(12 bytes\) but the file has 11"),
        (reference([1.0]) + b"\x00", None, r"declares 1 values"),
        (struct.pack(">i", 2**31 - 1) + b"\x00" * 8, None, r"declares 2147483647 values"),
        (reference([1.0, 2.0]), 3, r"expected 3 values for this module, the file holds 2"),
    ],
)
def test_bad_files_raise_format_error_naming_the_file(tmp_path: Path, data: bytes,
                                                      expected: int | None, pattern: str):
    path = tmp_path / f"{U}-bad"
    path.write_bytes(data)
    with pytest.raises(FormatError, match=pattern) as err:
        read_weights(path, expected)
    assert str(err.value).startswith(str(path))
    with pytest.raises(FormatError, match=pattern):
        weights_from_bytes(data, "zip!entry", expected)


def test_missing_file_is_a_format_error(tmp_path: Path):
    with pytest.raises(FormatError, match="cannot read the weight file"):
        read_weights(tmp_path / "none")


def test_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / U
    write_weights(path, [1.0, 2.0])
    before = path.read_bytes()

    def boom(*_a: object) -> None:
        raise OSError("replace failed")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="replace failed"):
        write_weights(path, [3.0])
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [U]


def test_weight_filename():
    assert weight_filename(U) == U
    assert weight_filename(U.upper(), ("job", None, "", 100, "best")) == f"{U}-job-100-best"
    assert weight_filename(U, ["b", "a"]) == f"{U}-b-a"  # given order, no sorting
    assert weight_filename(U, "single") == f"{U}-single"
    with pytest.raises(FormatError, match="module UUID"):
        weight_filename("fc1")
    with pytest.raises(FormatError, match="cannot contain"):
        weight_filename(U, ["../x"])


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        (U, (U, [])),
        (U.upper(), (U, [])),
        (f"{U}-best", (U, ["best"])),
        (f"{U}-{JOB}", (U, [JOB])),
        (f"{U}-{JOB}-100", (U, [JOB, "100"])),
        (f"{U}-tag-100-best", (U, ["tag", "100", "best"])),
        (f"{U}-best-{JOB}", (U, ["best", JOB])),
        (f"{U}x", None),
        ("modules.txt", None),
        ("layout.txt", None),
    ],
)
def test_parse_weight_filename(name: str, parsed: tuple[str, list[str]] | None):
    assert parse_weight_filename(name) == parsed
    if parsed is not None:
        assert weight_filename(*parsed) == (U if name == U.upper() else name)
