"""Property fields of a module type, from the engine registry (no Qt).

The property dialog and the side panel are generated from :func:`fields`: a Name field, then one
field per registry :class:`engine.modules.Prop` (kind, default, required mark, help text).
:func:`check_field` validates one field's text and returns the message to show under it;
:func:`normalise` turns accepted text into the string DIANNE writes (``"1, 28,28"`` ->
``"1,28,28"``); :func:`module_problem` builds the module with the new values and returns the
engine's complaint, if any (a missing required property, an impossible size, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.description import ModuleDescription
from engine.errors import DianneError
from engine.graph import build_module
from engine.modules import Prop, module_class

KIND_WORDS = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "text",
              "ints": "integers separated by commas", "floats": "numbers separated by commas"}
NAME = Prop("name", "str", doc="name shown on the canvas (default: the type)")


@dataclass(frozen=True)
class Field:
    """One editable property: the registry Prop plus a label for the form."""

    prop: Prop
    label: str

    @property
    def key(self) -> str:
        return self.prop.name

    @property
    def placeholder(self) -> str:
        if self.prop.default is not None:
            return f"default: {self.prop.format(self.prop.default)}"
        return "required" if self.prop.required else "not set"

    @property
    def tooltip(self) -> str:
        kind = KIND_WORDS[self.prop.kind]
        req = " Required." if self.prop.required else ""
        return f"{self.prop.doc or self.key} ({kind}).{req}".strip()


def _label(key: str) -> str:
    words = "".join(" " + c.lower() if c.isupper() else c for c in key).strip()
    return words[:1].upper() + words[1:]


def fields(type_name: str) -> list[Field]:
    """The Name field then the type's declared properties, in registry order."""
    cls = module_class(type_name)
    return [Field(NAME, "Name")] + [Field(p, _label(p.name)) for p in cls.props]


def _prop(type_name: str, key: str) -> Prop | None:
    if key == "name":
        return NAME
    for p in module_class(type_name).props:
        if p.name == key:
            return p
    return None


def check_field(field: Field, text: str) -> str | None:
    """The problem with ``text`` for this field (``None`` when it is fine to store)."""
    if text.strip() == "":
        return "required" if field.prop.required else None
    try:
        field.prop.parse(text)
    except (TypeError, ValueError):
        return f"must be {KIND_WORDS[field.prop.kind]}"
    return None


def normalise(type_name: str, key: str, value: str | None) -> str | None:
    """The DIANNE string for ``value`` of property ``key`` (``None``: remove the property).

    Raises :class:`app.editor.model.EditRefused` naming the property when the value does not
    parse as the property's kind. Undeclared keys are stored as given.
    """
    from app.editor.model import EditRefused  # noqa: PLC0415

    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip()
    try:
        prop = _prop(type_name, key)
    except DianneError:
        return text  # a type this build does not know: keep what the file said
    if prop is None or prop.kind == "str":
        return text
    try:
        value = prop.parse(text)
        # Floats keep the text typed (Java's parseFloat reads "1" and "1e-3" alike); integers,
        # booleans and lists are written the one way the original's parsers all accept.
        return text if prop.kind == "float" else prop.format(value)
    except (TypeError, ValueError) as exc:
        raise EditRefused(f"{type_name}: property '{key}' must be {KIND_WORDS[prop.kind]}: "
                          f"{exc}. Received: {text!r}") from None


def module_problem(md: ModuleDescription) -> str | None:
    """What the engine says about building ``md`` as it stands (``None``: it builds)."""
    try:
        build_module(md)
    except DianneError as exc:
        return str(exc)
    return None
