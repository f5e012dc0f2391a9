"""The DIANNE network description (``modules.txt``, spec sections 1 and 10): read, check, write.

Reading accepts both shapes the original's ``DianneJSONConverter`` accepts (wrapped
``{"name", "properties", "modules"}`` and the bare legacy module map), ``next``/``prev`` as a
string or an array, and converts every other module key "as string" the way Gson's
``getAsString`` does (``true`` -> ``"true"``, ``784`` -> ``"784"``, ``0.5`` -> ``"0.5"``: the
number's JSON text; a one-element array -> its element). Decisions where the original throws
an unhelpful exception: a ``null`` value counts as absent (DIANNE treats unset and empty
alike); a missing ``"id"`` takes the map key. Writing reproduces the Java writer byte for byte:
Gson pretty printing with HTML-safe escaping, ``java.util.HashMap`` iteration order for modules
and properties (spec 1.3), every value a JSON string.
"""

from __future__ import annotations

import copy as _copy
import json
import os
import re
import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import FormatError, module_label
from engine.fileio import atomic_write, load_json, read_text

_UUID_RE = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_RESERVED = ("id", "type", "next", "prev")


@dataclass
class ModuleDescription:
    """One module of a network: UUID, DIANNE type, successors, predecessors, string properties."""

    id: str
    type: str
    next: list[str] = field(default_factory=list)
    prev: list[str] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """Display name: the ``name`` property, else the type (as the builder defaults it)."""
        return self.properties.get("name") or self.type


@dataclass
class NetworkDescription:
    """A whole network: name, modules (file order), optional top-level properties."""

    name: str
    modules: dict[str, ModuleDescription]
    properties: dict[str, str] | None = None
    source: str | None = None

    def inputs(self) -> list[ModuleDescription]:
        return [m for m in self.modules.values() if m.type == "Input"]

    def outputs(self) -> list[ModuleDescription]:
        return [m for m in self.modules.values() if m.type == "Output"]

    def module(self, key: str) -> ModuleDescription:
        """The module with UUID ``key``, else the one whose display name (name or type) is it."""
        found = self.modules.get(key.lower()) if _UUID_RE.fullmatch(key) else None
        if found is not None:
            return found
        named = [m for m in self.modules.values() if m.name == key]
        if len(named) == 1:
            return named[0]
        where = self.source or self.name
        if named:
            ids = ", ".join(m.id for m in named)
            raise FormatError(f"{where}: several modules are named {key!r} ({ids}); use a UUID. "
                              f"Received: {key}")
        names = ", ".join(f"{m.name} ({m.id})" for m in self.modules.values()) or "none"
        raise FormatError(f"{where}: no module with id or name {key!r}; modules: {names}. "
                          f"Received: {key}")

    def validate(self) -> None:
        """Check that map keys equal module ids and every next/prev id is a module here.

        ``next``/``prev`` asymmetries and duplicates are tolerated: real files have them
        (Inception composites list a predecessor twice) and the original ignores them.
        """
        where = self.source or self.name
        for key, m in self.modules.items():
            label = module_label(m.id, m.type, m.properties.get("name"))
            if key != m.id:
                raise FormatError(f"{where}: {label} is stored under the key {key}, which is not "
                                  f"its id. Received: {key}")
            for kind, ids in (("next", m.next), ("prev", m.prev)):
                for other in ids:
                    if other not in self.modules:
                        raise FormatError(f"{where}: {label}: {kind!r} refers to {other}, which "
                                          f"is not a module of this network. Received: {other}")

    def copy(self) -> NetworkDescription:
        return _copy.deepcopy(self)


def new_module_id() -> str:
    """A fresh module id: random hex in UUID shape, like the builder's (no RFC version bits)."""
    h = secrets.token_hex(16)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# --------------------------------------------------------------------------------- reading ---

class _Num(str):
    """A JSON number kept as its source text (Gson's LazilyParsedNumber.toString)."""


def _scalar(value: object, what: str) -> str | None:
    """Gson ``getAsString``: scalars as text, one-element arrays unwrapped, None for null."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return str(value)
    if isinstance(value, list) and len(value) == 1 and not isinstance(value[0], dict | list):
        return _scalar(value[0], what)
    kind = "an object" if isinstance(value, dict) else f"an array of {len(value)} values"
    raise FormatError(f"{what} must be a string or number, not {kind}. "
                      f"Received: {json.dumps(value)[:80]}")


def _unique_keys(pairs: list[tuple[str, object]], source: str) -> dict[str, object]:
    """A JSON object as a dict, refusing a key given twice: Python (and Gson's JsonObject) would
    silently keep the last one, so two modules sharing a UUID would quietly become one."""
    obj: dict[str, object] = {}
    for key, value in pairs:
        if key in obj:
            what = "module" if _UUID_RE.fullmatch(key) else "key"
            raise FormatError(f"{source}: {what} {key!r} appears twice in the same JSON object. "
                              f"Received: {key}")
        obj[key] = value
    return obj


def _parse_uuid(text: object, what: str) -> str:
    if not isinstance(text, str) or not _UUID_RE.fullmatch(text):
        raise FormatError(f"{what} is not a UUID (8-4-4-4-12 hex). Received: {text!r}")
    return text.lower()


def _ids(value: object, what: str) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [_parse_uuid(_scalar(v, what), what) for v in items]


def _parse_module(key: str, obj: object, where: str) -> ModuleDescription:
    key_id = _parse_uuid(key, f"{where}: module key {key!r}")
    if not isinstance(obj, dict):
        raise FormatError(f"{where}: module {key} is not a JSON object. Received: {obj!r}"[:200])
    label = f"{where}: module {key}"
    raw_id = _scalar(obj.get("id"), f"{label}: 'id'")
    mid = key_id if raw_id is None else _parse_uuid(raw_id, f"{label}: 'id'")
    mtype = _scalar(obj.get("type"), f"{label}: 'type'")
    if not mtype:
        raise FormatError(f"{label} has no 'type'. Received: {obj.get('type')!r}")
    props: dict[str, str] = {}
    for k, v in obj.items():
        if k not in _RESERVED:
            text = _scalar(v, f"{label} ({mtype}): property {k!r}")
            if text is not None:
                props[k] = text
    nxt = _ids(obj.get("next"), f"{label} ({mtype}): 'next'")
    prv = _ids(obj.get("prev"), f"{label} ({mtype}): 'prev'")
    return ModuleDescription(mid, mtype, nxt, prv, props)


def parse_network(
    text: str, source: str = "<string>", name: str | None = None
) -> NetworkDescription:
    """Parse ``modules.txt`` text; ``name`` is used when the file has none (bare form)."""
    doc = load_json(text, source, parse_int=_Num, parse_float=_Num, parse_constant=_Num,
                    object_pairs_hook=lambda pairs: _unique_keys(pairs, source))
    if not isinstance(doc, dict):
        raise FormatError(f"{source}: the top level must be a JSON object. Received: "
                          f"{type(doc).__name__}")
    props: dict[str, str] | None = None
    file_name: str | None = None
    if "modules" in doc:
        file_name = _scalar(doc.get("name"), f"{source}: 'name'")
        module_map = doc["modules"]
        if not isinstance(module_map, dict):
            raise FormatError(f"{source}: 'modules' must be an object. Received: {module_map!r}")
        if isinstance(doc.get("properties"), dict):
            props = {}
            for k, v in doc["properties"].items():
                val = _scalar(v, f"{source}: network property {k!r}")
                if val is not None:
                    props[k] = val
        elif doc.get("properties") is not None:
            raise FormatError(f"{source}: 'properties' must be an object. "
                              f"Received: {doc['properties']!r}")
    else:
        for reserved in ("name", "properties"):
            if reserved in doc:
                raise FormatError(f"{source}: a file without 'modules' is a bare module map and "
                                  f"cannot have a {reserved!r} key. Received: {reserved}")
        module_map = doc
    modules: dict[str, ModuleDescription] = {}
    for key, obj in module_map.items():
        m = _parse_module(key, obj, source)
        if key.lower() in modules:
            raise FormatError(f"{source}: module {key} appears twice. Received: {key}")
        modules[key.lower()] = m
    final = file_name if file_name is not None else (name if name is not None else "unnamed")
    return NetworkDescription(final, modules, props, source)


def read_network(path: str | os.PathLike[str]) -> NetworkDescription:
    """Read and validate a ``modules.txt`` file (or a folder holding one).

    A file without a name (bare legacy form) takes the folder name, which the repository
    treats as authoritative (spec 1.1).
    """
    p = Path(path)
    if p.is_dir():
        p = p / "modules.txt"
    text = read_text(p, "the network file")
    desc = parse_network(text, str(p), name=Path(os.path.abspath(p)).parent.name)
    desc.validate()
    return desc


# --------------------------------------------------------------------------------- writing ---

def _java_hash(key: str, kind: str) -> int:
    if kind == "uuid":
        v = uuid.UUID(key).int
        x = (v >> 64) ^ (v & 0xFFFFFFFFFFFFFFFF)
        h = ((x >> 32) ^ x) & 0xFFFFFFFF
    else:  # java.lang.String.hashCode over UTF-16 code units
        h = 0
        units = key.encode("utf-16-be", "surrogatepass")
        for i in range(0, len(units), 2):
            h = (31 * h + (units[i] << 8 | units[i + 1])) & 0xFFFFFFFF
    return (h ^ (h >> 16)) & 0xFFFFFFFF


def java_hashmap_order(keys: list[str], kind: str = "string") -> list[str]:
    """Iteration order of a ``java.util.HashMap`` filled with ``keys`` in the given order.

    Simulates the table growth: doubling when size exceeds 0.75 * capacity, and the doubling
    HashMap does instead of treeifying when a bucket gets its 9th entry in a table below 64.
    Resizing keeps the relative order inside a bucket, so the result is a stable sort by
    bucket of the final table. (Treeified buckets, >= 9 colliding keys in a table >= 64, are
    not modelled: they need crafted keys.)
    """
    hashes = [_java_hash(k, kind) for k in keys]
    cap = 16
    counts: dict[int, int] = {}
    for i, h in enumerate(hashes):
        b = h & (cap - 1)
        counts[b] = counts.get(b, 0) + 1
        grow = counts[b] >= 9 and cap < 64  # treeifyBin resizes small tables instead
        if grow:
            cap *= 2
        if i + 1 > 0.75 * cap:
            cap *= 2
            grow = True
        if grow:
            counts = {}
            for hh in hashes[: i + 1]:
                counts[hh & (cap - 1)] = counts.get(hh & (cap - 1), 0) + 1
    order = sorted(range(len(keys)), key=lambda j: hashes[j] & (cap - 1))
    return [keys[j] for j in order]


_GSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\t": "\\t", "\b": "\\b", "\n": "\\n", "\r": "\\r",
                 "\f": "\\f", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_GSON_ESCAPES.update({c: f"\\u{ord(c):04x}" for c in "<>&='"})
_GSON_SPECIAL = re.compile("[\x00-\x1f\"\\\\<>&='\u2028\u2029]")


def gson_string(text: str) -> str:
    """A JSON string literal as Gson's HTML-safe JsonWriter writes it."""
    return '"' + _GSON_SPECIAL.sub(
        lambda m: _GSON_ESCAPES.get(m.group(), f"\\u{ord(m.group()):04x}"), text) + '"'


def _gson_pretty(value: object, indent: str = "") -> str:
    if isinstance(value, str):
        return gson_string(value)
    inner = indent + "  "
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{inner}{gson_string(k)}: {_gson_pretty(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if not value:
        return "[]"
    return "[\n" + ",\n".join(inner + _gson_pretty(v, inner) for v in value) + "\n" + indent + "]"


def _java_props(props: dict[str, str]) -> dict[str, str]:
    return {k: props[k] for k in java_hashmap_order(list(props), "string")}


def dumps_network(desc: NetworkDescription) -> str:
    """The text the Java ``storeNeuralNetwork`` writes for ``desc`` (spec 1.3), byte for byte."""
    top: dict[str, object] = {"name": desc.name}
    if desc.properties is not None:
        top["properties"] = _java_props(desc.properties)
    modules: dict[str, object] = {}
    for key in java_hashmap_order(list(desc.modules), "uuid"):
        m = desc.modules[key]
        obj: dict[str, object] = {"id": m.id, "type": m.type}
        if m.next:
            obj["next"] = list(m.next)
        if m.prev:
            obj["prev"] = list(m.prev)
        for k, v in _java_props(m.properties).items():
            if k not in obj:
                obj[k] = v
        modules[m.id] = obj
    top["modules"] = modules
    return _gson_pretty(top)


def write_network(desc: NetworkDescription, folder: str | os.PathLike[str]) -> Path:
    """Validate ``desc`` and write ``folder/modules.txt`` atomically; returns the file path."""
    desc.validate()
    text = dumps_network(desc)
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    atomic_write(target / "modules.txt", text)
    return target / "modules.txt"
