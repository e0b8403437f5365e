"""The contract between generated per-kind code and the runtime.

Generated `MetricsGenerator` classes satisfy `MetricsGeneratorProtocol`; hand-written ones may
too. The class attributes name the resource so collectors need nothing else to list/watch it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Protocol

from .families import MetricFamilyDef, Sample


class MetricsGeneratorProtocol(Protocol):
    """Turns one custom resource (the dict the API returns) into samples."""

    group: ClassVar[str]
    version: ClassVar[str]
    kind: ClassVar[str]
    plural: ClassVar[str]
    namespaced: ClassVar[bool]
    families: ClassVar[tuple[MetricFamilyDef, ...]]

    def generate(self, obj: Mapping[str, Any]) -> Iterable[Sample]:
        """Samples of `obj`; a `SampleSet` also reports values it could not read."""
        ...
