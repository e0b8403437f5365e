"""The runtime that generated metrics packages import, inside the operator's pod.

It imports nothing of the scaffolder (no click, jinja2, black or ruamel): only the standard
library and, for Kubernetes access, the official `kubernetes` client.
"""

from __future__ import annotations

from .collector import Collector, new_collectors
from .families import MetricFamilyDef, MetricType, Sample
from .generator import MetricsGeneratorProtocol
from .httpproto import ServerLimits
from .kubeclient import KubeConfigError, load_api_client
from .samples import SampleSet
from .selfmetrics import DEFAULT_SELF_METRICS, SelfMetrics
from .server import CollectorLike, MetricsServer, serve_metrics, start_metrics_server
from .store import MetricsStore
from .webconfig import WebConfigError

__all__ = [
    "DEFAULT_SELF_METRICS",
    "Collector",
    "CollectorLike",
    "KubeConfigError",
    "MetricFamilyDef",
    "MetricType",
    "MetricsGeneratorProtocol",
    "MetricsServer",
    "MetricsStore",
    "Sample",
    "SampleSet",
    "SelfMetrics",
    "ServerLimits",
    "WebConfigError",
    "load_api_client",
    "new_collectors",
    "serve_metrics",
    "start_metrics_server",
]
