"""`operator-metrics explain`: the planned families before anything is generated.

For people, a table per kind (name, type, labels, source path, why included) followed by what
the depth, the cap, the field types or the config left out; for machines the same as JSON.
Both come from the very plan `generate` renders, so what `explain` shows is what gets served.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import config_path, load_config
from .crd import Crd, load_crds
from .metric_config import parse_metrics_config
from .monitoring_plan import kind_signals
from .plan import KindPlan, LeftOut, MetricsPlan, PlanOptions, plan_metrics
from .value_kinds import METADATA_MAPS


@dataclass(frozen=True)
class PlanInputs:
    """CRDs and options to plan from, whether given by flags or by the project config."""

    crds: tuple[Crd, ...]
    options: PlanOptions
    sources: dict[str, str]


@dataclass(frozen=True)
class KindExplanation:
    """One kind's plan and what it leaves out."""

    kind: KindPlan
    left_out: tuple[LeftOut, ...]
    monitoring_left_out: tuple[tuple[str, str], ...] = ()
    """(what, why) of the dashboard panels and alerts this kind's plan cannot feed."""


def plan_inputs(crd_paths: Sequence[Path], versions: dict[str, str], project: Path) -> PlanInputs:
    """From `--crd` files (defaults only), or else from the project's config (with `metrics:`)."""
    if crd_paths:
        loaded = load_crds(crd_paths)
        sources = {crd.name: str(crd.file) for crd in loaded.crds}
        return PlanInputs(tuple(loaded.crds), PlanOptions(versions=versions), sources)
    config = load_config(project)
    loaded = load_crds(Path(os.path.normpath(project / p)) for p in config.crds)
    metrics = parse_metrics_config(config.extra.get("metrics"), config_path(project))
    merged = {**config.versions, **versions}
    sources = {crd.name: str(crd.file) for crd in loaded.crds}
    return PlanInputs(tuple(loaded.crds), PlanOptions(versions=merged, metrics=metrics), sources)


def build_plan(inputs: PlanInputs) -> MetricsPlan:
    """The plan `generate` would render for these inputs."""
    return plan_metrics(inputs.crds, inputs.options, inputs.sources)


def explain(inputs: PlanInputs) -> list[KindExplanation]:
    """Every kind's plan, with the fields left out of it (both from the one planning pass)."""
    return [
        KindExplanation(kind, kind.left_out, tuple(kind_signals(kind).missing()))
        for kind in build_plan(inputs).kinds
    ]


def _printable(value: Any) -> str:
    """CRD text for a terminal: control characters shown escaped, never interpreted."""
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode() for c in str(value)
    )


def explanation_data(explanations: Sequence[KindExplanation]) -> dict[str, Any]:
    """The JSON document of `explain --output json`."""
    kinds = []
    for item in explanations:
        k = item.kind
        families = []
        for f in k.families:
            entry: dict[str, Any] = {
                "name": f.name,
                "type": f.type,
                "labels": [*k.object_labels, *f.extra_labels],
                "source": f.source,
                "reason": f.reason,
                "value": f.value,
            }
            if f.states:
                entry["states"] = list(f.states)
            if f.label_keys:
                keys = f"{METADATA_MAPS[f.value_kind.name].noun}_keys"
                entry[keys] = list(f.label_keys)
            families.append(entry)
        kinds.append(
            {
                "kind": k.kind,
                "group": k.group,
                "version": k.version,
                "crd": k.crd_name,
                "module": k.module,
                "families": families,
                "left_out": [{"path": o.path, "reason": o.reason} for o in item.left_out],
                "monitoring_left_out": [
                    {"what": what, "reason": why} for what, why in item.monitoring_left_out
                ],
            }
        )
    return {"kinds": kinds}


def explanation_json(explanations: Sequence[KindExplanation]) -> str:
    """`explain --output json`."""
    return json.dumps(explanation_data(explanations), indent=2, ensure_ascii=True) + "\n"


def _table(rows: list[list[str]], indent: str) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        indent + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def explanation_table(explanations: Sequence[KindExplanation]) -> str:
    """`explain` for people: a table per kind, then what was left out."""
    lines: list[str] = []
    for item in explanations:
        k = item.kind
        title = f"{k.kind} ({k.plural}.{k.group}/{k.version}): {len(k.families)} families"
        lines.append(_printable(title))
        rows = [["NAME", "TYPE", "LABELS", "SOURCE", "WHY"]]
        for f in k.families:
            labels = ",".join((*k.object_labels, *f.extra_labels))
            rows.append([f.name, f.type, labels, _printable(f.source), _printable(f.reason)])
        lines.extend(_table(rows, "  "))
        if item.left_out:
            lines.append(f"  left out ({len(item.left_out)}):")
            lines.extend(
                _table([[_printable(o.path), _printable(o.reason)] for o in item.left_out], "    ")
            )
        if item.monitoring_left_out:
            lines.append("  dashboard panels and alerts left out (init --dashboards/--alerts):")
            rows = [[_printable(what), _printable(why)] for what, why in item.monitoring_left_out]
            lines.extend(_table(rows, "    "))
        lines.append("")
    return "\n".join(lines)
