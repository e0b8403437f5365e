"""Test doubles for the runtime store and server: a hand-written generator and a fake collector.

The generator is what the scaffolder would generate for a tiny `Widget` kind: an info family
(namespace, name labels) and a gauge read from `spec.replicas`, reporting unreadable values as
`SampleSet` problems. `spec.explode: true` makes it raise, to test error isolation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from scaffold_metrics.runtime import MetricFamilyDef, MetricType, SampleSet
from scaffold_metrics.runtime.store import MetricsStore

WIDGET_INFO = MetricFamilyDef(
    "widget_info",
    'Information about a Widget.\nA second "line" with \\ in HELP.',
    MetricType.INFO,
    ("namespace", "name"),
)
WIDGET_REPLICAS = MetricFamilyDef(
    "widget_spec_replicas",
    "Desired replicas of a Widget (spec.replicas).",
    MetricType.GAUGE,
    ("namespace", "name"),
)


class WidgetGenerator:
    """Metrics of a Widget custom resource."""

    group: ClassVar[str] = "example.com"
    version: ClassVar[str] = "v1"
    kind: ClassVar[str] = "Widget"
    plural: ClassVar[str] = "widgets"
    namespaced: ClassVar[bool] = True
    families: ClassVar[tuple[MetricFamilyDef, ...]] = (WIDGET_INFO, WIDGET_REPLICAS)

    def generate(self, obj: Mapping[str, Any]) -> SampleSet:
        meta = obj["metadata"]
        spec = obj.get("spec") or {}
        labels = (meta.get("namespace") or "", meta["name"])
        if spec.get("explode"):
            raise RuntimeError("generator exploded")
        out = SampleSet()
        out.add(WIDGET_INFO, labels, 1)
        replicas = spec.get("replicas")
        if isinstance(replicas, (int, float)) and not isinstance(replicas, bool):
            out.add(WIDGET_REPLICAS, labels, float(replicas))
        elif replicas is not None:
            out.problem(f"spec.replicas: not a number: {replicas!r}")
        return out


def widget(
    name: str, namespace: str = "default", replicas: Any = 1, uid: str | None = None, **spec: Any
) -> dict[str, Any]:
    """A Widget object as the API server would return it."""
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": namespace, "uid": uid or f"uid-{namespace}-{name}"},
        "spec": {"replicas": replicas, **spec},
    }


class FakeCollector:
    """An in-memory collector: whatever the test put in its store, `has_synced` set by hand."""

    def __init__(self, store: MetricsStore, has_synced: bool = True) -> None:
        self.store = store
        self.has_synced = has_synced
        self.started = 0
        self.stopped = 0

    def start(self) -> None:
        self.started += 1

    def stop(self) -> None:
        self.stopped += 1
