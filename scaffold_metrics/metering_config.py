"""The `metering:` section of `.operator-metrics.yaml`: what usage of each kind is (its object
count, always, plus optional weights from planned numeric fields), where the recording rules
go and how often they are evaluated.

Read strictly, like the `alerts:` section: unknown keys, wrong types and weights on fields the
plan has no numeric family for are errors naming the line, with the valid choices as hint.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from . import value_kinds as vk
from .config_sections import known_keys, line_of, non_empty_string
from .errors import InputError
from .monitoring_config import METERING_KEY
from .plan_model import FamilyPlan, KindPlan, MetricsPlan

DEFAULT_INTERVAL = "5m"
# Recording rules: `level:metric:operations` (Prometheus naming practice). The level says the
# labels kept (namespace and kind), the metric what is measured, the operation how it was
# aggregated. One name for every kind (told apart by the `kind` label), so a report needs no
# list of kinds to find them.
OBJECTS_RULE = "namespace_kind:operator_metrics_objects:count"
WEIGHT_RULE = "namespace_kind:operator_metrics_weight:sum"
_WEIGHT_KINDS = (vk.NUMBER, vk.NUMBER_STRING, vk.QUANTITY, vk.ITEM_COUNT)
_WEIGHT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_DURATION = re.compile(r"^([1-9][0-9]*)(s|m|h)$")
_SECONDS = {"s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True)
class Weight:
    """One weighted usage of a kind: the value of `family` (the planned field `field`)
    integrated over time, reported as `<name>_hours`."""

    name: str
    field: str
    family: str


@dataclass(frozen=True)
class MeteringConfig:
    """The rules file, the PrometheusRule manifest (None: not written), the evaluation
    interval and the weights per kind (keyed by CRD name: see `weights_of`)."""

    rules: str
    prometheus_rule: str | None
    interval: str
    weights: Mapping[str, tuple[Weight, ...]] = field(default_factory=dict)

    def weights_of(self, kind: KindPlan) -> tuple[Weight, ...]:
        """The weights configured for `kind` (none: objects only)."""
        return tuple(self.weights.get(kind.crd_name, ()))

    @property
    def interval_seconds(self) -> int:
        """The interval as seconds (validated when parsed)."""
        return duration_seconds(self.interval)


def duration_seconds(text: str) -> int:
    """`5m` → 300; ValueError for anything but `<n>s`, `<n>m` or `<n>h`."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(text)
    return int(match.group(1)) * _SECONDS[match.group(2)]


def default_section(manifest_dir: PurePosixPath, kinds: tuple[str, ...]) -> dict[str, Any]:
    """What `init --metering` records: files next to the alerting rules, every kind with no
    weights yet (so the place to add one is there to see)."""
    top = PurePosixPath(manifest_dir.parts[0]) if manifest_dir.parts else PurePosixPath("deploy")
    return {
        "rules": str(top / "prometheus" / "metering-rules.yaml"),
        "prometheus_rule": str(top / "prometheus" / "metering-prometheusrule.yaml"),
        "interval": DEFAULT_INTERVAL,
        "kinds": {kind: [] for kind in kinds},
    }


def weight_families(kind: KindPlan) -> dict[str, FamilyPlan]:
    """The families of `kind` a weight can be taken from, by field path: plain numeric gauges
    (numbers, quantities, item counts) with one sample per object."""
    return {
        ".".join(f.path): f
        for f in kind.families
        if f.value_kind in _WEIGHT_KINDS and f.type == "gauge" and not f.extra_labels
    }


def _weight(kind: KindPlan, item: Any, file: Path, line: int | None, seen: set[str]) -> Weight:
    where = f"{METERING_KEY}.kinds.{kind.kind}"
    known_keys(where, item, file, ("field", "name"), line)
    path = non_empty_string(where, item, "field", file, "")
    choices = weight_families(kind)
    family = choices.get(path)
    if family is None:
        valid = ", ".join(sorted(choices)) or "none: the kind plans no numeric field"
        raise InputError(
            f"`{where}`: {path[:200]!r} is not a planned numeric field of {kind.kind}",
            file,
            line_of(item, "field"),
            hint=f"fields a weight can use: {valid} (see `operator-metrics explain`)",
        )
    default_name = re.sub(r"[^a-z0-9_]", "_", path.rsplit(".", 1)[-1].lower()) or "weight"
    name = non_empty_string(where, item, "name", file, default_name)
    if not _WEIGHT_NAME.match(name):
        raise InputError(
            f"`{where}`: weight name {name[:100]!r} is not a snake_case word",
            file,
            line_of(item, "name"),
            hint="lower-case letters, digits and '_', starting with a letter, such as `instance`",
        )
    if name in seen:
        raise InputError(f"`{where}`: weight {name!r} is named twice", file, line_of(item, "name"))
    seen.add(name)
    return Weight(name, path, family.name)


def _kind(plan: MetricsPlan, name: str, file: Path, line: int | None) -> KindPlan:
    """The kind a `kinds:` key names: its Kind, or its CRD name when two CRDs share a Kind."""
    matches = [k for k in plan.kinds if name in (k.kind, k.crd_name)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise InputError(
            f"`{METERING_KEY}.kinds`: {name[:100]!r} is the kind of several CRDs",
            file,
            line,
            hint=f"name it by its CRD: {', '.join(sorted(k.crd_name for k in matches))}",
        )
    raise InputError(
        f"`{METERING_KEY}.kinds`: {name[:100]!r} is not a kind of the project",
        file,
        line,
        hint=f"kinds: {', '.join(sorted({k.kind for k in plan.kinds}))}",
    )


def parse_metering(data: Any, file: Path, plan: MetricsPlan) -> MeteringConfig | None:
    """The `metering:` section checked against `plan`, or None when it is absent (or null)."""
    if data is None:
        return None
    known_keys(
        METERING_KEY, data, file, ("rules", "prometheus_rule", "interval", "kinds"), line_of(data)
    )
    rules = non_empty_string(
        METERING_KEY, data, "rules", file, "deploy/prometheus/metering-rules.yaml"
    )
    prometheus_rule = data.get("prometheus_rule")
    if prometheus_rule is not None:
        prometheus_rule = non_empty_string(METERING_KEY, data, "prometheus_rule", file, "")
    interval = data.get("interval", DEFAULT_INTERVAL)
    try:
        seconds = duration_seconds(interval if isinstance(interval, str) else "")
    except ValueError:
        seconds = 0
    if not 10 <= seconds <= 3600:
        raise InputError(
            f"`{METERING_KEY}.interval` {str(interval)[:50]!r} is not an interval",
            file,
            line_of(data, "interval"),
            hint="a duration from 10s to 1h, such as 5m (how often usage is recorded)",
        )
    kinds = data.get("kinds") or {}
    if not isinstance(kinds, Mapping):
        raise InputError(
            f"`{METERING_KEY}.kinds` must map kinds to lists of weights",
            file,
            line_of(data, "kinds"),
        )
    weights: dict[str, tuple[Weight, ...]] = {}
    for name, items in kinds.items():
        kind = _kind(plan, str(name), file, line_of(kinds, str(name)))
        if kind.crd_name in weights:
            raise InputError(
                f"`{METERING_KEY}.kinds`: {kind.kind} is listed twice",
                file,
                line_of(kinds, str(name)),
            )
        if items is None:
            items = []
        if not isinstance(items, list):
            raise InputError(
                f"`{METERING_KEY}.kinds.{kind.kind}` must be a list of weights "
                "({field: spec.size, name: instance})",
                file,
                line_of(kinds, str(name)),
            )
        seen: set[str] = set()
        weights[kind.crd_name] = tuple(
            _weight(kind, item, file, line_of(items, i) or line_of(kinds, str(name)), seen)
            for i, item in enumerate(items)
        )
    return MeteringConfig(rules, prometheus_rule, interval, weights)
