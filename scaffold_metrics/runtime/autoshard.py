"""Sharding settings that follow a StatefulSet, as kube-state-metrics' `--pod`/`--pod-namespace`.

A replica run as pod `<statefulset>-<ordinal>` is shard `<ordinal>` of the StatefulSet's
`spec.replicas`. The StatefulSet is found through the pod's controller ownerReference (so a
renamed StatefulSet needs no setting) and then watched, by name, so a scale from 3 to 2 replicas
changes every remaining replica's ownership in place: the collectors list again under the new
total, and no process restarts. A replica whose ordinal is past the new total (a pod about to be
removed) owns nothing from then on.

Reads only the pod (get) and its StatefulSet (get, and list/watch with the
`metadata.name=<statefulset>` field selector, which RBAC checks as a request for that name).
"""

from __future__ import annotations

import logging
import random
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .jsondecode import decode_json
from .kubeclient import ApiError, Response, open_get, resource_path
from .sharding import ShardSelector
from .watch import WatchDisconnected, WatchIdle, WatchUnreadable, list_all, watch_events

__all__ = ["ShardingSetupError", "StatefulSetShards", "StatefulSetTarget", "find_statefulset"]

log = logging.getLogger("scaffold_metrics.runtime")

_ORDINAL = re.compile(r"^(0|[1-9][0-9]{0,8})$")


class ShardingSetupError(Exception):
    """This pod's shard cannot be found out (no StatefulSet owns it, no permission, a name
    without an ordinal): said in one line."""


@dataclass(frozen=True)
class StatefulSetTarget:
    """The StatefulSet a pod belongs to, the pod's ordinal in it and its replicas now."""

    namespace: str
    name: str
    ordinal: int
    replicas: int
    resource_version: str


def _get_json(api_client: Any, path: str, timeout: tuple[float, float]) -> Any:
    resp: Response = open_get(api_client, path, [], timeout)
    try:
        return decode_json(resp.read_all())
    finally:
        resp.close()


def ordinal_of(pod: str, statefulset: str) -> int:
    """The ordinal of pod `<statefulset>-<n>`; raises `ShardingSetupError` otherwise."""
    prefix = f"{statefulset}-"
    suffix = pod[len(prefix) :] if pod.startswith(prefix) else ""
    if not _ORDINAL.match(suffix):
        raise ShardingSetupError(
            f"pod {pod!r} is not named <statefulset>-<ordinal> after its StatefulSet "
            f"{statefulset!r}: cannot tell its shard"
        )
    return int(suffix)


def replicas_of(statefulset: Mapping[str, Any]) -> int:
    """`spec.replicas` (1 when unset, as the API defaults it; at least 1)."""
    spec = statefulset.get("spec")
    replicas = spec.get("replicas") if isinstance(spec, Mapping) else None
    if not isinstance(replicas, int) or isinstance(replicas, bool):
        return 1
    return max(1, replicas)


def find_statefulset(
    api_client: Any, pod: str, namespace: str, timeout: tuple[float, float] = (10.0, 30.0)
) -> StatefulSetTarget:
    """GET the pod, follow its controller ownerReference to its StatefulSet and GET that."""
    try:
        doc = _get_json(api_client, resource_path("", "v1", "pods", namespace) + f"/{pod}", timeout)
    except ApiError as exc:
        raise ShardingSetupError(
            f"cannot read pod {namespace}/{pod} to find its StatefulSet: {exc}; grant `get` "
            f"on pods in namespace {namespace}"
        ) from exc
    meta = doc.get("metadata") if isinstance(doc, Mapping) else None
    owners = meta.get("ownerReferences") if isinstance(meta, Mapping) else None
    name = next(
        (
            str(o.get("name"))
            for o in (owners if isinstance(owners, list) else ())
            if isinstance(o, Mapping)
            and o.get("apiVersion") == "apps/v1"
            and o.get("kind") == "StatefulSet"
            and o.get("controller") is True
            and o.get("name")
        ),
        None,
    )
    if name is None:
        raise ShardingSetupError(
            f"pod {namespace}/{pod} is not controlled by a StatefulSet: automatic sharding "
            "needs one (or set METRICS_SHARD and METRICS_TOTAL_SHARDS)"
        )
    ordinal = ordinal_of(pod, name)
    path = resource_path("apps", "v1", "statefulsets", namespace) + f"/{name}"
    try:
        sts = _get_json(api_client, path, timeout)
    except ApiError as exc:
        raise ShardingSetupError(
            f"cannot read StatefulSet {namespace}/{name}: {exc}; grant `get`, `list` and "
            f"`watch` on statefulsets named {name} in namespace {namespace}"
        ) from exc
    sts_meta = sts.get("metadata") if isinstance(sts, Mapping) else {}
    rv = str(sts_meta.get("resourceVersion") or "") if isinstance(sts_meta, Mapping) else ""
    return StatefulSetTarget(namespace, name, ordinal, replicas_of(sts), rv)


class StatefulSetShards:
    """Keeps `selector` at (this pod's ordinal, its StatefulSet's replicas) in a daemon thread.

    `start()` finds the StatefulSet first (raising `ShardingSetupError` when it cannot), so the
    collectors' first list already has the right ownership; then the watch follows it.
    """

    def __init__(
        self,
        api_client: Any,
        pod: str,
        namespace: str,
        selector: ShardSelector | None = None,
        *,
        watch_timeout: tuple[int, int] = (300, 600),
        idle_timeout: float = 70.0,
        connect_timeout: float = 10.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
    ) -> None:
        self.api_client = api_client
        self.pod = pod
        self.namespace = namespace
        self.selector = selector if selector is not None else ShardSelector()
        self.watch_timeout = watch_timeout
        self.idle_timeout = idle_timeout
        self.connect_timeout = connect_timeout
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.target: StatefulSetTarget | None = None
        self.wanted: Callable[[], bool] = lambda: True
        """Checked between watches: False ends the thread (its collectors have all stopped)."""
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._response: Response | None = None
        self._thread: threading.Thread | None = None
        self._failures = 0

    def start(self) -> StatefulSetTarget:
        """Find the StatefulSet, set the selector from it and start following it."""
        target = find_statefulset(
            self.api_client, self.pod, self.namespace, (self.connect_timeout, 30.0)
        )
        self.target = target
        self._set(target.replicas)
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name=f"shards-{target.name}", daemon=True
            )
            self._thread.start()
        return target

    def stop(self, timeout: float = 5.0) -> None:
        """Stop following (the selector keeps its last value)."""
        self._stop.set()
        with self._lock:
            resp = self._response
        if resp is not None:
            resp.abort()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None

    # -- loop -------------------------------------------------------------------------------

    def _set(self, replicas: int) -> None:
        assert self.target is not None
        if self.selector.update(self.target.ordinal, replicas):
            log.info(
                "sharding: shard %d of %d (StatefulSet %s/%s)",
                self.target.ordinal,
                replicas,
                self.target.namespace,
                self.target.name,
            )

    def _set_response(self, resp: Response | None) -> None:
        with self._lock:
            self._response = resp
        if resp is not None and self._stop.is_set():
            resp.abort()

    def _run(self) -> None:
        assert self.target is not None
        path = resource_path("apps", "v1", "statefulsets", self.target.namespace)
        query = [("fieldSelector", f"metadata.name={self.target.name}")]
        rv: str | None = self.target.resource_version or None
        while not self._stop.is_set() and self.wanted():
            try:
                if rv is None:
                    listed = list_all(
                        self.api_client,
                        path,
                        10,
                        (self.connect_timeout, 60.0),
                        on_open=self._set_response,
                        extra_query=query,
                    )
                    for item in listed.items:
                        self._apply(item)
                    rv = listed.resource_version
                for event in watch_events(
                    self.api_client,
                    path,
                    rv,
                    random.randint(*self.watch_timeout),
                    self.idle_timeout,
                    self.connect_timeout,
                    on_open=self._set_response,
                    extra_query=query,
                ):
                    obj = event.get("object")
                    if event.get("type") in ("ADDED", "MODIFIED") and isinstance(obj, Mapping):
                        self._apply(obj)
                    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
                    new_rv = meta.get("resourceVersion") if isinstance(meta, Mapping) else None
                    rv = str(new_rv) if new_rv else rv
                self._failures = 0
            except WatchIdle:
                continue
            except ApiError as exc:
                rv = None  # 410 or anything else: list again (after a pause when repeated)
                self._on_error(exc, quiet=exc.expired and self._failures == 0)
            except (WatchDisconnected, WatchUnreadable) as exc:
                if isinstance(exc, WatchUnreadable):
                    rv = None
                self._on_error(exc)
            except Exception as exc:
                rv = None
                log.exception("sharding: following StatefulSet %s failed", self.target.name)
                self._on_error(exc, quiet=True)

    def _apply(self, statefulset: Mapping[str, Any]) -> None:
        assert self.target is not None
        meta = statefulset.get("metadata")
        if isinstance(meta, Mapping) and meta.get("name") == self.target.name:
            self._set(replicas_of(statefulset))

    def _on_error(self, exc: Exception, quiet: bool = False) -> None:
        if self._stop.is_set():
            return
        self._failures += 1
        if not quiet:
            log.warning("sharding: watching StatefulSet: %s (retrying with backoff)", exc)
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** min(self._failures, 30))
        self._stop.wait(random.uniform(0, ceiling))
