"""Round-trip edits of the operator's Kubernetes manifests (the metrics port on its Service).

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


@dataclass(frozen=True)
class OperatorDeployment:
    """What the operator's Deployment manifest tells: name, namespace, pod selector and the
    service account its pods run as (what RBAC must bind)."""

    name: str
    selector: tuple[tuple[str, str], ...]
    namespace: str | None = None
    service_account: str | None = None


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


def find_manifest(root: Path, kind: str) -> Path | None:
    """The first YAML file under deploy/ or config/ holding a document of `kind` (sorted)."""
    for directory in MANIFEST_DIRS:
        base = root / directory
        if not base.is_dir():
            continue
        for file in sorted(base.rglob("*.y*ml")):
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if kind in _KIND_LINE.findall(text):
                return file
    return None


def read_deployment(file: Path) -> OperatorDeployment | None:
    """Name and pod selector of the first Deployment in `file`."""
    for _doc, data in documents_of_kind(file, "Deployment"):
        metadata = data.get("metadata") or {}
        spec = data.get("spec") or {}
        labels = (spec.get("selector") or {}).get("matchLabels") or {}
        pod_spec = (spec.get("template") or {}).get("spec") or {}
        account = pod_spec.get("serviceAccountName") or pod_spec.get("serviceAccount")
        namespace = metadata.get("namespace")
        return OperatorDeployment(
            name=str(metadata.get("name") or ""),
            selector=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
            namespace=str(namespace) if namespace else None,
            service_account=str(account) if account else None,
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


def with_metrics_port(file: Path, port: int, operator: str | None) -> str:
    """The text of `file` with its Service exposing `cr-metrics` on `port` (no-op if it does)."""
    text = file.read_text(encoding="utf-8")
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
