"""The `operator-metrics` command: flags → pipeline → exit code, nothing more.

Exit codes: 0 done or up to date, 1 `--check` found drift, 2 bad input or usage (message on
stderr, nothing written), 3 `report`: Prometheus unreachable, the families absent or no samples
in the period, 123 internal error.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import click

from . import __version__
from .config import (
    CONFIG_FILE,
    DEFAULT_HOST,
    DEFAULT_MAIN,
    DEFAULT_PACKAGE,
    DEFAULT_PORT,
    OUTSIDE_HINT,
    ProjectConfig,
    config_path,
    load_config,
    render_config,
    unwritable_paths,
)
from .errors import (
    EXIT_BAD_INPUT,
    EXIT_DRIFT,
    EXIT_INTERNAL,
    EXIT_NO_DATA,
    OperatorMetricsError,
    UsageError,
)
from .explain import build_plan, explanation_json, explanation_table, plan_inputs
from .explain import explain as explain_plan
from .files import FileChange, apply, check_writable, compare, unified_diff, write_file
from .ksm import ksm_config
from .metering_config import parse_metering
from .monitoring import chosen_sections, retired_outputs, scrape_job
from .monitoring_config import METERING_KEY
from .pipeline import build_project, check_recorded_crds, choose_service, relative_path, shards_path
from .render import RenderedFile
from .report.html import html_text
from .report.outputs import csv_text, json_text, table
from .report.prometheus import PrometheusClient
from .report.run import SOURCES, build_report
from .report.times import TIME_HINT, parse_step, parse_time

_STATUS_WORDS = {"keep": "unchanged"}


def _report(changes: Sequence[FileChange]) -> None:
    for change in changes:
        click.echo(f"{_STATUS_WORDS.get(change.status, change.status):<9} {change.path}", err=True)


def _stdout(text: str) -> None:
    """Write to stdout; a reader that went away (`| head`) ends the output, not the command,
    which still exits with its own code (1 for drift)."""
    try:
        click.echo(text, nl=False)
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush cannot fail again."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (a test runner's buffer)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _click_error(exc: click.ClickException) -> str:
    """click's own errors (bad flags, missing options) in the tool's `error:` style."""
    message = exc.format_message().strip().rstrip(".")
    if message[:1].isupper() and not message[1:2].isupper():
        message = message[0].lower() + message[1:]
    text = f"error: {message}"
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        text += f"\n  hint: see `{ctx.command_path} --help`"
    return text


def _exit(code: int) -> None:
    if code:
        raise click.exceptions.Exit(code)


def _parse_versions(values: Sequence[str]) -> dict[str, str]:
    versions: dict[str, str] = {}
    for value in values:
        name, sep, version = value.rpartition("=")
        key = name if sep else "*"
        if not version or (sep and not name):
            raise UsageError(f"--version {value!r}: expected VERSION or CRD=VERSION")
        versions[key] = version
    return versions


_NAMESPACE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def _namespaces(values: tuple[str, ...]) -> tuple[str, ...]:
    for value in values:
        if not _NAMESPACE_NAME.match(value):
            raise UsageError(
                f"--namespace {value!r} is not a namespace name",
                hint="lower-case letters, digits and '-', at most 63 characters",
            )
    return values


def _host(value: str) -> str:
    if not value.strip() or any(c.isspace() for c in value):
        raise UsageError(f"--host {value!r}: expected an address to bind, such as 0.0.0.0 or ::")
    return value


def _sync(
    root: Path,
    config: ProjectConfig,
    config_file: RenderedFile | None,
    mode: str,
    retired: tuple[str, ...] = (),
    retired_dirs: tuple[str, ...] = (),
    *,
    show_notes: bool = False,
) -> int:
    """Bring the project at `root` in line with `config` (mode: write, check or diff);
    `retired` are generated manifests an earlier configuration asked for, `retired_dirs` a
    package directory it generated into (its generated modules go, user-owned ones stay).
    Notes are advice for the person choosing at `init`; `generate` repeats none of them, only
    what the plan left out."""
    build = build_project(root, config)
    retired = (*retired, *build.retired)
    for note in [*build.notes, *build.plan_notes] if show_notes else build.plan_notes:
        click.echo(note, err=True)
    files = list(build.files)
    if config_file is not None:
        files.append(config_file)
    changes = compare(root, files, [*build.owned_dirs, *retired_dirs], retired)
    if mode == "write":
        apply(root, changes)
        _report(changes)
        return 0
    diff = unified_diff(changes)
    drift = any(c.changes_disk for c in changes)
    if diff:
        _stdout(diff)
    if mode == "check" and drift:
        changed = sum(1 for c in changes if c.changes_disk)
        click.echo(f"{changed} file(s) out of date: run `operator-metrics generate`", err=True)
        return EXIT_DRIFT
    return 0


class _Commands(click.Group):
    """A click group that turns our errors into messages and exit codes."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """click's `main`, with its errors in our style and usage errors exiting 2."""
        kwargs["standalone_mode"] = False
        try:
            result = super().main(*args, **kwargs)
        except click.exceptions.Abort:
            click.echo("error: aborted", err=True)
            sys.exit(EXIT_BAD_INPUT)
        except click.ClickException as exc:
            click.echo(_click_error(exc), err=True)
            sys.exit(EXIT_BAD_INPUT)
        except BrokenPipeError:
            _silence_stdout()
            sys.exit(0)
        sys.exit(result if isinstance(result, int) else 0)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except OperatorMetricsError as exc:
            click.echo(exc.format(), err=True)
            raise click.exceptions.Exit(exc.exit_code) from exc
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except Exception as exc:
            traceback.print_exc()
            click.echo(
                "error: internal error in operator-metrics (a bug): please report it with the "
                "traceback above",
                err=True,
            )
            raise click.exceptions.Exit(EXIT_INTERNAL) from exc


@click.group(
    "operator-metrics",
    cls=_Commands,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Exit codes: 0 done or up to date; 1 `generate --check` found drift; "
    f"2 bad input or usage (nothing written); {EXIT_NO_DATA} `report`: Prometheus unreachable, "
    "families absent or no samples in the period; 123 internal error.",
)
@click.version_option(__version__, prog_name="operator-metrics")
def cli() -> None:
    """Prometheus metrics for a Kubernetes operator's custom resources, from its CRDs."""


@cli.command()
@click.option(
    "--crd",
    "crds",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path, exists=True),
    help="CRD manifest file or directory (repeatable).",
)
@click.option(
    "--project",
    "--out",
    "project",
    default=".",
    type=click.Path(path_type=Path, file_okay=False),
    help="Operator repository to render into (`--out` is the old spelling).",
    show_default=True,
)
@click.option(
    "--version",
    "versions",
    multiple=True,
    help="Version to use: VERSION for every CRD or CRD=VERSION (CRD name or kind). "
    "Default: the storage version.",
)
@click.option("--main", "main", default=None, help=f"Entry point file [default: {DEFAULT_MAIN}].")
@click.option(
    "--namespace",
    "namespaces",
    multiple=True,
    help="Namespace to watch (repeatable); default all. WATCH_NAMESPACE overrides at run time.",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help=f"Metrics port [default: {DEFAULT_PORT}].",
)
@click.option(
    "--host",
    default=None,
    help=f"Address to serve metrics on [default: {DEFAULT_HOST}]. "
    "METRICS_HOST overrides at run time.",
)
@click.option("--service", default=None, help="Service manifest to expose the port on.")
@click.option("--package", default=None, help=f"Package directory [default: {DEFAULT_PACKAGE}].")
@click.option("--operator-name", default=None, help="Operator name (default: from its Deployment).")
@click.option(
    "--rbac/--no-rbac",
    default=None,
    help="Generate RBAC letting the operator's service account list/watch the kinds.",
)
@click.option(
    "--service-monitor/--no-service-monitor",
    default=None,
    help="Generate a prometheus-operator ServiceMonitor for the metrics Service.",
)
@click.option(
    "--dashboards/--no-dashboards",
    default=None,
    help="Generate a Grafana dashboard per kind (needs the `dashboards` extra).",
)
@click.option(
    "--alerts/--no-alerts",
    default=None,
    help="Generate Prometheus alerting rules (a rules file and a PrometheusRule).",
)
@click.option(
    "--metering/--no-metering",
    default=None,
    help="Generate Prometheus recording rules of usage per namespace and kind (for "
    "`operator-metrics report`); weights are added per kind under `metering:`.",
)
@click.option(
    "--shards",
    type=click.IntRange(0, 1000),
    default=None,
    help="Split the metrics over this many replicas: a metrics-only StatefulSet, each pod "
    "keeping its shard of the objects (0: none; default: as recorded).",
)
def init(
    crds: tuple[Path, ...],
    project: Path,
    versions: tuple[str, ...],
    main: str | None,
    namespaces: tuple[str, ...],
    port: int | None,
    host: str | None,
    service: str | None,
    package: str | None,
    operator_name: str | None,
    rbac: bool | None,
    service_monitor: bool | None,
    dashboards: bool | None,
    alerts: bool | None,
    metering: bool | None,
    shards: int | None,
) -> None:
    """Scaffold metrics for the CRDs into the operator's repository and record the choices."""
    root = project
    check_writable(root)
    previous: ProjectConfig | None = None
    existing_text: str | None = None
    if config_path(root).is_file():
        previous = load_config(root)
        existing_text = config_path(root).read_text(encoding="utf-8")
    crd_paths = tuple(relative_path(p, root) for p in crds)
    service_path, operator = choose_service(
        root, service or (previous.service if previous else None), operator_name
    )
    name = operator or (previous.operator if previous else None) or root.resolve().name
    manifest_dir = PurePosixPath(service_path).parent

    def extra_manifest(wanted: bool | None, recorded: str | None, suffix: str) -> str | None:
        if wanted is None:
            return recorded
        return (recorded or str(manifest_dir / f"{name}-metrics-{suffix}.yaml")) if wanted else None

    config = ProjectConfig(
        crds=crd_paths,
        versions=_parse_versions(versions),
        package=package or (previous.package if previous else DEFAULT_PACKAGE),
        main=main or (previous.main if previous else DEFAULT_MAIN),
        port=port or (previous.port if previous else DEFAULT_PORT),
        host=_host(host) if host is not None else previous.host if previous else DEFAULT_HOST,
        namespaces=_namespaces(namespaces) or (previous.namespaces if previous else ()),
        service=service_path,
        operator=operator or (previous.operator if previous else None),
        rbac=extra_manifest(rbac, previous.rbac if previous else None, "rbac"),
        service_monitor=extra_manifest(
            service_monitor, previous.service_monitor if previous else None, "servicemonitor"
        ),
        extra=chosen_sections(
            root,
            previous.extra if previous else {},
            dashboards,
            alerts,
            service_path,
            name,
            metering,
            _kinds(crds, versions) if metering else (),
        ),
        shards=_shards(shards, previous),
    )
    flags = {"package": "--package", "main": "--main", "service": "--service"}
    flags.update(rbac="--rbac", service_monitor="--service-monitor")
    flags.update({"dashboards.directory": "--dashboards", "alerts.rules": "--alerts"})
    flags["alerts.prometheus_rule"] = "--alerts"
    flags.update({"metering.rules": "--metering", "metering.prometheus_rule": "--metering"})
    for key, value, problem in unwritable_paths(config, root):
        raise UsageError(f"{flags[key]} path {value[:200]!r} {problem}", root, hint=OUTSIDE_HINT)
    config_file = RenderedFile(
        CONFIG_FILE, render_config(config, existing_text).encode("utf-8"), "manifest"
    )
    earlier = (previous.rbac, previous.service_monitor) if previous else ()
    retired = tuple(p for p in earlier if p and p not in (config.rbac, config.service_monitor))
    if previous is not None:
        retired += tuple(retired_outputs(root, previous.extra, config.extra))
    if previous is not None and previous.shards is not None and config.shards is None:
        retired += (shards_path(previous, previous.operator or name),)
    moved_from = previous.package if previous and previous.package != config.package else None
    if moved_from is not None:
        click.echo(
            f"note: the metrics package moved from {moved_from} to {config.package}: generated "
            f"files under {moved_from} are removed; user-owned ones there (custom/*.py) stay, "
            f"move your edits to {config.package}/custom/ and your entry's imports",
            err=True,
        )
    moved = (moved_from,) if moved_from else ()
    _exit(_sync(root, config, config_file, "write", retired, moved, show_notes=True))


def _kinds(crds: tuple[Path, ...], versions: tuple[str, ...]) -> tuple[str, ...]:
    """The kinds the CRDs give, in plan order, for a new `metering:` section: by Kind, or by
    CRD name where two CRDs share a Kind."""
    plan = build_plan(plan_inputs(crds, _parse_versions(versions), Path(".")))
    names = [k.kind for k in plan.kinds]
    return tuple(k.kind if names.count(k.kind) == 1 else k.crd_name for k in plan.kinds)


def _shards(wanted: int | None, previous: ProjectConfig | None) -> int | None:
    if wanted is None:
        return previous.shards if previous else None
    if wanted == 1:
        raise UsageError(
            "--shards 1 is no sharding", hint="use --shards 2 or more, or --shards 0 for none"
        )
    return wanted or None


@cli.command()
@click.option(
    "--project",
    default=".",
    type=click.Path(path_type=Path, file_okay=False),
    help=f"Project root holding {CONFIG_FILE}.",
    show_default=True,
)
@click.option(
    "--check", is_flag=True, help="Write nothing; exit 1 with a diff if anything would change."
)
@click.option("--diff", "show_diff", is_flag=True, help="Print the diff; write nothing.")
def generate(project: Path, check: bool, show_diff: bool) -> None:
    """Regenerate from the recorded config (no flags needed): the CI step."""
    config = load_config(project)
    check_recorded_crds(project, config)
    mode = "check" if check else "diff" if show_diff else "write"
    _exit(_sync(project, config, None, mode))


# -- explain / export: see the plan, or hand it to kube-state-metrics ------------------------

_CRD_HELP = "CRD manifest file or directory (repeatable); default: the project config's CRDs."


def _plan_options(func: Any) -> Any:
    """The flags `explain` and `export ksm` share: where the CRDs and choices come from."""
    func = click.option(
        "--project",
        default=".",
        type=click.Path(path_type=Path, file_okay=False),
        help=f"Project root holding {CONFIG_FILE} (used when --crd is not given).",
        show_default=True,
    )(func)
    func = click.option(
        "--version", "versions", multiple=True, help="VERSION or CRD=VERSION, as for init."
    )(func)
    return click.option(
        "--crd", "crds", multiple=True, type=click.Path(path_type=Path), help=_CRD_HELP
    )(func)


def _check_config_crds(crds: tuple[Path, ...], project: Path) -> None:
    if not crds and config_path(project).is_file():
        check_recorded_crds(project, load_config(project))


@cli.command()
@_plan_options
@click.option(
    "--output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="A table for people or JSON for machines.",
)
def explain(crds: tuple[Path, ...], versions: tuple[str, ...], project: Path, output: str) -> None:
    """Show the metric families the CRDs give (and what was left out), generating nothing."""
    _check_config_crds(crds, project)
    inputs = plan_inputs(crds, _parse_versions(versions), project)
    explanations = explain_plan(inputs)
    text = explanation_json(explanations) if output == "json" else explanation_table(explanations)
    _stdout(text)


@cli.group()
def export() -> None:
    """Export the metric plan for other tools."""


@export.command("ksm")
@_plan_options
@click.option(
    "--out",
    "out_file",
    default="-",
    type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
    help="File to write (default: stdout).",
)
def export_ksm(
    crds: tuple[Path, ...], versions: tuple[str, ...], project: Path, out_file: Path
) -> None:
    """Write the plan as a kube-state-metrics CustomResourceStateMetrics config."""
    _check_config_crds(crds, project)
    inputs = plan_inputs(crds, _parse_versions(versions), project)
    exported = ksm_config(build_plan(inputs))
    for note in exported.notes:
        click.echo(note, err=True)
    if str(out_file) == "-":
        _stdout(exported.text)
    else:
        write_file(out_file, exported.text.encode("utf-8"))


# -- report: usage per namespace from Prometheus ---------------------------------------------

_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_RENDERERS = {"table": table, "csv": csv_text, "json": json_text, "html": html_text}


def _by(value: str) -> str:
    if value == "namespace":
        return value
    key = value.removeprefix("label:")
    if not value.startswith("label:") or not _LABEL_KEY.match(key):
        raise UsageError(
            f"--by {value[:100]!r}: expected namespace or label:KEY",
            hint="KEY is an object label the kind exports (allow-listed under `metrics:`), "
            "such as label:team",
        )
    return value


@cli.command()
@click.option(
    "--project",
    default=".",
    type=click.Path(path_type=Path, file_okay=False),
    help=f"Project root holding {CONFIG_FILE} (its `metering:` section).",
    show_default=True,
)
@click.option("--prometheus", "url", required=True, help="Prometheus base URL (http://host:9090).")
@click.option("--from", "start", required=True, help=f"Start of the period: {TIME_HINT}.")
@click.option("--to", "end", default="now", show_default=True, help="End of the period.")
@click.option(
    "--by",
    default="namespace",
    show_default=True,
    help="Group by namespace or by an object label: label:KEY.",
)
@click.option(
    "--output",
    type=click.Choice(sorted(_RENDERERS)),
    default="table",
    show_default=True,
    help="A table, CSV, JSON, or one self-contained HTML page with a chart per kind.",
)
@click.option(
    "--out",
    "out_file",
    default="-",
    type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
    help="File to write (default: stdout).",
)
@click.option("--step", default=None, help="Resolution [default: the `metering.interval`].")
@click.option(
    "--source",
    type=click.Choice(SOURCES),
    default="auto",
    show_default=True,
    help="Recording rules, raw families, or rules when Prometheus has them (auto).",
)
@click.option(
    "--job",
    default=None,
    help="Scrape job whose `up` tells a gap from no objects [default: the alerts' job or "
    "the metrics Service's name].",
)
def report(
    project: Path,
    url: str,
    start: str,
    end: str,
    by: str,
    output: str,
    out_file: Path,
    step: str | None,
    source: str,
    job: str | None,
) -> None:
    """Usage per namespace over a period: object-hours and weighted hours, from Prometheus."""
    config = load_config(project)
    check_recorded_crds(project, config)
    plan = build_plan(plan_inputs((), {}, project))
    metering = parse_metering(config.extra.get(METERING_KEY), config_path(project), plan)
    if metering is None:
        raise UsageError(
            f"no `{METERING_KEY}:` section in the project config",
            config_path(project),
            hint="run `operator-metrics init --crd ... --metering` and load its recording rules",
        )
    client = PrometheusClient(url)
    seconds = parse_step(step) if step is not None else metering.interval_seconds
    usage = build_report(
        client,
        plan,
        metering,
        parse_time("--from", start),
        parse_time("--to", end),
        seconds,
        _by(by),
        source,
        job or scrape_job(project, config),
    )
    text = _RENDERERS[output](usage)
    if str(out_file) == "-":
        _stdout(text)
    else:
        write_file(out_file, text.encode("utf-8"))


def main() -> None:
    """Console entry point."""
    cli.main(prog_name="operator-metrics")
