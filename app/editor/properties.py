"""Property editing, generated from the registry: the dialog (double-click a module) and the
side panel (the selected module).

One form class serves both: a Name row, then one row per registry property with the value
kind's editor (text fields for numbers and lists, a three-way choice for booleans so that "not
set" stays possible), a ``*`` on required properties, the default as placeholder, and a message
under each field as soon as its text does not parse. Below the form the engine's own verdict on
the module with the new values (e.g. "required property 'input' is missing") is shown live.
A module may be left incomplete (it is drawn red); values that do not parse cannot be applied.
"""

from __future__ import annotations

import re

from PySide6 import QtCore, QtWidgets

from app.editor.model import EditRefused, NetworkEditor
from app.editor.props import Field, check_field, fields, module_problem
from app.editor.undo import copy_module
from engine.errors import DianneError

_UNSET = "not set"
_MSG_STYLE = "color: #d04040; font-size: 11px;"


class PropertyForm(QtWidgets.QWidget):
    """Editors for one module's properties; ``edited`` on every keystroke/choice."""

    edited = QtCore.Signal()
    submitted = QtCore.Signal()  # Enter pressed in a text field

    def __init__(self, type_name: str, values: dict[str, str],
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.type_name = type_name
        self.initial = dict(values)
        self.fields: list[Field] = fields(type_name)
        self.editors: dict[str, QtWidgets.QWidget] = {}
        self.messages: dict[str, QtWidgets.QLabel] = {}
        grid = QtWidgets.QFormLayout(self)
        grid.setFieldGrowthPolicy(QtWidgets.QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        grid.setContentsMargins(0, 0, 0, 0)
        for f in self.fields:
            editor = self._editor(f, values.get(f.key, ""))
            editor.setToolTip(f.tooltip)
            msg = QtWidgets.QLabel()
            msg.setStyleSheet(_MSG_STYLE)
            msg.setWordWrap(True)
            msg.hide()
            box = QtWidgets.QVBoxLayout()
            box.setSpacing(1)
            box.addWidget(editor)
            box.addWidget(msg)
            label = QtWidgets.QLabel(f.label + (" *" if f.prop.required else ""))
            label.setToolTip(f.tooltip)
            grid.addRow(label, box)
            self.editors[f.key], self.messages[f.key] = editor, msg
        self._check()

    def _editor(self, f: Field, value: str) -> QtWidgets.QWidget:
        if f.prop.kind == "bool":
            combo = QtWidgets.QComboBox()
            default = f.prop.format(f.prop.default) if f.prop.default is not None else None
            combo.addItem(f"{_UNSET} (default: {default})" if default else _UNSET, "")
            combo.addItem("true", "true")
            combo.addItem("false", "false")
            idx = combo.findData(value.strip().lower()) if value else 0
            combo.setCurrentIndex(max(idx, 0))
            if value and idx < 0:  # a value the file had that is not true/false: keep it
                combo.addItem(value, value)
                combo.setCurrentIndex(combo.count() - 1)
            combo.currentIndexChanged.connect(self._on_edit)
            return combo
        line = QtWidgets.QLineEdit(value)
        line.setPlaceholderText(f.placeholder)
        line.textChanged.connect(self._on_edit)
        line.returnPressed.connect(self.submitted)
        return line

    def text(self, key: str) -> str:
        editor = self.editors[key]
        if isinstance(editor, QtWidgets.QComboBox):
            return editor.currentData() or ""
        return editor.text()

    def set_text(self, key: str, value: str) -> None:
        editor = self.editors[key]
        if isinstance(editor, QtWidgets.QComboBox):
            editor.setCurrentIndex(max(editor.findData(value), 0))
        else:
            editor.setText(value)

    def changes(self) -> dict[str, str | None]:
        """Fields whose text differs from the module's (``None``: remove the property)."""
        out: dict[str, str | None] = {}
        for f in self.fields:
            now, was = self.text(f.key).strip(), self.initial.get(f.key, "").strip()
            if now != was:
                out[f.key] = now or None
        return out

    def errors(self) -> dict[str, str]:
        """Fields whose text does not parse (required-but-empty is a warning, not here)."""
        return {f.key: m for f in self.fields
                if (m := check_field(f, self.text(f.key))) and self.text(f.key).strip()}

    def _on_edit(self, *_args) -> None:
        self._check()
        self.edited.emit()

    def _check(self) -> None:
        for f in self.fields:
            msg = check_field(f, self.text(f.key))
            label = self.messages[f.key]
            label.setText(msg or "")
            label.setVisible(bool(msg))


def _problem_text(editor: NetworkEditor, mid: str, form: PropertyForm) -> str:
    """The engine's complaint about the module with the form's values, for the user: without
    the module label (the form is about it) and without what the field messages say already."""
    md = copy_module(editor.module(mid))
    for key, value in form.changes().items():
        if value is None:
            md.properties.pop(key, None)
        else:
            md.properties[key] = value
    problem = module_problem(md)
    if not problem:
        return ""
    text = problem.split("): ", 1)[-1]
    missing = re.search(r"required property '(\w+)' is missing", text)
    if missing and missing.group(1) in form.editors:
        return ""  # its field says "required" already
    return text.removesuffix(". Received: None")


class PropertyDialog(QtWidgets.QDialog):
    """"Configure module": the form, the engine's verdict, OK/Cancel. OK applies one edit."""

    def __init__(self, editor: NetworkEditor, mid: str,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.editor, self.mid = editor, mid
        md = editor.module(mid)
        self.setWindowTitle(f"Configure {md.type} '{md.name}'")
        self.form = PropertyForm(md.type, md.properties, self)
        head = QtWidgets.QLabel(f"<b>{md.type}</b> &nbsp; <span style='color:gray'>{mid}</span>")
        head.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.problem = QtWidgets.QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet(_MSG_STYLE)
        self.buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.StandardButton.Ok |
            QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(head)
        lay.addWidget(self.form)
        lay.addWidget(self.problem)
        lay.addWidget(self.buttons)
        self.setMinimumWidth(380)
        self.form.edited.connect(self._refresh)
        self.form.submitted.connect(self.accept)
        self._refresh()

    def ok_button(self) -> QtWidgets.QPushButton:
        return self.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok)

    def _refresh(self) -> None:
        self.ok_button().setEnabled(not self.form.errors())
        text = _problem_text(self.editor, self.mid, self.form)
        self.problem.setText(f"\u26a0 {text}" if text else "")
        self.problem.setVisible(bool(text))

    def accept(self) -> None:
        if self.form.errors():
            return
        changes = self.form.changes()
        if changes:
            try:
                self.editor.set_properties(self.mid, changes)
            except DianneError as exc:
                self.problem.setText(f"\u26a0 {exc}")
                self.problem.show()
                return
        super().accept()


class SidePanel(QtWidgets.QScrollArea):
    """The selected module's properties (Apply or Enter applies); the network's name when
    nothing or several modules are selected."""

    def __init__(self, editor: NetworkEditor, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.editor = editor
        self.mid: str | None = None
        self.form: PropertyForm | None = None
        self.setWidgetResizable(True)
        self.setMinimumWidth(240)
        self.show_module(None)

    def show_module(self, mid: str | None) -> None:
        """Rebuild for ``mid`` (``None``: the network)."""
        if mid is not None and mid not in self.editor.desc.modules:
            mid = None
        self.mid = mid
        body = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(body)
        self.problem = QtWidgets.QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet(_MSG_STYLE)
        if mid is None:
            self.form = None
            lay.addWidget(QtWidgets.QLabel("<b>Network</b>"))
            self.name_edit = QtWidgets.QLineEdit(self.editor.desc.name)
            self.name_edit.setToolTip("the network's name (modules.txt \"name\")")
            self.name_edit.returnPressed.connect(self.apply)
            lay.addWidget(self.name_edit)
            hint = QtWidgets.QLabel("Select a module to edit its properties. Double-click a "
                                    "module for its dialog; drag from the palette to add one.")
            hint.setWordWrap(True)
            hint.setStyleSheet("color: gray;")
            lay.addWidget(hint)
        else:
            md = self.editor.module(mid)
            head = QtWidgets.QLabel(f"<b>{md.type}</b><br/><span style='color:gray;"
                                    f"font-size:10px'>{mid}</span>")
            head.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
            lay.addWidget(head)
            self.form = PropertyForm(md.type, md.properties)
            self.form.submitted.connect(self.apply)
            self.form.edited.connect(self._refresh)
            lay.addWidget(self.form)
        lay.addWidget(self.problem)
        row = QtWidgets.QHBoxLayout()
        self.apply_button = QtWidgets.QPushButton("Apply")
        self.apply_button.clicked.connect(self.apply)
        row.addStretch(1)
        row.addWidget(self.apply_button)
        lay.addLayout(row)
        lay.addStretch(1)
        # The old body may be the sender of the signal being handled (Enter in a field ->
        # apply -> edit -> rebuild): delete it later, never under its own feet.
        old = self.takeWidget()
        if old is not None:
            old.deleteLater()
        self.setWidget(body)
        self._refresh()

    def _refresh(self) -> None:
        if self.form is None or self.mid is None:
            self.problem.hide()
            return
        self.apply_button.setEnabled(bool(self.form.changes()) and not self.form.errors())
        text = _problem_text(self.editor, self.mid, self.form)
        self.problem.setText(f"\u26a0 {text}" if text else "")
        self.problem.setVisible(bool(text))

    def apply(self) -> None:
        try:
            if self.mid is None:
                if self.name_edit.text().strip() != self.editor.desc.name:
                    self.editor.rename(self.name_edit.text())
            elif self.form is not None and not self.form.errors() and self.form.changes():
                self.editor.set_properties(self.mid, self.form.changes())
        except EditRefused as exc:
            self.problem.setText(f"\u26a0 {exc}")
            self.problem.show()
