"""TEST DOUBLE of kube-apiserver: list/watch of custom resources (and discovery), for tests only.

This is not a Kubernetes API server. It imitates, with the standard library only, the parts of
kube-apiserver v1.36 that a list/watch client meets, as captured in
`/work/shared/kube-api-transcripts/` (see `tests/test_kubeapi_double.py` for the checks):

- one global, monotonically increasing resourceVersion (like etcd's revision); every object has
  `metadata.resourceVersion`, `uid`, `creationTimestamp`, `generation` (and, optionally,
  `managedFields` plus a `last-applied-configuration` annotation, as `kubectl apply` leaves);
- LIST cluster-wide and per namespace, paged with `limit` / `continue` (opaque token,
  `remainingItemCount`, every page carries the snapshot RV), `kind: <Kind>List`, chunked body;
  a continue token older than the last `compact()` answers HTTP 410 Expired;
- WATCH (`watch=1|true`) from a resourceVersion: events after it from the event history;
  `resourceVersion=0` or absent: synthetic ADDED of current state; a resourceVersion older than
  the compaction horizon: HTTP 200 with one ERROR event (Status 410 Expired) then end of stream;
- streaming lists (KEP-3157, the `WatchList` feature, on in v1.36): `sendInitialEvents=true`
  with `resourceVersionMatch=NotOlderThan`: ADDED of the current state, then (only with
  `allowWatchBookmarks=true`, as the real server) a BOOKMARK carrying only apiVersion, kind and
  `metadata.resourceVersion` (the current one) annotated `k8s.io/initial-events-end: "true"`,
  then the watch goes on; `sendInitialEvents=false`: no synthetic ADDED whatever the
  resourceVersion. The ListOptions are validated as apimachinery's `ValidateListOptions` does:
  422 Invalid (`ListOptions.meta.k8s.io "" is invalid: ...`, with its causes) for
  sendInitialEvents without `resourceVersionMatch=NotOlderThan`, resourceVersionMatch on a watch
  without sendInitialEvents, sendInitialEvents on a LIST. `watch_list` switches the feature:
  `"enabled"` (default), `"disabled"` (the feature gate off: 422 for any sendInitialEvents),
  `"legacy"` (v1.19-v1.26: sendInitialEvents unknown, 422 for resourceVersionMatch on a watch) or
  `"unknown"` (a server that predates the parameters or ignores them, as some aggregated API
  servers do: they are dropped, so the request is a plain watch from "now", ADDED of the
  current state and never an end bookmark);
  `allowWatchBookmarks=true`: BOOKMARKs (metadata.resourceVersion only) every
  `bookmark_interval` seconds and one just before `timeoutSeconds` ends the stream;
- event lines deliberately split across HTTP chunks (`split_event_lines`): a watch's initial
  events packed into `chunk_size` (2048) byte chunks as the real server's response buffer
  frames a burst (transcript 13), every later event over two chunks;
- 404 `text/plain` "404 page not found" for a resource that is not served (CRD not installed);
- 403 JSON Status naming user, verb, resource, group and scope for forbidden scopes (except
  for requests with the cluster admin's `ADMIN_TOKEN`: a test's own setup); for requests with
  `READER_TOKEN`, RBAC decides: the Roles/ClusterRoles and their bindings posted to
  `/apis/rbac.authorization.k8s.io/v1` (the subset in `rbac_double.py`).

And what an operator framework (kopf) needs besides list/watch; no transcripts of these, the
shapes follow kube-apiserver's API types:

- discovery: `/api` (APIVersions), `/api/v1` (APIResourceList of the core resources kopf looks
  for: namespaces, events), `/apis` (APIGroupList: every installed resource's group, versions in
  Kubernetes priority order, `preferredVersion` the first), `/apis/<group>` (APIGroup),
  `/apis/<group>/<version>` (APIResourceList: the resource and its `<plural>/status`); an
  uninstalled resource vanishes, a group/version with nothing left is "404 page not found";
- GET of one object; PATCH of one object or its `/status` with a JSON merge patch (the server's
  rules: see `_patch`), MODIFIED to watchers when it changed anything;
- POST `/api/v1/namespaces/<ns>/events`: 201 with the Event echoed (`generateName` honoured),
  kept in `posted_events`.

And what a test's setup does through the official client (so the tests drive the double and a
real control plane with the same calls, see `tests/runtime/kube_fixtures.py`):

- POST of a custom object (201; 404 when its namespace does not exist, 409 AlreadyExists,
  `generateName`, `status` dropped when the status subresource is on) and DELETE of one (200
  with the object; with finalizers it only gets `deletionTimestamp`, and the PATCH that empties
  them deletes it: a single DELETED event, as on the real server);
- POST `/api/v1/namespaces` (201, 409); a new double has the four namespaces of a new cluster;
- POST, GET and DELETE of `apiextensions.k8s.io/v1` CustomResourceDefinitions: the storage
  version is served from the POST on, Established at once; DELETE removes the objects and the
  resource at once (the real server does it in the background).

And built-in resources when a test asks for them (`PODS`, core/v1 under `/api/v1`;
`STATEFULSETS`, apps/v1), for replicas that read their own pod and follow their StatefulSet:
GET, LIST and WATCH like any resource, created and updated by the test controls (no controller
acts on them: a StatefulSet's pods are the test's to create). LIST and WATCH of every resource
take `fieldSelector=metadata.name=<name>` (or `==`); any other field selector is a 400 "field
label not supported", as the real server answers one it does not index.

Simplified or absent: no managedFields entry for a PATCH; no JSON patch or server-side apply
(415); no PUT; one served version per CRD; namespaces and events are in discovery but cannot be
listed or watched; CRDs are not in discovery and cannot be listed or watched (so kopf does not
watch them). Requests for anything not implemented are answered 404/405 and listed by
`unrouted_requests()`.

Test controls: `create`, `update`, `update_status`, `delete`, `compact`, `drop_connections`,
`cut_initial_events` (a streaming list's connection breaks before its end bookmark),
`stall_watches`, `fail_next` (5xx), `forbid` / `allow`, `install_crd` / `uninstall_crd`,
`backup` / `restore` (etcd restored from a backup: resourceVersions go back), `inject` (serve
anything as an object) and `requests` (a log, each record with the `verb` it was routed to;
requests with `ADMIN_TOKEN` are not logged). Use it as a context manager; `api_client()`
returns a `kubernetes.client.ApiClient` for it.

Text, as kube-apiserver's Go JSON code handles it: a request body's invalid UTF-8 and lone
surrogate escapes (`"\\ud800"`) are read as U+FFFD, so what a client POSTs or PATCHes is
served back as valid UTF-8, as the real server does. Only the test controls can serve what no
real server sends (what a broken proxy or a non-Go server might): `create`/`inject` store
Python strings as given (a lone surrogate goes out as its `\\ud800` escape), and a `RawJson`
value anywhere in an object goes out as its bytes verbatim (invalid UTF-8, a 5,000-digit
number).

A watch from a resourceVersion the double has not reached (after `restore`): with
`future_watch="wait"` (the default) it is accepted and sends nothing until the history passes
it, then only the events above it: no BOOKMARK below a watch's resourceVersion, as
kube-apiserver does (its watch cache drops them; etcd's watch waits for the revision). With
`future_watch="too_large"` one ERROR event, Status 504 `Too large resource version: X,
current: Y` with cause `ResourceVersionTooLarge`: what kube-apiserver's watch cache answers a
request that must wait for it (a LIST at that resourceVersion, a `sendInitialEvents` watch)
when it cannot catch up within its wait.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import copy
import datetime
import json
import random
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

try:  # imported as a top-level module by the tests, as tests.kubeapi_double by bench/
    from rbac_double import Rbac, parse_rbac_path
except ModuleNotFoundError:
    from tests.rbac_double import Rbac, parse_rbac_path

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


class QuietHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that stays silent when a client goes away mid-answer.

    Collectors under test drop connections on purpose (restarts, cut watches); the standard
    server prints a traceback for each, which buries real failures in the test output.
    """

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


@dataclass(frozen=True)
class ResourceSpec:
    """One custom resource the double serves (when installed)."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    singular: str = field(default="", compare=False)  # "" and the default name are the same
    status_subresource: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular_name(self) -> str:
        """`spec.names.singular` of the CRD: defaults to the lowercased kind, as in the API."""
        return self.singular or self.kind.lower()

    @property
    def full_name(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


MEMCACHED = ResourceSpec("cache.example.com", "v1alpha1", "memcacheds", "Memcached")
"""The memcached CRD of operator-sdk, the kind the transcripts were captured with."""

PODS = ResourceSpec("", "v1", "pods", "Pod")
"""Built-in core/v1 pods (served under `/api/v1`), for what a pod reads about itself."""

STATEFULSETS = ResourceSpec("apps", "v1", "statefulsets", "StatefulSet")
"""Built-in apps/v1 StatefulSets, for replicas that learn their shard from one."""


@dataclass
class RequestRecord:
    """One request the double answered: for assertions in tests."""

    method: str
    path: str
    query: dict[str, str]
    status: int = 0
    time: float = field(default_factory=time.monotonic)
    body: Any = None  # the decoded JSON body of a POST or PATCH
    content_type: str = ""
    authorization: str = ""  # the Authorization header the client sent
    verb: str = ""  # list, watch, get, patch, create, discovery; "" if not routed
    routed: bool = True  # False: a request the double does not implement (answered 404/405)

    @property
    def is_watch(self) -> bool:
        return self.query.get("watch") in ("1", "true")


@dataclass
class _Event:
    rv: int
    type: str
    spec: ResourceSpec
    obj: dict[str, Any]


@dataclass(frozen=True)
class RawJson:
    """A value the double writes verbatim into the JSON it sends (see the module docstring)."""

    data: bytes


@dataclass(frozen=True)
class Backup:
    """What `KubeApiDouble.backup` saved: the objects and the resourceVersion of that moment."""

    rv: int
    objects: dict[tuple[str, str, str], Any]
    history: list[_Event]  # an etcd snapshot keeps the revisions since its last compaction
    compacted: int


def wire_json(doc: Any) -> bytes:
    """`doc` as compact JSON bytes, each `RawJson` in it replaced by its bytes verbatim."""
    raws: list[bytes] = []

    def placeholder(value: Any) -> str:
        if isinstance(value, RawJson):
            raws.append(value.data)
            return f"\x00raw{len(raws) - 1}\x00"
        raise TypeError(f"cannot serialize {type(value).__name__}")

    out = json.dumps(doc, separators=(",", ":"), default=placeholder).encode()
    for i, data in enumerate(raws):
        out = out.replace(b'"\\u0000raw%d\\u0000"' % i, data, 1)
    return out


_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def go_json_loads(raw: bytes) -> Any:
    """Decode a request body as kube-apiserver's Go decoder does: invalid UTF-8 and lone
    surrogate escapes become U+FFFD instead of failing (or surviving as surrogates)."""
    return _coerce_text(json.loads(raw.decode("utf-8", "replace")))


def _coerce_text(value: Any) -> Any:
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_coerce_text(v) for v in value]
    if isinstance(value, dict):
        return {_coerce_text(k): _coerce_text(v) for k, v in value.items()}
    return value


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class KubeApiDouble:
    """In-memory kube-apiserver stand-in serving list/watch over HTTP/1.1 on 127.0.0.1."""

    def __init__(
        self,
        resources: Iterable[ResourceSpec] = (MEMCACHED,),
        *,
        installed: bool = True,
        bookmark_interval: float = 60.0,
        split_event_lines: bool = True,
        chunk_size: int = 2048,
        managed_fields: bool = True,
        user: str = "system:anonymous",
        first_resource_version: int = 200,
        future_watch: str = "wait",
        watch_list: str = "enabled",
    ) -> None:
        if future_watch not in ("wait", "too_large"):
            raise ValueError(f"future_watch must be 'wait' or 'too_large', not {future_watch!r}")
        if watch_list not in WATCH_LIST_MODES:
            raise ValueError(f"watch_list must be one of {WATCH_LIST_MODES}, not {watch_list!r}")
        self.future_watch = future_watch
        self.watch_list = watch_list
        self.resources = {(r.group, r.version, r.plural): r for r in resources}
        self.bookmark_interval = bookmark_interval
        self.split_event_lines = split_event_lines
        self.chunk_size = chunk_size
        self.managed_fields = managed_fields
        self.user = user
        self.requests: list[RequestRecord] = []
        self.posted_events: list[dict[str, Any]] = []  # core/v1 Events created by clients
        self._cond = threading.Condition()
        self._rv = first_resource_version
        self._compacted = first_resource_version
        self._objects: dict[tuple[str, str, str], dict[str, Any]] = {}  # (plural, ns, name)
        self._history: list[_Event] = []
        self._snapshots: dict[int, dict[str, list[dict[str, Any]]]] = {}
        self._installed = {r.plural for r in resources} if installed else set()
        self._crd_docs: dict[str, dict[str, Any]] = {}  # plural -> CRD posted by a client
        self._namespaces: set[str] = set(INITIAL_NAMESPACES)
        self._forbidden: set[str | None] = set()
        self.rbac = Rbac()  # decides for requests with READER_TOKEN
        self._drop_generation = 0
        self._failures: list[int] = []
        self._injected = 0
        self._expire_continue = 0
        self._cut_initial: list[tuple[int, bool]] = []
        self._stall_until = 0.0
        self._closing = False
        self._server: QuietHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> KubeApiDouble:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        handler = type("Handler", (_Handler,), {"double": self})
        self._server = QuietHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._drop_generation += 1
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the double first"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api_client(self, token: str | None = None) -> Any:
        """A `kubernetes.client.ApiClient` pointed at this double (no auth, or `token`)."""
        from kubernetes import client

        cfg = client.Configuration()
        cfg.host = self.url
        if token is not None:
            cfg.api_key = {"BearerToken": token}
            cfg.api_key_prefix = {"BearerToken": "Bearer"}
        return client.ApiClient(cfg)

    def admin_api_client(self) -> Any:
        """A client with `ADMIN_TOKEN`: a cluster admin, whom `forbid` never refuses."""
        return self.api_client(ADMIN_TOKEN)

    # -- state controls -------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        """The current global resourceVersion."""
        with self._cond:
            return self._rv

    def _spec_of(self, obj: Mapping[str, Any]) -> ResourceSpec:
        group, _, version = str(obj["apiVersion"]).rpartition("/")
        for spec in self.resources.values():
            if (spec.group, spec.version, spec.kind) == (group, version, obj["kind"]):
                return spec
        raise KeyError(f"no resource for {obj['apiVersion']} {obj['kind']}")

    def _key(self, spec: ResourceSpec, obj: Mapping[str, Any]) -> tuple[str, str, str]:
        meta = obj["metadata"]
        ns = meta.get("namespace", "default") if spec.namespaced else ""
        return (spec.plural, ns, meta["name"])

    def _record(self, type_: str, spec: ResourceSpec, obj: dict[str, Any]) -> None:
        self._history.append(_Event(self._rv, type_, spec, copy.deepcopy(obj)))
        self._cond.notify_all()

    def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Create `obj` (apiVersion, kind, metadata.name[, namespace], spec) as `kubectl apply`
        would; returns it stored. Its namespace is created too if missing (a test control)."""
        spec = self._spec_of(obj)
        with self._cond:
            key = self._key(spec, obj)
            if key in self._objects:
                raise KeyError(f"{key} already exists")
            if spec.namespaced:
                self._namespaces.add(key[1])
            return self._create_locked(spec, obj, applied=True)

    def _create_locked(
        self, spec: ResourceSpec, obj: Mapping[str, Any], applied: bool, manager: str = ""
    ) -> dict[str, Any]:
        """Store a new object with the server-set metadata; `applied`: as `kubectl apply`
        leaves it (a last-applied annotation), else as a plain create by `manager`."""
        new = copy.deepcopy(dict(obj))
        meta = new.setdefault("metadata", {})
        key = self._key(spec, new)
        if spec.namespaced:
            meta["namespace"] = key[1]
        now = _now()
        spec_fields: dict[str, Any] = {".": {}, **{f"f:{k}": {} for k in new.get("spec", {})}}
        if self.managed_fields and applied:
            last_applied = {
                "apiVersion": new["apiVersion"],
                "kind": new["kind"],
                "metadata": {"annotations": {}, "name": meta["name"]}
                | ({"namespace": key[1]} if spec.namespaced else {}),
                "spec": new.get("spec", {}),
            }
            annotations = meta.setdefault("annotations", {})
            applied_text = json.dumps(last_applied, separators=(",", ":"), default=repr)
            annotations[LAST_APPLIED] = applied_text + "\n"
            fields: dict[str, Any] = {
                "f:metadata": {"f:annotations": {".": {}, f"f:{LAST_APPLIED}": {}}},
                "f:spec": spec_fields,
            }
            manager = "kubectl-client-side-apply"
        else:
            fields = {"f:spec": spec_fields}
        if self.managed_fields:
            meta["managedFields"] = [
                {
                    "apiVersion": new["apiVersion"],
                    "fieldsType": "FieldsV1",
                    "fieldsV1": fields,
                    "manager": manager,
                    "operation": "Update",
                    "time": now,
                }
            ]
        meta["creationTimestamp"] = now
        meta["generation"] = 1
        meta["uid"] = str(uuid.uuid4())
        self._rv += 1
        meta["resourceVersion"] = str(self._rv)
        self._objects[key] = new
        self._record("ADDED", spec, new)
        return copy.deepcopy(new)

    def update(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Replace spec (and labels/annotations); generation goes up when spec changed."""
        spec = self._spec_of(obj)
        with self._cond:
            key = self._key(spec, obj)
            cur = self._objects[key]
            new = copy.deepcopy(cur)
            if obj.get("spec") != cur.get("spec"):
                new["spec"] = copy.deepcopy(obj.get("spec"))
                new["metadata"]["generation"] += 1
            for part in ("labels", "annotations"):
                if part in obj.get("metadata", {}):
                    new["metadata"][part] = copy.deepcopy(obj["metadata"][part])
            return self._store_modified(spec, key, new)

    def update_status(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Replace only `status` (the status subresource): generation does not change."""
        spec = self._spec_of(obj)
        with self._cond:
            key = self._key(spec, obj)
            new = copy.deepcopy(self._objects[key])
            new["status"] = copy.deepcopy(obj.get("status"))
            return self._store_modified(spec, key, new)

    def _store_modified(
        self, spec: ResourceSpec, key: tuple[str, str, str], new: dict[str, Any]
    ) -> dict[str, Any]:
        self._rv += 1
        new["metadata"]["resourceVersion"] = str(self._rv)
        self._objects[key] = new
        self._record("MODIFIED", spec, new)
        return copy.deepcopy(new)

    def delete(self, obj: Mapping[str, Any]) -> None:
        """Delete the object named like `obj`; watchers get DELETED with the deletion's RV
        (or, while it has finalizers, MODIFIED with `deletionTimestamp` set)."""
        spec = self._spec_of(obj)
        with self._cond:
            self._delete_locked(spec, self._key(spec, obj))

    def _delete_locked(self, spec: ResourceSpec, key: tuple[str, str, str]) -> dict[str, Any]:
        """The real server's delete: an object with finalizers only gets `deletionTimestamp`
        (removed later by the PATCH that empties its finalizers); else it is gone."""
        cur = self._objects[key]
        meta = cur["metadata"]
        if meta.get("finalizers"):
            if "deletionTimestamp" in meta:
                return copy.deepcopy(cur)
            new = copy.deepcopy(cur)
            new["metadata"].update(deletionTimestamp=_now(), deletionGracePeriodSeconds=0)
            return self._store_modified(spec, key, new)
        return self._remove_locked(spec, key)

    def _remove_locked(self, spec: ResourceSpec, key: tuple[str, str, str]) -> dict[str, Any]:
        gone = self._objects.pop(key)
        self._rv += 1
        gone["metadata"]["resourceVersion"] = str(self._rv)
        self._record("DELETED", spec, gone)
        return copy.deepcopy(gone)

    def objects(self, plural: str = MEMCACHED.plural) -> list[dict[str, Any]]:
        """Current objects of `plural`, sorted by namespace and name."""
        with self._cond:
            return [copy.deepcopy(o) for k, o in sorted(self._objects.items()) if k[0] == plural]

    def compact(self) -> None:
        """Compact at the current RV (like etcd): watches from an older RV and continue tokens
        issued before now get 410 Expired. Watches already open keep their events."""
        with self._cond:
            self._compacted = self._rv
            self._snapshots.clear()

    def backup(self) -> Backup:
        """The objects and resourceVersion of now, as an etcd snapshot would keep them."""
        with self._cond:
            return Backup(
                self._rv,
                copy.deepcopy(self._objects),
                copy.deepcopy(self._history),
                self._compacted,
            )

    def restore(self, backup: Backup) -> None:
        """Restore `backup` as etcd restored from it would be: its objects, resourceVersion
        (lower than now, for a backup older than now: new writes count on from there) and
        history, every continue token and open watch gone (the API server restarts on the
        restored etcd)."""
        with self._cond:
            self._objects = copy.deepcopy(backup.objects)
            self._rv = backup.rv
            self._history = copy.deepcopy(backup.history)
            self._compacted = backup.compacted
            self._snapshots.clear()
            self._drop_generation += 1
            self._cond.notify_all()

    def inject(self, obj: Any, namespace: str = "default", plural: str = MEMCACHED.plural) -> None:
        """Serve `obj`, whatever it is (metadata that is a string, a bare string, `RawJson`
        values), as one more object of `plural`: in lists of `namespace` and of all
        namespaces, and as an ADDED event to all-namespaces watches. No real server stores
        such a thing; a test of a client's robustness needs it."""
        spec = next(r for r in self.resources.values() if r.plural == plural)
        with self._cond:
            self._injected += 1
            key = (spec.plural, namespace, f"~injected-{self._injected:04d}")
            self._objects[key] = copy.deepcopy(obj)
            self._rv += 1
            self._record("ADDED", spec, obj)

    def expire_next_continue(self, count: int = 1) -> None:
        """Answer the next `count` LIST requests carrying a continue token with 410 Expired
        (as if a compaction happened between two pages)."""
        with self._cond:
            self._expire_continue += count

    def cut_initial_events(self, after: int, count: int = 1, clean: bool = False) -> None:
        """The next `count` streaming lists break their connection (a truncated chunked body,
        as a dying proxy leaves it) after `after` of their initial ADDED events, before the
        initial-events-end bookmark; `clean`: end the body properly there instead (as the
        server does at `timeoutSeconds`)."""
        with self._cond:
            self._cut_initial.extend([(after, clean)] * count)

    def drop_connections(self) -> None:
        """Abruptly close every open watch (no terminating chunk), as a dying proxy would."""
        with self._cond:
            self._drop_generation += 1
            self._cond.notify_all()

    def stall_watches(self, seconds: float) -> None:
        """For `seconds`, open and new watches send nothing at all, not even bookmarks."""
        with self._cond:
            self._stall_until = time.monotonic() + seconds
            self._cond.notify_all()

    def fail_next(self, count: int = 1, status: int = 500) -> None:
        """Answer the next `count` LIST or WATCH requests with HTTP `status` (a 5xx) and a
        JSON Status, as an API server does when etcd is unavailable or it is shutting down."""
        with self._cond:
            self._failures = [status] * count

    def forbid(self, namespace: str | None) -> None:
        """Answer 403 for `namespace` (None: for requests across all namespaces / cluster)."""
        with self._cond:
            self._forbidden.add(namespace)

    def allow(self, namespace: str | None) -> None:
        """Undo `forbid(namespace)`."""
        with self._cond:
            self._forbidden.discard(namespace)

    def install_crd(self, plural: str = MEMCACHED.plural) -> None:
        """Serve `plural` from now on (before that: 404 page not found)."""
        with self._cond:
            self._installed.add(plural)

    def uninstall_crd(self, plural: str = MEMCACHED.plural) -> None:
        """Stop serving `plural`: its objects are gone and open watches of it end."""
        with self._cond:
            self._installed.discard(plural)
            for key in [k for k in self._objects if k[0] == plural]:
                del self._objects[key]
            self._drop_generation += 1
            self._cond.notify_all()

    def unrouted_requests(self) -> list[RequestRecord]:
        """Requests for something the double does not implement (see the module docstring)."""
        with self._cond:
            return [r for r in self.requests if not r.routed]

    def watch_requests(self) -> list[RequestRecord]:
        with self._cond:
            return [r for r in self.requests if r.verb == "watch"]

    def list_requests(self) -> list[RequestRecord]:
        """GET requests of a served collection that are not watches (LISTs)."""
        with self._cond:
            return [r for r in self.requests if r.verb == "list"]

    # -- request handling helpers (called from handler threads) ---------------------------

    def _route(self, path: str) -> tuple[ResourceSpec, str | None] | None:
        """(resource, namespace) of a served collection path (LIST/WATCH), else None."""
        target = self._route_any(path)
        if target is None or target.name is not None:
            return None
        return target.spec, target.namespace

    def _route_any(self, path: str) -> _Target | None:
        """The served resource a collection, object or subresource path names, else None."""
        parsed = _parse_resource_path(path)
        if parsed is None:
            return None
        spec = self.resources.get((parsed.group, parsed.version, parsed.plural))
        with self._cond:
            if spec is None or spec.plural not in self._installed:
                return None
        if spec.namespaced:
            if parsed.name is not None and parsed.namespace is None:
                return None  # a namespaced object is only addressed in its namespace
        elif parsed.namespace is not None:
            return None
        if parsed.subresource not in (None, "status") or (
            parsed.subresource == "status" and not spec.status_subresource
        ):
            return None
        return _Target(spec, parsed.namespace, parsed.name, parsed.subresource)

    def _installed_specs(self) -> list[ResourceSpec]:
        with self._cond:
            return [s for s in self.resources.values() if s.plural in self._installed]

    # -- discovery (shapes of the real server's /api, /apis, /apis/<group>/<version>) -------

    def _discovery(self, path: str) -> dict[str, Any] | None:
        parts = path.strip("/").split("/")
        if parts == ["api"]:
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.port}"}
                ],
            }
        core = [s for s in self._installed_specs() if not s.group]
        if parts == ["api", "v1"]:
            served = [entry for s in core for entry in _api_resources(s)]
            return {"kind": "APIResourceList", "groupVersion": "v1", "resources": CORE_V1 + served}
        groups = _served_groups(s for s in self._installed_specs() if s.group)
        if parts == ["apis"]:
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [_api_group(g, vs) for g, vs in sorted(groups.items())],
            }
        if len(parts) == 2 and parts[0] == "apis" and parts[1] in groups:
            return {
                "kind": "APIGroup",
                "apiVersion": "v1",
                **_api_group(parts[1], groups[parts[1]]),
            }
        if len(parts) == 3 and parts[0] == "apis":
            specs = groups.get(parts[1], {}).get(parts[2], [])
            if not specs:
                return None  # the whole group/version is gone: 404 page not found
            return {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": f"{parts[1]}/{parts[2]}",
                "resources": [entry for s in specs for entry in _api_resources(s)],
            }
        return None

    # -- writes from clients (kopf's PATCHes and Events) -----------------------------------

    def _patch(self, target: _Target, patch: Any) -> tuple[int, dict[str, Any]]:
        """JSON merge patch (RFC 7386) of one object, with the real server's rules: the main
        resource ignores `status` (status subresource on), `/status` ignores all but `status`,
        system metadata cannot change, a stale `metadata.resourceVersion` is a 409 Conflict,
        `generation` counts spec changes, and a patch that changes nothing writes nothing."""
        spec = target.spec
        assert target.name is not None
        key = (spec.plural, target.namespace or "", target.name)
        with self._cond:
            cur = self._objects.get(key)
            if cur is None:
                return 404, _not_found_status(spec, target.name)
            if not isinstance(patch, dict):
                return 400, _status(400, "BadRequest", "the patch must be a JSON object")
            want_rv = (patch.get("metadata") or {}).get("resourceVersion")
            if want_rv is not None and want_rv != cur["metadata"]["resourceVersion"]:
                msg = (
                    f'Operation cannot be fulfilled on {spec.full_name} "{target.name}": the '
                    "object has been modified; please apply your changes to the latest version "
                    "and try again"
                )
                return 409, _status(409, "Conflict", msg)
            merged = _merge_patch(cur, patch)
            new = copy.deepcopy(cur)
            if target.subresource == "status":
                if "status" in merged:
                    new["status"] = merged["status"]
                else:
                    new.pop("status", None)
            else:
                meta = new["metadata"]
                for k, v in merged["metadata"].items():
                    if k not in SYSTEM_METADATA:
                        meta[k] = v
                for k in [
                    k for k in meta if k not in SYSTEM_METADATA and k not in merged["metadata"]
                ]:
                    del meta[k]
                for k in set(merged) | set(cur):
                    if k in ("apiVersion", "kind", "metadata"):
                        continue
                    if k == "status" and spec.status_subresource:
                        continue
                    if k in merged:
                        new[k] = merged[k]
                    else:
                        new.pop(k, None)
                if _spec_part(new) != _spec_part(cur):
                    meta["generation"] += 1
            if new == cur:
                return 200, copy.deepcopy(cur)
            if "deletionTimestamp" in new["metadata"] and not new["metadata"].get("finalizers"):
                # the last finalizer went: the server deletes instead of updating (one DELETED)
                return 200, self._remove_locked(spec, key)
            return 200, self._store_modified(spec, key, new)

    # -- creates and deletes from clients (the fixtures' setup: objects, namespaces, CRDs) ----

    def _post_object(self, target: _Target, body: Any, manager: str) -> tuple[int, dict[str, Any]]:
        """POST to a collection: the real server's checks, then 201 with the stored object."""
        spec, ns = target.spec, target.namespace
        if not isinstance(body, dict):
            return 400, _status(400, "BadRequest", "the body must be a JSON object")
        if (body.get("apiVersion"), body.get("kind")) != (spec.api_version, spec.kind):
            msg = f"the object provided is not a {spec.kind} of {spec.api_version}"
            return 400, _status(400, "BadRequest", msg)
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if spec.namespaced and meta.get("namespace", ns) != ns:
            return 400, _status(400, "BadRequest", NAMESPACE_MISMATCH)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + _random_suffix()
        if not meta.get("name"):
            return 422, _name_required(f"{spec.kind}.{spec.group}")
        if spec.status_subresource:
            obj.pop("status", None)  # status is written through /status only
        with self._cond:
            if spec.namespaced and ns not in self._namespaces:
                return 404, _status(
                    404, "NotFound", f'namespaces "{ns}" not found', name=ns, kind="namespaces"
                )
            if self._key(spec, obj) in self._objects:
                return 409, _already_exists(spec.group, spec.plural, spec.full_name, meta["name"])
            return 201, self._create_locked(spec, obj, applied=False, manager=manager)

    def _delete_object(self, target: _Target) -> tuple[int, dict[str, Any]]:
        """DELETE of one object: 200 with it (being deleted while it has finalizers)."""
        spec = target.spec
        assert target.name is not None
        key = (spec.plural, target.namespace or "", target.name)
        with self._cond:
            if key not in self._objects:
                return 404, _not_found_status(spec, target.name)
            return 200, self._delete_locked(spec, key)

    def _post_namespace(self, body: Any) -> tuple[int, dict[str, Any]]:
        """POST /api/v1/namespaces: 201 with the Namespace, 409 if it exists."""
        name = ((body if isinstance(body, dict) else {}).get("metadata") or {}).get("name")
        if not name:
            return 422, _name_required("Namespace")
        with self._cond:
            if name in self._namespaces:
                return 409, _already_exists("", "namespaces", "namespaces", name)
            self._namespaces.add(name)
            self._rv += 1
            return 201, _namespace_doc(name, self._rv)

    def _post_crd(self, body: Any) -> tuple[int, dict[str, Any]]:
        """POST of a CustomResourceDefinition: serve its storage version from now on."""
        try:
            spec = spec_from_crd(body)
        except (KeyError, TypeError, StopIteration, AttributeError):
            msg = "the CustomResourceDefinition lacks spec.group, spec.names or a storage version"
            return 422, _status(422, "Invalid", msg)
        name = body.get("metadata", {}).get("name")
        if name != spec.full_name:
            msg = (
                f'CustomResourceDefinition.apiextensions.k8s.io "{name}" is invalid: '
                f'metadata.name: Invalid value: "{name}": must be spec.names.plural+"."+spec.group'
            )
            return 422, _status(422, "Invalid", msg)
        with self._cond:
            if spec.plural in self._installed:
                return 409, _already_exists(
                    CRD_GROUP, CRD_PLURAL, f"{CRD_PLURAL}.{CRD_GROUP}", name
                )
            for key in [k for k in self.resources if k[2] == spec.plural]:
                del self.resources[key]
            self.resources[(spec.group, spec.version, spec.plural)] = spec
            self._installed.add(spec.plural)
            self._rv += 1
            doc = established_crd(body, spec, self._rv)
            self._crd_docs[spec.plural] = doc
            return 201, copy.deepcopy(doc)

    def _installed_crd(self, name: str) -> tuple[ResourceSpec, dict[str, Any]] | None:
        """The installed resource a CRD name names, with its CRD (posted, or derived)."""
        with self._cond:
            for spec in self.resources.values():
                if spec.full_name == name and spec.plural in self._installed:
                    doc = self._crd_docs.get(spec.plural) or established_crd(
                        crd_for(spec), spec, self._compacted
                    )
                    return spec, copy.deepcopy(doc)
        return None

    def _delete_crd(self, name: str) -> tuple[int, dict[str, Any]]:
        """DELETE of a CRD: its objects and the resource are gone (at once, not in the
        background as on the real server); 200 with the CRD marked as being deleted."""
        found = self._installed_crd(name)
        if found is None:
            return 404, _crd_not_found(name)
        spec, doc = found
        self.uninstall_crd(spec.plural)
        with self._cond:
            self._crd_docs.pop(spec.plural, None)
        doc["metadata"]["deletionTimestamp"] = _now()
        return 200, doc

    def _create_event(self, namespace: str, body: Any) -> tuple[int, dict[str, Any]]:
        """POST /api/v1/namespaces/<ns>/events: store (in `posted_events`) and echo it."""
        if not isinstance(body, dict):
            return 400, _status(400, "BadRequest", "the body must be a JSON object")
        event = copy.deepcopy(body)
        meta = event.setdefault("metadata", {})
        if meta.get("namespace", namespace) != namespace:
            return 400, _status(400, "BadRequest", NAMESPACE_MISMATCH)
        if not meta.get("name"):
            if not meta.get("generateName"):
                return 422, _name_required("Event")
            meta["name"] = meta["generateName"] + _random_suffix()
        with self._cond:
            self._rv += 1  # every write takes a revision, not only writes of watched resources
            meta.update(
                namespace=namespace,
                uid=str(uuid.uuid4()),
                resourceVersion=str(self._rv),
                creationTimestamp=_now(),
            )
            event["apiVersion"], event["kind"] = "v1", "Event"
            self.posted_events.append(copy.deepcopy(event))
        return 201, event

    def _matches(
        self,
        spec: ResourceSpec,
        ns: str | None,
        e_spec: ResourceSpec,
        obj: Any,
        name: str | None = None,
    ) -> bool:
        if e_spec != spec:
            return False
        meta = obj.get("metadata") if isinstance(obj, dict) else None
        if name is not None and not (isinstance(meta, dict) and meta.get("name") == name):
            return False
        return ns is None or (isinstance(meta, dict) and meta.get("namespace") == ns)

    def _current(self, spec: ResourceSpec, ns: str | None) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(o)
            for k, o in sorted(self._objects.items())
            if k[0] == spec.plural and (ns is None or k[1] == ns)
        ]

    def _named(self, spec: ResourceSpec, ns: str | None, name: str | None) -> list[dict[str, Any]]:
        """`_current`, only the object called `name` when a field selector asks for one."""
        items = self._current(spec, ns)
        return items if name is None else [o for o in items if o["metadata"]["name"] == name]


@dataclass(frozen=True)
class _ResourcePath:
    group: str
    version: str
    namespace: str | None
    plural: str
    name: str | None
    subresource: str | None


@dataclass(frozen=True)
class _Target:
    spec: ResourceSpec
    namespace: str | None
    name: str | None
    subresource: str | None


def _parse_resource_path(path: str) -> _ResourcePath | None:
    """/apis/<g>/<v>[/namespaces/<ns>]/<plural>[/<name>[/<subresource>]] (or /api/v1/... for
    the core group), syntax only."""
    parts = path.strip("/").split("/")
    if "" in parts:
        return None
    if len(parts) >= 3 and parts[0] == "api":  # the core group: /api/v1/...
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    ns: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        ns, rest = rest[1], rest[2:]
    if len(rest) > 3:
        return None
    padded = [*rest, None, None]
    return _ResourcePath(group, version, ns, rest[0], padded[1], padded[2])


SYSTEM_METADATA = frozenset(
    {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    }
)
"""Metadata a client cannot change with a PATCH (the real server keeps or resets them)."""

CORE_V1: list[dict[str, Any]] = [
    {
        "name": "events",
        "singularName": "event",
        "namespaced": True,
        "kind": "Event",
        "verbs": [
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ],
        "shortNames": ["ev"],
    },
    {
        "name": "namespaces",
        "singularName": "namespace",
        "namespaced": False,
        "kind": "Namespace",
        "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
        "shortNames": ["ns"],
    },
    {
        "name": "namespaces/finalize",
        "singularName": "",
        "namespaced": False,
        "kind": "Namespace",
        "verbs": ["update"],
    },
    {
        "name": "namespaces/status",
        "singularName": "",
        "namespaced": False,
        "kind": "Namespace",
        "verbs": ["get", "patch", "update"],
    },
]
"""The core/v1 resources kopf looks for in discovery (its backbone); only events are served
(POST), namespaces are listed in discovery but not served (kopf lists them only when it
watches namespace patterns, not cluster-wide)."""

CRD_VERBS = ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"]
"""The verbs kube-apiserver lists for every custom resource, in its order."""


def _version_priority(version: str) -> tuple[int, int, int, str]:
    """Kubernetes version priority (v2 > v1 > v1beta2 > v1beta1 > v1alpha1 > other, by name)."""
    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if m is None:
        return (3, 0, 0, version)
    stage = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    return (stage, -int(m.group(1)), -int(m.group(3) or 0), "")


def _served_groups(specs: Iterable[ResourceSpec]) -> dict[str, dict[str, list[ResourceSpec]]]:
    """group -> version (by priority, preferred first) -> resources served there (by plural)."""
    out: dict[str, dict[str, list[ResourceSpec]]] = {}
    for spec in sorted(specs, key=lambda s: s.plural):
        out.setdefault(spec.group, {}).setdefault(spec.version, []).append(spec)
    return {
        g: dict(sorted(vs.items(), key=lambda kv: _version_priority(kv[0])))
        for g, vs in out.items()
    }


def _api_group(group: str, versions: Mapping[str, Any]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": entries, "preferredVersion": entries[0]}


def _api_resources(spec: ResourceSpec) -> list[dict[str, Any]]:
    """The APIResourceList entries of one custom resource: itself and its status subresource."""
    entries: list[dict[str, Any]] = [
        {
            "name": spec.plural,
            "singularName": spec.singular_name,
            "namespaced": spec.namespaced,
            "kind": spec.kind,
            "verbs": CRD_VERBS,
        }
    ]
    if spec.status_subresource:
        entries.append(
            {
                "name": f"{spec.plural}/status",
                "singularName": "",
                "namespaced": spec.namespaced,
                "kind": spec.kind,
                "verbs": ["get", "patch", "update"],
            }
        )
    return entries


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge recursively, null deletes, the rest replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_patch(out.get(key), value)
    return out


def _spec_part(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What `generation` counts: everything but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def _status(code: int, reason: str, message: str, **details: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details:
        doc["details"] = details
    doc["code"] = code
    return doc


ADMIN_TOKEN = "test-double-cluster-admin"
"""The bearer token of the double's cluster admin (a test's setup): `forbid` does not apply."""
READER_TOKEN = "test-double-unprivileged-reader"
"""The bearer token of `READER_USER`, whom only the RBAC objects posted to the double authorize
(as a static token file's user is on a real server)."""
READER_USER = "operator-metrics-reader"

INITIAL_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")
"""The namespaces a new cluster has."""

NAMESPACE_MISMATCH = (
    "the namespace of the provided object does not match the namespace sent on the request"
)

CRD_GROUP, CRD_PLURAL = "apiextensions.k8s.io", "customresourcedefinitions"
CRD_RESOURCE = f"{CRD_PLURAL}.{CRD_GROUP}"


def _field_selector_name(selector: str) -> tuple[str | None, str]:
    """(the name a `fieldSelector` asks for or None, "" or the 400 message of a selector the
    double does not serve). Every resource of the real server takes `metadata.name` and
    `metadata.namespace` (`=` or `==`); the double serves `metadata.name` alone."""
    if not selector:
        return None, ""
    field_name, sep, value = selector.partition("==")
    if not sep:
        field_name, sep, value = selector.partition("=")
    if sep and field_name == "metadata.name" and "," not in value:
        return value, ""
    return None, f'"{selector}": field label not supported: {field_name}'


def _random_suffix() -> str:
    """What the server appends to a `generateName`."""
    return "".join(random.choices("bcdfghjklmnpqrstvwxz2456789", k=5))


def _crd_name(path: str) -> str | None:
    """For /apis/apiextensions.k8s.io/v1/customresourcedefinitions[/<name>]: "" or the name;
    None for any other path."""
    parts = path.strip("/").split("/")
    if parts[:4] != ["apis", CRD_GROUP, "v1", CRD_PLURAL] or len(parts) > 5:
        return None
    return parts[4] if len(parts) == 5 else ""


def spec_from_crd(crd: Mapping[str, Any]) -> ResourceSpec:
    """The resource a CRD defines, at its storage version (the double serves one version)."""
    spec = crd["spec"]
    names = spec["names"]
    storage = next(v for v in spec["versions"] if v.get("storage"))
    return ResourceSpec(
        group=spec["group"],
        version=storage["name"],
        plural=names["plural"],
        kind=names["kind"],
        namespaced=spec.get("scope", "Namespaced") == "Namespaced",
        singular=names.get("singular", ""),
        status_subresource="status" in (storage.get("subresources") or {}),
    )


def crd_for(spec: ResourceSpec) -> dict[str, Any]:
    """A minimal CRD for a resource the double was started with (no schema constraints)."""
    version: dict[str, Any] = {
        "name": spec.version,
        "served": True,
        "storage": True,
        "schema": {
            "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        },
    }
    if spec.status_subresource:
        version["subresources"] = {"status": {}}
    return {
        "apiVersion": f"{CRD_GROUP}/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": spec.full_name},
        "spec": {
            "group": spec.group,
            "names": {
                "kind": spec.kind,
                "listKind": f"{spec.kind}List",
                "plural": spec.plural,
                "singular": spec.singular_name,
            },
            "scope": "Namespaced" if spec.namespaced else "Cluster",
            "versions": [version],
        },
    }


def established_crd(crd: Mapping[str, Any], spec: ResourceSpec, rv: int) -> dict[str, Any]:
    """The CRD as the server stores it once its names are accepted and it is Established."""
    doc = copy.deepcopy(dict(crd))
    doc["metadata"] = {
        **doc.get("metadata", {}),
        "uid": str(uuid.uuid4()),
        "resourceVersion": str(rv),
        "generation": 1,
        "creationTimestamp": _now(),
    }
    names = {"listKind": f"{spec.kind}List", "singular": spec.singular_name}
    names |= doc["spec"]["names"]
    conditions = [
        ("NamesAccepted", "NoConflicts", "no conflicts found"),
        ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
    ]
    doc["status"] = {
        "acceptedNames": names,
        "conditions": [
            {
                "type": type_,
                "status": "True",
                "lastTransitionTime": doc["metadata"]["creationTimestamp"],
                "reason": reason,
                "message": message,
            }
            for type_, reason, message in conditions
        ],
        "storedVersions": [spec.version],
    }
    return doc


def _namespace_doc(name: str, rv: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "uid": str(uuid.uuid4()),
            "resourceVersion": str(rv),
            "creationTimestamp": _now(),
            "labels": {"kubernetes.io/metadata.name": name},
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def _already_exists(group: str, kind: str, resource: str, name: str) -> dict[str, Any]:
    return _status(
        409,
        "AlreadyExists",
        f'{resource} "{name}" already exists',
        name=name,
        **({"group": group} if group else {}),
        kind=kind,
    )


def _name_required(kind: str) -> dict[str, Any]:
    msg = f'{kind} "" is invalid: metadata.name: Required value: name or generateName is required'
    return _status(422, "Invalid", msg)


def _crd_not_found(name: str) -> dict[str, Any]:
    return _status(
        404,
        "NotFound",
        f'{CRD_RESOURCE} "{name}" not found',
        name=name,
        group=CRD_GROUP,
        kind=CRD_PLURAL,
    )


def _not_found_status(spec: ResourceSpec, name: str) -> dict[str, Any]:
    return _status(
        404,
        "NotFound",
        f'{spec.full_name} "{name}" not found',
        name=name,
        group=spec.group,
        kind=spec.plural,
    )


def _forbidden_status(user: str, spec: ResourceSpec, ns: str | None, verb: str) -> Any:
    scope = f'in the namespace "{ns}"' if ns else "at the cluster scope"
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": (
            f'{spec.full_name} is forbidden: User "{user}" cannot {verb} resource '
            f'"{spec.plural}" in API group "{spec.group}" {scope}'
        ),
        "reason": "Forbidden",
        "details": {"group": spec.group, "kind": spec.plural},
        "code": 403,
    }


def _too_large_status(requested: int, current: int) -> dict[str, Any]:
    """The watch cache's answer to a resourceVersion it has not reached (a 504 Timeout)."""
    message = f"Timeout: Too large resource version: {requested}, current: {current}"
    cause = {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
    return _status(504, "Timeout", message, causes=[cause], retryAfterSeconds=1)


def _expired_status(message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "Expired",
        "code": 410,
    }


WATCH_LIST_MODES = ("enabled", "disabled", "legacy", "unknown")
"""`KubeApiDouble(watch_list=...)`: the server's streaming-list support (module docstring)."""


def _go_bool(text: str) -> bool:
    """A query boolean as Go's strconv.ParseBool reads it (anything else counts as false)."""
    return text in ("1", "t", "T", "TRUE", "true", "True")


_FORBIDDEN, _NOT_SUPPORTED = "FieldValueForbidden", "FieldValueNotSupported"
_INITIAL_NEEDS_MATCH = "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
_INITIAL_NEEDS_GATE = (
    "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled"
)
_MATCH_NEEDS_INITIAL = (
    "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"
)
_MATCH_ON_WATCH = "resourceVersionMatch is forbidden for watch"
_MATCH_NEEDS_RV = "resourceVersionMatch is forbidden unless resourceVersion is provided"
_INITIAL_ON_LIST = "sendInitialEvents is forbidden for list"


def _list_options_errors(
    query: Mapping[str, str], watching: bool, watch_list: bool
) -> list[tuple[str, str, str]]:
    """(field, cause reason, message) of each rule of apimachinery's `ValidateListOptions`
    (meta/internalversion/validation) this query breaks; `watch_list`: the feature gate."""
    match = query.get("resourceVersionMatch", "")
    initial = "sendInitialEvents" in query
    rules: list[tuple[bool, str, str, str]]
    if watching:
        rules = [
            (initial and match != "NotOlderThan", "resourceVersionMatch", _FORBIDDEN,
             _INITIAL_NEEDS_MATCH),
            (initial and not watch_list, "sendInitialEvents", _FORBIDDEN, _INITIAL_NEEDS_GATE),
            (bool(match) and not initial, "resourceVersionMatch", _FORBIDDEN,
             _MATCH_NEEDS_INITIAL),
            (bool(match) and match != "NotOlderThan", "resourceVersionMatch", _NOT_SUPPORTED,
             f'"{match}": supported values: "NotOlderThan"'),
        ]  # fmt: skip
    else:
        rules = [
            (bool(match) and not query.get("resourceVersion"), "resourceVersionMatch",
             _FORBIDDEN, _MATCH_NEEDS_RV),
            (initial, "sendInitialEvents", _FORBIDDEN, _INITIAL_ON_LIST),
        ]  # fmt: skip
    prefix = {_FORBIDDEN: "Forbidden: ", _NOT_SUPPORTED: "Unsupported value: "}
    return [(f, reason, prefix[reason] + text) for broken, f, reason, text in rules if broken]


def _legacy_list_options_errors(
    query: Mapping[str, str], watching: bool
) -> list[tuple[str, str, str]]:
    """The same for kube-apiserver v1.19-v1.26, which knows resourceVersionMatch (for lists
    only) and not sendInitialEvents."""
    match = query.get("resourceVersionMatch", "")
    rules = [
        (bool(match) and watching, _MATCH_ON_WATCH),
        (bool(match) and not query.get("resourceVersion"), _MATCH_NEEDS_RV),
    ]
    return [
        ("resourceVersionMatch", _FORBIDDEN, f"Forbidden: {t}") for broken, t in rules if broken
    ]


def _invalid_list_options(errors: list[tuple[str, str, str]]) -> dict[str, Any]:
    """The 422 Invalid Status of `errors.NewInvalid(ListOptions.meta.k8s.io, "", errs)`."""
    texts = [f"{field_}: {message}" for field_, _, message in errors]
    joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    causes = [
        {"reason": reason, "message": message, "field": field_}
        for field_, reason, message in errors
    ]
    return _status(
        422,
        "Invalid",
        f'ListOptions.meta.k8s.io "" is invalid: {joined}',
        group="meta.k8s.io",
        kind="ListOptions",
        causes=causes,
    )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    double: KubeApiDouble

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    # -- plumbing -------------------------------------------------------------------------

    def _send_fixed(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _start_chunked(self) -> None:
        self.send_response(200)
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def _chunks(self, data: bytes) -> None:
        size = self.double.chunk_size
        for i in range(0, len(data), size):
            self._chunk(data[i : i + size])

    def _end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _send_event(self, type_: str, obj: Mapping[str, Any]) -> None:
        line = wire_json({"type": type_, "object": obj}) + b"\n"
        if self.double.split_event_lines and len(line) > 2:
            half = len(line) // 2  # one event over two chunks, as the real server does
            self._chunk(line[:half])
            self._chunk(line[half:])
        else:
            self._chunks(line)

    def _send_burst(self, events: list[tuple[str, Mapping[str, Any]]]) -> None:
        """Events sent all at once (the synthetic initial ones): as kube-apiserver's Go HTTP
        server frames them, packed into chunks of its 2048-byte response buffer, flushed at
        the end (transcript 13); one at a time with `split_event_lines=False`."""
        if not self.double.split_event_lines:
            for type_, obj in events:
                self._send_event(type_, obj)
            return
        lines = b"".join(wire_json({"type": t, "object": o}) + b"\n" for t, o in events)
        self._chunks(lines)

    # -- dispatch -------------------------------------------------------------------------

    def _begin(self, method: str) -> RequestRecord:
        """Parse and log the request (reading a JSON body, if any)."""
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        record = RequestRecord(method, url.path, query)
        record.content_type = self.headers.get("Content-Type", "")
        record.authorization = self.headers.get("Authorization", "")
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            raw = self.rfile.read(length)
            try:
                record.body = go_json_loads(raw)
            except ValueError:
                record.body = raw
        admin = record.authorization == f"Bearer {ADMIN_TOKEN}"
        with self.double._cond:
            if not admin:  # the log is of the code under test, not of a test's own setup
                self.double.requests.append(record)
            # A watch logged before `drop_connections()` counts as open then: it is dropped too.
            self._arrival_generation = self.double._drop_generation
        return record

    def _send_json(self, record: RequestRecord, status: int, doc: Any) -> None:
        record.status = status
        self._send_fixed(status, "application/json", wire_json(doc))

    def _not_found(self, record: RequestRecord, routed: bool = True) -> None:
        record.status = 404
        record.routed = routed
        self._send_fixed(404, "text/plain; charset=utf-8", b"404 page not found\n")

    def _not_implemented(self, record: RequestRecord) -> None:
        """A request the real server would serve but the double does not: 405, marked unrouted."""
        record.routed = False
        msg = f"the test double does not implement {record.method} {record.path}"
        self._send_json(record, 405, _status(405, "MethodNotAllowed", msg))

    def do_GET(self) -> None:
        d = self.double
        record = self._begin("GET")
        query = record.query
        watching = query.get("watch") in ("1", "true")
        parsed = _parse_resource_path(record.path)
        if parsed is not None and parsed.name is None:
            record.verb = "watch" if watching else "list"
        elif parsed is not None:
            record.verb = "get"
        target = d._route_any(record.path)
        crd = _crd_name(record.path)
        if crd:
            record.verb = "get"
            found = d._installed_crd(crd)
            if found is None:
                self._send_json(record, 404, _crd_not_found(crd))
            else:
                self._send_json(record, 200, found[1])
            return
        if target is None:
            doc = d._discovery(record.path)
            if doc is not None:
                record.verb = "discovery"
                self._send_json(record, 200, doc)
            elif record.path.startswith("/api/"):
                self._not_implemented(record)  # core resources: events POST, pods if served
            else:  # not served (any more), or not a path the double knows at all
                parts = record.path.strip("/").split("/")
                known = parsed is not None or (parts[0] == "apis" and len(parts) <= 3)
                self._not_found(record, routed=known)
            return
        spec, ns = target.spec, target.namespace
        verb = "get" if target.name else "watch" if watching else "list"
        if self._refuse_forbidden(record, target, verb):
            return
        if target.name is None and self._fail_injected(record):
            return
        if target.name is None:
            # what a server does not know, it ignores
            ignored = {"unknown": ("sendInitialEvents", "resourceVersionMatch"),
                       "legacy": ("sendInitialEvents",)}.get(d.watch_list, ())  # fmt: skip
            query = {k: v for k, v in query.items() if k not in ignored}
            if d.watch_list == "legacy":
                causes = _legacy_list_options_errors(query, watching)
            else:
                causes = _list_options_errors(query, watching, d.watch_list == "enabled")
            if causes:
                self._send_json(record, 422, _invalid_list_options(causes))
                return
        if target.name is not None:
            with d._cond:
                obj = d._objects.get((spec.plural, ns or "", target.name))
                obj = copy.deepcopy(obj)
            if obj is None:
                self._send_json(record, 404, _not_found_status(spec, target.name))
            else:
                self._send_json(record, 200, obj)
            return
        name, unsupported = _field_selector_name(query.get("fieldSelector", ""))
        if unsupported:
            self._send_json(record, 400, _status(400, "BadRequest", unsupported))
        elif watching:
            record.status = 200
            self._watch(spec, ns, query, name)
        else:
            self._list(spec, ns, query, record, name)

    def do_PATCH(self) -> None:
        d = self.double
        record = self._begin("PATCH")
        target = d._route_any(record.path)
        if target is None or target.name is None:
            if target is None and _parse_resource_path(record.path) is not None:
                self._not_found(record)
            else:
                self._not_implemented(record)
            return
        record.verb = "patch"
        if self._refuse_forbidden(record, target, "patch"):
            return
        media = record.content_type.split(";")[0].strip()
        if media != "application/merge-patch+json":
            # the real server also takes json-patch (and apply-patch); the double does not
            msg = (
                "the body of the request was in an unknown format - accepted media types "
                "include: application/merge-patch+json"
            )
            self._send_json(record, 415, _status(415, "UnsupportedMediaType", msg))
            return
        status, doc = d._patch(target, record.body)
        self._send_json(record, status, doc)

    def do_POST(self) -> None:
        d = self.double
        record = self._begin("POST")
        rbac = parse_rbac_path(record.path)
        if rbac is not None and rbac[2] is None:
            record.verb = "create"
            self._send_json(record, *d.rbac.put(rbac[0], rbac[1], record.body))
            return
        parts = record.path.strip("/").split("/")
        target = d._route_any(record.path)
        if len(parts) == 5 and parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "events":
            answer = d._create_event(parts[3], record.body)
        elif parts == ["api", "v1", "namespaces"]:
            answer = d._post_namespace(record.body)
        elif _crd_name(record.path) == "":
            answer = d._post_crd(record.body)
        elif target is not None and target.name is None:
            if self._refuse_forbidden(record, target, "create"):
                return
            manager = self.headers.get("User-Agent", "").split("/")[0]
            answer = d._post_object(target, record.body, manager)
        elif target is None and _parse_resource_path(record.path) is not None:
            self._not_found(record)
            return
        else:
            self._not_implemented(record)
            return
        record.verb = "create"
        self._send_json(record, *answer)

    def do_PUT(self) -> None:
        self._not_implemented(self._begin("PUT"))

    def do_DELETE(self) -> None:
        d = self.double
        record = self._begin("DELETE")
        rbac = parse_rbac_path(record.path)
        if rbac is not None and rbac[2] is not None:
            record.verb = "delete"
            self._send_json(record, *d.rbac.remove(rbac[0], rbac[1], rbac[2]))
            return
        crd = _crd_name(record.path)
        target = d._route_any(record.path)
        if crd:
            answer = d._delete_crd(crd)
        elif target is not None and target.name is not None and target.subresource is None:
            if self._refuse_forbidden(record, target, "delete"):
                return
            answer = d._delete_object(target)
        elif target is None and _parse_resource_path(record.path) is not None and crd is None:
            self._not_found(record)
            return
        else:
            self._not_implemented(record)
            return
        record.verb = "delete"
        self._send_json(record, *answer)

    def _fail_injected(self, record: RequestRecord) -> bool:
        """Answer with the next status of `fail_next`, if any (not to the admin's setup)."""
        d = self.double
        admin = self.headers.get("Authorization") == f"Bearer {ADMIN_TOKEN}"
        with d._cond:
            status = d._failures.pop(0) if d._failures and not admin else None
        if status is None:
            return False
        reason = {503: "ServiceUnavailable", 504: "Timeout"}.get(status, "InternalError")
        self._send_json(record, status, _status(status, reason, "injected by fail_next"))
        return True

    def _refuse_forbidden(self, record: RequestRecord, target: _Target, verb: str) -> bool:
        """Answer 403 (and say so) when the target's namespace is forbidden, unless the
        request carries `ADMIN_TOKEN` (a cluster admin, as a test's own setup is); for
        `READER_TOKEN`, when the posted RBAC objects grant the verb there to no binding (for
        the object the request names: its path, or a list/watch's `metadata.name` selector)."""
        d = self.double
        authorization = self.headers.get("Authorization")
        user = d.user
        if authorization == f"Bearer {READER_TOKEN}":
            user = READER_USER
            spec = target.spec
            ns = target.namespace or ""
            name = target.name
            if name is None and verb in ("list", "watch"):
                name = _field_selector_name(record.query.get("fieldSelector", ""))[0]
            forbidden = not d.rbac.allows(user, verb, spec.group, spec.plural, ns, name)
        else:
            with d._cond:
                admin = authorization == f"Bearer {ADMIN_TOKEN}"
                forbidden = target.namespace in d._forbidden and not admin
        if forbidden:
            doc = _forbidden_status(user, target.spec, target.namespace, verb)
            self._send_json(record, 403, doc)
        return forbidden

    def _list(
        self,
        spec: ResourceSpec,
        ns: str | None,
        query: dict[str, str],
        record: RequestRecord,
        name: str | None = None,
    ) -> None:
        d = self.double
        limit = int(query.get("limit") or 0)
        token = query.get("continue", "")
        scope_key = f"{spec.plural}/{ns or ''}/{name or ''}"
        with d._cond:
            if token:
                try:
                    state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
                    snap_rv, start = int(state["rv"]), int(state["start"])
                except (ValueError, KeyError):
                    record.status = 400
                    self._send_fixed(400, "application/json", b'{"kind":"Status","code":400}')
                    return
                items = d._snapshots.get(snap_rv, {}).get(scope_key)
                forced = d._expire_continue > 0
                if forced:
                    d._expire_continue -= 1
                if forced or snap_rv < d._compacted or items is None:
                    record.status = 410
                    msg = (
                        "The provided continue parameter is too old to display a consistent "
                        "list result. You can start a new list without the continue parameter, "
                        "or use the continue token in this response to retrieve the remainder "
                        "of the results. Continuing with the provided token results in an "
                        "inconsistent list - objects that were created, modified, or deleted "
                        "between the time the first chunk was returned and now may show up in "
                        "the list."
                    )
                    body = json.dumps(_expired_status(msg)).encode()
                    self._send_fixed(410, "application/json", body)
                    return
            else:
                snap_rv, start = d._rv, 0
                items = d._named(spec, ns, name)
                if limit:
                    d._snapshots.setdefault(snap_rv, {})[scope_key] = items
        end = start + limit if limit else len(items)
        meta: dict[str, Any] = {"resourceVersion": str(snap_rv)}
        if end < len(items):
            raw = json.dumps({"v": "meta.k8s.io/v1", "rv": snap_rv, "start": end}).encode()
            meta["continue"] = base64.urlsafe_b64encode(raw).decode().rstrip("=")
            meta["remainingItemCount"] = len(items) - end
        else:
            meta["continue"] = ""
        doc = {
            "apiVersion": spec.api_version,
            "items": items[start:end],
            "kind": f"{spec.kind}List",
            "metadata": meta,
        }
        record.status = 200
        self._start_chunked()
        self._chunks(wire_json(doc))
        self._end_chunked()

    def _watch(
        self, spec: ResourceSpec, ns: str | None, query: dict[str, str], name: str | None = None
    ) -> None:
        d = self.double
        bookmarks = query.get("allowWatchBookmarks") == "true"
        timeout = float(query.get("timeoutSeconds") or 1800)
        deadline = time.monotonic() + timeout
        rv_param = query.get("resourceVersion", "")
        send_initial = query.get("sendInitialEvents")  # validated: only with NotOlderThan
        initial = send_initial is not None and _go_bool(send_initial)
        self._start_chunked()
        try:
            with d._cond:
                generation = self._arrival_generation
                snapshot = d._named(spec, ns, name)
                current_rv = d._rv
                compacted = d._compacted
            # NotOlderThan a resourceVersion: what the server has is newer unless that
            # resourceVersion is in its future, which the watch cache gives up waiting for
            if (
                send_initial is not None
                and rv_param not in ("", "0")
                and int(rv_param) > current_rv
            ):
                self._send_event("ERROR", _too_large_status(int(rv_param), current_rv))
                self._end_chunked()
                return
            cut = None
            if initial:
                with d._cond:
                    cut = d._cut_initial.pop(0) if d._cut_initial else None
            if initial or (send_initial is None and rv_param in ("", "0")):
                burst = [("ADDED", obj) for obj in snapshot]
                last = current_rv
                if initial and bookmarks:
                    burst.append(("BOOKMARK", self._bookmark(spec, last, initial_end=True)))
                if cut is not None:
                    self._send_burst(burst[: cut[0]])
                    if cut[1]:
                        self._end_chunked()
                    else:
                        self._abort()
                    return
                self._send_burst(burst)
            elif rv_param in ("", "0"):  # sendInitialEvents=false: only changes from now
                last = current_rv
            else:
                last = int(rv_param)
                if last < compacted:
                    status = _expired_status(f"too old resource version: {last} ({compacted})")
                    self._send_event("ERROR", status)
                    self._end_chunked()
                    return
                if last > current_rv and d.future_watch == "too_large":
                    self._send_event("ERROR", _too_large_status(last, current_rv))
                    self._end_chunked()
                    return
            self._stream(spec, ns, last, generation, deadline, bookmarks, name)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _bookmark(self, spec: ResourceSpec, rv: int, initial_end: bool = False) -> dict[str, Any]:
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if initial_end:
            meta = {"annotations": {INITIAL_EVENTS_END: "true"}, **meta}
        return {"apiVersion": spec.api_version, "kind": spec.kind, "metadata": meta}

    def _stream(
        self,
        spec: ResourceSpec,
        ns: str | None,
        last: int,
        generation: int,
        deadline: float,
        bookmarks: bool,
        name: str | None = None,
    ) -> None:
        d = self.double
        start = last  # no bookmark below it: the watch cache sends none
        next_bookmark = time.monotonic() + d.bookmark_interval
        while True:
            with d._cond:
                now = time.monotonic()
                wake = min(deadline, next_bookmark if bookmarks else deadline)
                if d._stall_until > now:
                    wake = min(deadline, d._stall_until)
                elif d._drop_generation == generation and (
                    not d._history or d._history[-1].rv <= last
                ):
                    d._cond.wait(max(0.0, wake - now))
                if d._drop_generation != generation:
                    self._abort()
                    return
                now = time.monotonic()
                stalled = d._stall_until > now
                pending: list[_Event] = []
                global_rv = d._rv
                if not stalled:
                    idx = bisect.bisect_right([e.rv for e in d._history], last)
                    pending = d._history[idx:]
            if stalled:
                with d._cond:
                    if d._drop_generation == generation:
                        d._cond.wait(max(0.0, min(deadline, d._stall_until) - time.monotonic()))
                    if d._drop_generation != generation:
                        self._abort()
                        return
                if time.monotonic() >= deadline:
                    self._end_chunked()
                    return
                next_bookmark = time.monotonic() + d.bookmark_interval
                continue
            for event in pending:
                if d._matches(spec, ns, event.spec, event.obj, name):
                    self._send_event(event.type, event.obj)
                last = event.rv
            now = time.monotonic()
            if now >= deadline:
                if bookmarks and global_rv >= start:
                    self._send_event("BOOKMARK", self._bookmark(spec, global_rv))
                self._end_chunked()
                return
            if bookmarks and now >= next_bookmark and global_rv >= start:
                self._send_event("BOOKMARK", self._bookmark(spec, global_rv))
                last = max(last, global_rv)
                next_bookmark = now + d.bookmark_interval

    def _abort(self) -> None:
        """Close the socket mid-body: the client sees a truncated chunked stream."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def iter_watch_lines(body: bytes) -> Iterator[dict[str, Any]]:
    """Decode a watch body (already de-chunked) into events; for tests of the double."""
    for line in body.split(b"\n"):
        if line.strip():
            yield json.loads(line)
