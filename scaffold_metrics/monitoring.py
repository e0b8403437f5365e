"""The Grafana dashboards, alerting and metering rules a project's config asks for
(`dashboards:`, `alerts:`, `metering:`), and the sections `init --dashboards` / `--alerts` /
`--metering` record.

Kept apart from the pipeline so that turning these outputs on or off is one call there and one
in the CLI; the outputs themselves are built by `dashboards` and `alert_rules`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from .alert_rules import alert_rule_files, left_out
from .config import ProjectConfig, config_path
from .dashboards import dashboard_files
from .errors import InputError
from .manifests import (
    documents_of_kind,
    find_manifest,
    is_templated,
    metrics_service_info,
    read_deployment,
)
from .metering_config import default_section as metering_default
from .metering_config import parse_metering
from .metering_rules import metering_rule_files
from .monitoring_config import (
    ALERTS_KEY,
    DASHBOARD_SUFFIX,
    DASHBOARDS_KEY,
    METERING_KEY,
    default_sections,
    parse_alerts,
    parse_dashboards,
)
from .plan_model import MetricsPlan
from .render import RenderedFile


def monitoring_files(
    root: Path, config: ProjectConfig, plan: MetricsPlan, sources: Sequence[str], notes: list[str]
) -> list[RenderedFile]:
    """The dashboards and rules files `config` asks for; `notes` gets what the alerts leave
    out (shown at `init`)."""
    file = config_path(root)
    dashboards = parse_dashboards(config.extra.get(DASHBOARDS_KEY), file)
    alerts = parse_alerts(config.extra.get(ALERTS_KEY), file)
    metering = parse_metering(config.extra.get(METERING_KEY), file, plan)
    files: list[RenderedFile] = []
    if dashboards is not None:
        files.extend(dashboard_files(plan, dashboards))
    if alerts is None and metering is None:
        return files
    deployment_file = find_manifest(root, "Deployment")
    deployment = read_deployment(deployment_file) if deployment_file else None
    operator = config.operator or (deployment.name if deployment else root.resolve().name)
    namespace = deployment.namespace if deployment else None
    if alerts is not None:
        files.extend(alert_rule_files(plan, alerts, sources, operator, namespace))
        notes.extend(f"note: alerts left out: {line}" for line in left_out(plan))
    if metering is not None:
        files.extend(metering_rule_files(plan, metering, sources, operator, namespace))
    return files


def stale_dashboards(root: Path, config: ProjectConfig, files: Sequence[RenderedFile]) -> list[str]:
    """Dashboard files in the configured directory that no kind produces any more (of kinds
    since removed); only generated ones are removed (see `files.is_generated`)."""
    section = config.extra.get(DASHBOARDS_KEY)
    dashboards = parse_dashboards(section, config_path(root)) if section is not None else None
    if dashboards is None:
        return []
    return _dashboards_in(root, dashboards.directory, {f.path for f in files})


def _dashboards_in(root: Path, directory: str, wanted: set[str]) -> list[str]:
    base = root / directory
    if not base.is_dir():
        return []
    found = (
        str(PurePosixPath(directory) / p.name) for p in sorted(base.glob(f"*{DASHBOARD_SUFFIX}"))
    )
    return [path for path in found if path not in wanted]


def chosen_sections(
    root: Path,
    previous: Mapping[str, Any],
    dashboards: bool | None,
    alerts: bool | None,
    service: str,
    operator: str,
    metering: bool | None = None,
    kinds: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The `extra` sections after `init`'s flags: a flag turns its section on (keeping a
    recorded one as it is, with the user's edits) or off; no flag keeps what was recorded.
    `kinds` are the project's kinds, listed (without weights) in a new `metering:`."""
    extra = dict(previous)
    flags = ((DASHBOARDS_KEY, dashboards), (ALERTS_KEY, alerts), (METERING_KEY, metering))
    for key, wanted in flags:
        if wanted is None:
            continue
        if wanted and extra.get(key) is None:
            manifest_dir = PurePosixPath(service).parent
            if key == METERING_KEY:
                extra[key] = metering_default(manifest_dir, kinds)
                continue
            job = _job(root, service, operator) if key == ALERTS_KEY else ""
            extra[key] = default_sections(manifest_dir, job)[key]
        elif not wanted:
            extra.pop(key, None)
    return extra


def retired_outputs(root: Path, previous: Mapping[str, Any], extra: Mapping[str, Any]) -> list[str]:
    """Files an earlier config generated that the new one does not (removed when generated)."""
    file = config_path(root)
    retired: list[str] = []
    before = parse_dashboards(previous.get(DASHBOARDS_KEY), file)
    after = parse_dashboards(extra.get(DASHBOARDS_KEY), file)
    if before is not None and (after is None or after.directory != before.directory):
        retired.extend(_dashboards_in(root, before.directory, set()))
    old = parse_alerts(previous.get(ALERTS_KEY), file)
    new = parse_alerts(extra.get(ALERTS_KEY), file)
    if old is not None:
        kept = {new.rules, new.prometheus_rule} if new is not None else set()
        retired.extend(p for p in (old.rules, old.prometheus_rule) if p and p not in kept)
    retired.extend(_retired_metering(previous, extra))
    return retired


def _retired_metering(previous: Mapping[str, Any], extra: Mapping[str, Any]) -> list[str]:
    """The metering files of `previous` that `extra` no longer writes (paths only: the rest of
    the section needs the plan, and a retired file is removed only when generated)."""

    def paths(sections: Mapping[str, Any]) -> set[str]:
        section = sections.get(METERING_KEY)
        if not isinstance(section, Mapping):
            return set()
        return {section[k] for k in ("rules", "prometheus_rule") if isinstance(section.get(k), str)}

    return sorted(paths(previous) - paths(extra))


def scrape_job(root: Path, config: ProjectConfig) -> str:
    """The scrape job of the project's metrics: the one its alerts check, else the name of
    its metrics Service (what a ServiceMonitor makes the job)."""
    alerts = config.extra.get(ALERTS_KEY)
    if isinstance(alerts, Mapping) and isinstance(alerts.get("job"), str) and alerts["job"]:
        return str(alerts["job"])
    return _job(root, config.service or "", config.operator or root.resolve().name)


def _job(root: Path, service: str, operator: str) -> str:
    """The scrape job of the metrics Service: its name, as a ServiceMonitor makes it."""
    path = root / service
    text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    if text and not is_templated(text):
        try:
            info = metrics_service_info(text, path)
            if info is not None and info.name:
                return info.name
            for _doc, data in documents_of_kind(path, "Service"):
                metadata = data.get("metadata") if isinstance(data, Mapping) else None
                name = metadata.get("name") if isinstance(metadata, Mapping) else None
                if isinstance(name, str) and name:
                    return name
        except InputError:
            pass  # reported where the Service is edited; the job is only a default here
    return f"{operator}-metrics"
