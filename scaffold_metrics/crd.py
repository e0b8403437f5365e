"""Load CustomResourceDefinition manifests into a small typed model.

Everything later in the pipeline trusts this model, so validation happens here, once, with the
file and line of the offending key in every error. Both `apiextensions.k8s.io/v1` and the old
`v1beta1` shape (`spec.validation` + `spec.version`) load into the same model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from .crd_schema import check_schema
from .errors import InputError
from .yamldocs import MAX_DOCUMENTS, YamlDocument, check_bounds, split_documents

CRD_API_VERSIONS = ("apiextensions.k8s.io/v1", "apiextensions.k8s.io/v1beta1")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_YAML_SUFFIXES = (".yaml", ".yml")
# Kubernetes' own bounds (apiextensions validation): names, plural, singular, kind and
# version names are DNS-1035 labels (63 characters), the group a DNS subdomain (253).
MAX_LABEL_LENGTH = 63
MAX_SUBDOMAIN_LENGTH = 253


@dataclass(frozen=True)
class PrinterColumn:
    """An `additionalPrinterColumns` entry: what `kubectl get` shows, a hint of what matters."""

    name: str
    json_path: str
    type: str
    description: str


@dataclass(frozen=True)
class CrdVersion:
    """One version of a CRD with its schema (None only where the CRD gives none)."""

    name: str
    served: bool
    storage: bool
    schema: Mapping[str, Any] | None
    printer_columns: tuple[PrinterColumn, ...]
    deprecated: bool = False


@dataclass(frozen=True)
class Crd:
    """A CustomResourceDefinition as the planner needs it."""

    name: str
    group: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    versions: tuple[CrdVersion, ...]
    file: Path
    line: int

    def version(self, name: str) -> CrdVersion | None:
        """The version called `name`, if the CRD has it."""
        return next((v for v in self.versions if v.name == name), None)


@dataclass
class LoadResult:
    """CRDs found, in input order, and notes about documents that were skipped."""

    crds: list[Crd] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def expand_crd_paths(paths: Iterable[Path]) -> list[tuple[Path, Path | None]]:
    """Each file to read, with the directory it was found in (None when named directly).

    Directories are searched recursively for `.yaml`/`.yml` files, sorted; a path named twice
    is read once.
    """
    files: list[tuple[Path, Path | None]] = []
    seen: set[Path] = set()
    for path in paths:
        candidates: list[tuple[Path, Path | None]]
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in _YAML_SUFFIXES and p.is_file())
            if not found:
                raise InputError(
                    "no .yaml or .yml files in directory", path, hint="point --crd at CRD files"
                )
            candidates = [(file, path) for file in found]
        elif path.is_file():
            candidates = [(path, None)]
        else:
            raise InputError("CRD file not found", path, hint="check the --crd path")
        for file, directory in candidates:
            if file.resolve() not in seen:
                seen.add(file.resolve())
                files.append((file, directory))
    return files


def load_crds(paths: Iterable[Path]) -> LoadResult:
    """Load every CRD in `paths` (files or directories); reject duplicates across files.

    A file named directly must hold a CRD; in a directory, files without one (a kustomization,
    say) are skipped with a note, as long as the directory holds at least one CRD.
    """
    result = LoadResult()
    seen: dict[str, Crd] = {}
    found_in: dict[Path, int] = {}
    for file, directory in expand_crd_paths(paths):
        count = 0
        for crd in _load_file(file, result.notes):
            count += 1
            earlier = seen.get(crd.name)
            if earlier is not None:
                raise InputError(
                    f"CRD {crd.name} is defined twice (first at {earlier.file}:{earlier.line})",
                    crd.file,
                    crd.line,
                    hint="pass each CRD once",
                )
            seen[crd.name] = crd
            result.crds.append(crd)
        if directory is not None:
            found_in[directory] = found_in.get(directory, 0) + count
        elif count == 0:
            raise InputError(
                "no CustomResourceDefinition in file",
                file,
                1,
                hint="--crd takes CRD manifests (kind: CustomResourceDefinition)",
            )
    for directory, count in found_in.items():
        if count == 0:
            raise InputError(
                "no CustomResourceDefinition in directory",
                directory,
                hint="--crd takes CRD manifests (kind: CustomResourceDefinition)",
            )
    return result


def _read_text(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError("not UTF-8 text", file, 1, hint="CRD manifests are YAML text") from exc
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror})", file) from exc


def _parse_yaml(doc: YamlDocument, file: Path, typ: str) -> Any:
    """Parse one document (once it is known to be of bounded depth and size); syntax errors
    carry the file's line, not the document's."""
    try:
        check_bounds(doc.text, file, doc.line)
        return YAML(typ=typ).load(doc.text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = doc.line + mark.line if mark is not None else doc.line
        problem = exc.problem or exc.context or "syntax error"
        raise InputError(f"not valid YAML ({problem})", file, line) from exc
    except YAMLError as exc:
        raise InputError(f"not valid YAML ({exc})", file, doc.line) from exc


class _LineFinder:
    """Line numbers for error messages: exact from round-trip nodes, else the document's."""

    def __init__(self, document_line: int, offset: int | None) -> None:
        self.document_line = document_line
        self.offset = offset

    def __call__(self, node: Any, key: str | None = None) -> int:
        lc = getattr(node, "lc", None)
        if lc is None or self.offset is None:
            return self.document_line
        if key is not None:
            try:
                return int(lc.key(key)[0]) + self.offset
            except (KeyError, TypeError):
                pass
        return int(lc.line) + self.offset


def _load_file(file: Path, notes: list[str]) -> Iterator[Crd]:
    """CRDs of one file. Documents are read by the fast safe loader; one that fails validation
    is read again in round-trip mode so the error names the exact line of the offending key."""
    documents = split_documents(_read_text(file))
    if len(documents) > MAX_DOCUMENTS:
        raise InputError(
            f"more than {MAX_DOCUMENTS:,} YAML documents in one file",
            file,
            documents[MAX_DOCUMENTS].line,
            hint="split the file",
        )
    for doc in documents:
        if not doc.has_content:
            continue
        data = _parse_yaml(doc, file, "safe")
        if data is None:
            continue
        try:
            crd = _document_crd(data, file, doc.content_line, notes)
        except InputError:
            _document_crd(_parse_yaml(doc, file, "rt"), file, doc.content_line, [], offset=doc.line)
            raise
        if crd is not None:
            yield crd


def _document_crd(
    data: Any, file: Path, line: int, notes: list[str], offset: int | None = None
) -> Crd | None:
    """The CRD in one parsed document, None for another kind of document (noted).

    With `offset` the document was parsed in round-trip mode and errors take their line from
    the node (relative to the document, shifted by `offset`)."""
    lines = _LineFinder(line, offset)
    if not isinstance(data, Mapping):
        raise InputError("document is not a mapping", file, line, hint="expected a CRD manifest")
    kind = data.get("kind")
    api_version = data.get("apiVersion")
    if kind != "CustomResourceDefinition":
        notes.append(
            f"note: skipping {_shown(kind, quote=False) if kind else 'a document without kind'} "
            f"({_shown(api_version, quote=False) if api_version else 'no apiVersion'}): "
            f"not a CRD: {file}:{line}"
        )
        return None
    if api_version not in CRD_API_VERSIONS:
        raise InputError(
            f"unknown CRD apiVersion {_shown(api_version)}",
            file,
            lines(data, "apiVersion"),
            hint="use apiextensions.k8s.io/v1 (or the old v1beta1)",
        )
    return _parse_crd(data, file, api_version == "apiextensions.k8s.io/v1beta1", lines, notes)


def _shown(value: Any, quote: bool = True, limit: int = 80) -> str:
    """A value as an error message shows it: its repr (or text), cut to `limit` characters so
    that a hostile document cannot flood the terminal."""
    text = repr(value) if quote or not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _require_map(
    parent: Mapping[str, Any], key: str, file: Path, what: str, lines: _LineFinder
) -> Mapping[str, Any]:
    value = parent.get(key)
    if not isinstance(value, Mapping):
        raise InputError(f"CRD has no {what}", file, lines(parent, key))
    return value


def _require_name(
    parent: Mapping[str, Any],
    key: str,
    file: Path,
    what: str,
    pattern: re.Pattern[str] | None,
    lines: _LineFinder,
    max_length: int = MAX_LABEL_LENGTH,
) -> str:
    value = parent.get(key)
    if not isinstance(value, str) or not value:
        raise InputError(f"CRD has no {what}", file, lines(parent, key))
    if len(value) > max_length:
        raise InputError(
            f"{what} is {len(value):,} characters long, more than Kubernetes allows "
            f"({max_length})",
            file,
            lines(parent, key),
        )
    if pattern is not None and not pattern.match(value):
        raise InputError(
            f"invalid {what} {value!r}",
            file,
            lines(parent, key),
            hint="Kubernetes requires lower-case DNS names here",
        )
    return value


# The keys of a CRD's spec (v1 and v1beta1); any other is noted, never silently dropped.
_SPEC_KEYS = (
    "group",
    "names",
    "scope",
    "versions",
    "version",
    "validation",
    "subresources",
    "additionalPrinterColumns",
    "conversion",
    "preserveUnknownFields",
)


def _parse_crd(
    doc: Mapping[str, Any], file: Path, v1beta1: bool, lines: _LineFinder, notes: list[str]
) -> Crd:
    line = lines.document_line
    spec = _require_map(doc, "spec", file, "spec", lines)
    names = _require_map(spec, "names", file, "spec.names", lines)
    group = _require_name(
        spec, "group", file, "spec.group", _DNS_SUBDOMAIN, lines, MAX_SUBDOMAIN_LENGTH
    )
    plural = _require_name(names, "plural", file, "spec.names.plural", _DNS_LABEL, lines)
    kind = _require_name(names, "kind", file, "spec.names.kind", None, lines)
    singular = kind.lower()
    if names.get("singular") is not None:
        singular = _require_name(names, "singular", file, "spec.names.singular", _DNS_LABEL, lines)
    if names.get("listKind") is not None:
        _require_name(names, "listKind", file, "spec.names.listKind", None, lines)
    for key in ("shortNames", "categories"):
        _check_strings(names, key, file, f"spec.names.{key}", lines)
    scope = spec.get("scope", "Namespaced")
    if scope == "" and v1beta1:  # the API server defaults an empty v1beta1 scope
        notes.append(
            f"note: {kind}: empty spec.scope read as Namespaced: {file}:{lines(spec, 'scope')}"
        )
        scope = "Namespaced"
    for key in spec:
        if isinstance(key, str) and key not in _SPEC_KEYS:
            like = next((k for k in _SPEC_KEYS if k.lower() == key.lower()), None)
            hint = f" (did you mean {like!r}?)" if like else ""
            notes.append(
                f"note: {kind}: unknown key {key!r} in spec, ignored{hint}: "
                f"{file}:{lines(spec, key)}"
            )
    if not isinstance(scope, str) or scope not in ("Namespaced", "Cluster"):
        raise InputError(
            f"invalid spec.scope {_shown(scope)}",
            file,
            lines(spec, "scope"),
            hint="scope is Namespaced or Cluster",
        )
    versions = _parse_versions(spec, file, v1beta1, lines)
    for version in versions:
        if version.schema is None:
            notes.append(
                f"note: {kind} {version.name} has no schema: only {kind}'s info and creation "
                f"time are measured, include fields by path to add more: {file}:{line}"
            )
    metadata = doc.get("metadata")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise InputError("CRD metadata is not a mapping", file, lines(doc, "metadata"))
    name = f"{plural}.{group}"
    if metadata is not None and metadata.get("name") is not None:
        name = _require_name(
            metadata, "name", file, "metadata.name", _DNS_SUBDOMAIN, lines, MAX_SUBDOMAIN_LENGTH
        )
    return Crd(
        name=name,
        group=group,
        kind=kind,
        plural=plural,
        singular=str(singular),
        namespaced=scope == "Namespaced",
        versions=versions,
        file=file,
        line=line,
    )


def _parse_versions(
    spec: Mapping[str, Any], file: Path, v1beta1: bool, lines: _LineFinder
) -> tuple[CrdVersion, ...]:
    shared_schema = _schema_of(spec, "validation", file, lines) if v1beta1 else None
    shared_columns = _printer_columns(spec, file, lines) if v1beta1 else ()
    raw_versions = spec.get("versions")
    if raw_versions is None and v1beta1 and spec.get("version") is not None:
        _require_name(spec, "version", file, "spec.version", _DNS_LABEL, lines)
        raw_versions = [{"name": spec["version"], "served": True, "storage": True}]
    if not isinstance(raw_versions, Sequence) or isinstance(raw_versions, str) or not raw_versions:
        raise InputError(
            "CRD has no versions",
            file,
            lines(spec, "versions"),
            hint="add spec.versions (or spec.version for v1beta1)",
        )
    versions: list[CrdVersion] = []
    for raw in raw_versions:
        if not isinstance(raw, Mapping):
            raise InputError("CRD version is not a mapping", file, lines(spec, "versions"))
        name = _require_name(raw, "name", file, "version name", _DNS_LABEL, lines)
        for flag in ("served", "storage", "deprecated"):
            if flag in raw and not isinstance(raw[flag], bool):
                raise InputError(
                    f"version {name}: `{flag}` must be true or false, not {_shown(raw[flag])}",
                    file,
                    lines(raw, flag),
                    hint="Kubernetes refuses this CRD too; write the boolean unquoted",
                )
        schema = _schema_of(raw, "schema", file, lines) or shared_schema
        columns = _printer_columns(raw, file, lines) or shared_columns
        versions.append(
            CrdVersion(
                name=name,
                served=raw.get("served", True),
                storage=raw.get("storage", len(raw_versions) == 1),
                schema=schema,
                printer_columns=columns,
                deprecated=raw.get("deprecated", False),
            )
        )
    return tuple(versions)


def _schema_of(
    parent: Mapping[str, Any], key: str, file: Path, lines: _LineFinder
) -> Mapping[str, Any] | None:
    """`parent[key].openAPIV3Schema`, type-checked (see `crd_schema`); None when absent."""
    holder = parent.get(key)
    if holder is None:
        return None
    if not isinstance(holder, Mapping):
        raise InputError(f"`{key}` must be a mapping", file, lines(parent, key))
    schema = holder.get("openAPIV3Schema")
    if schema is None:
        return None
    if not isinstance(schema, Mapping):
        raise InputError(
            "openAPIV3Schema must be a mapping", file, lines(holder, "openAPIV3Schema")
        )
    check_schema(schema, file, lines)
    return schema


def _check_strings(
    parent: Mapping[str, Any], key: str, file: Path, what: str, lines: _LineFinder
) -> None:
    value = parent.get(key)
    if value is None:
        return
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InputError(f"{what} must be a list of strings", file, lines(parent, key))
    if not all(isinstance(v, str) for v in value):
        raise InputError(f"{what} must be a list of strings", file, lines(parent, key))


def _printer_columns(
    parent: Mapping[str, Any], file: Path, lines: _LineFinder
) -> tuple[PrinterColumn, ...]:
    raw = parent.get("additionalPrinterColumns")
    if raw is None:
        return ()
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise InputError(
            "additionalPrinterColumns must be a list",
            file,
            lines(parent, "additionalPrinterColumns"),
        )
    columns = []
    for item in raw:
        if not isinstance(item, Mapping):
            raise InputError(
                "printer column is not a mapping", file, lines(parent, "additionalPrinterColumns")
            )
        path = item.get("jsonPath", item.get("JSONPath"))
        name = item.get("name")
        if not isinstance(path, str) or not isinstance(name, str):
            raise InputError("printer column without name or jsonPath", file, lines(item))
        for key in ("type", "description"):
            if key in item and not isinstance(item[key], str):
                raise InputError(f"printer column {key} must be a string", file, lines(item, key))
        columns.append(
            PrinterColumn(
                name=name,
                json_path=path,
                type=item.get("type", "string"),
                description=item.get("description", ""),
            )
        )
    return tuple(columns)
