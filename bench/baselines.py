"""The naive design the runtime is measured against: rebuild every sample on every scrape.

`NaiveCollector` is what a hand-written `prometheus_client` custom collector over an informer's
cache does: on each `collect()` it walks the same decoded objects, runs the same generator and
yields one `GaugeMetricFamily` per family.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry


class NaiveCollector(Collector):
    """A prometheus_client collector rebuilding every family from the objects on each scrape."""

    def __init__(self, generator: Any, objs: Sequence[Mapping[str, Any]]) -> None:
        self.generator = generator
        self.objs = objs

    def collect(self) -> Iterator[Metric]:
        families = {
            f: GaugeMetricFamily(f.name, f.help, labels=list(f.label_names))
            for f in self.generator.families
        }
        for obj in self.objs:
            for sample in self.generator.generate(obj):
                families[sample.family].add_metric(sample.label_values, sample.value)
        yield from families.values()


def naive_registry(generator: Any, objs: Sequence[Mapping[str, Any]]) -> CollectorRegistry:
    """A registry holding only the naive collector (no process/platform collectors)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NaiveCollector(generator, objs))
    return registry


def rendered_lines(generator: Any, objs: Sequence[Mapping[str, Any]]) -> list[bytes]:
    """Every line of the body already rendered, grouped by family with its header: the limit."""
    by_family: dict[Any, list[bytes]] = {f: [f.text_header] for f in generator.families}
    for obj in objs:
        for sample in generator.generate(obj):
            by_family[sample.family].append(sample.render().encode())
    return [line for lines in by_family.values() for line in lines]
