"""Round-trip edits of the operator's Kubernetes manifests (the metrics port on its Service
and on its Deployment's container), and what the others tell (RBAC rules, Helm templates).

Manifests are the user's files: only the document being edited is re-serialised (by ruamel in
round-trip mode, keeping comments, key order and quoting); every other document of the file is
kept byte for byte, and an edit that changes nothing leaves the bytes exactly as they were.
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from .errors import InputError
from .yamldocs import YamlDocument, check_bounds, split_documents

METRICS_PORT_NAME = "cr-metrics"
MANIFEST_DIRS = ("deploy", "config")
_KIND_LINE = re.compile(r"^kind:\s*['\"]?(\w+)['\"]?\s*$", re.MULTILINE)
# A Go template action (Helm, kustomize does not template): such a file is not YAML yet.
_TEMPLATE_ACTION = re.compile(r"\{\{-?\s.*?\}\}|\{\{[\w.$]", re.DOTALL)
_CONTAINER_NAMES = ("manager", "operator")


@dataclass(frozen=True)
class OperatorDeployment:
    """What the operator's Deployment manifest tells: name, namespace, pod selector and the
    service account its pods run as (what RBAC must bind)."""

    name: str
    selector: tuple[tuple[str, str], ...]
    namespace: str | None = None
    service_account: str | None = None
    image: str | None = None
    """The operator container's image (what metrics-only replicas run too)."""


@dataclass(frozen=True)
class ServiceInfo:
    """The metrics Service as a ServiceMonitor must select it."""

    name: str
    namespace: str | None
    labels: tuple[tuple[str, str], ...]


def _round_trip_yaml(text: str) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    mapping, sequence, offset = guess_indentation(text)
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def guess_indentation(text: str) -> tuple[int, int, int]:
    """(mapping, sequence, offset) as ruamel wants them, read off the document's own style."""
    mapping: int | None = None
    offset: int | None = None
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    for previous, line in itertools.pairwise(lines):
        if not previous.rstrip().endswith(":"):
            continue
        prev_indent = len(previous) - len(previous.lstrip(" "))
        indent = len(line) - len(line.lstrip(" "))
        if line.lstrip().startswith("- "):
            if offset is None and indent >= prev_indent:
                offset = indent - prev_indent
        elif mapping is None and indent > prev_indent:
            mapping = indent - prev_indent
        if mapping is not None and offset is not None:
            break
    mapping = mapping or 2
    offset = offset or 0
    return mapping, mapping + offset, offset


def _load_document(doc: YamlDocument, file: Path) -> Any:
    try:
        check_bounds(doc.text, file, doc.line)
        return _round_trip_yaml(doc.text).load(doc.text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = doc.line + mark.line if mark is not None else doc.line
        raise InputError("not valid YAML", file, line, hint="fix the manifest") from exc


def _dump_document(data: Any, original: YamlDocument) -> str:
    buffer = io.StringIO()
    yaml = _round_trip_yaml(original.text)
    stripped = original.text.lstrip()
    yaml.explicit_start = stripped.startswith("---")
    yaml.dump(data, buffer)
    text = buffer.getvalue()
    if stripped.startswith("---") and not text.startswith("---"):
        text = "---\n" + text
    return text


def documents_of_kind(file: Path, kind: str) -> Iterator[tuple[YamlDocument, Any]]:
    """Parsed documents of `kind` in `file` (others are not parsed: a textual filter first)."""
    text = file.read_text(encoding="utf-8")
    for doc in split_documents(text):
        if kind not in _KIND_LINE.findall(doc.text):
            continue
        data = _load_document(doc, file)
        if isinstance(data, Mapping) and data.get("kind") == kind:
            yield doc, data


def is_templated(text: str) -> bool:
    """True for a Helm template (Go template actions): not YAML until the chart is rendered."""
    return "{{" in text and _TEMPLATE_ACTION.search(text) is not None


def _manifest_texts(root: Path) -> Iterator[tuple[Path, str]]:
    for directory in MANIFEST_DIRS:
        base = root / directory
        if not base.is_dir():
            continue
        for file in sorted(base.rglob("*.y*ml")):
            try:
                yield file, file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue


def find_manifest(root: Path, kind: str) -> Path | None:
    """The first plain YAML file under deploy/ or config/ holding a document of `kind` (sorted);
    Helm templates are skipped (see `templated_manifests`)."""
    for file, text in _manifest_texts(root):
        if kind in _KIND_LINE.findall(text) and not is_templated(text):
            return file
    return None


def templated_manifests(root: Path, kind: str | None = None) -> list[Path]:
    """Helm templates under deploy/ or config/ (of `kind` when given), which are never edited."""
    return [
        file
        for file, text in _manifest_texts(root)
        if is_templated(text) and (kind is None or kind in _KIND_LINE.findall(text))
    ]


def _as_strings(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, list):
        return {str(v) for v in value}
    return set()


def rbac_grants(root: Path) -> Iterator[tuple[set[str], set[str], set[str]]]:
    """(apiGroups, resources, verbs) of every rule of a Role or ClusterRole under deploy/ or
    config/ (plain files; a document that is not valid YAML grants nothing)."""
    safe = YAML(typ="safe")
    for _file, text in _manifest_texts(root):
        if is_templated(text):
            continue
        for doc in split_documents(text):
            kinds = _KIND_LINE.findall(doc.text)
            if "Role" not in kinds and "ClusterRole" not in kinds:
                continue
            try:
                data = safe.load(doc.text)
            except YAMLError:
                continue
            if not isinstance(data, Mapping) or data.get("kind") not in ("Role", "ClusterRole"):
                continue
            for rule in data.get("rules") or []:
                if isinstance(rule, Mapping):
                    yield (
                        _as_strings(rule.get("apiGroups")),
                        _as_strings(rule.get("resources")),
                        _as_strings(rule.get("verbs")),
                    )


def grants_list_watch(root: Path, group: str, plural: str) -> bool:
    """True when some Role or ClusterRole of the project lets list and watch `plural.group`."""
    for groups, resources, verbs in rbac_grants(root):
        if (
            (group in groups or "*" in groups)
            and (plural in resources or "*" in resources)
            and ("*" in verbs or {"list", "watch"} <= verbs)
        ):
            return True
    return False


def read_deployment(file: Path) -> OperatorDeployment | None:
    """Name and pod selector of the first Deployment in `file`."""
    for _doc, data in documents_of_kind(file, "Deployment"):
        metadata = data.get("metadata") or {}
        spec = data.get("spec") or {}
        labels = (spec.get("selector") or {}).get("matchLabels") or {}
        pod_spec = (spec.get("template") or {}).get("spec") or {}
        account = pod_spec.get("serviceAccountName") or pod_spec.get("serviceAccount")
        namespace = metadata.get("namespace")
        name = str(metadata.get("name") or "")
        container = _operator_container(data, name) if isinstance(data, CommentedMap) else None
        image = container.get("image") if container is not None else None
        return OperatorDeployment(
            name=name,
            selector=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
            namespace=str(namespace) if namespace else None,
            service_account=str(account) if account else None,
            image=str(image) if image else None,
        )
    return None


def metrics_service_info(text: str, file: Path) -> ServiceInfo | None:
    """Name, namespace and labels of the Service in `text` that exposes `cr-metrics`."""
    for doc in split_documents(text):
        if "Service" not in _KIND_LINE.findall(doc.text):
            continue
        data = _load_document(doc, file)
        if not isinstance(data, Mapping) or data.get("kind") != "Service":
            continue
        ports = (data.get("spec") or {}).get("ports") or []
        if not any(isinstance(p, Mapping) and p.get("name") == METRICS_PORT_NAME for p in ports):
            continue
        metadata = data.get("metadata") or {}
        labels = metadata.get("labels") or {}
        namespace = metadata.get("namespace")
        return ServiceInfo(
            name=str(metadata.get("name") or ""),
            namespace=str(namespace) if namespace else None,
            labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
        )
    return None


def with_metrics_port(file: Path, port: int, operator: str | None, text: str | None = None) -> str:
    """The text of `file` (or `text`, read from it) with its Service exposing `cr-metrics` on
    `port` (no-op if it does)."""
    text = file.read_text(encoding="utf-8") if text is None else text
    docs = split_documents(text)
    services = [
        (index, doc, data)
        for index, doc in enumerate(docs)
        if "Service" in _KIND_LINE.findall(doc.text)
        for data in [_load_document(doc, file)]
        if isinstance(data, Mapping) and data.get("kind") == "Service"
    ]
    if not services:
        raise InputError(
            "no Service in manifest", file, hint="point --service at the operator's Service"
        )
    index, doc, data = _pick_service(services, operator)
    if not _ensure_port(data, port, file, doc.line):
        return text
    docs[index] = YamlDocument(_dump_document(data, doc), doc.line)
    return "".join(d.text for d in docs)


def _pick_service(
    services: list[tuple[int, YamlDocument, Any]], operator: str | None
) -> tuple[int, YamlDocument, Any]:
    if operator:
        for candidate in services:
            name = candidate[2].get("metadata", {}).get("name")
            if name in (operator, f"{operator}-metrics"):
                return candidate
    return services[0]


def _ensure_port(service: CommentedMap, port: int, file: Path, line: int) -> bool:
    """Add or correct the `cr-metrics` port; True when something changed."""
    spec = service.get("spec")
    if spec is None:
        spec = service["spec"] = CommentedMap()
    if not isinstance(spec, CommentedMap):
        raise InputError("Service spec is not a mapping", file, line)
    ports = spec.get("ports")
    if ports is None:
        ports = spec["ports"] = []
    if not isinstance(ports, list):
        raise InputError("Service spec.ports is not a list", file, line)
    for entry in ports:
        if isinstance(entry, MutableMapping) and entry.get("name") == METRICS_PORT_NAME:
            changed = False
            for key in ("port", "targetPort"):
                if entry.get(key) != port:
                    entry[key] = port
                    changed = True
            return changed
    entry = CommentedMap()
    entry["name"] = METRICS_PORT_NAME
    entry["port"] = port
    entry["targetPort"] = port
    entry["protocol"] = "TCP"
    ports.append(entry)
    return True


def with_container_port(file: Path, text: str, port: int, operator: str | None) -> str:
    """`text` (of `file`) with the operator container of its first Deployment declaring
    `containerPort` `cr-metrics` on `port`; the same text when it already does."""
    docs = split_documents(text)
    for index, doc in enumerate(docs):
        if "Deployment" not in _KIND_LINE.findall(doc.text):
            continue
        data = _load_document(doc, file)
        if not isinstance(data, Mapping) or data.get("kind") != "Deployment":
            continue
        container = _operator_container(data, operator)
        if container is None or not _ensure_container_port(container, port, file, doc.line):
            return text
        docs[index] = YamlDocument(_dump_document(data, doc), doc.line)
        return "".join(d.text for d in docs)
    return text


def _operator_container(deployment: Any, operator: str | None) -> CommentedMap | None:
    """The container that runs the operator: named after it (or `manager`), else the first."""
    spec = (deployment.get("spec") or {}).get("template") or {}
    containers = (spec.get("spec") or {}).get("containers") or []
    candidates = [c for c in containers if isinstance(c, CommentedMap)]
    if not candidates:
        return None
    names = {operator, (deployment.get("metadata") or {}).get("name"), *_CONTAINER_NAMES}
    for container in candidates:
        if container.get("name") in names:
            return container
    return candidates[0]


def _ensure_container_port(container: CommentedMap, port: int, file: Path, line: int) -> bool:
    """Add or correct the container's `cr-metrics` port; True when something changed."""
    ports = container.get("ports")
    if ports is None:
        ports = container["ports"] = []
    if not isinstance(ports, list):
        raise InputError("Deployment container ports is not a list", file, line)
    for entry in ports:
        if isinstance(entry, MutableMapping) and entry.get("name") == METRICS_PORT_NAME:
            if entry.get("containerPort") == port:
                return False
            entry["containerPort"] = port
            return True
    entry = CommentedMap()
    entry["name"] = METRICS_PORT_NAME
    entry["containerPort"] = port
    entry["protocol"] = "TCP"
    ports.append(entry)
    return True
