"""PNG line charts drawn with Pillow (no matplotlib, no display): the sweeps' trade-off plots.

:func:`line_chart` draws one or more stacked :class:`Panel` s sharing an x axis; each panel's
series sit on its left or right y axis, with ticks, a light grid and a legend, and the PNG is
written atomically. ``x`` is numeric; ``x_labels`` puts text under each x value instead (e.g.
thresholds at equal spacing). Good enough to read a curve; not a plotting library.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.fileio import atomic_write

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]
W = 960
LEFT, RIGHT, TOP = 80, 90, 50
PANEL_H, AXIS_H, LEGEND_ROW, TICKS_H = 280, 40, 22, 22


@dataclass
class Series:
    name: str
    y: Sequence[float | None]
    right: bool = False  # on the right axis
    dashed: bool = False
    points: bool = True


@dataclass
class Panel:
    series: list[Series]
    left_title: str
    right_title: str = ""
    left_range: tuple[float, float] | None = None  # default: from the data, 0 included
    zero: bool = True


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw), default=raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [first + k * step for k in range(int((hi - first) / step + 1e-9) + 1)]


def _range(values: list[float], zero: bool) -> tuple[float, float]:
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if zero:
        lo = min(lo, 0.0)
    pad = (hi - lo) * 0.05 or 0.01
    return (lo if zero and lo == 0 else lo - pad), hi + pad


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"


def line_chart(path: str | Path, title: str, x: Sequence[float], panels: Sequence[Panel],
               x_title: str, x_labels: Sequence[str] | None = None) -> Path:
    from PIL import Image, ImageDraw, ImageFont  # noqa: PLC0415

    rows = [math.ceil(len(p.series) / 3) for p in panels]
    height = TOP + sum(PANEL_H + TICKS_H + LEGEND_ROW * r + 16 for r in rows) + AXIS_H
    img = Image.new("RGB", (W, height), "white")
    d = ImageDraw.Draw(img)
    font, small = ImageFont.load_default(15), ImageFont.load_default(12)
    d.text((W / 2, 18), title, fill="black", font=font, anchor="mt")
    xs = [float(v) for v in x]
    xlo, xhi = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if xhi == xlo:
        xlo, xhi = xlo - 0.5, xhi + 0.5
    x0, x1 = LEFT, W - RIGHT

    def px(v: float) -> float:
        return x0 + (v - xlo) / (xhi - xlo) * (x1 - x0)

    tick_x = (list(zip(xs, x_labels, strict=True)) if x_labels
              else [(t, _fmt(t)) for t in _ticks(xlo, xhi)])
    top = TOP
    for panel, n_rows in zip(panels, rows, strict=True):
        y0, y1 = top, top + PANEL_H
        _panel(d, panel, xs, px, (x0, x1, y0, y1), small)
        for v, text in tick_x:  # every panel gets the shared x axis labels
            d.line([px(v), y1, px(v), y1 + 4], fill="black")
            d.text((px(v), y1 + 6), text, fill="black", font=small, anchor="mt")
        for k, s in enumerate(panel.series):
            colour = COLOURS[k % len(COLOURS)]
            lx, ly = x0 + (k % 3) * 280, y1 + TICKS_H + 14 + (k // 3) * LEGEND_ROW
            _segment(d, (lx, ly), (lx + 30, ly), colour, s.dashed)
            d.text((lx + 38, ly), s.name + (" (right axis)" if s.right else ""), fill="black",
                   font=small, anchor="lm")
        top = y1 + TICKS_H + LEGEND_ROW * n_rows + 16
    d.text(((x0 + x1) / 2, top + 6), x_title, fill="black", font=font, anchor="mt")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    atomic_write(path, buf.getvalue())
    return Path(path)


def _panel(d: object, panel: Panel, xs: list[float], px: object,
           box: tuple[float, float, float, float], small: object) -> None:
    x0, x1, y0, y1 = box
    axes = {}
    for right in (False, True):
        vals = [float(v) for s in panel.series if s.right == right for v in s.y
                if v is not None]
        axes[right] = (panel.left_range if (not right and panel.left_range)
                       else _range(vals, zero=panel.zero or right))
    d.rectangle([x0, y0, x1, y1], outline="black")  # type: ignore[attr-defined]
    for right, (lo, hi) in axes.items():
        if right and not any(s.right for s in panel.series):
            continue
        for t in _ticks(lo, hi):
            if not lo <= t <= hi:
                continue
            yy = y1 - (t - lo) / (hi - lo) * (y1 - y0)
            if not right:
                d.line([x0, yy, x1, yy], fill="#e6e6e6")  # type: ignore[attr-defined]
            xx = x1 if right else x0
            d.line([xx - 4, yy, xx + 4, yy], fill="black")  # type: ignore[attr-defined]
            d.text((xx + 8 if right else xx - 8, yy), _fmt(t), fill="black",  # type: ignore
                   font=small, anchor="lm" if right else "rm")
    d.text((x0 - 70, y0 - 18), panel.left_title, fill="black", font=small)  # type: ignore
    if panel.right_title:
        d.text((x1 + 80, y0 - 18), panel.right_title, fill="black", font=small,  # type: ignore
               anchor="ra")
    for k, s in enumerate(panel.series):
        lo, hi = axes[s.right]
        colour = COLOURS[k % len(COLOURS)]
        pts = [(px(xv), y1 - (float(yv) - lo) / (hi - lo) * (y1 - y0))  # type: ignore
               for xv, yv in zip(xs, s.y, strict=True) if yv is not None]
        for a, b in zip(pts, pts[1:], strict=False):
            _segment(d, a, b, colour, s.dashed)
        if s.points:
            for p in pts:
                d.ellipse([p[0] - 3, p[1] - 3, p[0] + 3, p[1] + 3], fill=colour)  # type: ignore


def _segment(d: object, a: tuple[float, float], b: tuple[float, float], colour: str,
             dashed: bool) -> None:
    if not dashed:
        d.line([a, b], fill=colour, width=2)  # type: ignore[attr-defined]
        return
    steps = max(1, int(math.dist(a, b) // 8))
    for i in range(0, steps, 2):
        j = min(i + 1, steps)
        p = (a[0] + (b[0] - a[0]) * i / steps, a[1] + (b[1] - a[1]) * i / steps)
        q = (a[0] + (b[0] - a[0]) * j / steps, a[1] + (b[1] - a[1]) * j / steps)
        d.line([p, q], fill=colour, width=2)  # type: ignore[attr-defined]
