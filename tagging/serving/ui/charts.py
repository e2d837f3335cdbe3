"""Inline SVG charts for the web page (no script, no CDN): they scale with the page width."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

ROW_H = 22
LABEL_W = 100
VALUE_W = 44
WIDTH = 360


@dataclass(frozen=True)
class Bar:
    """One bar: its label, value, an optional link and a CSS class (``cls``) for its colour."""

    label: str
    value: float
    href: str | None = None
    cls: str = ""
    text: str | None = None


def bar_chart(bars: Sequence[Bar], title: str, max_value: float | None = None) -> Markup:
    """A horizontal bar chart as an ``<svg>`` element.

    Args:
        bars: The bars, top to bottom.
        title: Accessible title (also shown as a tooltip).
        max_value: Value of a full-width bar (default: the largest value).

    Returns:
        SVG markup, safe to insert into a template.
    """
    if not bars:
        return Markup("")
    top = max_value if max_value is not None else max(b.value for b in bars)
    top = top if top > 0 else 1.0
    span = WIDTH - LABEL_W - VALUE_W
    height = ROW_H * len(bars) + 4
    out = [f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}" '
           f'preserveAspectRatio="xMinYMin meet"><title>{escape(title)}</title>']
    for i, b in enumerate(bars):
        y = i * ROW_H + 2
        w = max(1.0, span * min(max(b.value, 0.0), top) / top)
        label = escape(b.label if len(b.label) <= 16 else b.label[:15] + "\u2026")
        text = escape(b.text if b.text is not None else f"{b.value:g}")
        row = (f'<text class="lbl" x="{LABEL_W - 6}" y="{y + 15}" text-anchor="end">{label}</text>'
               f'<rect class="bar {escape(b.cls)}" x="{LABEL_W}" y="{y + 3}" width="{w:.1f}" height="{ROW_H - 6}" rx="3">'
               f'<title>{escape(b.label)}: {text}</title></rect>'
               f'<text class="val" x="{LABEL_W + w + 4:.1f}" y="{y + 15}">{text}</text>')
        out.append(f'<a href="{escape(b.href)}">{row}</a>' if b.href else row)
    out.append("</svg>")
    return Markup("".join(out))
