"""A guard against a reference-counting bug of PySide6 6.12 on CPython 3.11.

PySide6 6.12's generated wrappers return ``None`` from void methods (``setToolTip``, ``setPos``,
``update``, ...) and ``True``/``False`` from bool methods (``isVisible``, ...) without taking a
new reference. On Python >= 3.12 these objects are immortal and nothing happens; on 3.11 (the
version NodeGraphQt needs) every such call lowers their reference count by one, and after a few
hundred (bool) or thousand (None) calls, that is seconds of real use, the interpreter aborts
with "Fatal Python error: none_dealloc: deallocating None" (or ``bool_dealloc``).
``tests/app/gui/test_pyside_guard.py`` shows the drop and the fix.

:func:`pin_none` gives ``None``, ``True`` and ``False`` reference counts so large that no
session can wear them down, which is what Python 3.12 does for them officially (PEP 683). Call
it before the first Qt call; it is idempotent and does nothing on other versions.
"""

from __future__ import annotations

import ctypes
import sys

_PIN = 1 << 60


def pin_none() -> None:
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return
    for obj in (None, True, False):
        # ob_refcnt is the first field of every PyObject in a release build of CPython 3.11.
        refcnt = ctypes.c_ssize_t.from_address(id(obj))
        if refcnt.value < _PIN // 2:
            refcnt.value += _PIN
