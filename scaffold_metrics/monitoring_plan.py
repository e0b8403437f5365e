"""What a kind's metric plan offers a dashboard and alerting rules: its families sorted by what
can be shown or alerted on, and what is missing (and why), so both outputs leave out exactly
the panels and alerts the plan cannot feed and say so.

Pure: a function of the `KindPlan`, asked of the value kinds, not of family names.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import value_kinds as vk
from .plan_model import FamilyPlan, KindPlan

OBSERVED_GENERATION_PATH = ("status", "observedGeneration")
# The runtime's own families (scaffold_metrics.runtime.selfmetrics), by what they tell.
SELF_LIST_REQUESTS = "operator_metrics_list_requests_total"
SELF_LIST_FAILURES = "operator_metrics_list_failures_total"
SELF_WATCH_FAILURES = "operator_metrics_watch_failures_total"
SELF_GENERATOR_ERRORS = "operator_metrics_generator_errors_total"
SELF_LAST_SYNC = "operator_metrics_last_sync_timestamp_seconds"
SELF_OBJECTS = "operator_metrics_objects"
_VALUE_KINDS = (vk.NUMBER, vk.NUMBER_STRING, vk.QUANTITY, vk.ITEM_COUNT, vk.MAP)


@dataclass(frozen=True)
class KindSignals:
    """The families of one kind by role; None or empty where the plan has none."""

    kind: KindPlan
    info: FamilyPlan | None
    created: FamilyPlan | None
    conditions: FamilyPlan | None
    generation: FamilyPlan | None
    observed_generation: FamilyPlan | None
    deletion: FamilyPlan | None
    enums: tuple[FamilyPlan, ...]
    strings: tuple[FamilyPlan, ...]
    booleans: tuple[FamilyPlan, ...]
    timestamps: tuple[FamilyPlan, ...]
    values: tuple[FamilyPlan, ...]

    @property
    def generation_pair(self) -> tuple[FamilyPlan, FamilyPlan] | None:
        """metadata.generation and status.observedGeneration, when both are planned."""
        if self.generation is None or self.observed_generation is None:
            return None
        return self.generation, self.observed_generation

    @property
    def object_legend(self) -> str:
        """A Grafana legend naming the object: `{{namespace}}/{{memcached}}`."""
        name = "{{" + self.kind.label_name + "}}"
        return "{{namespace}}/" + name if self.kind.namespaced else name

    def missing(self) -> list[tuple[str, str]]:
        """(what is left out, why) for the parts a dashboard or the alerts would have."""
        kind = self.kind.kind
        out: list[tuple[str, str]] = []
        if self.conditions is None:
            out.append(("conditions", f"{kind} has no status.conditions field planned"))
        if self.observed_generation is None:
            out.append(
                ("generation not observed", f"{kind} has no status.observedGeneration field")
            )
        elif self.generation is None:
            out.append(
                (
                    "generation not observed",
                    f"{kind} plans no metadata.generation: include it under `metrics:`",
                )
            )
        if self.deletion is None:
            out.append(
                (
                    "deletion stuck on finalizers",
                    f"{kind} plans no metadata.deletionTimestamp: include it under `metrics:`",
                )
            )
        return out


def kind_signals(kind: KindPlan) -> KindSignals:
    """Sort the families of `kind` by the role they play on a dashboard or in an alert."""

    def first(value_kind: vk.ValueKind) -> FamilyPlan | None:
        return next((f for f in kind.families if f.value_kind is value_kind), None)

    def every(*value_kinds: vk.ValueKind) -> tuple[FamilyPlan, ...]:
        return tuple(f for f in kind.families if f.value_kind in value_kinds)

    observed = next(
        (
            f
            for f in kind.families
            if f.path == OBSERVED_GENERATION_PATH and f.value_kind in _VALUE_KINDS
            if f.type == "gauge"
        ),
        None,
    )
    generation = first(vk.METADATA_GENERATION)
    return KindSignals(
        kind=kind,
        info=first(vk.INFO),
        created=first(vk.CREATED),
        conditions=first(vk.CONDITIONS),
        generation=generation if generation is not None and generation.type == "gauge" else None,
        observed_generation=observed,
        deletion=first(vk.DELETION_TIMESTAMP),
        enums=every(vk.ENUM),
        strings=every(vk.STRING),
        booleans=tuple(f for f in every(vk.BOOLEAN) if f.type == "gauge"),
        timestamps=tuple(f for f in every(vk.TIMESTAMP) if f.type == "gauge"),
        values=tuple(
            f
            for f in kind.families
            if f.value_kind in (*_VALUE_KINDS, vk.METADATA_GENERATION)
            or (f.value_kind in (vk.BOOLEAN, vk.TIMESTAMP) and f.type != "gauge")
        ),
    )


def selector(kind: KindPlan, *matchers: str) -> str:
    """`{namespace=~"$namespace",...}` for a dashboard query (no namespace for cluster-scoped
    kinds); empty when there is nothing to match."""
    parts = ['namespace=~"$namespace"'] if kind.namespaced else []
    parts.extend(matchers)
    return "{" + ",".join(parts) + "}" if parts else ""


def promql_string(text: str) -> str:
    """`text` as a PromQL double-quoted string literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def regex_alternatives(values: tuple[str, ...]) -> str:
    """`A|B` matching exactly the given words (regex metacharacters escaped)."""
    special = set(".^$*+?()[]{}|\\")
    return "|".join("".join("\\" + c if c in special else c for c in v) for v in values)
