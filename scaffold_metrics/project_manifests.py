"""The operator's Kubernetes manifests as `init` and `generate` keep them: the metrics port on
its Service and on its Deployment's container, the Service when there is none, RBAC and the
ServiceMonitor where asked, and advice for what cannot be edited (Helm templates, missing RBAC).

Created manifests go where the operator's Deployment is (its namespace), so `kubectl apply -f
deploy/` puts the Service beside the pods it selects.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from .config import CONFIG_FILE, ProjectConfig
from .errors import InputError, UsageError
from .manifests import (
    MANIFEST_DIRS,
    METRICS_PORT_NAME,
    OperatorDeployment,
    ServiceInfo,
    find_manifest,
    grants_list_watch,
    is_templated,
    metrics_service_info,
    read_deployment,
    templated_manifests,
    with_container_port,
    with_metrics_port,
)
from .paths import relative_path
from .plan import MetricsPlan
from .render import RenderedFile, render_template

KUSTOMIZATION = "kustomization.yaml"


def manifest_files(
    root: Path, config: ProjectConfig, plan: MetricsPlan, notes: list[str]
) -> list[RenderedFile]:
    """Every manifest the config asks for (edited or created), with notes for the user."""
    templated = templated_manifests(root)
    if templated:
        names = ", ".join(relative_path(p, root) for p in templated)
        notes.append(
            f"note: skipped {len(templated)} templated manifest(s) (Helm chart, not YAML until "
            f"rendered; never edited): {names}"
        )
    deployment_file = find_manifest(root, "Deployment")
    deployment = read_deployment(deployment_file) if deployment_file else None
    edited: dict[str, str] = {}
    files: list[RenderedFile] = []
    service: RenderedFile | None = None
    if config.service is not None:
        path = root / config.service
        text = path.read_text(encoding="utf-8") if path.is_file() else None
        if text is not None and is_templated(text):
            notes.append(_service_port_advice(config.service, config.port))
        elif text is not None:
            edited[config.service] = with_metrics_port(path, config.port, config.operator, text)
        else:
            service = _created_service(root, config, deployment, notes)
            files.append(service)
    if deployment_file is not None and deployment is not None:
        rel = relative_path(deployment_file, root)
        text = edited.get(rel) or deployment_file.read_text(encoding="utf-8")
        operator = config.operator or deployment.name
        edited[rel] = with_container_port(deployment_file, text, config.port, operator)
    else:
        for chart_deployment in templated_manifests(root, "Deployment")[:1]:
            notes.append(_container_port_advice(relative_path(chart_deployment, root), config))
    for edited_path, edited_text in edited.items():
        file = RenderedFile(edited_path, edited_text.encode("utf-8"), "manifest")
        files.append(file)
        if edited_path == config.service:
            service = file
    if config.rbac is not None:
        files.append(_rbac_file(root, config, plan, deployment, notes))
    else:
        _note_missing_rbac(root, plan, notes)
    shards: ServiceInfo | None = None
    if config.shards is not None:
        shards_file, shards = _shards_file(root, config, deployment, notes)
        files.append(shards_file)
    if config.service_monitor is not None:
        files.append(_service_monitor_file(root, config, service, deployment, shards))
    for file in files:
        if file.owner != "manifest" or not (root / file.path).is_file():
            _note_kustomization(root, file.path, notes)
    return files


def _service_port_advice(path: str, port: int) -> str:
    return (
        f"note: the Service {path} is a Helm template: add this entry to its spec.ports:\n"
        f"    - name: {METRICS_PORT_NAME}\n      port: {port}\n      targetPort: {port}\n"
        f"      protocol: TCP"
    )


def _container_port_advice(path: str, config: ProjectConfig) -> str:
    return (
        f"note: the operator Deployment {path} is a Helm template: add this entry to its "
        f"container's ports:\n    - name: {METRICS_PORT_NAME}\n"
        f"      containerPort: {config.port}\n      protocol: TCP"
    )


def _created_service(
    root: Path, config: ProjectConfig, deployment: OperatorDeployment | None, notes: list[str]
) -> RenderedFile:
    """A `<operator>-metrics` Service selecting the Deployment's pods, in its namespace."""
    assert config.service is not None
    operator = config.operator or (deployment.name if deployment else root.resolve().name)
    selector = deployment.selector if deployment and deployment.selector else (("name", operator),)
    if deployment is None:
        notes.append(
            f"note: no operator Deployment found under deploy/ or config/; the new Service "
            f"{config.service} selects pods labelled name={operator}: check its selector"
        )
    text = render_template(
        "service.yaml.j2",
        operator=operator,
        selector=selector,
        port=config.port,
        namespace=deployment.namespace if deployment else None,
    )
    return RenderedFile(config.service, text.encode("utf-8"), "manifest")


def _note_kustomization(root: Path, path: str, notes: list[str]) -> None:
    """A new manifest beside a kustomization.yaml that does not list it is not deployed by
    `kubectl apply -k`: say so."""
    manifest = PurePosixPath(path)
    kustomization = root / manifest.parent / KUSTOMIZATION
    if not kustomization.is_file():
        return
    if manifest.name not in kustomization.read_text(encoding="utf-8", errors="replace"):
        notes.append(
            f"note: add {manifest.name} to the resources of "
            f"{manifest.parent / KUSTOMIZATION} so `kubectl apply -k` deploys it"
        )


def _note_missing_rbac(root: Path, plan: MetricsPlan, notes: list[str]) -> None:
    missing = [
        f"{kind.plural}.{kind.group}"
        for kind in plan.kinds
        if not grants_list_watch(root, kind.group, kind.plural)
    ]
    if missing:
        notes.append(
            f"note: no Role or ClusterRole under {' or '.join(d + '/' for d in MANIFEST_DIRS)} "
            f"grants list and "
            f"watch on {', '.join(missing)}: the collectors will get 403 Forbidden; run "
            f"`operator-metrics init --rbac` to generate one, or add the rule to yours"
        )


def _rbac_file(
    root: Path,
    config: ProjectConfig,
    plan: MetricsPlan,
    deployment: OperatorDeployment | None,
    notes: list[str],
) -> RenderedFile:
    """ClusterRole to get/list/watch every kind, bound to the operator's service account:
    cluster-wide, or per watched namespace (cluster-scoped kinds always need the former)."""
    assert config.rbac is not None
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


def shards_path(config: ProjectConfig, operator: str) -> str:
    """Where the metrics StatefulSet goes: beside the metrics Service."""
    directory = PurePosixPath(config.service).parent if config.service else PurePosixPath("deploy")
    return str(directory / f"{operator}-metrics-shards.yaml")


def _shards_file(
    root: Path, config: ProjectConfig, deployment: OperatorDeployment | None, notes: list[str]
) -> tuple[RenderedFile, ServiceInfo]:
    """The metrics StatefulSet (metrics-only pods of the operator's image, each one shard),
    its headless Service and the Role a shard needs to find its ordinal and the replicas.

    Not the operator's Deployment made a StatefulSet: that would run `shards` copies of the
    operator itself (its reconcilers, webhooks, leader election) to split the metrics."""
    assert config.shards is not None
    operator = config.operator or (deployment.name if deployment else root.resolve().name)
    name = f"{operator}-metrics-shard"
    account = deployment.service_account if deployment and deployment.service_account else None
    namespace = deployment.namespace if deployment and deployment.namespace else None
    image = deployment.image if deployment and deployment.image else None
    path = shards_path(config, operator)
    if image is None:
        notes.append(
            f"note: {path} runs image {operator + ':latest'!r}: no operator Deployment with an "
            "image was found under deploy/ or config/; set the image the operator is built as"
        )
    text = render_template(
        "shards.yaml.j2",
        operator=operator,
        shard_name=name,
        namespace=namespace,
        replicas=config.shards,
        account=account or operator,
        account_namespace=namespace or "default",
        image=image or f"{operator}:latest",
        module=".".join(PurePosixPath(config.package).parts),
        port=config.port,
    )
    info = ServiceInfo(name, namespace, (("app.kubernetes.io/name", name),))
    return RenderedFile(path, text.encode("utf-8"), "generated"), info


def _service_monitor_file(
    root: Path,
    config: ProjectConfig,
    service: RenderedFile | None,
    deployment: OperatorDeployment | None,
    shards: ServiceInfo | None = None,
) -> RenderedFile:
    """A prometheus-operator ServiceMonitor scraping the metrics Service's `cr-metrics` port,
    in the Service's namespace (the Deployment's when the Service does not say); with shards,
    every pod behind their headless Service instead (the operator's own pod is not scraped:
    the shards hold every object once between them)."""
    assert config.service_monitor is not None
    if shards is not None:
        text = render_template("servicemonitor.yaml.j2", service=shards, namespace=shards.namespace)
        return RenderedFile(config.service_monitor, text.encode("utf-8"), "generated")
    info = (
        metrics_service_info(service.content.decode("utf-8"), root / service.path)
        if service is not None
        else None
    )
    if info is None:
        templated = config.service is not None and service is None
        raise UsageError(
            "a ServiceMonitor needs the metrics Service",
            root / CONFIG_FILE,
            hint=(
                f"the Service {config.service} is a Helm template: add a ServiceMonitor to the "
                "chart instead (`init --no-service-monitor`)"
                if templated
                else "record a Service with `init --service PATH`"
            ),
        )
    if not info.labels:
        raise InputError(
            f"Service {info.name} has no labels for a ServiceMonitor to select",
            root / (service.path if service else ""),
            hint="add metadata.labels to the Service",
        )
    namespace = info.namespace or (deployment.namespace if deployment else None)
    text = render_template("servicemonitor.yaml.j2", service=info, namespace=namespace)
    return RenderedFile(config.service_monitor, text.encode("utf-8"), "generated")


def choose_service(
    root: Path, requested: str | None, operator: str | None
) -> tuple[str, str | None]:
    """At init: the Service manifest to edit or create (or the Helm template to advise on),
    and the operator's name."""
    deployment_file = find_manifest(root, "Deployment")
    deployment = read_deployment(deployment_file) if deployment_file else None
    name = operator or (deployment.name if deployment and deployment.name else None)
    if requested is not None:
        return requested, name
    found = find_manifest(root, "Service")
    if found is not None:
        return relative_path(found, root), name
    if deployment_file is None:
        for chart_service in templated_manifests(root, "Service")[:1]:
            return relative_path(chart_service, root), name
    directory = (
        PurePosixPath(relative_path(deployment_file, root)).parent
        if deployment_file is not None
        else "deploy" if (root / "deploy").is_dir() or not (root / "config").is_dir() else "config"
    )
    base = name or root.resolve().name
    return f"{directory}/{base}-metrics-service.yaml", name
