"""The Run tab: feed a drawing, an image, dataset samples (stepped or played as a stream) to the
network on its agents and show the output; action rules act on what it recognises.

One forward at a time goes to :meth:`NetState.forward` on a worker (a stream drops frames while
one is in flight rather than queueing them); a Big-Little network goes to
:meth:`NetState.classify` instead, and the answer shows which network gave it (a fallback
answer, the big part being unreachable, is marked). Rules are kept in ``actions.json`` next to
``modules.txt``; "command" rules run a shell command here, in the app, never on an agent.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np
from PySide6 import QtCore, QtWidgets

from app.editor.model import Change
from app.run_view.actions import KINDS, Rule, RuleEngine, read_rules, write_rules
from app.run_view.outputs import OutputPanel
from app.run_view.sources import Sources
from engine.errors import DianneError


def input_shape(desc: Any) -> tuple[int, ...]:
    """One sample's shape: the Input's ``dims``, else a square image for a Linear after it."""
    inputs = desc.inputs()
    if not inputs:
        return (1, 28, 28)
    dims = inputs[0].properties.get("dims")
    if dims:
        return tuple(int(v) for v in str(dims).split(",") if v.strip())
    for nxt in inputs[0].next:
        md = desc.modules.get(nxt)
        if md is not None and md.type == "Linear":
            n = int(md.properties.get("input", 0))
            side = int(round(np.sqrt(n)))
            return (1, side, side) if side * side == n else (n,)
    return (1, 28, 28)


def output_labels(desc: Any) -> list[str]:
    outs = desc.outputs()
    text = outs[0].properties.get("labels", "") if outs else ""
    return [s.strip() for s in re.sub(r"^\[|\]$", "", text.strip()).split(",") if s.strip()]


class RunTab(QtWidgets.QWidget):
    message = QtCore.Signal(str)
    result = QtCore.Signal(str)  # the top label of each forward

    def __init__(self, state: Any, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.busy = False
        self.last: tuple[np.ndarray, str] | None = None
        self.fired: list[str] = []
        self.biglittle = False  # the open network carries a Big-Little policy
        self.answer: Any = None  # the last Big-Little answer
        self.sources = Sources(state.workers)
        self.outputs = OutputPanel()
        self.rules = RuleEngine([])
        self._build_actions()
        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        split.addWidget(self.sources)
        split.addWidget(self.outputs)
        split.setSizes([520, 760])
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(split, 1)
        lay.addWidget(self.actions_box)
        self.sources.sample.connect(self.run)
        self.sources.message.connect(self.message)
        state.editor.subscribe(self._on_editor)
        self._on_editor(Change(reset=True))
        self.sources.open_dataset("mnist")

    def _on_editor(self, change: Change) -> None:
        desc = self.state.editor.desc
        self.sources.shape = input_shape(desc)
        self.biglittle = bool((desc.properties or {}).get("bigLittle.big"))
        labels = output_labels(desc)
        if self.biglittle:  # the big Output's labels: every class an answer can have
            from engine.biglittle import Policy  # noqa: PLC0415
            from engine.subnet import output_labels as labels_of  # noqa: PLC0415

            try:
                labels = labels_of(desc, Policy.from_description(desc).big)
            except DianneError as exc:
                self.biglittle = False
                self.message.emit(str(exc))
        self.outputs.set_labels(labels)
        if change.reset:
            try:
                self.set_rules(read_rules(self.state.editor.folder), save=False)
            except DianneError as exc:
                self.message.emit(str(exc))

    # ---------------------------------------------------------------------- forwarding ---
    def run(self, x: np.ndarray, stream: bool = False) -> bool:
        """Send one sample to the agents; False when one is still in flight (dropped)."""
        if self.busy:
            return False
        self.busy = True
        if self.biglittle:
            self.state.workers.start(self.state.classify, x, label="Big-Little",
                                     on_done=self._answered, on_error=self._failed)
            return True
        self.state.workers.start(self.state.forward, x, label="forward",
                                 on_done=lambda r: self._shown(r, stream),
                                 on_error=self._failed)
        return True

    def _answered(self, result: tuple[Any, str]) -> None:
        self.busy = False
        answer, status = result
        self.answer = answer
        best = self.outputs.display_answer(answer, status)
        self.last = (np.array([answer.probability]), best)
        for rule in self.rules.feed({answer.label: answer.probability}):
            self.act(rule)
        self.result.emit(best)

    def _shown(self, result: tuple[np.ndarray, float], stream: bool) -> None:
        from app.commands import to_probabilities  # noqa: PLC0415

        self.busy = False
        out, seconds = result
        probs = to_probabilities(out)
        names = sorted(set(self.state.deployed_names.values())) or ["?"]
        best = self.outputs.display(probs, seconds, ", ".join(names), stream)
        self.last = (probs, best)
        labels = self.outputs.labels if len(self.outputs.labels) == len(probs) else \
            [str(i) for i in range(len(probs))]
        for rule in self.rules.feed(dict(zip(labels, probs.tolist(), strict=True))):
            self.act(rule)
        self.result.emit(best)

    def _failed(self, msg: str) -> None:
        self.busy = False
        self.outputs.detail.setText(f"<font color='#d04040'>{msg}</font>")
        self.message.emit(msg)

    # ------------------------------------------------------------------------ actions ---
    def _build_actions(self) -> None:
        self.actions_box = QtWidgets.QGroupBox("Actions (run here, in the app)")
        self.rule_list = QtWidgets.QListWidget()
        self.rule_list.setMaximumHeight(70)
        self.rule_label = QtWidgets.QComboBox(editable=True)
        self.rule_p = QtWidgets.QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.05,
                                               value=0.9)
        self.rule_k = QtWidgets.QSpinBox(minimum=1, maximum=1000, value=3)
        self.rule_kind = QtWidgets.QComboBox()
        self.rule_kind.addItems(KINDS)
        self.rule_cmd = QtWidgets.QLineEdit(placeholderText="command (for kind 'command')")
        add = QtWidgets.QPushButton("Add rule")
        remove = QtWidgets.QPushButton("Remove")
        add.clicked.connect(self._add_rule)
        remove.clicked.connect(self._remove_rule)
        self.last_action = QtWidgets.QLabel()
        row = QtWidgets.QHBoxLayout()
        for text, w in (("when", self.rule_label), ("\u2265", self.rule_p),
                        ("for frames", self.rule_k), ("then", self.rule_kind)):
            row.addWidget(QtWidgets.QLabel(text))
            row.addWidget(w)
        row.addWidget(self.rule_cmd, 1)
        row.addWidget(add)
        row.addWidget(remove)
        lay = QtWidgets.QVBoxLayout(self.actions_box)
        lay.addLayout(row)
        lay.addWidget(self.rule_list)
        lay.addWidget(self.last_action)

    def set_rules(self, rules: list[Rule], save: bool = True) -> None:
        self.rules = RuleEngine(rules)
        self.rule_list.clear()
        self.rule_list.addItems([r.describe() for r in rules])
        self.rule_label.clear()
        self.rule_label.addItems(self.outputs.labels)
        folder = self.state.editor.folder
        if save and folder is not None:
            self.state.workers.start(write_rules, folder, list(rules), on_done=lambda _p: None,
                                     on_error=self.message.emit, label="saving actions.json")
        elif save:
            self.message.emit("rules are kept with the network: save it to write actions.json")

    def save_to(self, folder: Any) -> None:
        self.state.workers.start(write_rules, folder, list(self.rules.rules),
                                 on_done=lambda _p: None, on_error=self.message.emit,
                                 label="saving actions.json")

    def _add_rule(self) -> None:
        rule = Rule(self.rule_label.currentText(), self.rule_p.value(), self.rule_k.value(),
                    self.rule_kind.currentText(), self.rule_cmd.text().strip())
        if rule.kind == "command" and not rule.command:
            self.message.emit("a 'command' rule needs a command")
            return
        self.set_rules([*self.rules.rules, rule])

    def _remove_rule(self) -> None:
        row = self.rule_list.currentRow()
        if row >= 0:
            rules = list(self.rules.rules)
            del rules[row]
            self.set_rules(rules)

    def act(self, rule: Rule) -> None:
        """Fire a rule: a notification, or the command started detached by this app."""
        text = rule.describe()
        self.fired.append(text)
        if rule.kind == "command":
            shell = ["cmd", "/c"] if os.name == "nt" else ["/bin/sh", "-c"]
            ok, _pid = QtCore.QProcess.startDetached(shell[0], [*shell[1:], rule.command])
            text += "" if ok else " (could not start it)"
        self.last_action.setText(f"\u26a1 {text}")
        self.message.emit(text)
