"""Test-wide settings: Qt renders offscreen (CI has no display)."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("DIANNE_BACKEND", "numpy")

# PySide6 6.12 on CPython 3.11 drops references to None/True/False on some Qt calls (see
# app/gui_pyside.py): pin them before any test touches Qt, whichever test module runs first.
from app.gui_pyside import pin_none  # noqa: E402

pin_none()

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"

# The eight composites written by the original DIANNE (spec section 8.1).
COMPOSITES = SHARED / "fixtures" / "dianne" / "composites"
COMPOSITE_NAMES = ["ConvLayer", "Fractal-3", "GRU", "Inception_v1", "Inception_v2", "LSTM",
                   "Residual", "Residual_b"]
