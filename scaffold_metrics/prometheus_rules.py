"""Prometheus rule files as the scaffolder writes them: the groups once as a plain rules file
(for `rule_files:`) and, when asked, again as a prometheus-operator `PrometheusRule`.

Alerting and metering rules share this so both files of both kinds are dumped alike: block
YAML, one line per expression and annotation whatever its length, the same manifest shape.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ruamel.yaml import YAML

from .render import RenderedFile


def rules_yaml(data: Any) -> str:
    """`data` as block YAML with no line folded (promtool and reviewers read it as written)."""
    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # one line per expression and annotation, whatever their length
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    return buffer.getvalue()


def rule_files(
    groups: Sequence[Mapping[str, Any]],
    header: Callable[[str], str],
    *,
    what: str,
    rules_path: str,
    prometheus_rule_path: str | None,
    name: str,
    namespace: str | None,
    labels: Mapping[str, str] | None = None,
) -> list[RenderedFile]:
    """The rules file and, when `prometheus_rule_path` is set, the PrometheusRule `name`
    holding the same groups; `header(title)` gives each file's comment header."""
    text = header(f"Prometheus {what}") + rules_yaml({"groups": list(groups)})
    files = [RenderedFile(rules_path, text.encode("utf-8"), "generated")]
    if prometheus_rule_path is not None:
        metadata: dict[str, Any] = {"name": name}
        if namespace:
            metadata["namespace"] = namespace
        if labels:
            metadata["labels"] = dict(sorted(labels.items()))
        manifest = {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PrometheusRule",
            "metadata": metadata,
            "spec": {"groups": list(groups)},
        }
        text = header(f"PrometheusRule with the {what}") + rules_yaml(manifest)
        files.append(RenderedFile(prometheus_rule_path, text.encode("utf-8"), "generated"))
    return files
