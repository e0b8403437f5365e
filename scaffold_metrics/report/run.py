"""A usage report from start to end: which queries answer each kind (recording rules when
Prometheus has them for the period, else the raw families), their points integrated, and the
reasons a kind has no rows. Fails with exit 3 when Prometheus has none of the families, or
none of their samples in the period."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import PrometheusError, UsageError
from ..metering_config import OBJECTS_RULE, MeteringConfig
from ..monitoring_plan import promql_string
from ..plan_model import MetricsPlan
from .prometheus import PrometheusClient, Series
from .queries import RAW, RULES, KindQueries, label_queries, raw_queries, rule_queries
from .times import iso
from .usage import Grid, KindUsage, kind_usage, up_steps

SOURCES = ("auto", "rules", "raw")


@dataclass(frozen=True)
class UsageReport:
    """Everything the outputs show."""

    start: float
    end: float
    step: int
    by: str  # `namespace` or `label:KEY`
    job: str | None
    kinds: tuple[KindUsage, ...]
    notes: tuple[str, ...]


def _queries(
    plan: MetricsPlan, config: MeteringConfig, by: str, source: str, notes: list[str]
) -> list[tuple[KindQueries | None, KindQueries]]:
    """(rule queries or None, raw queries) of every kind that has an `_info` family. By a
    label, a kind without it is left out with a note; when no kind has it, that is the error."""
    out = []
    lacking: list[UsageError] = []
    key = by.removeprefix("label:") if by.startswith("label:") else None
    for kind in plan.kinds:
        try:
            raw = label_queries(kind, config, key) if key is not None else raw_queries(kind, config)
        except UsageError as exc:
            lacking.append(exc)
            continue
        if raw is None:
            continue
        rules = rule_queries(kind, config) if key is None and source != "raw" else None
        out.append((rules, raw))
    if lacking and not out:
        raise lacking[0]
    notes.extend(f"left out: {exc.what} ({exc.hint})" for exc in lacking)
    return out


def _fetch(
    client: PrometheusClient, queries: KindQueries, grid: Grid
) -> tuple[list[Series], list[tuple[str, str, list[Series]]]]:
    objects = client.query_range(queries.objects, grid.first, grid.end, grid.step)
    weights = [
        (w.name, w.field, client.query_range(q, grid.first, grid.end, grid.step))
        for w, q in queries.weights
    ]
    return objects, weights


def build_report(
    client: PrometheusClient,
    plan: MetricsPlan,
    config: MeteringConfig,
    start: float,
    end: float,
    step: int,
    by: str = "namespace",
    source: str = "auto",
    job: str | None = None,
) -> UsageReport:
    """Query, integrate and collect; see the module docstring for the failures."""
    if end <= start:
        raise UsageError(
            f"the period is empty: --to {iso(end)} is not after --from {iso(start)}",
            hint="give --from before --to, such as --from now-30d --to now",
        )
    grid = Grid(start, end, step)
    notes: list[str] = []
    queries = _queries(plan, config, by, source, notes)  # bad input before any request
    names = client.metric_names()
    if source == "rules" and OBJECTS_RULE not in names:
        raise PrometheusError(
            f"Prometheus has no metering recording rules ({OBJECTS_RULE})",
            hint="load the rules file `metering.rules` into Prometheus (or the PrometheusRule), "
            "backfill them with `promtool tsdb create-blocks-from rules`, or use --source raw",
        )
    up = None
    if job is not None:
        up_series = client.query_range(
            f"min(up{{job={promql_string(job)}}})", grid.first, grid.end, grid.step
        )
        up = up_steps(up_series, grid)
        if up is None:
            notes.append(f"no `up` series of job {job!r}: gaps judged from the usage alone")
    kinds: list[KindUsage] = []
    absent: list[str] = []
    for rules, raw in queries:
        kind = _display_name(plan, raw.kind.kind, raw.kind.crd_name)
        chosen = raw
        objects: list[Series] = []
        weights: list[tuple[str, str, list[Series]]] = []
        if rules is not None and OBJECTS_RULE in names:
            objects, weights = _fetch(client, rules, grid)
            chosen = rules
            if not objects and source == "auto":
                chosen = raw
        if chosen.source == RAW:
            missing = [f for f in raw.families if f not in names]
            if missing:
                absent.extend(missing)
                notes.append(f"{kind}: no series of {', '.join(missing)} in Prometheus")
                continue
            objects, weights = _fetch(client, raw, grid)
        elif source == "auto":
            weights = _weights_from_raw(client, raw, weights, names, grid, notes, kind)
        if not objects:
            notes.append(f"{kind}: no samples between {iso(start)} and {iso(end)}")
            continue
        kinds.append(
            kind_usage(kind, chosen.source, chosen.group_label, objects, weights, up, grid)
        )
    if not kinds:
        _no_data(absent, names, start, end)
    return UsageReport(start, end, step, by, job, tuple(kinds), tuple(notes))


def _display_name(plan: MetricsPlan, kind: str, crd_name: str) -> str:
    """How rows name a kind: its Kind, or its CRD name when two CRDs share the Kind."""
    return kind if sum(1 for k in plan.kinds if k.kind == kind) == 1 else crd_name


def _weights_from_raw(
    client: PrometheusClient,
    raw: KindQueries,
    weights: list[tuple[str, str, list[Series]]],
    names: set[str],
    grid: Grid,
    notes: list[str],
    kind: str,
) -> list[tuple[str, str, list[Series]]]:
    """A weight the rules did not record (added since): from its raw family, with a note."""
    out = []
    for (name, fld, series), (weight, query) in zip(weights, raw.weights, strict=True):
        if not series and weight.family in names:
            notes.append(f"{kind}: weight {name} not recorded by the rules: from {weight.family}")
            series = client.query_range(query, grid.first, grid.end, grid.step)
        out.append((name, fld, series))
    return out


def _no_data(absent: Sequence[str], names: set[str], start: float, end: float) -> None:
    if absent:
        raise PrometheusError(
            f"Prometheus has none of the families: {', '.join(sorted(set(absent)))}",
            hint="check that Prometheus scrapes the operator's metrics endpoint (the "
            "ServiceMonitor or scrape job) and that --prometheus is the right server",
        )
    raise PrometheusError(
        f"no samples between {iso(start)} and {iso(end)}",
        hint="the families exist but not in this period: check --from/--to and the "
        "retention of Prometheus",
    )


__all__ = ["RULES", "SOURCES", "UsageReport", "build_report"]
