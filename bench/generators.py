"""Metrics generators for the benchmark kinds, written the way the scaffolder generates them.

Memcached gets the families the planner gives it (`_info`, `_created`, the spec gauges and the
status conditions); the Prometheus kind, used only for the memory of large objects, gets the
same shape of families from its own fields. Each value is read with the checks generated code
makes (type checks, RFC 3339 parsing, one series per condition status), so the cost per object
is what users pay.
"""

from __future__ import annotations

import calendar
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from scaffold_metrics.runtime import MetricFamilyDef, MetricType, SampleSet

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "memcached-operator"
CONDITION_STATUSES = ("True", "False", "Unknown")
_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz])$")


def _identity(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        meta = {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def _timestamp(text: Any) -> float | None:
    match = _RFC3339.match(text) if isinstance(text, str) else None
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups())
    return float(calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)))


def _number(
    samples: SampleSet, family: MetricFamilyDef, labels: tuple[str, ...], value: Any
) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        samples.problem(f"{family.name}: unexpected {type(value).__name__} value")
        return
    samples.add(family, labels, float(value))


def _created(
    samples: SampleSet, family: MetricFamilyDef, labels: tuple[str, ...], obj: Any
) -> None:
    meta = obj.get("metadata") or {}
    value = meta.get("creationTimestamp")
    if value is None:
        return
    seconds = _timestamp(value)
    if seconds is None:
        samples.problem(f"{family.name}: unexpected {type(value).__name__} value")
        return
    samples.add(family, labels, seconds)


def _conditions(
    samples: SampleSet, family: MetricFamilyDef, labels: tuple[str, ...], obj: Any
) -> None:
    status = obj.get("status") or {}
    conditions = status.get("conditions") if isinstance(status, Mapping) else None
    if not isinstance(conditions, list):
        return
    for condition in conditions:
        if not isinstance(condition, Mapping):
            continue
        ctype = condition.get("type")
        current = condition.get("status")
        if not isinstance(ctype, str) or not isinstance(current, str):
            continue
        for status_value in CONDITION_STATUSES:
            samples.add(
                family, (*labels, ctype, status_value), 1.0 if current == status_value else 0.0
            )


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _families(kind: str, label: str, spec_fields: tuple[str, ...]) -> tuple[MetricFamilyDef, ...]:
    labels = ("namespace", label)
    info = MetricFamilyDef(
        f"{label}_info", f"Information about a {kind} custom resource.", MetricType.INFO, labels
    )
    created = MetricFamilyDef(
        f"{label}_created",
        f"Unix creation time of a {kind} (metadata.creationTimestamp).",
        MetricType.GAUGE,
        labels,
    )
    gauges = tuple(
        MetricFamilyDef(
            f"{label}_spec_{snake}", f"spec.{name} of a {kind}.", MetricType.GAUGE, labels
        )
        for name, snake in ((n, re.sub(r"(?<!^)([A-Z])", r"_\1", n).lower()) for n in spec_fields)
    )
    condition = MetricFamilyDef(
        f"{label}_status_condition",
        f"The condition of a {kind}: 1 for the current status of each condition type.",
        MetricType.GAUGE,
        (*labels, "type", "status"),
    )
    return (info, created, *gauges, condition)


MEMCACHED_FAMILIES = _families("Memcached", "memcached", ("size", "containerPort"))
(
    MEMCACHED_INFO,
    MEMCACHED_CREATED,
    MEMCACHED_SPEC_SIZE,
    MEMCACHED_SPEC_CONTAINER_PORT,
    MEMCACHED_STATUS_CONDITION,
) = MEMCACHED_FAMILIES


class MemcachedGenerator:
    """Memcached: info, created, spec.size, spec.containerPort, status conditions."""

    group: ClassVar[str] = "cache.example.com"
    version: ClassVar[str] = "v1alpha1"
    kind: ClassVar[str] = "Memcached"
    plural: ClassVar[str] = "memcacheds"
    namespaced: ClassVar[bool] = True
    families: ClassVar[tuple[MetricFamilyDef, ...]] = MEMCACHED_FAMILIES

    def generate(self, obj: Mapping[str, Any]) -> SampleSet:
        samples = SampleSet()
        labels = _identity(obj)
        samples.add(MEMCACHED_INFO, labels, 1.0)
        _created(samples, MEMCACHED_CREATED, labels, obj)
        spec = _spec(obj)
        _number(samples, MEMCACHED_SPEC_SIZE, labels, spec.get("size"))
        _number(samples, MEMCACHED_SPEC_CONTAINER_PORT, labels, spec.get("containerPort"))
        _conditions(samples, MEMCACHED_STATUS_CONDITION, labels, obj)
        return samples


PROMETHEUS_FAMILIES = _families("Prometheus", "prometheus", ("replicas", "shards"))
(
    PROMETHEUS_INFO,
    PROMETHEUS_CREATED,
    PROMETHEUS_SPEC_REPLICAS,
    PROMETHEUS_SPEC_SHARDS,
    PROMETHEUS_STATUS_CONDITION,
) = PROMETHEUS_FAMILIES


class PrometheusGenerator:
    """Prometheus (monitoring.coreos.com/v1): the same family shapes, on a ~22 KB object."""

    group: ClassVar[str] = "monitoring.coreos.com"
    version: ClassVar[str] = "v1"
    kind: ClassVar[str] = "Prometheus"
    plural: ClassVar[str] = "prometheuses"
    namespaced: ClassVar[bool] = True
    families: ClassVar[tuple[MetricFamilyDef, ...]] = PROMETHEUS_FAMILIES

    def generate(self, obj: Mapping[str, Any]) -> SampleSet:
        samples = SampleSet()
        labels = _identity(obj)
        samples.add(PROMETHEUS_INFO, labels, 1.0)
        _created(samples, PROMETHEUS_CREATED, labels, obj)
        spec = _spec(obj)
        _number(samples, PROMETHEUS_SPEC_REPLICAS, labels, spec.get("replicas"))
        _number(samples, PROMETHEUS_SPEC_SHARDS, labels, spec.get("shards"))
        _conditions(samples, PROMETHEUS_STATUS_CONDITION, labels, obj)
        return samples


def memcached_generator() -> Any:
    """The memcached generator the benchmarks measure: the one generated for the example."""
    return _generated_memcached()()


def describe() -> str:
    """Which memcached generator the benchmarks use."""
    return f"generated by operator-metrics ({EXAMPLE.relative_to(ROOT)}/pkg/metrics)"


def _generated_memcached() -> Any:
    if str(EXAMPLE) not in sys.path:
        sys.path.insert(0, str(EXAMPLE))
    from pkg.metrics.kinds.memcached import MetricsGenerator

    return MetricsGenerator
