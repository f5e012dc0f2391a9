"""The broken-file corpus: each case is a network folder (or file) damaged in one way.

Every case starts from one small, valid network ("tiny": Input 1x28x28 -> AvgPooling 7x7 ->
Linear 16->10 -> LogSoftmax -> Output with the ten MNIST labels, plus the Linear's weight file)
and breaks one thing. ``Case.expect`` lists, per CLI command, the substrings the ONE error line
must contain (the file at fault and the module at fault where there is one); a command missing
from ``expect`` must succeed (a weight-file fault is invisible to ``dianne info``, which reads
no weights; a layout naming unknown nodes is cosmetic). ``python -m tests.hardening.corpus_cases
DEST`` writes the corpus; ``tests/hardening/corpus/`` is that output, committed.
"""

from __future__ import annotations

import io
import json
import struct
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

COMMANDS = ("info", "eval", "run")
P = "0bad0000-0000-4000-8000-0000000000"
IN, POOL, LIN, SOFT, OUT = (P + n for n in ("01", "02", "03", "04", "05"))
PAD = P + "06"
GHOST = P + "99"  # an id that is no module of the network
N_WEIGHTS = 10 * (16 + 1)


def module(mid: str, type_: str, nxt: list[str], prv: list[str], **props: str) -> dict:
    obj: dict[str, object] = {"id": mid, "type": type_}
    if nxt:
        obj["next"] = nxt
    if prv:
        obj["prev"] = prv
    obj.update(props)
    obj["name"] = props.get("name", type_)
    return obj


def tiny_modules() -> dict[str, dict]:
    return {
        IN: module(IN, "Input", [POOL], [], dims="1,28,28"),
        POOL: module(POOL, "AvgPooling", [LIN], [IN], width="7", height="7"),
        LIN: module(LIN, "Linear", [SOFT], [POOL], input="16", output="10", name="fc"),
        SOFT: module(SOFT, "LogSoftmax", [OUT], [LIN]),
        OUT: module(OUT, "Output", [], [SOFT], labels="[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"),
    }


def network_text(modules: dict, name: str = "tiny") -> bytes:
    return json.dumps({"name": name, "modules": modules}, indent=2).encode()


def weight_file(count: int, values: int | None = None, extra: bytes = b"") -> bytes:
    """A weight file whose header says ``count`` and which holds ``values`` floats."""
    n = count if values is None else values
    floats = [((i * 37) % 23 - 11) / 50.0 for i in range(n)]
    return struct.pack(">i", count) + struct.pack(f">{n}f", *floats) + extra


@dataclass
class Case:
    name: str
    what: str
    files: dict[str, bytes]
    expect: dict[str, list[str]]
    model: str = ""  # MODEL argument relative to the case folder ("" = the folder itself)
    dirs: list[str] = field(default_factory=list)  # empty folders to create


CASES: list[Case] = []


def case(name: str, what: str, *, cmds: tuple[str, ...] = COMMANDS, model: str = "",
         dirs: tuple[str, ...] = ()) -> Callable[[Callable[[], tuple]], None]:
    """Register a case: the decorated function returns (files, substrings of the error line)."""
    def wrap(fn: Callable[[], tuple]) -> None:
        files, needles = fn()
        CASES.append(Case(name, what, files, {c: [name, *needles] for c in cmds}, model,
                          list(dirs)))
    return wrap


def tiny(modules: dict | None = None, weights: bytes | None = None, **extra: bytes) -> dict:
    files = {"modules.txt": network_text(tiny_modules() if modules is None else modules)}
    files[LIN] = weight_file(N_WEIGHTS) if weights is None else weights
    files.update({k.replace("__", "."): v for k, v in extra.items()})
    return files


def edit(fn: Callable[[dict], None]) -> dict:
    mods = tiny_modules()
    fn(mods)
    return mods


def text_case(name: str, what: str, text: bytes, *needles: str) -> None:
    case(name, what)(lambda: ({"modules.txt": text, LIN: weight_file(N_WEIGHTS)},
                              ["modules.txt", *needles]))


# ------------------------------------------------------------------ modules.txt as a file
GOOD = network_text(tiny_modules())
text_case("truncated_json", "modules.txt cut in the middle", GOOD[: len(GOOD) // 2], "JSON")
text_case("empty_file", "modules.txt of zero bytes", b"", "JSON")
text_case("non_utf8", "a Latin-1 byte in a name", GOOD.replace(b'"fc"', b'"f\xe9c"'), "UTF-8")
text_case("utf16", "modules.txt saved as UTF-16", GOOD.decode().encode("utf-16"), "UTF-8")
text_case("binary_garbage", "random bytes", bytes(range(256)) * 4, "UTF-8")
text_case("nul_bytes", "NUL bytes inside the JSON", GOOD[:40] + b"\0" * 16 + GOOD[40:], "JSON")
text_case("top_level_array", "a JSON array, not an object", b"[1, 2, 3]", "object")
text_case("top_level_number", "a bare number", b"42", "object")
text_case("deep_nesting", "a property nested 5000 arrays deep",
          GOOD.replace(b'"7"', b"[" * 5000 + b"7" + b"]" * 5000, 1), "nest")
text_case("modules_not_object", "'modules' is an array", b'{"name": "x", "modules": []}',
          "'modules'")
text_case("modules_null", "'modules' is null", b'{"name": "x", "modules": null}', "'modules'")
text_case("properties_not_object", "top-level 'properties' is a number",
          GOOD.replace(b'"name": "tiny",', b'"name": "tiny", "properties": 5,'), "'properties'")
text_case("key_not_uuid", "a module key that is no UUID",
          GOOD.replace(f'"{SOFT}": {{'.encode(), b'"softmax": {'), "softmax")
text_case("duplicate_uuid", "the same module key twice (JSON allows it, DIANNE must not)",
          GOOD.replace(b'\n  }\n}', f',\n    "{LIN}": {{"type": "ReLU"}}\n  }}\n}}'.encode()),
          LIN, "twice")


# ------------------------------------------------------------------ one module is wrong
def module_case(name: str, what: str, change: Callable[[dict], None], *needles: str,
                cmds: tuple[str, ...] = COMMANDS) -> None:
    case(name, what, cmds=cmds)(lambda: (tiny(edit(change)), ["modules.txt", *needles]))


def _set(mid: str, **values: object) -> Callable[[dict], None]:
    return lambda m: m[mid].update(values)


def _drop(mid: str, key: str) -> Callable[[dict], None]:
    return lambda m: m[mid].pop(key)


module_case("module_not_object", "a module that is a string",
            lambda m: m.__setitem__(SOFT, "LogSoftmax"), SOFT)
module_case("id_mismatch", "a module whose id differs from its key", _set(SOFT, id=GHOST), SOFT)
module_case("missing_type", "a module without 'type'", _drop(SOFT, "type"), SOFT, "type")
module_case("type_is_object", "'type' is an object", _set(SOFT, type={"a": 1}), SOFT, "type")
module_case("unknown_type", "a type no registry knows", _set(SOFT, type="LogSoftMaxx"), SOFT,
            "LogSoftMaxx")
module_case("missing_required", "a Linear without 'output'", _drop(LIN, "output"), LIN,
            "output")
module_case("property_not_number", "'input' is a word", _set(LIN, input="sixteen"), LIN,
            "input")
module_case("property_is_object", "'input' is an object", _set(LIN, input={"n": 16}), LIN,
            "input")
module_case("property_infinite", "'output' is 1e999", _set(LIN, output="1e999"), LIN, "output")
module_case("property_nan", "'output' is NaN", _set(LIN, output="NaN"), LIN, "output")
module_case("negative_size", "'output' is -10", _set(LIN, output="-10"), LIN)
module_case("huge_linear", "a Linear declaring 16 x 2^40 weights", _set(LIN, output=str(2**40)),
            LIN, "too large")
module_case("large_linear", "a Linear declaring 16 x 2^27 weights (8 GiB)",
            _set(LIN, output=str(2**27)), LIN, "too large")
module_case("huge_pool_window", "a pooling window of 2^62", _set(POOL, width=str(2**62)), POOL)
module_case("negative_dims", "Input dims -1,28,28", _set(IN, dims="-1,28,28"), IN, "dims")
module_case("huge_dims", "Input dims of 2^40 x 2^40 values", _set(IN, dims=f"1,{2**40},{2**40}"),
            IN)
module_case("next_dangling", "'next' names a missing module", _set(LIN, next=[GHOST]), LIN,
            GHOST)
module_case("prev_dangling", "'prev' names a missing module", _set(SOFT, prev=[LIN, GHOST]),
            SOFT, GHOST)
module_case("next_not_uuid", "'next' holds a word", _set(LIN, next=["soft"]), LIN, "next")
module_case("next_is_object", "'next' is an object", _set(LIN, next={"id": SOFT}), LIN, "next")
module_case("cycle", "LogSoftmax feeds back into the Linear",
            lambda m: (m[SOFT]["next"].append(LIN), m[LIN]["prev"].append(SOFT)), "cycle", LIN)
module_case("self_loop", "the LogSoftmax is its own successor", _set(SOFT, next=[OUT, SOFT]),
            SOFT)
module_case("two_inputs_no_join", "a LogSoftmax with two predecessors (not a Join)",
            lambda m: (m[SOFT]["prev"].append(POOL), m[POOL]["next"].append(SOFT)), SOFT,
            "Join")
module_case("input_with_prev", "an Input that has a predecessor",
            lambda m: (m[IN].update(prev=[SOFT]), m[SOFT]["next"].append(IN)), IN)
module_case("no_input", "no Input module at all",
            lambda m: (m.pop(IN), m[POOL].pop("prev")), "input")
module_case("no_output", "no Output module",
            lambda m: (m.pop(OUT), m[SOFT].pop("next")), "Output", cmds=("eval", "run"))
case("shape_mismatch", "Linear expects 17 inputs, gets 16 (its weight file fits 17)")(
    lambda: (tiny(edit(_set(LIN, input="17")), weight_file(10 * 18)), ["modules.txt", LIN, "17"]))


def _zeropad(m: dict) -> None:
    m[SOFT]["next"] = [PAD]
    m[OUT]["prev"] = [PAD]
    m[PAD] = module(PAD, "Zeropad", [OUT], [SOFT], dim0=str(2**40))


module_case("huge_padding", "a Zeropad adding 2^41 values before the Output", _zeropad, PAD)


# ------------------------------------------------------------------ weight files
def weight_case(name: str, what: str, data: bytes, *needles: str) -> None:
    case(name, what, cmds=("eval", "run"))(lambda: (tiny(weights=data), [LIN, *needles]))


weight_case("weights_short", "header 170, only 100 floats", weight_file(N_WEIGHTS, 100), "bytes")
weight_case("weights_long", "170 floats and 9 stray bytes", weight_file(N_WEIGHTS, extra=b"x" * 9),
            "bytes")
weight_case("weights_wrong_count", "a consistent file of 171 values for a 170-value module",
            weight_file(N_WEIGHTS + 1), "171")
weight_case("weights_huge_header", "header claims 2^31-1 floats", weight_file(2**31 - 1, 170),
            "2147483647")
weight_case("weights_negative_header", "header -1", weight_file(-1, 170), "-1")
weight_case("weights_empty", "a weight file of zero bytes", b"", "0 bytes")
weight_case("weights_three_bytes", "a weight file of three bytes", b"\0\0\0", "3 bytes")


@case("weights_is_folder", "a folder where the weight file should be", cmds=("eval", "run"),
      dirs=(LIN,))
def _weights_folder() -> tuple:
    files = tiny()
    files.pop(LIN)
    return files, ["no weight"]


# ------------------------------------------------------------------ zips
def zip_bytes(entries: dict[str, bytes], lie: dict[str, int] | None = None) -> bytes:
    """A zip of ``entries``; ``lie`` overwrites the uncompressed size its directory declares."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():  # a fixed date: the corpus is reproducible
            zf.writestr(zipfile.ZipInfo(name, date_time=(2015, 1, 1, 0, 0, 0)), data,
                        compress_type=zipfile.ZIP_DEFLATED)
            if lie and name in lie:
                zf.getinfo(name).file_size = lie[name]  # written into the central directory
    return buf.getvalue()


@case("zip_truncated", "a network zip cut in half", model="tiny.zip")
def _zip_truncated() -> tuple:
    whole = zip_bytes({"modules.txt": GOOD, LIN: weight_file(N_WEIGHTS)})
    return {"tiny.zip": whole[: len(whole) // 2]}, ["tiny.zip"]


@case("zip_bomb_weights", "a zip whose weight entry inflates to 64 MiB", model="tiny.zip",
      cmds=("eval", "run"))
def _zip_bomb() -> tuple:
    bomb = struct.pack(">i", N_WEIGHTS) + b"\0" * (64 << 20)
    return {"tiny.zip": zip_bytes({"modules.txt": GOOD, LIN: bomb})}, ["tiny.zip", LIN]


@case("zip_lying_size", "a zip entry declaring 2 GiB uncompressed", model="tiny.zip",
      cmds=("eval", "run"))
def _zip_lie() -> tuple:
    data = zip_bytes({"modules.txt": GOOD, LIN: weight_file(N_WEIGHTS)}, lie={LIN: 2**31})
    return {"tiny.zip": data}, ["tiny.zip", LIN]


# ------------------------------------------------------------------ layout.txt
LAYOUT = json.dumps({"nodes": [{"id": m, "positionX": 100 * i, "positionY": 80}
                               for i, m in enumerate((IN, POOL, LIN, SOFT, OUT))],
                     "connections": []}, separators=(",", ":")).encode()
case("layout_truncated", "layout.txt cut in the middle")(
    lambda: (tiny(layout__txt=LAYOUT[:30]), ["layout.txt", "JSON"]))
case("layout_non_utf8", "layout.txt with a Latin-1 byte")(
    lambda: (tiny(layout__txt=LAYOUT.replace(b"nodes", b"n\xf6des")), ["layout.txt", "UTF-8"]))
case("layout_not_object", "layout.txt holding an array")(
    lambda: (tiny(layout__txt=b"[]"), ["layout.txt", "object"]))
case("layout_without_network", "a folder with layout.txt and no modules.txt")(
    lambda: ({"layout.txt": LAYOUT}, ["modules.txt"]))
case("layout_references_nothing", "layout nodes naming no module (cosmetic: runs)", cmds=())(
    lambda: (tiny(layout__txt=LAYOUT.replace(P.encode(), b"f00dface-0000-4000-8000-0000000000")),
             []))


def write_corpus(dest: Path) -> list[Case]:
    """Write every case into ``dest/<case name>/`` plus ``dest/MANIFEST.json``."""
    dest.mkdir(parents=True, exist_ok=True)
    for c in CASES:
        folder = dest / c.name
        folder.mkdir(exist_ok=True)
        for rel, data in c.files.items():
            (folder / rel).write_bytes(data)
        for rel in c.dirs:
            (folder / rel).mkdir(exist_ok=True)
            (folder / rel / ".keep").write_bytes(b"")
    manifest = {c.name: {"what": c.what, "model": c.model, "expect": c.expect} for c in CASES}
    (dest / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return CASES


if __name__ == "__main__":
    write_corpus(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "corpus"))
    print(f"{len(CASES)} cases")
