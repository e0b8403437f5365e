"""What an operator's entry point calls: the metrics of every generated kind, with the choices
made at `init` and the environment's overrides, and one `error:` line (exit 2) for a setting
or an install the metrics cannot start with, instead of a traceback in the pod's log.

Environment (read at each call): `METRICS_PORT` (the port), `WATCH_NAMESPACE` (comma-separated
namespaces; empty means all), `METRICS_HOST` (the address to bind) and `METRICS_WEB_CONFIG` (TLS
and basic auth, checked before anything starts), `METRICS_LIST_MODE` (`auto`, the default:
streaming lists where the API server does them, else paged LIST; `stream` or `paged`: only that,
see `collector`). Sharding (see `sharding.py`): `METRICS_SHARD`
and `METRICS_TOTAL_SHARDS` (this replica keeps shard N of M), or `METRICS_POD_NAME` and
`METRICS_POD_NAMESPACE` (the downward API's pod name and namespace: shard and total follow the
pod's StatefulSet); `serve(argv=...)` takes the same as `--shard`, `--total-shards`, `--pod`
and `--pod-namespace`, which win over the environment. The generated `wiring.py` is these calls
with the project's constants.
"""

from __future__ import annotations

import os
import re
import socket
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from .autoshard import ShardingSetupError, StatefulSetShards
from .collector import LIST_MODES, Collector, new_collectors
from .generator import MetricsGeneratorProtocol
from .kubeclient import KubeConfigError, load_api_client
from .selfmetrics import DEFAULT_SELF_METRICS
from .server import MetricsServer, serve_metrics, start_metrics_server
from .sharding import ShardSelector
from .webconfig import WebConfigError, load_web_config, web_config_path

if TYPE_CHECKING:
    from .kopf_integration import KopfMetrics

ENV_PORT = "METRICS_PORT"
ENV_NAMESPACES = "WATCH_NAMESPACE"
ENV_HOST = "METRICS_HOST"
ENV_LIST_MODE = "METRICS_LIST_MODE"
ENV_SHARD = "METRICS_SHARD"
ENV_TOTAL_SHARDS = "METRICS_TOTAL_SHARDS"
ENV_POD = "METRICS_POD_NAME"
ENV_POD_NAMESPACE = "METRICS_POD_NAMESPACE"
SHARD_FLAGS = {
    "--shard": ENV_SHARD,
    "--total-shards": ENV_TOTAL_SHARDS,
    "--pod": ENV_POD,
    "--pod-namespace": ENV_POD_NAMESPACE,
}
"""The command-line form of the sharding settings, and the variable each stands for."""
_POD_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
DEFAULT_HOST = "0.0.0.0"
EXIT_BAD_SETUP = 2
_NAMESPACE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_EXTRAS = {"kubernetes": "runtime", "kopf": "kopf"}

Generators = Sequence[type[MetricsGeneratorProtocol]]


class MetricsSetupError(Exception):
    """The metrics cannot start with this setting or install: said in one line, exit 2."""


@dataclass(frozen=True)
class ShardingSettings:
    """Which objects this replica keeps: shard `shard` of `total`, or (with `pod`) whatever
    the StatefulSet of pod `pod_namespace`/`pod` says."""

    shard: int = 0
    total: int = 1
    pod: str | None = None
    pod_namespace: str | None = None


@dataclass(frozen=True)
class MetricsSettings:
    """Where to serve and what to watch, after the environment's overrides."""

    port: int
    namespaces: tuple[str, ...]
    host: str
    list_mode: str = "auto"
    sharding: ShardingSettings | None = None


def metrics_settings(
    port: int,
    namespaces: Sequence[str] = (),
    host: str = DEFAULT_HOST,
    environ: Mapping[str, str] | None = None,
    argv: Sequence[str] | None = None,
) -> MetricsSettings:
    """The settings of `init` (`port`, `namespaces`, `host`) with the environment's overrides
    (and the sharding flags of `argv`); raises `MetricsSetupError` naming the variable or flag
    that is not usable."""
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
        port=port,
        namespaces=tuple(dict.fromkeys(watched)),
        host=host,
        list_mode=list_mode,
        sharding=sharding_settings(env, argv or ()),
    )


def _shard_values(env: Mapping[str, str], argv: Sequence[str]) -> dict[str, tuple[str, str]]:
    """variable -> (its value, how it was given: `VAR=...` or `--flag`) for the sharding
    settings, flags over the environment."""
    values = {
        var: (env[var].strip(), var) for var in SHARD_FLAGS.values() if (env.get(var) or "").strip()
    }
    args = list(argv)
    while args:
        arg = args.pop(0)
        flag, eq, value = arg.partition("=")
        if flag not in SHARD_FLAGS:
            raise MetricsSetupError(
                f"unknown argument {arg!r}; the metrics take {', '.join(SHARD_FLAGS)}"
            )
        if not eq:
            if not args:
                raise MetricsSetupError(f"{flag} needs a value")
            value = args.pop(0)
        values[SHARD_FLAGS[flag]] = (value.strip(), flag)
    return values


def sharding_settings(
    environ: Mapping[str, str] | None = None, argv: Sequence[str] = ()
) -> ShardingSettings | None:
    """The sharding the environment (or `argv`) asks for, None for none; raises
    `MetricsSetupError` for a value or a combination that cannot be right."""
    values = _shard_values(os.environ if environ is None else environ, argv)
    if not values:
        return None

    def said(var: str) -> str:
        value, source = values[var]
        return f"{source} {value!r}" if source.startswith("--") else f"{source}={value!r}"

    pod, pod_ns = values.get(ENV_POD), values.get(ENV_POD_NAMESPACE)
    if pod is not None or pod_ns is not None:
        if ENV_SHARD in values or ENV_TOTAL_SHARDS in values:
            raise MetricsSetupError(
                f"{ENV_POD} (automatic sharding from the pod's StatefulSet) and "
                f"{ENV_SHARD}/{ENV_TOTAL_SHARDS} (fixed sharding) are both set: keep one"
            )
        if pod is None or pod_ns is None:
            missing = ENV_POD if pod is None else ENV_POD_NAMESPACE
            raise MetricsSetupError(
                f"automatic sharding needs both {ENV_POD} and {ENV_POD_NAMESPACE}; set "
                f"{missing} (from the downward API: fieldRef metadata.name / metadata.namespace)"
            )
        if not _POD_NAME.match(pod[0]):
            raise MetricsSetupError(f"{said(ENV_POD)} is not a pod name")
        if not _NAMESPACE_NAME.match(pod_ns[0]):
            raise MetricsSetupError(f"{said(ENV_POD_NAMESPACE)} is not a namespace name")
        return ShardingSettings(pod=pod[0], pod_namespace=pod_ns[0])
    if ENV_TOTAL_SHARDS not in values or ENV_SHARD not in values:
        given, missing = (
            (ENV_SHARD, ENV_TOTAL_SHARDS)
            if ENV_TOTAL_SHARDS not in values
            else (ENV_TOTAL_SHARDS, ENV_SHARD)
        )
        raise MetricsSetupError(
            f"{said(given)} without {missing}: set both (shard N of M, N from 0 to M-1)"
        )
    total_text, shard_text = values[ENV_TOTAL_SHARDS][0], values[ENV_SHARD][0]
    if not total_text.isdigit() or not 0 < int(total_text) <= 1_000_000:
        raise MetricsSetupError(f"{said(ENV_TOTAL_SHARDS)} is not a number of shards (1 or more)")
    total = int(total_text)
    if not shard_text.isdigit() or int(shard_text) >= total:
        raise MetricsSetupError(
            f"{said(ENV_SHARD)} is not a shard of {total} (0 to {total - 1}, counted from 0)"
        )
    return ShardingSettings(shard=int(shard_text), total=total)


def _port(raw: str) -> int:
    if raw.isdigit() and 0 < int(raw) < 65536:
        return int(raw)
    raise MetricsSetupError(f"{ENV_PORT}={raw!r} is not a port number (1-65535)")


def build_collectors(
    generators: Generators,
    namespaces: Sequence[str],
    client: Any = None,
    *,
    list_mode: str = "auto",
    sharding: ShardingSettings | None = None,
) -> list[Collector]:
    """One list/watch collector per kind and watched namespace (in-cluster or kubeconfig auth),
    syncing by `list_mode` (see `collector.LIST_MODES`), keeping only this shard's objects when
    `sharding` says so (following the pod's StatefulSet from here on, in a daemon thread, for
    automatic sharding)."""
    try:
        api_client = client if client is not None else load_api_client()
    except KubeConfigError as exc:
        raise MetricsSetupError(str(exc)) from exc
    except ModuleNotFoundError as exc:
        raise MetricsSetupError(_missing_module(exc)) from exc
    shards = _follow_statefulset(api_client, sharding) if sharding is not None else None
    selector = (
        shards.selector
        if shards is not None
        else ShardSelector(sharding.shard, sharding.total) if sharding is not None else None
    )
    collectors: list[Collector] = []
    for generator in generators:
        api = f"{generator.group}/{generator.version}"
        collectors.extend(
            new_collectors(
                api_client,
                namespaces,
                api,
                generator.kind,
                generator,
                list_mode=list_mode,
                selector=selector,
            )
        )
    if selector is not None:

        def on_change(shard: int, total: int) -> None:
            DEFAULT_SELF_METRICS.record_sharding(shard, total)
            for collector in collectors:
                collector.request_relist()

        selector.subscribe(on_change)
    if shards is not None:  # it follows the StatefulSet while any collector runs
        shards.wanted = lambda: not all(c.stopped for c in collectors)
    return collectors


def _follow_statefulset(api_client: Any, sharding: ShardingSettings) -> StatefulSetShards | None:
    """For automatic sharding: the pod's StatefulSet found, and followed from now on."""
    if sharding.pod is None or sharding.pod_namespace is None:
        return None
    shards = StatefulSetShards(api_client, sharding.pod, sharding.pod_namespace)
    try:
        shards.start()
    except ShardingSetupError as exc:
        raise MetricsSetupError(str(exc)) from exc
    return shards


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
        collectors = build_collectors(
            generators,
            settings.namespaces,
            client,
            list_mode=settings.list_mode,
            sharding=settings.sharding,
        )
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
    argv: Sequence[str] | None = None,
) -> None:
    """Serve `/metrics` until SIGTERM/SIGINT (blocks); errors as for `start`. `argv`: the
    sharding flags (`SHARD_FLAGS`) of a metrics-only command."""
    try:
        settings = metrics_settings(port, namespaces, host, argv=argv)
        _check_web_config()
        _check_bindable(settings)
        collectors = build_collectors(
            generators,
            settings.namespaces,
            client,
            list_mode=settings.list_mode,
            sharding=settings.sharding,
        )
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
        if settings.sharding is not None:
            raise MetricsSetupError(
                "sharding is not available when kopf's own watch feeds the metrics: unset "
                f"{ENV_SHARD}, {ENV_TOTAL_SHARDS} and {ENV_POD}, or serve the metrics from a "
                "separate metrics-only process (`wiring.serve()`)"
            )
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
