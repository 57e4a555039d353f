"""Inline SVG charts and HTML pieces for the run report.

Charts are plain SVG strings built here, with no JavaScript and no external resource, so a
report opens the same from a laptop, a bucket listing or an air-gapped machine. Every bar
carries a <title> with its exact value, which the browser shows on hover.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from html import escape
from typing import Any

PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
CHAR_PX = 7.0  # average glyph width at the 12px chart font
ROW_PX = 22
# Charts are drawn this wide and scale down with the page (CSS max-width), so that on a 400 px
# phone the text stays at about three quarters of its size and nothing is cut off.
WIDTH = 480
BAR_PX = 14
Formatter = Callable[[float], str]


def count(n: float) -> str:
    return f"{int(round(n)):,}"


def size(n: float) -> str:
    """Bytes in decimal units, as `ls -h --si` and the CLI summary print them."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def binary_size(n: float) -> str:
    """Powers of two read better in binary units: 64 B, 1 KiB, 32 KiB, 1 MiB."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}"
        value /= 1024
    return f"{value:.0f} GiB"


def seconds(n: float) -> str:
    if n < 60:
        return f"{n:.1f} s"
    minutes, secs = divmod(int(round(n)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _fit(label: str, chars: int) -> str:
    return label if len(label) <= chars else label[: max(1, chars - 1)] + "…"


def _text_px(text: str) -> float:
    """Rough rendered width at the chart font: capitals and digits are wider than the rest."""
    return sum(8.6 if ch.isupper() else 7.4 if ch.isdigit() else CHAR_PX for ch in text)


def _label_width(labels: Iterable[str], cap: int = 260) -> int:
    return int(min(cap, 14 + max((_text_px(x) for x in labels), default=28.0)))


def _svg(width: int, height: int, body: list[str], label: str) -> str:
    """The chart with its caption; the caption is also the SVG's accessible name."""
    return (
        f"<figure><figcaption>{escape(label)}</figcaption>"
        f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(label)}"><title>{escape(label)}</title>'
        + "".join(body)
        + "</svg></figure>"
    )


def _legend(series: Sequence[str], x: int, y: int) -> list[str]:
    """Swatches in a row below a chart (a legend beside it would not fit a phone)."""
    out = []
    for i, name in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        out.append(
            f'<rect x="{x}" y="{y}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 14}" y="{y + 9}">{escape(_fit(name, 22))}</text>'
        )
        x += int(28 + _text_px(_fit(name, 22)))
    return out


def _legend_rows(series: Sequence[str], width: int) -> list[list[str]]:
    """The legend's names cut into rows that fit the chart's width."""
    rows: list[list[str]] = [[]]
    used = 0.0
    for name in series:
        need = 28 + _text_px(_fit(name, 22))
        if rows[-1] and used + need > width - 8:
            rows.append([])
            used = 0.0
        rows[-1].append(name)
        used += need
    return rows if rows[0] else []


def _legend_below(series: Sequence[str], width: int, y: int) -> tuple[list[str], int]:
    """(the legend's marks, its height) under the plot; nothing for a single series."""
    if len(series) < 2:
        return [], 0
    body: list[str] = []
    rows = _legend_rows(series, width)
    for k, row in enumerate(rows):
        body += _legend(row, 4, y + 4 + k * 16)
    return body, len(rows) * 16 + 6


def _value_axis(x0: int, x1: float, y: float, top: float, fmt: Formatter, label: str) -> list[str]:
    """A horizontal chart's value axis: a line, 0 and the largest value, and what is counted."""
    return [
        f'<line class="axis" x1="{x0}" y1="{y:.1f}" x2="{x1:.1f}" y2="{y:.1f}"/>',
        f'<text class="tick" x="{x0}" y="{y + 12:.1f}">0</text>',
        f'<text class="tick" x="{x1:.1f}" y="{y + 12:.1f}" text-anchor="end">'
        f"{escape(fmt(top))}</text>",
        f'<text class="axis-label" x="{(x0 + x1) / 2:.1f}" y="{y + 26:.1f}" '
        f'text-anchor="middle">{escape(label)}</text>',
    ]


def bar_chart(
    rows: Sequence[tuple[str, float]],
    title: str,
    fmt: Formatter = count,
    width: int = WIDTH,
    axis: str = "documents",
) -> str:
    """Horizontal bars, one per (label, value), in the order given."""
    return grouped_bars(
        [(label, [value]) for label, value in rows], [title], title, fmt, width, axis
    )


def grouped_bars(
    rows: Sequence[tuple[str, Sequence[float]]],
    series: Sequence[str],
    title: str,
    fmt: Formatter = count,
    width: int = WIDTH,
    axis: str = "documents",
) -> str:
    """Horizontal bars, several series per row (e.g. documents in and kept per stage); the
    value axis is labelled `axis`."""
    if not rows:
        return ""
    label_w = _label_width((r[0] for r in rows), cap=width // 3)
    plot_w = max(120, width - label_w - 60)
    top = max((v for _, values in rows for v in values), default=0) or 1
    per_row = max(ROW_PX, len(series) * (BAR_PX - 2) + 8)
    plot_h = len(rows) * per_row + 4
    body = []
    for i, (label, values) in enumerate(rows):
        y0 = 4 + i * per_row
        body.append(
            f'<text class="label" x="{label_w - 6}" y="{y0 + per_row / 2 + 4:.1f}" '
            f'text-anchor="end">{escape(_fit(label, int(label_w / CHAR_PX)))}'
            f"<title>{escape(label)}</title></text>"
        )
        bar_h = (per_row - 6) / len(series)
        for j, value in enumerate(values):
            w = plot_w * value / top
            y = y0 + 2 + j * bar_h
            name = series[j] if j < len(series) else ""
            tip = f"{label} — {name}: {fmt(value)}" if len(series) > 1 else f"{label}: {fmt(value)}"
            body.append(
                f'<rect x="{label_w}" y="{y:.1f}" width="{max(w, 0.5 if value else 0):.1f}" '
                f'height="{bar_h - 1:.1f}" fill="{PALETTE[j % len(PALETTE)]}">'
                f"<title>{escape(tip)}</title></rect>"
                f'<text class="value" x="{label_w + w + 4:.1f}" y="{y + bar_h - 3:.1f}">'
                f"{escape(fmt(value))}</text>"
            )
    body += _value_axis(label_w, label_w + plot_w, plot_h + 2, top, fmt, axis)
    legend, legend_h = _legend_below(series, width, plot_h + 32)
    return _svg(width, plot_h + 34 + legend_h, body + legend, title)


def stacked_bars(
    rows: Sequence[tuple[str, dict[str, float]]],
    title: str,
    fmt: Formatter = count,
    width: int = WIDTH,
    axis: str = "documents",
) -> str:
    """One horizontal bar per row, split into coloured parts (e.g. a drop reason by source)."""
    if not rows:
        return ""
    series = sorted({k for _, parts in rows for k in parts})
    colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(series)}
    label_w = _label_width((r[0] for r in rows), cap=width // 3)
    plot_w = max(120, width - label_w - 60)
    top = max((sum(parts.values()) for _, parts in rows), default=0) or 1
    plot_h = len(rows) * ROW_PX + 4
    body = []
    for i, (label, parts) in enumerate(rows):
        y = 4 + i * ROW_PX
        body.append(
            f'<text class="label" x="{label_w - 6}" y="{y + 15}" text-anchor="end">'
            f"{escape(_fit(label, int(label_w / CHAR_PX)))}<title>{escape(label)}</title></text>"
        )
        x = float(label_w)
        for name in series:
            value = parts.get(name, 0)
            if not value:
                continue
            w = plot_w * value / top
            body.append(
                f'<rect x="{x:.1f}" y="{y + 3}" width="{max(w, 0.5):.1f}" height="{BAR_PX}" '
                f'fill="{colours[name]}"><title>{escape(f"{label} — {name}: {fmt(value)}")}'
                "</title></rect>"
            )
            x += w
        body.append(
            f'<text class="value" x="{x + 4:.1f}" y="{y + 15}">'
            f"{escape(fmt(sum(parts.values())))}</text>"
        )
    body += _value_axis(label_w, label_w + plot_w, plot_h + 2, top, fmt, axis)
    legend, legend_h = _legend_below(series, width, plot_h + 32)
    if len(series) == 1:  # one part: name it, or the colour means nothing
        legend, legend_h = _legend(series, 4, plot_h + 36), 22
    return _svg(width, plot_h + 34 + legend_h, body + legend, title)


def histogram(
    bins: Sequence[tuple[str, Sequence[float]]],
    series: Sequence[str],
    title: str,
    fmt: Formatter = count,
    width: int = WIDTH,
    height: int = 220,
    axes: tuple[str, str] = ("", "documents"),
) -> str:
    """Vertical bars over ordered bins; several series side by side (e.g. before and after).
    `axes`: what the bins are (x) and what the bars count (y)."""
    if not bins:
        return ""
    left, bottom = 64, 62
    plot_w = min(width - left - 10, 64 * len(bins))  # a few bins stay narrow
    plot_h = height - bottom - 10
    top = max((v for _, values in bins for v in values), default=0) or 1
    slot = plot_w / len(bins)
    bar_w = max(1.0, (slot - 4) / max(1, len(series)))
    base = 10 + plot_h
    body = [
        f'<line x1="{left}" y1="{base}" x2="{left + plot_w}" y2="{base}" class="axis"/>',
        f'<line x1="{left}" y1="10" x2="{left}" y2="{base}" class="axis"/>',
        f'<text class="tick" x="{left - 6}" y="16" text-anchor="end">{escape(fmt(top))}</text>',
        f'<text class="tick" x="{left - 6}" y="{base}" text-anchor="end">0</text>',
        f'<text class="axis-label" x="14" y="{10 + plot_h / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 14 {10 + plot_h / 2:.1f})">{escape(axes[1])}</text>',
        f'<text class="axis-label" x="{left + plot_w / 2:.1f}" y="{height - 4}" '
        f'text-anchor="middle">{escape(axes[0])}</text>',
    ]
    every = max(1, round(len(bins) / (plot_w / 30)))
    for i, (label, values) in enumerate(bins):
        x0 = left + i * slot + 2
        for j, value in enumerate(values):
            h = plot_h * value / top
            name = series[j] if j < len(series) else ""
            tip = f"{label} — {name}: {fmt(value)}" if len(series) > 1 else f"{label}: {fmt(value)}"
            body.append(
                f'<rect x="{x0 + j * bar_w:.1f}" y="{base - h:.1f}" '
                f'width="{bar_w - 0.5:.1f}" height="{max(h, 0.5 if value else 0):.1f}" '
                f'fill="{PALETTE[j % len(PALETTE)]}"><title>{escape(tip)}</title></rect>'
            )
        if i % every == 0:
            cx = left + (i + 0.5) * slot
            body.append(
                f'<text class="tick" x="{cx:.1f}" y="{base + 14}" text-anchor="end" '
                f'transform="rotate(-35 {cx:.1f} {base + 14})">{escape(label)}</text>'
            )
    legend, legend_h = _legend_below(series, width, height)
    return _svg(width, height + legend_h, body + legend, title)


# ---- HTML pieces ---------------------------------------------------------------------------


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[int] = ()) -> str:
    """A plain table; columns whose index is in `numeric` are right-aligned."""
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{escape(str(v))}</td>'
            if i in numeric
            else f"<td>{escape(str(v))}</td>"
            for i, v in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def key_values(title: str, data: dict) -> str:
    """Any other report row as a table: scalars as they are, a flat mapping as `k: v` pairs,
    anything deeper as (shortened) JSON. Numbers that are settings are not charted."""

    def cell(value: Any) -> str:
        if isinstance(value, dict) and all(not isinstance(v, dict | list) for v in value.values()):
            return " · ".join(f"{k}: {v}" for k, v in value.items())
        if isinstance(value, dict | list):
            text = json.dumps(value, ensure_ascii=False)
            return text if len(text) <= 300 else text[:299] + "…"
        return str(value)

    return table([title, "value"], ((k, cell(v)) for k, v in data.items())) if data else ""


def section(anchor: str, title: str, *parts: str) -> str:
    inner = "".join(p for p in parts if p)
    return f'<section id="{escape(anchor)}"><h2>{escape(title)}</h2>{inner}</section>'


def note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def warning(text: str) -> str:
    return f'<p class="warn" role="alert">{escape(text)}</p>'


STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d232a;
background:#f6f7f9}
header{background:#1d3557;color:#fff;padding:18px 28px}header h1{margin:0 0 4px;font-size:22px}
header p{margin:0;opacity:.85}main{padding:8px 28px 40px;max-width:1100px}
nav{margin:12px 0;font-size:13px;display:flex;flex-wrap:wrap;gap:4px 12px}nav a{color:#1d3557}
section{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:12px 18px;margin:16px 0}
h2{font-size:17px;margin:4px 0 10px}h3{font-size:14px;margin:14px 0 6px}
table{border-collapse:collapse;margin:6px 0 10px;font-size:13px}
th,td{border-bottom:1px solid #e4e7eb;padding:3px 10px;text-align:left;vertical-align:top}
th{background:#f0f2f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{border:1px solid #dde1e6;border-radius:6px;
padding:8px 14px;min-width:120px}.card b{display:block;font-size:20px}
.note{color:#5c6670;font-size:13px}.warn{background:#fff4e5;border-left:4px solid #e8890c;
padding:6px 10px;font-size:13px}pre{background:#f0f2f5;padding:8px;overflow:auto;font-size:12px}
figure{margin:8px 0 14px}figcaption{font-size:13px;color:#3c4650;margin-bottom:2px}
svg.chart{display:block;font:12px system-ui,sans-serif;max-width:100%;height:auto}
svg .value,svg .tick{fill:#3c4650;font-size:11px}svg .axis{stroke:#8a949e}
svg .axis-label{fill:#3c4650;font-size:11px;font-style:italic}
code{font-size:12px}.scroll{overflow-x:auto;max-width:100%}td{overflow-wrap:break-word}
td.num{white-space:nowrap}
@media (max-width:600px){header{padding:12px 14px}main{padding:4px 8px 24px}
section{padding:8px 10px;margin:10px 0}.card{min-width:90px;padding:6px 10px}
table{font-size:12px}th,td{padding:3px 6px}}
"""


def page(title: str, subtitle: str, nav: Sequence[tuple[str, str]], sections: Sequence[str]) -> str:
    links = "".join(f'<a href="#{escape(a)}">{escape(t)}</a>' for a, t in nav)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>{escape(title)}</h1><p>{escape(subtitle)}</p></header>"
        f"<main><nav>{links}</nav>{''.join(sections)}</main></body></html>\n"
    )
