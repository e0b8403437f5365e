"""The runtime that generated metrics packages import, inside the operator's pod.

It imports nothing of the scaffolder (no click, jinja2, black or ruamel): only the standard
library and, for Kubernetes access, the official `kubernetes` client.
"""

from __future__ import annotations

from .families import MetricFamilyDef, MetricType, Sample
from .generator import MetricsGeneratorProtocol
from .samples import SampleSet

__all__ = [
    "MetricFamilyDef",
    "MetricType",
    "MetricsGeneratorProtocol",
    "Sample",
    "SampleSet",
]
