"""What an operator's entry point calls: the metrics of every generated kind, with the choices
made at `init` and the environment's overrides, and one `error:` line (exit 2) for a setting
or an install the metrics cannot start with, instead of a traceback in the pod's log.

Environment (read at each call): `METRICS_PORT` (the port), `WATCH_NAMESPACE` (comma-separated
namespaces; empty means all), `METRICS_HOST` (the address to bind), `METRICS_WEB_CONFIG` (TLS
and basic auth, checked before anything starts) and `METRICS_LIST_MODE` (`auto`, the default:
streaming lists where the API server does them, else paged LIST; `stream` or `paged`: only that,
see `collector`). The generated
`wiring.py` is these calls with the project's constants.
"""

from __future__ import annotations

import os
import re
import socket
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from .collector import LIST_MODES, Collector, new_collectors
from .generator import MetricsGeneratorProtocol
from .kubeclient import KubeConfigError, load_api_client
from .server import MetricsServer, serve_metrics, start_metrics_server
from .webconfig import WebConfigError, load_web_config, web_config_path

if TYPE_CHECKING:
    from .kopf_integration import KopfMetrics

ENV_PORT = "METRICS_PORT"
ENV_NAMESPACES = "WATCH_NAMESPACE"
ENV_HOST = "METRICS_HOST"
ENV_LIST_MODE = "METRICS_LIST_MODE"
DEFAULT_HOST = "0.0.0.0"
EXIT_BAD_SETUP = 2
_NAMESPACE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_EXTRAS = {"kubernetes": "runtime", "kopf": "kopf"}

Generators = Sequence[type[MetricsGeneratorProtocol]]


class MetricsSetupError(Exception):
    """The metrics cannot start with this setting or install: said in one line, exit 2."""


@dataclass(frozen=True)
class MetricsSettings:
    """Where to serve and what to watch, after the environment's overrides."""

    port: int
    namespaces: tuple[str, ...]
    host: str
    list_mode: str = "auto"


def metrics_settings(
    port: int,
    namespaces: Sequence[str] = (),
    host: str = DEFAULT_HOST,
    environ: Mapping[str, str] | None = None,
) -> MetricsSettings:
    """The settings of `init` (`port`, `namespaces`, `host`) with the environment's overrides;
    raises `MetricsSetupError` naming the variable that is not usable."""
    env = os.environ if environ is None else environ
    raw_port = env.get(ENV_PORT)
    if raw_port is not None and raw_port.strip():
        port = _port(raw_port.strip())
    watched = tuple(namespaces)
    for namespace in watched:
        if not _NAMESPACE_NAME.match(namespace):
            raise MetricsSetupError(
                f"{namespace!r}, a namespace to watch chosen at init, is not a namespace name; "
                f"run `operator-metrics init --namespace NAME` again, or set {ENV_NAMESPACES}"
            )
    raw_namespaces = env.get(ENV_NAMESPACES)
    if raw_namespaces is not None:
        watched = tuple(ns.strip() for ns in raw_namespaces.split(",") if ns.strip())
        for namespace in watched:
            if not _NAMESPACE_NAME.match(namespace):
                raise MetricsSetupError(
                    f"{ENV_NAMESPACES}={raw_namespaces!r}: {namespace!r} is not a namespace "
                    "name (lower-case letters, digits and '-', at most 63 characters); "
                    "separate namespaces with commas, leave it empty for all"
                )
    host = (env.get(ENV_HOST) or "").strip() or host
    list_mode = (env.get(ENV_LIST_MODE) or "").strip().lower() or "auto"
    if list_mode not in LIST_MODES:
        raise MetricsSetupError(
            f"{ENV_LIST_MODE}={env.get(ENV_LIST_MODE)!r} is not one of {', '.join(LIST_MODES)} "
            "(auto: streaming lists where the API server does them, else paged; leave it unset "
            "for auto)"
        )
    return MetricsSettings(
        port=port, namespaces=tuple(dict.fromkeys(watched)), host=host, list_mode=list_mode
    )


def _port(raw: str) -> int:
    if raw.isdigit() and 0 < int(raw) < 65536:
        return int(raw)
    raise MetricsSetupError(f"{ENV_PORT}={raw!r} is not a port number (1-65535)")


def build_collectors(
    generators: Generators,
    namespaces: Sequence[str],
    client: Any = None,
    list_mode: str = "auto",
) -> list[Collector]:
    """One list/watch collector per kind and watched namespace (in-cluster or kubeconfig auth),
    syncing by `list_mode` (see `collector.LIST_MODES`)."""
    try:
        api_client = client if client is not None else load_api_client()
    except KubeConfigError as exc:
        raise MetricsSetupError(str(exc)) from exc
    except ModuleNotFoundError as exc:
        raise MetricsSetupError(_missing_module(exc)) from exc
    collectors: list[Collector] = []
    for generator in generators:
        api = f"{generator.group}/{generator.version}"
        collectors.extend(
            new_collectors(
                api_client, namespaces, api, generator.kind, generator, list_mode=list_mode
            )
        )
    return collectors


def _missing_module(exc: ModuleNotFoundError) -> str:
    top = (exc.name or "").split(".")[0]
    extra = _EXTRAS.get(top, "runtime")
    return (
        f"{exc} (this is a CLI-only install of operator-metrics): install "
        f'"operator-metrics[{extra}]" in the operator\'s image'
    )


def _bind_error(settings: MetricsSettings, exc: OSError) -> MetricsSetupError:
    return MetricsSetupError(
        f"cannot serve metrics on {settings.host}:{settings.port}: "
        f"{os.strerror(exc.errno) if exc.errno and exc.errno > 0 else exc}; "
        f"choose another with {ENV_PORT} or {ENV_HOST}"
    )


def _listen(settings: MetricsSettings, collectors: Sequence[Collector]) -> MetricsServer:
    try:
        return start_metrics_server(collectors, settings.port, settings.host)
    except OSError as exc:
        raise _bind_error(settings, exc) from exc


def _check_bindable(settings: MetricsSettings) -> None:
    """Bind and release the address, so a busy port is one line before anything starts
    (`serve_metrics` binds again at once, with the same SO_REUSEADDR)."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    try:
        socket.create_server((settings.host, settings.port), family=family).close()
    except OSError as exc:
        raise _bind_error(settings, exc) from exc


def _check_web_config() -> None:
    """A `METRICS_WEB_CONFIG` that cannot be honoured is one line before anything starts (the
    server reads it again when it starts, a moment later)."""
    path = web_config_path(None)
    if path is None:
        return
    try:
        load_web_config(path)
    except WebConfigError as exc:
        raise MetricsSetupError(str(exc)) from exc
    except ModuleNotFoundError as exc:
        raise MetricsSetupError(_missing_module(exc)) from exc


def _fail(exc: MetricsSetupError) -> NoReturn:
    print(f"error: {exc}", file=sys.stderr)
    raise SystemExit(EXIT_BAD_SETUP) from exc


def start(
    generators: Generators,
    port: int,
    namespaces: Sequence[str] = (),
    host: str = DEFAULT_HOST,
    *,
    client: Any = None,
) -> MetricsServer:
    """Serve `/metrics` in the background beside an existing program; `.stop()` ends it.
    A setting or install the metrics cannot start with: one `error:` line, exit 2."""
    try:
        settings = metrics_settings(port, namespaces, host)
        _check_web_config()
        collectors = build_collectors(generators, settings.namespaces, client, settings.list_mode)
        return _listen(settings, collectors)
    except MetricsSetupError as exc:
        _fail(exc)


def serve(
    generators: Generators,
    port: int,
    namespaces: Sequence[str] = (),
    host: str = DEFAULT_HOST,
    *,
    client: Any = None,
) -> None:
    """Serve `/metrics` until SIGTERM/SIGINT (blocks); errors as for `start`."""
    try:
        settings = metrics_settings(port, namespaces, host)
        _check_web_config()
        _check_bindable(settings)
        collectors = build_collectors(generators, settings.namespaces, client, settings.list_mode)
    except MetricsSetupError as exc:
        _fail(exc)
    serve_metrics(collectors, settings.port, settings.host)


def register_kopf(
    generators: Generators, port: int, namespaces: Sequence[str] = (), host: str = DEFAULT_HOST
) -> KopfMetrics:
    """Feed the metrics from a kopf operator's own watch (`register_kopf_metrics`), serving
    while kopf runs; cluster-wide relist handling when no namespaces are watched (`kopf run
    -A`). Errors as for `start`."""
    try:
        settings = metrics_settings(port, namespaces, host)
        _check_web_config()
        try:
            from .kopf_integration import register_kopf_metrics
        except ModuleNotFoundError as exc:
            raise MetricsSetupError(_missing_module(exc)) from exc
    except MetricsSetupError as exc:
        _fail(exc)
    return register_kopf_metrics(
        list(generators),
        settings.port,
        settings.host,
        clusterwide=not settings.namespaces,
    )
