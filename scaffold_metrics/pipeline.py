"""The scaffolding pipeline: config → CRDs → plan → rendered files (all in memory).

`init` and `generate` both call `build_project`; they differ only in where the config comes
from, so the same CRDs always give the same files whichever command produced them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from . import __version__
from .config import CONFIG_FILE, ProjectConfig, config_path
from .crd import load_crds
from .errors import InputError, UsageError
from .manifests import (
    OperatorDeployment,
    find_manifest,
    metrics_service_info,
    read_deployment,
    with_metrics_port,
)
from .metric_config import parse_metrics_config
from .plan import MetricsPlan, PlanOptions, plan_metrics
from .render import RenderedFile, render_python, render_template

REQUIREMENTS_FILE = "requirements.txt"
_ENTRY_WIRING = re.compile(r"\bpkg\.metrics\b|\bfrom\s+pkg\s+import\s+metrics\b")


@dataclass
class ProjectBuild:
    """Files to bring onto disk, the plan they came from, and notes for the user."""

    plan: MetricsPlan
    files: list[RenderedFile]
    owned_dirs: list[str]
    notes: list[str] = field(default_factory=list)


def relative_path(path: Path, root: Path) -> str:
    """`path` relative to `root`, POSIX style, for config entries and generated headers."""
    return PurePosixPath(
        Path(os.path.relpath(path.resolve(), root.resolve())).as_posix()
    ).as_posix()


def _package_path(package: str) -> PurePosixPath:
    path = PurePosixPath(package)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise UsageError(f"package path {package!r} must be inside the project")
    for part in path.parts:
        if not part.isidentifier():
            raise UsageError(f"package path {package!r}: {part!r} is not a Python name")
    return path


def build_project(root: Path, config: ProjectConfig) -> ProjectBuild:
    """Load, plan and render everything `config` asks for, writing nothing."""
    loaded = load_crds(Path(os.path.normpath(root / p)) for p in config.crds)
    sources = {crd.name: relative_path(crd.file, root) for crd in loaded.crds}
    metrics = parse_metrics_config(config.extra.get("metrics"), config_path(root))
    options = PlanOptions(versions=config.versions, metrics=metrics)
    plan = plan_metrics(loaded.crds, options, sources)
    package = _package_path(config.package)
    import_path = ".".join(package.parts)
    source_list = sorted(set(sources.values()))
    files = _package_files(plan, package, source_list, config)
    notes = list(loaded.notes)
    notes.extend(note for kind in plan.kinds if (note := kind.cap_note) is not None)
    files.extend(_entry_files(root, package, import_path, config, notes))
    requirements = _requirements_file(root, notes)
    if requirements is not None:
        files.append(requirements)
    service = _service_file(root, config, notes)
    if service is not None:
        files.append(service)
    if config.rbac is not None:
        files.append(_rbac_file(root, config, plan, notes))
    if config.service_monitor is not None:
        files.append(_service_monitor_file(root, config, service))
    return ProjectBuild(plan=plan, files=files, owned_dirs=[str(package)], notes=notes)


def _package_files(
    plan: MetricsPlan, package: PurePosixPath, sources: list[str], config: ProjectConfig
) -> list[RenderedFile]:
    def generated(path: PurePosixPath, template: str, **context: object) -> RenderedFile:
        content = render_python(template, sources=sources, plan=plan, **context)
        return RenderedFile(str(path), content, "generated")

    files = [
        generated(package / "__init__.py", "metrics_init.py.j2"),
        generated(package / "kinds" / "__init__.py", "kinds_init.py.j2"),
        generated(package / "custom" / "__init__.py", "custom_init.py.j2"),
        generated(
            package / "wiring.py",
            "wiring.py.j2",
            port=config.port,
            namespaces=tuple(config.namespaces),
        ),
    ]
    for kind in plan.kinds:
        files.append(
            generated(package / "kinds" / f"{kind.module}.py", "kind_metrics.py.j2", k=kind)
        )
        custom = render_python("custom_kind.py.j2", k=kind)
        files.append(RenderedFile(str(package / "custom" / f"{kind.module}.py"), custom, "user"))
    return files


def _entry_files(
    root: Path, package: PurePosixPath, import_path: str, config: ProjectConfig, notes: list[str]
) -> list[RenderedFile]:
    files: list[RenderedFile] = []
    parents = package.parents
    for parent in list(parents)[:-1]:
        init = root / parent / "__init__.py"
        if not init.exists():
            init_text = render_template("pkg_init.py.j2")
            files.append(RenderedFile(str(parent / "__init__.py"), init_text.encode(), "user"))
    main = root / config.main
    if main.is_file():
        text = main.read_text(encoding="utf-8", errors="replace")
        if not _ENTRY_WIRING.search(text):
            notes.append(
                f"note: {config.main} does not start the metrics server; add these lines to it:\n"
                f"    from {import_path} import wiring\n"
                f"    wiring.start()  # serves /metrics on port {config.port} in the background"
            )
    else:
        main_text = render_template("main.py.j2", import_path=import_path)
        files.append(RenderedFile(config.main, main_text.encode("utf-8"), "user"))
    return files


def runtime_requirement() -> str:
    """The requirement line the operator's image needs: this release series, runtime extra."""
    major, minor = __version__.split(".")[:2]
    return f"operator-metrics[runtime]>={major}.{minor},<{major}.{int(minor) + 1}"


def _requirements_file(root: Path, notes: list[str]) -> RenderedFile | None:
    """Create requirements.txt naming the runtime, or say what to add to an existing one."""
    path = root / REQUIREMENTS_FILE
    if not path.exists():
        content = render_template("requirements.txt.j2", requirement=runtime_requirement())
        return RenderedFile(REQUIREMENTS_FILE, content.encode("utf-8"), "user")
    if "operator-metrics" not in path.read_text(encoding="utf-8", errors="replace"):
        notes.append(
            f"note: {REQUIREMENTS_FILE} does not name operator-metrics; add this line so the "
            f"operator's image has the runtime:\n    {runtime_requirement()}"
        )
    return None


def _service_file(root: Path, config: ProjectConfig, notes: list[str]) -> RenderedFile | None:
    if config.service is None:
        return None
    path = root / config.service
    if path.is_file():
        text = with_metrics_port(path, config.port, config.operator)
        return RenderedFile(config.service, text.encode("utf-8"), "manifest")
    deployment_file = find_manifest(root, "Deployment")
    deployment = read_deployment(deployment_file) if deployment_file else None
    operator = config.operator or (deployment.name if deployment else root.resolve().name)
    selector = deployment.selector if deployment and deployment.selector else (("name", operator),)
    if deployment is None:
        notes.append(
            f"note: no operator Deployment found under deploy/ or config/; the new Service "
            f"{config.service} selects pods labelled name={operator}: check its selector"
        )
    text = render_template(
        "service.yaml.j2", operator=operator, selector=selector, port=config.port
    )
    return RenderedFile(config.service, text.encode("utf-8"), "manifest")


def _operator_deployment(root: Path) -> OperatorDeployment | None:
    found = find_manifest(root, "Deployment")
    return read_deployment(found) if found else None


def _rbac_file(
    root: Path, config: ProjectConfig, plan: MetricsPlan, notes: list[str]
) -> RenderedFile:
    """ClusterRole to get/list/watch every kind, bound to the operator's service account:
    cluster-wide, or per watched namespace (cluster-scoped kinds always need the former)."""
    assert config.rbac is not None
    deployment = _operator_deployment(root)
    operator = config.operator or (deployment.name if deployment else root.resolve().name)
    account = deployment.service_account if deployment and deployment.service_account else None
    namespace = deployment.namespace if deployment and deployment.namespace else None
    if account is None or namespace is None:
        notes.append(
            f"note: {config.rbac} binds service account {account or operator!r} in namespace "
            f"{namespace or 'default'!r}: the operator Deployment does not say; check it"
        )
    groups: dict[str, set[str]] = {}
    for kind in plan.kinds:
        groups.setdefault(kind.group, set()).add(kind.plural)
    rules = [(group, sorted(plurals)) for group, plurals in sorted(groups.items())]
    cluster_binding = not config.namespaces or any(not k.namespaced for k in plan.kinds)
    text = render_template(
        "rbac.yaml.j2",
        operator=operator,
        rules=rules,
        account=account or operator,
        account_namespace=namespace or "default",
        cluster_binding=cluster_binding,
        namespaces=sorted(config.namespaces),
    )
    return RenderedFile(config.rbac, text.encode("utf-8"), "generated")


def _service_monitor_file(
    root: Path, config: ProjectConfig, service: RenderedFile | None
) -> RenderedFile:
    """A prometheus-operator ServiceMonitor scraping the metrics Service's `cr-metrics` port."""
    assert config.service_monitor is not None
    info = (
        metrics_service_info(service.content.decode("utf-8"), root / service.path)
        if service is not None
        else None
    )
    if info is None:
        raise UsageError(
            "a ServiceMonitor needs the metrics Service",
            root / CONFIG_FILE,
            hint="record a Service with `init --service PATH`",
        )
    if not info.labels:
        raise InputError(
            f"Service {info.name} has no labels for a ServiceMonitor to select",
            root / (service.path if service else ""),
            hint="add metadata.labels to the Service",
        )
    text = render_template("servicemonitor.yaml.j2", service=info)
    return RenderedFile(config.service_monitor, text.encode("utf-8"), "generated")


def choose_service(
    root: Path, requested: str | None, operator: str | None
) -> tuple[str, str | None]:
    """At init: the Service manifest to edit or create, and the operator's name."""
    deployment_file = find_manifest(root, "Deployment")
    deployment = read_deployment(deployment_file) if deployment_file else None
    name = operator or (deployment.name if deployment and deployment.name else None)
    if requested is not None:
        return requested, name
    found = find_manifest(root, "Service")
    if found is not None:
        return relative_path(found, root), name
    directory = (
        "deploy" if (root / "deploy").is_dir() or not (root / "config").is_dir() else "config"
    )
    base = name or root.resolve().name
    return f"{directory}/{base}-metrics-service.yaml", name
