"""Small inline-SVG charts: grouped bars, horizontal bars, histogram, lines with a band, heatmap.

Each function returns one ``<svg>`` element as a string, ready to drop into the report.
The SVG has a ``viewBox`` and no fixed size, so it scales with the page and prints
sharply; it carries no font of its own (text inherits the page's font stack, CJK
included) and no external reference.  Every piece of text is escaped here, because labels
can be the business's own words (grade names from ``patron.toml``).

Why our own and not a library: the report needs five plain chart kinds; matplotlib would
need the CJK font registered and emits ~50 kB per chart, vl-convert-python adds a ~100 MB
wheel; a hundred lines of SVG do the job, in the page's own fonts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

__all__ = [
    "PALETTE",
    "Series",
    "Svg",
    "bar_chart",
    "hbar_chart",
    "histogram",
    "line_chart",
    "heatmap",
]

PALETTE = ("#2563eb", "#f59e0b", "#059669", "#dc2626", "#7c3aed", "#0891b2", "#64748b")
INK, GRID, MUTED = "#1f2937", "#e5e7eb", "#6b7280"
Format = Callable[[float], str]


class Svg(str):
    """A chart's markup: text known to be escaped, unlike any other string."""


@dataclass
class Series:
    """One named series; ``low``/``high`` draw a band around a line."""

    name: str
    values: Sequence[float]
    low: Sequence[float] | None = None
    high: Sequence[float] | None = None
    dashed: bool = False


def _plain(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 or value == int(value) else f"{value:.2g}"


def text_width(text: str, size: float) -> float:
    """Rough rendered width: CJK characters are a full em, others about 0.6 em."""
    return sum(size if ord(ch) >= 0x2E80 else size * 0.6 for ch in text)


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick positions covering ``[lo, hi]``.

    >>> nice_ticks(0, 87)
    [0.0, 20.0, 40.0, 60.0, 80.0, 100.0]
    """
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = 0.0, 1.0
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / n
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * 0.999)
    start, end = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [float(round(k * step, 10)) for k in range(start, end + 1)]


def _t(x: float, y: float, text: str, *, size: int = 11, anchor: str = "middle", **attrs) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{escape(str(v))}"' for k, v in attrs.items())
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{extra}>'
        f"{escape(text)}</text>"
    )


class _Frame:
    """A plot area inside a ``width`` x ``height`` viewBox, with linear scales."""

    def __init__(self, title, width, height, left, right, top, bottom, x_domain, y_domain):
        self.parts: list[str] = []
        self.title, self.width, self.height = title, width, height
        self.left, self.right = left, width - right
        self.top, self.bottom = top, height - bottom
        self.x0, self.x1 = x_domain
        self.y0, self.y1 = y_domain

    def x(self, v: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return self.left + (v - self.x0) / span * (self.right - self.left)

    def y(self, v: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return self.bottom - (v - self.y0) / span * (self.bottom - self.top)

    def y_axis(self, ticks: Sequence[float], fmt: Format, label: str) -> None:
        for v in ticks:
            y = self.y(v)
            self.parts.append(
                f'<line x1="{self.left:.1f}" x2="{self.right:.1f}" y1="{y:.1f}" y2="{y:.1f}" '
                f'stroke="{GRID}"/>'
            )
            self.parts.append(_t(self.left - 6, y + 4, fmt(v), anchor="end", fill=MUTED))
        if label:
            mid = (self.top + self.bottom) / 2
            self.parts.append(
                _t(14, mid, label, size=12, transform=f"rotate(-90 14 {mid:.1f})", fill=INK)
            )

    def x_axis(self, ticks: Sequence[tuple[float, str]], label: str) -> None:
        self.parts.append(
            f'<line x1="{self.left:.1f}" x2="{self.right:.1f}" y1="{self.bottom:.1f}" '
            f'y2="{self.bottom:.1f}" stroke="{MUTED}"/>'
        )
        for v, text in ticks:
            self.parts.append(_t(self.x(v), self.bottom + 16, text, fill=MUTED))
        if label:
            mid = (self.left + self.right) / 2
            self.parts.append(_t(mid, self.height - 6, label, size=12, fill=INK))

    def legend(self, names: Sequence[str], dashed: Sequence[bool] | None = None) -> None:
        """A row of keys above the plot: swatches for bars, line samples for lines."""
        x = self.left
        for i, name in enumerate(names):
            colour = PALETTE[i % len(PALETTE)]
            if dashed is None:
                self.parts.append(
                    f'<rect x="{x:.1f}" y="6" width="12" height="12" fill="{colour}"/>'
                )
                key = 12
            else:
                dash = ' stroke-dasharray="6 4"' if dashed[i] else ""
                self.parts.append(
                    f'<line x1="{x:.1f}" x2="{x + 24:.1f}" y1="12" y2="12" stroke="{colour}" '
                    f'stroke-width="2.5"{dash}/>'
                )
                key = 24
            self.parts.append(_t(x + key + 5, 16, name, anchor="start", fill=INK))
            x += key + 5 + text_width(name, 11) + 16

    def svg(self) -> Svg:
        return Svg(
            f'<svg class="chart" viewBox="0 0 {self.width} {self.height}" role="img">'
            f"<title>{escape(self.title)}</title>" + "".join(self.parts) + "</svg>"
        )


def _left_margin(ticks: Sequence[float], fmt: Format) -> float:
    return 30 + max(text_width(fmt(v), 11) for v in ticks)


def bar_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    x_label: str = "",
    y_label: str = "",
    y_format: Format = _plain,
    value_format: Format | None = None,
    width: int = 640,
    height: int = 300,
) -> str:
    """Vertical bars, one group per label and one bar per series in each group."""
    top_value = max([max(s.values, default=0) for s in series] + [0])
    ticks = nice_ticks(0, top_value or 1)
    top = 30 if len(series) > 1 else 14
    f = _Frame(
        title,
        width,
        height,
        _left_margin(ticks, y_format),
        12,
        top,
        44,
        (0, len(labels)),
        (0, ticks[-1]),
    )
    f.y_axis(ticks, y_format, y_label)
    group = (f.right - f.left) / max(len(labels), 1)
    bar = group * 0.8 / max(len(series), 1)
    for k, s in enumerate(series):
        colour = PALETTE[k % len(PALETTE)]
        for i, v in enumerate(s.values):
            x = f.left + group * (i + 0.1) + bar * k
            y = f.y(max(v, 0))
            f.parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar * 0.92:.1f}" '
                f'height="{f.bottom - y:.1f}" fill="{colour}"><title>'
                f"{escape(labels[i])} · {escape(s.name)}: {escape(y_format(v))}</title></rect>"
            )
            if value_format is not None:
                f.parts.append(_t(x + bar * 0.46, y - 4, value_format(v), size=10, fill=INK))
    f.x_axis([(i + 0.5, label) for i, label in enumerate(labels)], x_label)
    if len(series) > 1:
        f.legend([s.name for s in series])
    return f.svg()


def hbar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    value_format: Format = _plain,
    width: int = 640,
    row: int = 30,
) -> str:
    """Horizontal bars with the label on the left and the value at the bar's end."""
    left = 16 + max((text_width(label, 12) for label in labels), default=0)
    right = 16 + max((text_width(value_format(v), 11) for v in values), default=0)
    height = row * len(labels) + 8
    f = _Frame(title, width, height, left, right, 4, 4, (0, max(values, default=0) or 1), (0, 1))
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        y = 4 + i * row
        end = f.x(max(v, 0))
        f.parts.append(_t(left - 8, y + row * 0.62, label, size=12, anchor="end", fill=INK))
        f.parts.append(
            f'<rect x="{left:.1f}" y="{y + 4:.1f}" width="{max(end - left, 1):.1f}" '
            f'height="{row - 8:.1f}" fill="{PALETTE[0]}"/>'
        )
        f.parts.append(_t(end + 6, y + row * 0.62, value_format(v), anchor="start", fill=INK))
    return f.svg()


def histogram(
    edges: Sequence[float],
    counts: Sequence[float],
    *,
    title: str,
    x_label: str = "",
    y_label: str = "",
    x_format: Format = _plain,
    y_format: Format = _plain,
    overflow: bool = False,
    width: int = 640,
    height: int = 300,
) -> str:
    """Contiguous bars over numeric bins; ``overflow`` shades the last bin (open-ended)."""
    ticks = nice_ticks(0, max(counts, default=0) or 1)
    f = _Frame(
        title,
        width,
        height,
        _left_margin(ticks, y_format),
        16,
        14,
        44,
        (edges[0], edges[-1]),
        (0, ticks[-1]),
    )
    f.y_axis(ticks, y_format, y_label)
    for i, c in enumerate(counts):
        x0, x1, y = f.x(edges[i]), f.x(edges[i + 1]), f.y(c)
        colour = PALETTE[6] if overflow and i == len(counts) - 1 else PALETTE[0]
        f.parts.append(
            f'<rect x="{x0:.1f}" y="{y:.1f}" width="{max(x1 - x0 - 1, 0.5):.1f}" '
            f'height="{f.bottom - y:.1f}" fill="{colour}"><title>'
            f"{escape(x_format(edges[i]))}–{escape(x_format(edges[i + 1]))}: "
            f"{escape(y_format(c))}</title></rect>"
        )
    x_ticks = [v for v in nice_ticks(edges[0], edges[-1], 6) if edges[0] <= v <= edges[-1]]
    f.x_axis([(v, x_format(v)) for v in x_ticks], x_label)
    return f.svg()


def line_chart(
    x: Sequence[float],
    series: Sequence[Series],
    *,
    title: str,
    x_label: str = "",
    y_label: str = "",
    x_ticks: Sequence[tuple[float, str]] | None = None,
    x_format: Format = _plain,
    y_format: Format = _plain,
    y_domain: tuple[float, float] | None = None,
    marks: Sequence[tuple[float, str]] = (),
    points: bool = False,
    width: int = 640,
    height: int = 300,
) -> str:
    """Lines over a numeric x, each with an optional shaded band.

    ``marks`` are vertical reference lines, each with a label.
    """
    if y_domain is None:
        values = [v for s in series for v in (*s.values, *(s.low or ()), *(s.high or ()))]
        finite = [v for v in values if math.isfinite(v)]
        ticks = nice_ticks(min([0.0, *finite]), max(finite, default=1) or 1)
    else:
        ticks = nice_ticks(*y_domain)
    top = 30 if len(series) > 1 else 14
    f = _Frame(
        title,
        width,
        height,
        _left_margin(ticks, y_format),
        20,
        top,
        44,
        (min(x), max(x)),
        (ticks[0], ticks[-1]),
    )
    f.y_axis(ticks, y_format, y_label)
    for k, s in enumerate(series):
        colour = PALETTE[k % len(PALETTE)]
        if s.low is not None and s.high is not None:
            upper = [f"{f.x(a):.1f},{f.y(b):.1f}" for a, b in zip(x, s.high, strict=True)]
            lower = [f"{f.x(a):.1f},{f.y(b):.1f}" for a, b in zip(x, s.low, strict=True)]
            f.parts.append(
                f'<polygon points="{" ".join(upper + lower[::-1])}" fill="{colour}" '
                f'fill-opacity="0.18" stroke="none"/>'
            )
        coords = " ".join(
            f"{f.x(a):.1f},{f.y(b):.1f}"
            for a, b in zip(x, s.values, strict=True)
            if math.isfinite(b)
        )
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        f.parts.append(
            f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2.2"{dash}/>'
        )
        if points:
            for a, b in zip(x, s.values, strict=True):
                if math.isfinite(b):
                    f.parts.append(
                        f'<circle cx="{f.x(a):.1f}" cy="{f.y(b):.1f}" r="3" fill="{colour}"/>'
                    )
    for value, label in marks:
        mx = f.x(value)
        f.parts.append(
            f'<line x1="{mx:.1f}" x2="{mx:.1f}" y1="{f.top:.1f}" y2="{f.bottom:.1f}" '
            f'stroke="{MUTED}" stroke-dasharray="3 3"/>'
        )
        f.parts.append(_t(mx + 4, f.top + 12, label, size=10, anchor="start", fill=MUTED))
    if x_ticks is None:
        x_ticks = [(v, x_format(v)) for v in nice_ticks(min(x), max(x), 6) if min(x) <= v <= max(x)]
    f.x_axis(x_ticks, x_label)
    if len(series) > 1:
        f.legend([s.name for s in series], [s.dashed for s in series])
    return f.svg()


def _shade(t: float) -> str:
    """White to deep blue as ``t`` goes from 0 to 1."""
    low, high = (239, 246, 255), (30, 64, 175)
    return "#" + "".join(f"{round(a + (b - a) * t):02x}" for a, b in zip(low, high, strict=True))


def heatmap(
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    counts: Sequence[Sequence[float]],
    values: Sequence[Sequence[float]],
    *,
    title: str,
    row_title: str,
    col_title: str,
    count_format: Format = _plain,
    value_format: Format = _plain,
    legend_title: str = "",
    cell: int = 64,
) -> str:
    """A grid: each cell shows its count, its colour is its value (blank when no one)."""
    finite = [v for r in values for v in r if math.isfinite(v)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    left, top = 64, 16
    legend_x = left + cell * len(col_labels) + 28
    width = legend_x + 24 + max(text_width(value_format(v), 11) for v in (lo, hi)) + 16
    width = max(width, legend_x + 24 + text_width(legend_title, 11) + 8)
    height = top + cell * len(row_labels) + 48
    f = _Frame(title, int(width), height, left, 0, top, 48, (0, 1), (0, 1))
    for i, label in enumerate(row_labels):
        y = top + i * cell
        f.parts.append(_t(left - 8, y + cell / 2 + 4, label, size=12, anchor="end", fill=INK))
        for j, _label in enumerate(col_labels):
            x, n, v = left + j * cell, counts[i][j], values[i][j]
            known = n > 0 and math.isfinite(v)
            t = (v - lo) / (hi - lo) if known and hi > lo else 0.5
            fill = _shade(t) if known else "#f9fafb"
            ink = "#ffffff" if known and t > 0.55 else INK
            f.parts.append(
                f'<rect x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" fill="{fill}">'
                f"<title>{escape(count_format(n))} · {escape(value_format(v))}</title></rect>"
            )
            f.parts.append(
                _t(
                    x + cell / 2 - 1,
                    y + cell / 2 - 2,
                    count_format(n),
                    size=13,
                    fill=ink,
                    font_weight="600",
                )
            )
            if known:
                f.parts.append(
                    _t(x + cell / 2 - 1, y + cell / 2 + 14, value_format(v), size=10, fill=ink)
                )
    for j, label in enumerate(col_labels):
        f.parts.append(
            _t(
                left + j * cell + cell / 2,
                top + cell * len(row_labels) + 16,
                label,
                size=12,
                fill=INK,
            )
        )
    grid_mid_x = left + cell * len(col_labels) / 2
    f.parts.append(_t(grid_mid_x, height - 8, col_title, size=12, fill=INK))
    mid = top + cell * len(row_labels) / 2
    f.parts.append(_t(14, mid, row_title, size=12, transform=f"rotate(-90 14 {mid:.1f})", fill=INK))
    steps = 5
    f.parts.append(_t(legend_x, top + 4, legend_title, size=11, anchor="start", fill=INK))
    for k in range(steps):
        y = top + 14 + k * 22
        t = 1 - k / (steps - 1)
        f.parts.append(f'<rect x="{legend_x}" y="{y}" width="18" height="20" fill="{_shade(t)}"/>')
        f.parts.append(
            _t(legend_x + 24, y + 14, value_format(lo + (hi - lo) * t), anchor="start", fill=MUTED)
        )
    return f.svg()
