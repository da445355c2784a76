"""Small inline SVG charts, so the report needs no script and opens offline."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

__all__ = ["bar_chart", "heat_color", "line_chart"]

_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
            "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]  # fmt: skip


def heat_color(value: float | None, top: float) -> str:
    """Background colour of a heatmap cell: white to blue with `value / top`."""
    if value is None or top <= 0:
        return "#ffffff"
    share = max(0.0, min(1.0, value / top))
    r = int(255 - share * (255 - 31))
    g = int(255 - share * (255 - 119))
    b = int(255 - share * (255 - 180))
    return f"#{r:02x}{g:02x}{b:02x}"


def line_chart(
    series: dict[str, Sequence[float | None]],
    *,
    width: int = 640,
    height: int = 260,
    x_label: str = "",
    y_format: str = "{:.0%}",
    x_start: int = 0,
) -> str:
    """An SVG line chart: one line per series, x = index (+ `x_start`), gaps where None."""
    pad_l, pad_b, pad_t, pad_r = 56, 32, 12, 150
    trimmed = {}
    for name, s in series.items():  # drop periods not observable yet at the end
        s = list(s)
        while s and s[-1] is None:
            s.pop()
        trimmed[name] = s
    series = trimmed
    values = [v for s in series.values() for v in s if v is not None]
    if not values:
        return "<p>No data yet.</p>"
    top = max(values) or 1.0
    n = max(len(s) for s in series.values())
    w, h = width - pad_l - pad_r, height - pad_t - pad_b

    def xy(i: int, v: float) -> tuple[float, float]:
        x = pad_l + (w * i / max(n - 1, 1))
        return x, pad_t + h - h * v / top

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">'
    ]
    for k in range(5):
        v = top * k / 4
        _, y = xy(0, v)
        parts.append(
            f'<line x1="{pad_l}" x2="{pad_l + w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
        )
        parts.append(f'<text x="{pad_l - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">'
                     f"{escape(y_format.format(v))}</text>")  # fmt: skip
    for i in range(0, n, max(1, n // 12)):
        x, _ = xy(i, 0)
        parts.append(
            f'<text x="{x:.1f}" y="{pad_t + h + 16}" font-size="11" text-anchor="middle">{i + x_start}</text>'
        )
    parts.append(f'<text x="{pad_l + w / 2}" y="{height - 2}" font-size="11" text-anchor="middle">'
                 f"{escape(x_label)}</text>")  # fmt: skip
    for j, (name, s) in enumerate(series.items()):
        color = _PALETTE[j % len(_PALETTE)]
        runs: list[list[str]] = [[]]
        for i, v in enumerate(s):
            if v is None:
                runs.append([])
            else:
                x, y = xy(i, v)
                runs[-1].append(f"{x:.1f},{y:.1f}")
        for run in runs:
            if len(run) > 1:
                parts.append(
                    f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{" ".join(run)}"/>'
                )
            elif run:
                parts.append(
                    f'<circle cx="{run[0].split(",")[0]}" cy="{run[0].split(",")[1]}" r="2.5" fill="{color}"/>'
                )
        ly = pad_t + 14 * j + 10
        parts.append(
            f'<rect x="{pad_l + w + 12}" y="{ly - 8}" width="10" height="10" fill="{color}"/>'
        )
        parts.append(
            f'<text x="{pad_l + w + 26}" y="{ly + 1}" font-size="11">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(
    bars: Sequence[tuple[str, float]],
    *,
    width: int = 640,
    height: int = 220,
    x_label: str = "",
) -> str:
    """An SVG bar chart of (label, value) pairs."""
    if not bars:
        return "<p>No data yet.</p>"
    pad_l, pad_b, pad_t = 48, 34, 10
    w, h = width - pad_l - 10, height - pad_t - pad_b
    top = max(v for _, v in bars) or 1.0
    step = w / len(bars)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">'
    ]
    for i, (label, v) in enumerate(bars):
        bh = h * v / top
        x = pad_l + i * step
        parts.append(f'<rect x="{x:.1f}" y="{pad_t + h - bh:.1f}" width="{max(step - 1, 1):.1f}" '
                     f'height="{bh:.1f}" fill="#1f77b4"><title>{escape(label)}: {v:,.0f}</title></rect>')  # fmt: skip
        if i % max(1, len(bars) // 10) == 0:
            parts.append(f'<text x="{x + step / 2:.1f}" y="{pad_t + h + 14}" font-size="10" '
                         f'text-anchor="middle">{escape(label)}</text>')  # fmt: skip
    parts.append(
        f'<text x="{pad_l - 6}" y="{pad_t + 10}" font-size="11" text-anchor="end">{top:,.0f}</text>'
    )
    parts.append(f'<text x="{pad_l + w / 2}" y="{height - 2}" font-size="11" text-anchor="middle">'
                 f"{escape(x_label)}</text></svg>")  # fmt: skip
    return "".join(parts)
