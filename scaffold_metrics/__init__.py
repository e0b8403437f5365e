"""operator-metrics: Prometheus metrics for a Kubernetes operator's custom resources.

The scaffolder (CLI) renders a metrics package from CRD manifests; `scaffold_metrics.runtime`
is the small library that package imports at run time.
"""

__version__ = "0.1.0"
