"""NodeGraphQt on PySide6: which widgets need the enum aliases of app.editor.qt_compat.

The probe builds every NodeGraphQt property widget type, the tab-search completer and reads the
enum a backdrop node uses on a mouse press, once in a fresh interpreter without the patch (to
show that each alias is needed) and once with it (everything must work).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = r"""
import json, os, sys, warnings
os.environ["QT_QPA_PLATFORM"] = "offscreen"
warnings.simplefilter("ignore")
from PySide6 import QtWidgets
app = QtWidgets.QApplication([])
if sys.argv[1] == "patched":
    from app.editor import qt_compat
    qt_compat.ensure()
from NodeGraphQt import NodeGraph
from NodeGraphQt.constants import NodePropWidgetEnum
from NodeGraphQt.custom_widgets.properties_bin.node_property_factory import (
    NodePropertyWidgetFactory)
from NodeGraphQt.widgets.tab_search import TabSearchCompleter
failed, built = [], 0
factory = NodePropertyWidgetFactory()
for e in NodePropWidgetEnum:
    if e in (NodePropWidgetEnum.HIDDEN, NodePropWidgetEnum.BUTTON):
        continue  # no widget: hidden properties and embedded buttons
    try:
        factory.get_widget(e.value)
        built += 1
    except AttributeError:
        failed.append(e.name)
try:
    TabSearchCompleter()
except AttributeError:
    failed.append("TabSearchCompleter")
graph = NodeGraph()
backdrop = graph.create_node("nodeGraphQt.nodes.BackdropNode", push_undo=False)
try:
    backdrop.view.ItemIsMovable
except AttributeError:
    failed.append("BackdropNodeItem")
print(json.dumps({"failed": failed, "built": built}))
"""


def _probe(mode: str) -> dict:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                         timeout=60, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_each_alias_is_needed_and_together_they_suffice():
    from app.editor.qt_compat import ALIASES

    raw = _probe("raw")
    assert sorted(raw["failed"]) == ["BackdropNodeItem", "QDOUBLESPIN_BOX", "QSPIN_BOX",
                                     "TabSearchCompleter"]
    # one alias per failure family: spin boxes, completer, backdrop
    assert {a for _, a in ALIASES} == {"NoButtons", "PopupCompletion", "ItemIsMovable"}
    patched = _probe("patched")
    assert patched["failed"] == [] and patched["built"] == raw["built"] + 2 >= 18
