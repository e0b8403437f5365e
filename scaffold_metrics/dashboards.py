"""One Grafana dashboard per kind, built from its metric plan with grafana-foundation-sdk.

The dashboard model comes from the builder library (not hand-written JSON), so the panels,
variables and field config are what Grafana's own schema defines. What the plan cannot feed is
left out and named in the dashboard's description. The bytes are deterministic: keys sorted,
panel ids and grid positions assigned in plan order, the uid derived from the kind's group and
name, no timestamps. The library is an optional extra (`operator-metrics[dashboards]`) imported
only when dashboards are asked for; the runtime never imports it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import UsageError
from .files import GENERATED_JSON_MARKER
from .monitoring_config import DashboardsConfig
from .monitoring_plan import (
    SELF_GENERATOR_ERRORS,
    SELF_LAST_SYNC,
    SELF_LIST_FAILURES,
    SELF_OBJECTS,
    SELF_WATCH_FAILURES,
    KindSignals,
    kind_signals,
    promql_string,
    selector,
)
from .plan_model import FamilyPlan, KindPlan, MetricsPlan
from .render import RenderedFile

if TYPE_CHECKING:
    from grafana_foundation_sdk.cog.builder import Builder
    from grafana_foundation_sdk.models.dashboard import Panel

_EXTRA_HINT = "pip install 'operator-metrics[dashboards]' (Python 3.11 or newer)"
_WIDTH = 24
_HEIGHT = 8
_RATE = "$__rate_interval"
# Condition statuses as numbers, so a state timeline can colour them.
_CONDITION_STATES = (("True", 1, "green"), ("False", 0, "red"), ("Unknown", -1, "yellow"))
_PALETTE = ("green", "blue", "purple", "orange", "yellow", "red", "super-light-blue", "pink")
# What Grafana reads as a variable in titles and descriptions: `$name`, `${name...}`, `[[name]]`.
_GRAFANA_VARIABLE = re.compile(r"\$(?=[\w{])|\[(?=\[)")
_ZERO_WIDTH_SPACE = "\u200b"


def grafana_text(text: str) -> str:
    """CRD text shown as written: Grafana would replace `$namespace`, `${datasource}` or
    `[[namespace]]` in a title or description with the variable's value, so a zero-width
    space after each `$` or `[` that starts one breaks the reference without changing what
    a reader sees."""
    return _GRAFANA_VARIABLE.sub(lambda m: m.group(0) + _ZERO_WIDTH_SPACE, text)


def sdk_missing() -> str | None:
    """Why dashboards cannot be built here (None when the builder library imports)."""
    try:
        import grafana_foundation_sdk.builders.dashboard  # noqa: F401
    except ImportError as exc:
        return f"the dashboards need grafana-foundation-sdk ({exc.msg})"
    return None


def dashboard_uid(kind: KindPlan) -> str:
    """A uid that stays the same for a kind across runs and machines (at most 40 characters,
    as Grafana allows): readable prefix, then a digest of group and kind."""
    digest = hashlib.sha256(f"{kind.group}/{kind.kind}".encode()).hexdigest()[:10]
    return f"om-{kind.module[:24]}-{digest}"


def dashboard_files(plan: MetricsPlan, config: DashboardsConfig) -> list[RenderedFile]:
    """The dashboard JSON of every kind of the plan."""
    problem = sdk_missing()
    if problem is not None:
        raise UsageError(problem, hint=_EXTRA_HINT)
    return [
        RenderedFile(config.path_for(kind.module), dashboard_json(kind), "generated")
        for kind in plan.kinds
    ]


def dashboard_json(kind: KindPlan) -> bytes:
    """The dashboard of one kind as JSON bytes (sorted keys, two-space indent, final newline)."""
    from grafana_foundation_sdk.cog.encoder import JSONEncoder

    model = build_dashboard(kind_signals(kind))
    text = json.dumps(model, cls=JSONEncoder, sort_keys=True, indent=2, ensure_ascii=False)
    return (text + "\n").encode("utf-8")


@dataclass
class _Layout:
    """Places panels left to right in rows of 24 columns, numbering them in order."""

    y: int = 0
    x: int = 0
    row_height: int = 0
    next_id: int = 1
    panels: list[Any] = field(default_factory=list)

    def row(self, title: str) -> None:
        from grafana_foundation_sdk.builders.dashboard import Row
        from grafana_foundation_sdk.models.dashboard import GridPos

        self._newline()
        self.panels.append(
            Row(grafana_text(title))
            .id(self._take_id())
            .grid_pos(GridPos(h=1, w=_WIDTH, x=0, y=self.y))
        )
        self.y += 1

    def add(self, panel: Builder[Panel], width: int = 12, height: int = _HEIGHT) -> None:
        from grafana_foundation_sdk.models.dashboard import GridPos

        if self.x + width > _WIDTH:
            self._newline()
        panel_any: Any = panel
        panel_any.id(self._take_id()).grid_pos(GridPos(h=height, w=width, x=self.x, y=self.y))
        self.panels.append(panel)
        self.x += width
        self.row_height = max(self.row_height, height)

    def _newline(self) -> None:
        self.y += self.row_height
        self.x = 0
        self.row_height = 0

    def _take_id(self) -> int:
        taken = self.next_id
        self.next_id += 1
        return taken


def _datasource() -> Any:
    from grafana_foundation_sdk.models.dashboard import DataSourceRef

    return DataSourceRef(type_val="prometheus", uid="${datasource}")


def _query(expr: str, legend: str, ref: str = "A", *, table: bool = False) -> Any:
    from grafana_foundation_sdk.builders.prometheus import Dataquery
    from grafana_foundation_sdk.models.prometheus import PromQueryFormat

    query = Dataquery().expr(expr).legend_format(legend).ref_id(ref)
    return query.instant().format(PromQueryFormat.TABLE) if table else query.range()


def _legend() -> Any:
    from grafana_foundation_sdk.builders.common import VizLegendOptions
    from grafana_foundation_sdk.models.common import LegendDisplayMode, LegendPlacement

    return (
        VizLegendOptions()
        .show_legend(True)
        .display_mode(LegendDisplayMode.LIST)
        .placement(LegendPlacement.BOTTOM)
    )


def _timeseries(title: str, description: str, unit: str, *queries: Any) -> Any:
    from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries

    panel = Timeseries().title(grafana_text(title)).description(grafana_text(description))
    panel = panel.datasource(_datasource())
    panel = panel.unit(unit).legend(_legend())
    for query in queries:
        panel = panel.with_target(query)
    return panel


def _state_timeline(title: str, description: str, query: Any, states: Sequence[Any]) -> Any:
    from grafana_foundation_sdk.builders.statetimeline import Panel as StateTimeline
    from grafana_foundation_sdk.models.common import VisibilityMode
    from grafana_foundation_sdk.models.dashboard import ValueMap, ValueMappingResult

    options = {
        str(value): ValueMappingResult(text=text, color=color, index=index)
        for index, (text, value, color) in enumerate(states)
    }
    return (
        StateTimeline()
        .title(grafana_text(title))
        .description(grafana_text(description))
        .datasource(_datasource())
        .with_target(query)
        .mappings([ValueMap(options=options)])
        .show_value(VisibilityMode.AUTO)
        .merge_values(True)
        .legend(_legend())
    )


def _stat(title: str, description: str, query: Any) -> Any:
    from grafana_foundation_sdk.builders.common import ReduceDataOptions
    from grafana_foundation_sdk.builders.stat import Panel as Stat
    from grafana_foundation_sdk.models.common import BigValueGraphMode

    return (
        Stat()
        .title(grafana_text(title))
        .description(grafana_text(description))
        .datasource(_datasource())
        .with_target(query)
        .graph_mode(BigValueGraphMode.AREA)
        .no_value("0")
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )


def _table(title: str, description: str, unit: str, query: Any) -> Any:
    from grafana_foundation_sdk.builders.table import Panel as Table
    from grafana_foundation_sdk.models.dashboard import DataTransformerConfig

    hidden = {"Time": True, "__name__": True, "job": True, "instance": True}
    return (
        Table()
        .title(grafana_text(title))
        .description(grafana_text(description))
        .datasource(_datasource())
        .with_target(query)
        .unit(unit)
        .show_header(True)
        .with_transformation(
            DataTransformerConfig(id_val="organize", options={"excludeByName": hidden})
        )
    )


def _description(signals: KindSignals) -> str:
    kind = signals.kind
    text = (
        f"{GENERATED_JSON_MARKER}{kind.kind} ({kind.plural}.{kind.group}/{kind.version}) from "
        f"{kind.source}. DO NOT EDIT: `operator-metrics generate` rewrites it."
    )
    missing = [f"{what}: {why}" for what, why in signals.missing()]
    if missing:
        text += " Left out: " + "; ".join(missing) + "."
    return text


def build_dashboard(signals: KindSignals) -> Any:
    """The dashboard model (grafana_foundation_sdk's `Dashboard`) of one kind."""
    from grafana_foundation_sdk.builders.dashboard import (
        Dashboard,
        DatasourceVariable,
        QueryVariable,
    )
    from grafana_foundation_sdk.models.dashboard import VariableRefresh, VariableSort

    kind = signals.kind
    builder = (
        Dashboard(grafana_text(f"{kind.kind} ({kind.group})"))
        .uid(dashboard_uid(kind))
        .description(grafana_text(_description(signals)))
        .tags(["operator-metrics", kind.group, kind.kind])
        .time("now-6h", "now")
        .refresh("1m")
        .timezone("browser")
        .with_variable(DatasourceVariable("datasource").label("Data source").type("prometheus"))
    )
    if kind.namespaced and signals.info is not None:
        builder = builder.with_variable(
            QueryVariable("namespace")
            .label("Namespace")
            .datasource(_datasource())
            .query(f"label_values({signals.info.name}, namespace)")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )
    layout = _Layout()
    _objects(layout, signals)
    _conditions(layout, signals)
    _states(layout, signals)
    _values(layout, signals)
    _runtime(layout, signals)
    for panel in layout.panels:
        builder = builder.with_panel(panel)
    return builder.build()


def _objects(layout: _Layout, signals: KindSignals) -> None:
    kind = signals.kind
    layout.row("Objects")
    if signals.info is not None:
        info = signals.info.name + selector(kind)
        layout.add(
            _stat("Objects", f"{kind.kind} objects now.", _query(f"count({info})", "objects")),
            width=6,
        )
        if kind.namespaced:
            per_namespace = _query(f"count by (namespace) ({info})", "{{namespace}}")
            title, what = "Objects per namespace", f"{kind.kind} objects in each namespace."
        else:
            per_namespace = _query(f"count({info})", "objects")
            title, what = "Objects", f"{kind.kind} objects over time."
        layout.add(_timeseries(title, what, "short", per_namespace), width=18)
    if signals.created is not None:
        age = f"time() - {signals.created.name}{selector(kind)}"
        layout.add(
            _table(
                "Age",
                f"Time since each {kind.kind} was created.",
                "s",
                _query(f"sort_desc({age})", signals.object_legend, table=True),
            ),
            width=24,
        )


def _numbered(series: str, value: int) -> str:
    """The series of a state set that are 1 now, valued `value` instead: `or` of these per
    state gives one series per object whose number a state timeline maps back to the state."""
    sign = "-" if value < 0 else "+"
    return f"(({series} == 1) * 0 {sign} {abs(value)})"


def _conditions(layout: _Layout, signals: KindSignals) -> None:
    family = signals.conditions
    if family is None:
        return
    kind = signals.kind
    type_label, status_label = family.extra_labels[:2]
    by = ", ".join((*kind.object_labels, type_label))
    parts = [
        _numbered(f"{family.name}{selector(kind, f'{status_label}={promql_string(text)}')}", value)
        for text, value, _color in _CONDITION_STATES
    ]
    expr = f"max by ({by}) ({' or '.join(parts)})"
    legend = f"{signals.object_legend} {{{{{type_label}}}}}"
    layout.row("Conditions")
    layout.add(
        _state_timeline(
            "Condition status",
            f"Each condition of each {kind.kind} ({family.source}) over time.",
            _query(expr, legend),
            _CONDITION_STATES,
        ),
        width=24,
    )
    is_true = selector(kind, f"{status_label}={promql_string('True')}")
    true_now = f"sum by ({type_label}) ({family.name}{is_true})"
    layout.add(
        _timeseries(
            "Objects with each condition True",
            f"How many {kind.kind} objects have each condition True.",
            "short",
            _query(true_now, f"{{{{{type_label}}}}}"),
        ),
        width=24,
    )


def _states(layout: _Layout, signals: KindSignals) -> None:
    families = (*signals.enums, *signals.strings, *signals.booleans)
    if not families:
        return
    kind = signals.kind
    layout.row("States")
    for family in signals.enums:
        label = family.extra_labels[0]
        states = [(s, i, _PALETTE[i % len(_PALETTE)]) for i, s in enumerate(family.states)]
        parts = [
            _numbered(f"{family.name}{selector(kind, f'{label}={promql_string(s)}')}", i)
            for s, i, _color in states
        ]
        expr = f"max by ({', '.join(kind.object_labels)}) ({' or '.join(parts)})"
        layout.add(
            _state_timeline(
                family.source, family.help, _query(expr, signals.object_legend), states
            ),
            width=24,
        )
    for family in signals.strings:
        label = family.extra_labels[0]
        legend = f"{signals.object_legend} {{{{{label}}}}}"
        layout.add(
            _state_timeline(
                family.source,
                family.help,
                _query(f"{family.name}{selector(kind)}", legend),
                [("current", 1, "green")],
            ),
            width=24,
        )
    for family in signals.booleans:
        layout.add(
            _state_timeline(
                family.source,
                family.help,
                _query(f"{family.name}{selector(kind)}", signals.object_legend),
                [("true", 1, "green"), ("false", 0, "blue")],
            ),
            width=24,
        )


def _values(layout: _Layout, signals: KindSignals) -> None:
    kind = signals.kind
    pair = signals.generation_pair
    if not (signals.values or signals.timestamps or pair or signals.deletion):
        return
    layout.row("Values")
    for family in signals.values:
        layout.add(_value_panel(signals, family))
    for family in signals.timestamps:
        expr = f"time() - {family.name}{selector(kind)}"
        layout.add(
            _timeseries(
                f"Since {family.source}",
                family.help,
                "s",
                _query(expr, signals.object_legend),
            )
        )
    if pair is not None:
        generation, observed = pair
        behind = f"{generation.name}{selector(kind)} - {observed.name}{selector(kind)}"
        layout.add(
            _timeseries(
                "Generations not yet observed",
                f"metadata.generation minus status.observedGeneration: above 0 while the "
                f"operator has not caught up with a change to a {kind.kind}.",
                "short",
                _query(behind, signals.object_legend),
            )
        )
    if signals.deletion is not None:
        pending = f"time() - {signals.deletion.name}{selector(kind)}"
        layout.add(
            _table(
                "Deletions pending",
                f"{kind.kind} objects asked to be deleted and still held by finalizers, "
                "with the time since.",
                "s",
                _query(f"sort_desc({pending})", signals.object_legend, table=True),
            ),
            width=24,
        )


def _value_panel(signals: KindSignals, family: FamilyPlan) -> Any:
    kind = signals.kind
    legend = signals.object_legend
    if len(family.extra_labels) == 1 and not family.states:
        legend += f" {{{{{family.extra_labels[0]}}}}}"  # a map's key
    series = f"{family.name}{selector(kind)}"
    if family.type == "counter":
        return _timeseries(
            f"{family.source} (per second)",
            family.help,
            "short",
            _query(f"rate({series}[{_RATE}])", legend),
        )
    return _timeseries(family.source, family.help, "short", _query(series, legend))


def _runtime(layout: _Layout, signals: KindSignals) -> None:
    kind = signals.kind
    of_kind = "{kind=" + promql_string(kind.kind) + "}"
    layout.row("operator-metrics runtime")
    layout.add(
        _timeseries(
            "Time since the last completed list",
            f"Per collector (watched namespace; empty: all) of {kind.kind}. A list runs at "
            "start and after the watch loses its place; a collector without one has not "
            "synced.",
            "s",
            _query(f"time() - {SELF_LAST_SYNC}{of_kind}", "{{namespace}}"),
        )
    )
    layout.add(
        _timeseries(
            "Watch and list errors",
            f"Failed watch and list requests for {kind.kind} per second.",
            "reqps",
            _query(
                f"sum by (namespace) (rate({SELF_WATCH_FAILURES}{of_kind}[{_RATE}]))",
                "watch {{namespace}}",
                "A",
            ),
            _query(
                f"sum by (namespace) (rate({SELF_LIST_FAILURES}{of_kind}[{_RATE}]))",
                "list {{namespace}}",
                "B",
            ),
        )
    )
    layout.add(
        _timeseries(
            "Generator errors",
            f"Objects or values of {kind.kind} the generated code could not turn into samples, "
            "per second.",
            "short",
            _query(f"sum(rate({SELF_GENERATOR_ERRORS}{of_kind}[{_RATE}]))", "errors"),
        )
    )
    layout.add(
        _timeseries(
            "Objects in the metrics store",
            f"{kind.kind} objects the runtime holds, per namespace.",
            "short",
            _query(f"sum by (namespace) ({SELF_OBJECTS}{of_kind})", "{{namespace}}"),
        )
    )
