"""The project config file (`.operator-metrics.yaml`): the choices `init` made, for `generate`.

Versioned (`version: 1`) so that a newer format is refused clearly instead of misread, and
strict about keys so that a typo is an error, not a silently ignored option.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from .errors import InputError
from .monitoring_config import SECTIONS as INIT_SECTIONS
from .monitoring_config import unwritable_section_paths
from .project_paths import path_problem
from .yamldocs import check_bounds

CONFIG_FILE = ".operator-metrics.yaml"
CONFIG_VERSION = 1
DEFAULT_PORT = 8389
DEFAULT_PACKAGE = "pkg/metrics"
DEFAULT_MAIN = "main.py"
DEFAULT_HOST = "0.0.0.0"

_HEADER = (
    "# operator-metrics project config: written by `operator-metrics init`, read by\n"
    "# `operator-metrics generate`. Paths are relative to this file. Format: see the README.\n"
)


@dataclass(frozen=True)
class ProjectConfig:
    """Everything that decides the generated files, besides the CRDs' own content."""

    crds: tuple[str, ...]
    versions: Mapping[str, str] = field(default_factory=dict)
    package: str = DEFAULT_PACKAGE
    main: str = DEFAULT_MAIN
    port: int = DEFAULT_PORT
    host: str = DEFAULT_HOST
    namespaces: tuple[str, ...] = ()
    service: str | None = None
    operator: str | None = None
    rbac: str | None = None
    service_monitor: str | None = None
    shards: int | None = None
    """Metrics replicas (a StatefulSet, each keeping its shard of the objects); None: none."""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def with_changes(self, **changes: Any) -> ProjectConfig:
        """A copy with some fields replaced."""
        return replace(self, **changes)


_KNOWN_KEYS = {
    "version",
    "crds",
    "versions",
    "package",
    "main",
    "port",
    "host",
    "namespaces",
    "service",
    "operator",
    "rbac",
    "service_monitor",
    "shards",
}
# Sections read by later pipeline stages (metric selection, dashboards, alerts); kept as they
# are. `init` writes the INIT_SECTIONS from its flags, the others only survive its rewrite.
_SECTION_KEYS = {"metrics", *INIT_SECTIONS}
# Keys naming files (or, for `package`, a directory) that generation writes: each must stay
# inside the project. `crds` are only read, so they may point anywhere.
WRITTEN_PATH_KEYS = ("package", "main", "service", "rbac", "service_monitor")
OUTSIDE_HINT = (
    "paths the tool writes are relative to the project and must stay inside it "
    "(no `..`, absolute paths or symlinks leading out)"
)


def config_path(root: Path) -> Path:
    """Where the config of the project at `root` lives."""
    return root / CONFIG_FILE


def load_config(root: Path) -> ProjectConfig:
    """Read and validate the config; errors name the key's line."""
    path = config_path(root)
    if not path.is_file():
        raise InputError(
            f"no {CONFIG_FILE} in the project",
            path,
            hint="run `operator-metrics init --crd CRD.yaml` first",
        )
    try:
        text = path.read_text(encoding="utf-8")
        check_bounds(text, path)
        data = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else None
        raise InputError("config is not valid YAML", path, line) from exc
    except (YAMLError, OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read config ({exc})", path) from exc
    if not isinstance(data, Mapping):
        raise InputError("config is not a mapping", path, 1)
    config = _parse(data, path)
    for key, value, problem in unwritable_paths(config, root):
        raise InputError(
            f"`{key}` {value[:200]!r} {problem}",
            path,
            _line(data, key.split(".")[0]),
            hint=OUTSIDE_HINT,
        )
    return config


def unwritable_paths(config: ProjectConfig, root: Path) -> list[tuple[str, str, str]]:
    """(key, path, problem) of every path `config` would write that resolves outside `root`
    (or that no filesystem can hold)."""
    found = []
    for key in WRITTEN_PATH_KEYS:
        value = getattr(config, key)
        problem = path_problem(root, value) if value is not None else None
        if problem is not None:
            found.append((key, value, problem))
    return found + unwritable_section_paths(config.extra, root)


def _line(data: Any, key: str) -> int | None:
    try:
        return int(data.lc.key(key)[0]) + 1
    except (AttributeError, KeyError, TypeError):
        return None


def _parse(data: Mapping[str, Any], path: Path) -> ProjectConfig:
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise InputError("config has no integer `version`", path, _line(data, "version") or 1)
    if version > CONFIG_VERSION:
        raise InputError(
            f"config format version {version} is newer than this operator-metrics understands "
            f"({CONFIG_VERSION})",
            path,
            _line(data, "version"),
            hint="upgrade operator-metrics",
        )
    if version < 1:
        raise InputError(f"invalid config version {version}", path, _line(data, "version"))
    for key in data:
        if key not in _KNOWN_KEYS and key not in _SECTION_KEYS:
            raise InputError(
                f"unknown config key {key!r}",
                path,
                _line(data, str(key)),
                hint=f"known keys: {', '.join(sorted(_KNOWN_KEYS | _SECTION_KEYS))}",
            )

    def strings(key: str) -> tuple[str, ...]:
        value = data.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InputError(f"`{key}` must be a list of strings", path, _line(data, key))
        return tuple(value)

    def optional_string(key: str, default: str | None) -> str | None:
        value = data.get(key, default)
        if value is not None and not isinstance(value, str):
            raise InputError(f"`{key}` must be a string", path, _line(data, key))
        return value

    crds = strings("crds")
    if not crds:
        raise InputError("config lists no CRDs", path, _line(data, "crds") or 1)
    versions = data.get("versions") or {}
    if not isinstance(versions, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in versions.items()
    ):
        raise InputError("`versions` must map CRD names to versions", path, _line(data, "versions"))
    port = data.get("port", DEFAULT_PORT)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise InputError("`port` must be a port number", path, _line(data, "port"))
    host = data.get("host", DEFAULT_HOST)
    if not isinstance(host, str) or not host.strip() or any(c.isspace() for c in host):
        raise InputError("`host` must be an address to bind", path, _line(data, "host"))
    shards = data.get("shards")
    if shards is not None and (
        not isinstance(shards, int) or isinstance(shards, bool) or not 2 <= shards <= 1000
    ):
        raise InputError(
            "`shards` must be a number of metrics replicas from 2 to 1000",
            path,
            _line(data, "shards"),
            hint="remove the key (or `init --shards 0`) for no sharding",
        )
    return ProjectConfig(
        crds=crds,
        versions=dict(versions),
        package=optional_string("package", DEFAULT_PACKAGE) or DEFAULT_PACKAGE,
        main=optional_string("main", DEFAULT_MAIN) or DEFAULT_MAIN,
        port=port,
        host=host,
        namespaces=strings("namespaces"),
        service=optional_string("service", None),
        operator=optional_string("operator", None),
        rbac=optional_string("rbac", None),
        service_monitor=optional_string("service_monitor", None),
        shards=shards,
        extra={k: data[k] for k in _SECTION_KEYS if k in data},
    )


def render_config(config: ProjectConfig, existing: str | None) -> str:
    """The config file text; keys `init` does not own (and comments) survive from `existing`."""
    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    data: Any = None
    if existing:
        try:
            data = yaml.load(existing)
        except YAMLError:
            data = None
    if not isinstance(data, CommentedMap):
        data = CommentedMap()
        data.yaml_set_start_comment(_HEADER.replace("# ", "", 1).replace("\n# ", "\n").strip())
    values: dict[str, Any] = {
        "version": CONFIG_VERSION,
        "crds": list(config.crds),
        "versions": dict(sorted(config.versions.items())),
        "package": config.package,
        "main": config.main,
        "port": config.port,
        "host": config.host,
        "namespaces": list(config.namespaces),
        "service": config.service,
        "operator": config.operator,
        "rbac": config.rbac,
        "service_monitor": config.service_monitor,
    }
    for key, value in values.items():
        if data.get(key) != value:
            data[key] = value
    for key in INIT_SECTIONS:
        if config.extra.get(key) is None:
            data.pop(key, None)
        elif data.get(key) != config.extra[key]:
            data[key] = config.extra[key]
    # Written only when asked for, so the configs of projects without shards stay as they were.
    if config.shards is None:
        data.pop("shards", None)
    elif data.get("shards") != config.shards:
        data["shards"] = config.shards
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    return buffer.getvalue()
