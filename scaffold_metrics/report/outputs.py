"""A usage report as a table (people), CSV (spreadsheets) or JSON (machines). Every output
shows the same rows and numbers: hours rounded to 3 decimals in text, 6 in JSON."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from .run import UsageReport
from .times import iso
from .usage import Row


def group_heading(report: UsageReport) -> str:
    """What the group column holds: NAMESPACE or the label's key."""
    return "namespace" if report.by == "namespace" else report.by.removeprefix("label:")


def group_text(group: str, report: UsageReport) -> str:
    """A group for display: cluster-scoped kinds and objects without the label get words."""
    if group:
        return group
    return "(cluster)" if report.by == "namespace" else "(none)"


def weight_columns(report: UsageReport) -> list[str]:
    """Every weight name of the report's kinds, in order of first appearance."""
    return list(dict.fromkeys(name for k in report.kinds for name, _f in k.weights))


def hours(value: float) -> str:
    """Hours as text: 3 decimals."""
    return f"{value:.3f}"


def _cells(report: UsageReport, row: Row, weights: list[str]) -> list[str]:
    return [
        row.kind,
        group_text(row.group, report),
        hours(row.object_hours),
        *(hours(row.weight_hours[w]) if w in row.weight_hours else "" for w in weights),
        hours(row.gap_hours),
    ]


def headers(report: UsageReport) -> list[str]:
    """The column names of the table, CSV and HTML outputs."""
    return [
        "kind",
        group_heading(report),
        "object_hours",
        *(f"{w}_hours" for w in weight_columns(report)),
        "gap_hours",
    ]


def rows(report: UsageReport) -> list[list[str]]:
    """The cells of every row, as the table and CSV show them."""
    weights = weight_columns(report)
    return [_cells(report, row, weights) for k in report.kinds for row in k.rows]


def table(report: UsageReport) -> str:
    """Aligned columns, a line on the period first and the notes and gaps after."""
    head = [h.upper().replace("_", "-") for h in headers(report)]
    body = rows(report)
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    lines = [
        f"usage from {iso(report.start)} to {iso(report.end)}, step {report.step}s, "
        f"from the {_sources(report)}"
    ]
    for r in [head, *body]:
        lines.append(
            "  ".join(
                c.ljust(w) if i < 2 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            ).rstrip()
        )
    for kind in report.kinds:
        for row in kind.rows:
            for gap in row.gaps:
                lines.append(
                    f"gap: {row.kind} {group_text(row.group, report)}: no data from "
                    f"{iso(gap.start)} to {iso(gap.end)} ({hours(gap.hours)} h, not counted)"
                )
    lines.extend(f"note: {n}" for n in report.notes)
    return "\n".join(lines) + "\n"


def _sources(report: UsageReport) -> str:
    return " and ".join(sorted({k.source for k in report.kinds})) or "(none)"


def csv_text(report: UsageReport) -> str:
    """One header line, one line per kind and group."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(headers(report))
    writer.writerows(rows(report))
    return buffer.getvalue()


def json_data(report: UsageReport) -> dict[str, Any]:
    """The report as plain data (what `--output json` prints)."""
    return {
        "from": iso(report.start),
        "to": iso(report.end),
        "step_seconds": report.step,
        "by": report.by,
        "job": report.job,
        "kinds": [
            {
                "kind": k.kind,
                "source": k.source,
                "group_label": k.group_label,
                "weights": [{"name": n, "field": f} for n, f in k.weights],
            }
            for k in report.kinds
        ],
        "rows": [
            {
                "kind": row.kind,
                "group": row.group,
                "object_hours": round(row.object_hours, 6),
                "weight_hours": {n: round(v, 6) for n, v in row.weight_hours.items()},
                "gap_hours": round(row.gap_hours, 6),
                "gaps": [{"from": iso(g.start), "to": iso(g.end)} for g in row.gaps],
            }
            for k in report.kinds
            for row in k.rows
        ],
        "notes": list(report.notes),
    }


def json_text(report: UsageReport) -> str:
    """`json_data` indented, with a final newline."""
    return json.dumps(json_data(report), indent=2) + "\n"
