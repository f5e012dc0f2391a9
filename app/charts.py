"""PNG line charts drawn with Pillow (no matplotlib, no display): the sweeps' trade-off plots.

:func:`line_chart` draws series against a shared x axis, each on the left or the right y axis,
with ticks, a light grid and a legend, and writes the PNG atomically. ``x`` is numeric; pass
``x_labels`` to put text under each x value instead of numbers (e.g. thresholds plotted at equal
spacing). Good enough to read a curve; not a plotting library.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.fileio import atomic_write

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]
W, H = 960, 570
LEFT, RIGHT, TOP, BOTTOM = 80, 90, 50, 120


@dataclass
class Series:
    name: str
    y: Sequence[float | None]
    right: bool = False  # on the right axis
    dashed: bool = False
    points: bool = True


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
    pad = (hi - lo) * 0.05 or 1.0
    return lo - (0 if zero and lo == 0 else pad), hi + pad


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"


def line_chart(path: str | Path, title: str, x: Sequence[float], series: Sequence[Series],
               x_title: str, left_title: str, right_title: str = "",
               x_labels: Sequence[str] | None = None, left_range: tuple[float, float] | None = None
               ) -> Path:
    from PIL import Image, ImageDraw, ImageFont  # noqa: PLC0415

    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    font, small = ImageFont.load_default(15), ImageFont.load_default(12)
    x0, x1, y0, y1 = LEFT, W - RIGHT, TOP, H - BOTTOM
    xs = [float(v) for v in x]
    xlo, xhi = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if xhi == xlo:
        xlo, xhi = xlo - 0.5, xhi + 0.5

    def px(v: float) -> float:
        return x0 + (v - xlo) / (xhi - xlo) * (x1 - x0)

    axes = {}
    for right in (False, True):
        vals = [float(v) for s in series if s.right == right for v in s.y if v is not None]
        rng = left_range if (not right and left_range) else _range(vals, zero=True)
        axes[right] = rng
    d.rectangle([x0, y0, x1, y1], outline="black")
    d.text((W / 2, 18), title, fill="black", font=font, anchor="mt")
    for right, (lo, hi) in axes.items():
        if right and not any(s.right for s in series):
            continue
        for t in _ticks(lo, hi):
            yy = y1 - (t - lo) / (hi - lo) * (y1 - y0)
            if not right:
                d.line([x0, yy, x1, yy], fill="#e6e6e6")
            xx = x1 if right else x0
            d.line([xx - 4, yy, xx + 4, yy], fill="black")
            d.text((xx + 8 if right else xx - 8, yy), _fmt(t), fill="black", font=small,
                   anchor="lm" if right else "rm")
    tick_x = list(zip(xs, x_labels, strict=True)) if x_labels else [(t, _fmt(t))
                                                                      for t in _ticks(xlo, xhi)]
    for v, text in tick_x:
        d.line([px(v), y1, px(v), y1 + 4], fill="black")
        d.text((px(v), y1 + 8), text, fill="black", font=small, anchor="mt")
    d.text(((x0 + x1) / 2, y1 + 30), x_title, fill="black", font=font, anchor="mt")
    d.text((12, y0 - 22), left_title, fill="black", font=small)
    if right_title:
        d.text((W - 12, y0 - 22), right_title, fill="black", font=small, anchor="ra")
    for k, s in enumerate(series):
        lo, hi = axes[s.right]
        colour = COLOURS[k % len(COLOURS)]
        pts = [(px(xv), y1 - (float(yv) - lo) / (hi - lo) * (y1 - y0))
               for xv, yv in zip(xs, s.y, strict=True) if yv is not None]
        for a, b in zip(pts, pts[1:], strict=False):
            _segment(d, a, b, colour, s.dashed)
        if s.points:
            for p in pts:
                d.ellipse([p[0] - 3, p[1] - 3, p[0] + 3, p[1] + 3], fill=colour)
        lx, ly = x0 + (k % 3) * 280, y1 + 60 + (k // 3) * 22
        _segment(d, (lx, ly), (lx + 30, ly), colour, s.dashed)
        d.text((lx + 38, ly), s.name + (" (right axis)" if s.right else ""), fill="black",
               font=small, anchor="lm")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    atomic_write(path, buf.getvalue())
    return Path(path)


def _segment(d: object, a: tuple[float, float], b: tuple[float, float], colour: str,
             dashed: bool) -> None:
    if not dashed:
        d.line([a, b], fill=colour, width=2)  # type: ignore[attr-defined]
        return
    length = math.dist(a, b)
    steps = max(1, int(length // 8))
    for i in range(0, steps, 2):
        p = (a[0] + (b[0] - a[0]) * i / steps, a[1] + (b[1] - a[1]) * i / steps)
        q = (a[0] + (b[0] - a[0]) * min(i + 1, steps) / steps,
             a[1] + (b[1] - a[1]) * min(i + 1, steps) / steps)
        d.line([p, q], fill=colour, width=2)  # type: ignore[attr-defined]
