"""The report as one self-contained HTML file: per kind an inline SVG chart of its objects
per group over the period (gaps shaded), then the table of the other outputs. No scripts, no
external styles or fonts: it opens the same from a mail attachment or a CI artifact.

All text from Prometheus or the CRDs (kinds, namespaces, label values) is escaped.
"""

from __future__ import annotations

from html import escape

from .outputs import group_text, headers, rows
from .run import UsageReport
from .times import iso
from .usage import KindUsage

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 150, 16, 36
# Okabe-Ito: told apart with most colour vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; background: #fff; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
table { border-collapse: collapse; margin-top: 12px; }
th, td { border: 1px solid #bbb; padding: 4px 10px; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #eef2f7; }
.note { color: #555; }
"""


def _ticks(top: float) -> list[float]:
    if top <= 0:
        return [0.0, 1.0]
    raw = top / 4
    magnitude = 10 ** len(str(int(raw))) / 10 if raw >= 1 else 1
    unit = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    ticks, value = [], 0.0
    while value < top + unit:
        ticks.append(value)
        value += unit
    return ticks


def chart(kind: KindUsage, report: UsageReport) -> str:
    """An SVG line chart of the kind's objects per group, one step per point."""
    times = kind.times
    values = [v for counts in kind.counts.values() for v in counts if v is not None]
    ticks = _ticks(max(values, default=0.0))
    top = ticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    span = max(report.end - report.start, 1.0)

    def x(t: float) -> float:
        return LEFT + (t - report.start) / span * plot_w

    def y(v: float) -> float:
        return TOP + plot_h - (v / top) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(kind.kind)} objects per {escape(kind.group_label)}">',
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#fafafa" '
        'stroke="#999"/>',
    ]
    for row in kind.rows:
        for gap in row.gaps:
            parts.append(
                f'<rect x="{x(gap.start):.1f}" y="{TOP}" width="{x(gap.end) - x(gap.start):.1f}" '
                f'height="{plot_h}" fill="#d9d9d9"><title>no data: '
                f"{escape(iso(gap.start))} to {escape(iso(gap.end))}</title></rect>"
            )
    for tick in ticks:
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            'stroke="#ddd"/>'
            f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" font-size="11" text-anchor="end">'
            f"{tick:g}</text>"
        )
    parts.append(
        f'<text x="14" y="{TOP + plot_h / 2:.1f}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 14 {TOP + plot_h / 2:.1f})">objects</text>'
    )
    for t, anchor in ((report.start, "start"), (report.end, "end")):
        parts.append(
            f'<text x="{x(t):.1f}" y="{HEIGHT - 12}" font-size="11" text-anchor="{anchor}">'
            f"{escape(iso(t))}</text>"
        )
    for n, (group, counts) in enumerate(sorted(kind.counts.items())):
        colour = PALETTE[n % len(PALETTE)]
        runs: list[list[str]] = [[]]
        for t, v in zip(times, counts, strict=True):
            if v is None:
                runs.append([])
                continue
            # a step drawn flat over the time it stands for (the one ending at t)
            begin = max(t - report.step, report.start)
            runs[-1].append(f"{x(begin):.1f},{y(v):.1f} {x(t):.1f},{y(v):.1f}")
        for run in runs:
            if run:
                parts.append(
                    f'<polyline fill="none" stroke="{colour}" stroke-width="2.5" '
                    f'points="{" ".join(run)}"/>'
                )
        label = escape(group_text(group, report))
        ly = TOP + 14 + n * 18
        parts.append(
            f'<rect x="{WIDTH - RIGHT + 12}" y="{ly - 9}" width="12" height="12" '
            f'fill="{colour}"/><text x="{WIDTH - RIGHT + 30}" y="{ly + 1}" font-size="12">'
            f"{label}</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


def html_text(report: UsageReport) -> str:
    """The whole page."""
    title = f"Usage from {iso(report.start)} to {iso(report.end)}"
    body = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="note">Step {report.step}s; by {escape(report.by)}. Object-hours: objects '
        "&times; hours they existed; weighted hours: the weight &times; hours. Shaded: no "
        "data (not counted).</p>",
    ]
    for kind in report.kinds:
        body.append(f"<h2>{escape(kind.kind)} (from the {escape(kind.source)})</h2>")
        body.append(chart(kind, report))
    body.append('<table id="usage"><thead><tr>')
    body.extend(f"<th>{escape(h)}</th>" for h in headers(report))
    body.append("</tr></thead><tbody>")
    for cells in rows(report):
        body.append("<tr>")
        body.extend(f"<td>{escape(c)}</td>" for c in cells[:2])
        body.extend(f'<td class="num">{escape(c)}</td>' for c in cells[2:])
        body.append("</tr>")
    body.append("</tbody></table>")
    body.extend(f'<p class="note">note: {escape(n)}</p>' for n in report.notes)
    body.append("</body></html>")
    return "\n".join(body) + "\n"
