"""The PromQL a report runs per kind: from the metering recording rules (a few series per
namespace), or from the raw families with the same aggregation the rules use (each object
counted once whatever the number of targets exposing it), or, grouped by an object label,
the raw families joined with the kind's `_labels` family.

Pure: a function of the kind's plan and the metering config.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import value_kinds as vk
from ..errors import UsageError
from ..metering_config import OBJECTS_RULE, WEIGHT_RULE, MeteringConfig, Weight
from ..monitoring_plan import kind_signals, promql_string
from ..plan_model import FamilyPlan, KindPlan

RULES = "recording rules"
RAW = "raw families"
NAMESPACE = "namespace"


@dataclass(frozen=True)
class KindQueries:
    """What to ask Prometheus about one kind: the object count and each weight, every series
    carrying the grouping label `group_label` (absent on cluster-scoped kinds by namespace)."""

    kind: KindPlan
    source: str
    group_label: str
    objects: str
    weights: tuple[tuple[Weight, str], ...]
    families: tuple[str, ...]  # the metric names the queries read


def rule_queries(kind: KindPlan, config: MeteringConfig) -> KindQueries:
    """From the recording rules `metering_rules` writes: at each step the last value recorded
    in the interval before it, whatever the phase of the rule group's evaluations (Prometheus
    offsets each group) and the server's lookback. Exactly one interval: a longer window
    would carry a value into a gap."""
    of_kind = f"kind={promql_string(kind.kind)},group={promql_string(kind.group)}"
    window = f"[{config.interval_seconds}s]"

    def last(selector: str) -> str:
        return f"last_over_time({selector}{window})"

    weights = tuple(
        (w, last(f"{WEIGHT_RULE}{{{of_kind},weight={promql_string(w.name)}}}"))
        for w in config.weights_of(kind)
    )
    objects = last(f"{OBJECTS_RULE}{{{of_kind}}}")
    return KindQueries(kind, RULES, NAMESPACE, objects, weights, (OBJECTS_RULE,))


def _by(kind: KindPlan, *labels: str) -> str:
    kept = (["namespace"] if kind.namespaced else []) + list(labels)
    return f"({', '.join(kept)})"


def raw_queries(kind: KindPlan, config: MeteringConfig) -> KindQueries | None:
    """From the kind's own families (None when it plans no `_info`)."""
    info = kind_signals(kind).info
    if info is None:
        return None
    obj = _by(kind, kind.label_name)
    group = _by(kind)
    weights = tuple(
        (w, f"sum by {group} (max by {obj} ({w.family}))") for w in config.weights_of(kind)
    )
    objects = f"count by {group} (count by {obj} ({info.name}))"
    families = (info.name, *(w.family for w in config.weights_of(kind)))
    return KindQueries(kind, RAW, NAMESPACE, objects, weights, families)


def labels_family(kind: KindPlan) -> FamilyPlan | None:
    """The kind's `_labels` family, when it plans one."""
    return next((f for f in kind.families if f.value_kind is vk.LABELS), None)


def label_queries(kind: KindPlan, config: MeteringConfig, key: str) -> KindQueries | None:
    """From the raw families, grouped by the object label `key` (None: no `_info`)."""
    info = kind_signals(kind).info
    if info is None:
        return None
    labels = labels_family(kind)
    if labels is None or key not in labels.label_keys:
        allowed = ", ".join(labels.label_keys) if labels is not None else ""
        raise UsageError(
            f"--by label:{key[:100]}: {kind.kind} does not export the label {key[:100]!r}",
            hint=(
                f"{kind.kind} exports the labels: {allowed}"
                if allowed
                else f"{kind.kind} exports no labels: allow-list the key under "
                f"`metrics: kinds: {kind.kind}: labels:` and regenerate"
            ),
        )
    name = vk.label_name_for_key(key)
    obj = _by(kind, kind.label_name)
    with_label = _by(kind, kind.label_name, name)
    join = f"on{obj} group_left({name}) max by {with_label} ({labels.name})"

    def grouped(op: str, inner: str, family: str) -> str:
        return f"{op} by ({name}) ({inner} by {obj} ({family}) * {join})"

    weights = tuple((w, grouped("sum", "max", w.family)) for w in config.weights_of(kind))
    families = (info.name, labels.name, *(w.family for w in config.weights_of(kind)))
    return KindQueries(kind, RAW, name, grouped("count", "max", info.name), weights, families)
