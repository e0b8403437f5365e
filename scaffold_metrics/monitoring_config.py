"""The `dashboards:` and `alerts:` sections of `.operator-metrics.yaml`: where the Grafana
dashboards and the Prometheus alerting rules go, and the few choices the rules need (and
where the files of `metering:` go, the rest of which `metering_config` reads).

`init --dashboards` / `--alerts` record a section with its defaults; `generate` reads it back,
strictly (unknown keys and wrong types are errors naming the line), so CI regenerates the same
files without flags. An absent section means nothing of the kind is generated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .config_sections import known_keys, line_of, non_empty_string
from .errors import InputError
from .project_paths import path_problem

DASHBOARDS_KEY = "dashboards"
ALERTS_KEY = "alerts"
METERING_KEY = "metering"  # read by `metering_config`, which needs the plan
SECTIONS = (DASHBOARDS_KEY, ALERTS_KEY, METERING_KEY)
DEFAULT_CONDITIONS = ("Ready", "Available")
DASHBOARD_SUFFIX = "-dashboard.json"
_CONDITION_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_JOB = re.compile(r"^[^\"\\\n]+$")
RUNBOOK_PLACEHOLDER = "{alert}"
# An absolute http(s) URL with no spaces, quotes or template delimiters; `{alert}` is the only
# brace a runbook URL may hold.
_RUNBOOK_URL = re.compile(r"^https?://[^\s\"'<>\\{}]+$")


@dataclass(frozen=True)
class DashboardsConfig:
    """One dashboard per kind, `<directory>/<module>-dashboard.json`."""

    directory: str

    def path_for(self, module: str) -> str:
        """The dashboard file of the kind whose module is `module`."""
        return str(PurePosixPath(self.directory) / f"{module}{DASHBOARD_SUFFIX}")


@dataclass(frozen=True)
class AlertsConfig:
    """The rules file (for a plain Prometheus), the PrometheusRule manifest (None: not
    written), the scrape job `up` is checked for, the condition types that mean ready, and the
    labels the PrometheusRule carries (what a Prometheus' `ruleSelector` matches)."""

    rules: str
    prometheus_rule: str | None
    job: str
    conditions: tuple[str, ...] = DEFAULT_CONDITIONS
    labels: Mapping[str, str] = field(default_factory=dict)
    runbook_url: str | None = None

    def runbook_for(self, alert: str) -> str | None:
        """The `runbook_url` annotation of `alert` (None: the config names no runbooks)."""
        if self.runbook_url is None:
            return None
        return self.runbook_url.replace(RUNBOOK_PLACEHOLDER, alert)


def default_sections(manifest_dir: PurePosixPath, job: str) -> dict[str, dict[str, Any]]:
    """What `init --dashboards --alerts` records: files under the top directory of the
    operator's manifests (`deploy/grafana/`, `deploy/prometheus/`), the job of its Service."""
    top = PurePosixPath(manifest_dir.parts[0]) if manifest_dir.parts else PurePosixPath("deploy")
    return {
        DASHBOARDS_KEY: {"directory": str(top / "grafana")},
        ALERTS_KEY: {
            "rules": str(top / "prometheus" / "alerts-rules.yaml"),
            "prometheus_rule": str(top / "prometheus" / "alerts-prometheusrule.yaml"),
            "job": job,
            "conditions": list(DEFAULT_CONDITIONS),
        },
    }


def parse_dashboards(data: Any, file: Path) -> DashboardsConfig | None:
    """The `dashboards:` section, or None when it is absent (or null)."""
    if data is None:
        return None
    section = known_keys(DASHBOARDS_KEY, data, file, ("directory",))
    return DashboardsConfig(
        non_empty_string(DASHBOARDS_KEY, section, "directory", file, "deploy/grafana")
    )


def parse_alerts(data: Any, file: Path) -> AlertsConfig | None:
    """The `alerts:` section, or None when it is absent (or null)."""
    if data is None:
        return None
    keys = ("rules", "prometheus_rule", "job", "conditions", "labels", "runbook_url")
    section = known_keys(ALERTS_KEY, data, file, keys)
    rules = non_empty_string(
        ALERTS_KEY, section, "rules", file, "deploy/prometheus/alerts-rules.yaml"
    )
    prometheus_rule = section.get("prometheus_rule")
    if prometheus_rule is not None:
        prometheus_rule = non_empty_string(ALERTS_KEY, section, "prometheus_rule", file, "")
    job = non_empty_string(ALERTS_KEY, section, "job", file, "")
    if not _JOB.match(job):
        raise InputError(
            f"`{ALERTS_KEY}.job` {job[:100]!r} is not a job name",
            file,
            line_of(section, "job"),
            hint="the scrape job of the metrics Service (no quotes, backslashes or newlines)",
        )
    conditions = section.get("conditions", list(DEFAULT_CONDITIONS))
    if (
        not isinstance(conditions, list)
        or not conditions
        or not all(isinstance(c, str) and _CONDITION_TYPE.match(c) for c in conditions)
    ):
        raise InputError(
            f"`{ALERTS_KEY}.conditions` must be a list of condition types (such as Ready)",
            file,
            line_of(section, "conditions"),
        )
    labels = section.get("labels") or {}
    if not isinstance(labels, Mapping) or not all(
        isinstance(k, str) and _LABEL_KEY.match(k) and isinstance(v, str) for k, v in labels.items()
    ):
        raise InputError(
            f"`{ALERTS_KEY}.labels` must map label names to strings",
            file,
            line_of(section, "labels"),
            hint="the labels your Prometheus' ruleSelector matches, such as `release: prometheus`",
        )
    runbook_url = section.get("runbook_url")
    if runbook_url is not None and (
        not isinstance(runbook_url, str)
        or not _RUNBOOK_URL.match(runbook_url.replace(RUNBOOK_PLACEHOLDER, "x"))
    ):
        raise InputError(
            f"`{ALERTS_KEY}.runbook_url` must be an http(s) URL",
            file,
            line_of(section, "runbook_url"),
            hint="such as https://example.com/runbooks#{alert}: {alert} becomes the alert's name",
        )
    return AlertsConfig(rules, prometheus_rule, job, tuple(conditions), dict(labels), runbook_url)


def written_paths(extra: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(dotted key, path) of every file or directory the sections would write."""
    found: list[tuple[str, str]] = []
    dashboards = extra.get(DASHBOARDS_KEY)
    if isinstance(dashboards, Mapping) and isinstance(dashboards.get("directory"), str):
        found.append((f"{DASHBOARDS_KEY}.directory", dashboards["directory"]))
    for section_key in (ALERTS_KEY, METERING_KEY):
        section = extra.get(section_key)
        if isinstance(section, Mapping):
            for key in ("rules", "prometheus_rule"):
                if isinstance(section.get(key), str):
                    found.append((f"{section_key}.{key}", section[key]))
    return found


def unwritable_section_paths(extra: Mapping[str, Any], root: Path) -> list[tuple[str, str, str]]:
    """(dotted key, path, problem) of each section path outside the project (see
    `project_paths`), as `config.unwritable_paths` reports the top-level ones."""
    found = []
    for key, value in written_paths(extra):
        problem = path_problem(root, value)
        if problem is not None:
            found.append((key, value, problem))
    return found
