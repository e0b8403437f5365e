"""A generator shaped like generated code (one reader call per family) and hostile objects.

`ThingGenerator` reads every value kind the scaffolder plans (timestamp, quantity, number,
conditions, allow-listed labels and annotations) through the runtime's readers, so the store
and collector tests meet the same code paths a scaffolded operator does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from scaffold_metrics.runtime import MetricFamilyDef, MetricType, SampleSet
from scaffold_metrics.runtime.values import (
    object_identity,
    read_conditions,
    read_labels,
    read_number,
    read_quantity,
    read_timestamp,
)

OBJECT_LABELS = ("namespace", "thing")
THING_INFO = MetricFamilyDef("thing_info", "Info.", MetricType.INFO, OBJECT_LABELS)
THING_CREATED = MetricFamilyDef("thing_created", "Created.", MetricType.GAUGE, OBJECT_LABELS)
THING_MEMORY = MetricFamilyDef("thing_spec_memory", "Memory.", MetricType.GAUGE, OBJECT_LABELS)
THING_SIZE = MetricFamilyDef("thing_spec_size", "Size.", MetricType.GAUGE, OBJECT_LABELS)
THING_CONDITION = MetricFamilyDef(
    "thing_status_condition", "Conditions.", MetricType.GAUGE, (*OBJECT_LABELS, "type", "status")
)
THING_LABELS = MetricFamilyDef(
    "thing_labels", "Labels.", MetricType.GAUGE, (*OBJECT_LABELS, "label_team")
)
THING_ANNOTATIONS = MetricFamilyDef(
    "thing_annotations", "Annotations.", MetricType.GAUGE, (*OBJECT_LABELS, "annotation_note")
)
THING_FAMILIES = (
    THING_INFO,
    THING_CREATED,
    THING_MEMORY,
    THING_SIZE,
    THING_CONDITION,
    THING_LABELS,
    THING_ANNOTATIONS,
)


class ThingGenerator:
    """What `operator-metrics generate` writes for a namespaced `Thing` (memcacheds' shape)."""

    group: ClassVar[str] = "cache.example.com"
    version: ClassVar[str] = "v1alpha1"
    kind: ClassVar[str] = "Memcached"
    plural: ClassVar[str] = "memcacheds"
    namespaced: ClassVar[bool] = True
    families: ClassVar[tuple[MetricFamilyDef, ...]] = THING_FAMILIES

    def generate(self, obj: Mapping[str, Any]) -> SampleSet:
        samples = SampleSet()
        labels = object_identity(obj, namespaced=True)
        samples.add(THING_INFO, labels, 1.0)
        read_timestamp(samples, THING_CREATED, labels, obj, ("metadata", "creationTimestamp"))
        read_quantity(samples, THING_MEMORY, labels, obj, ("spec", "memory"))
        read_number(samples, THING_SIZE, labels, obj, ("spec", "size"))
        read_conditions(samples, THING_CONDITION, labels, obj, ("status", "conditions"))
        read_labels(samples, THING_LABELS, labels, obj, ("team",))
        read_labels(samples, THING_ANNOTATIONS, labels, obj, ("note",), ("metadata", "annotations"))
        return samples


def thing(
    name: str,
    namespace: str = "default",
    *,
    uid: str | None = None,
    created: Any = "2026-11-27T13:27:18Z",
    memory: Any = "64Mi",
    size: Any = 3,
    conditions: Any = None,
    team: Any = "core",
    note: Any = "hello",
) -> dict[str, Any]:
    """A Thing as the API server returns it (only the fields the generator reads)."""
    return {
        "apiVersion": "cache.example.com/v1alpha1",
        "kind": "Memcached",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid or f"uid-{namespace}-{name}",
            "creationTimestamp": created,
            "labels": {"team": team},
            "annotations": {"note": note},
        },
        "spec": {"memory": memory, "size": size},
        "status": {
            "conditions": (
                [{"type": "Ready", "status": "True"}] if conditions is None else conditions
            )
        },
    }
