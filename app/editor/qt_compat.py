"""Make NodeGraphQt 0.6.44 work on PySide6 (call :func:`ensure` before importing NodeGraphQt).

0. Guard ``None``'s reference count against PySide6 6.12 on Python 3.11 (app.gui_pyside).

1. NodeGraphQt reaches Qt through Qt.py; pin the binding to PySide6 so an installed PyQt cannot
   be picked instead.
2. NodeGraphQt reads enum members through instances (``self.NoButtons``). PySide6 resolves
   short enum names on classes but not on instances, so these raise AttributeError. The exact
   set, found by ``tests/app/gui/test_qt_compat.py`` (which builds every NodeGraphQt property
   widget, a backdrop and the tab-search completer in a fresh interpreter with and without this
   patch): ``QAbstractSpinBox.NoButtons`` (the QSPIN_BOX and QDOUBLESPIN_BOX property widgets),
   ``QCompleter.PopupCompletion`` (the tab-search completer) and
   ``QGraphicsItem.ItemIsMovable`` (pressing on a backdrop node). Setting the class attribute
   explicitly makes the instance lookup find it.
"""

from __future__ import annotations

import os
import warnings

ALIASES = (("QAbstractSpinBox", "NoButtons"), ("QCompleter", "PopupCompletion"),
           ("QGraphicsItem", "ItemIsMovable"))
_done = False


def ensure() -> None:
    """Idempotent; cheap after the first call."""
    global _done
    if _done:
        return
    os.environ.setdefault("QT_PREFERRED_BINDING", "PySide6")
    from app.gui_pyside import pin_none  # noqa: PLC0415

    pin_none()
    from PySide6 import QtWidgets  # noqa: PLC0415

    for cls_name, member in ALIASES:
        cls = getattr(QtWidgets, cls_name)
        setattr(cls, member, getattr(cls, member))
    # NodeGraphQt imports distutils (deprecated in 3.11, gone in 3.12): not ours to fix.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="NodeGraphQt")
    warnings.filterwarnings("ignore", message=".*distutils.*", category=DeprecationWarning)
    _done = True
