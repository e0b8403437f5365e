"""Custom metrics for Memcached: this file is yours.

operator-metrics created it once and never rewrites it. Declare extra families in
FAMILIES and add their samples in `generate`; the generated MetricsGenerator calls it
for every object. `labels` are the object's identifying label values:
namespace, memcached.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scaffold_metrics.runtime import MetricFamilyDef, SampleSet

FAMILIES: tuple[MetricFamilyDef, ...] = ()


def generate(
    obj: Mapping[str, Any],
    labels: tuple[str, ...],
    samples: SampleSet,
) -> None:
    """Add samples of this module's FAMILIES for `obj` (nothing by default)."""
    del obj, labels, samples
