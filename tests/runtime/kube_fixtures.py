"""Kubernetes API backends for the runtime tests: the test double, or a real control plane.

By default tests run against `tests/kubeapi_double.py`. When `KUBEBUILDER_ASSETS` names a
directory holding `etcd` and `kube-apiserver` (the envtest convention), the same tests run
against a real control plane started here (etcd + kube-apiserver on 127.0.0.1, RBAC on, a
static token file with an admin, the unprivileged `READER_USER` and a credential plugin's
`EXEC_TOKEN_PREFIX` tokens). Either way a test controls the server through one `ApiBackend`,
which makes the same official-client calls to both (create namespaces and objects, patch,
delete, apply and remove the CRDs of `CRD_FILES`, `grant`/`revoke` the reader list/watch with
a Role and RoleBinding) and has the same faults for both: `compact` (etcd's compaction: a real
410) and `new_history` (the control plane again on an empty etcd behind the same address), so
the real-server code path runs in every run against the double too. `double` is None against
the real server. Network faults come from `tcp_proxy.py`, the requests a client sent from
`request_log.py`, on both backends.

Fixtures: `kube` (the control plane has its watch cache off, so that etcd's compaction reaches
watches), `kube_watch_cache` (a second control plane with it on, as clusters run: only it
sends bookmarks) and `double_only`, a double even under `KUBEBUILDER_ASSETS`, for the few
tests of what no real server can serve; each of those says why.

`kube_without_watch_list` is the same for a server that refuses streaming lists: the double
with `watch_list="disabled"`, or a third control plane started with
`--feature-gates=WatchList=false` (beta and on by default in v1.34 to v1.36, off in v1.33).
Streaming lists need the watch cache (kube-apiserver answers them with 422 when it reads etcd
directly), so a test that must see one streams from `kube_watch_cache`.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ for kubeapi_double

import yaml
from envtest_assets import real_assets
from kubeapi_double import (
    MEMCACHED,
    READER_TOKEN,
    READER_USER,
    KubeApiDouble,
    ResourceSpec,
    spec_from_crd,
)

DATA = Path(__file__).resolve().parents[1] / "data"
CRD_FILES = {  # the real memcached CRD of the corpus, and two made for these tests
    MEMCACHED.plural: DATA / "crds" / "operator-sdk-cache.example.com_memcacheds.yaml",
    "widgets": DATA / "test-crds" / "test.example.com_widgets.yaml",
    "clusterthings": DATA / "test-crds" / "test.example.com_clusterthings.yaml",
}


def _crd(plural: str) -> dict[str, Any]:
    return dict(yaml.safe_load(CRD_FILES[plural].read_text()))


WIDGETS = spec_from_crd(_crd("widgets"))
CLUSTER_THINGS = spec_from_crd(_crd("clusterthings"))
ALL_RESOURCES = (MEMCACHED, WIDGETS, CLUSTER_THINGS)


def make_obj(
    spec: ResourceSpec, name: str, namespace: str | None = "default", **fields: Any
) -> dict[str, Any]:
    """A new object of `spec` (fields become `spec`; size 1 fits the memcached schema)."""
    meta: dict[str, Any] = {"name": name}
    if spec.namespaced:
        meta["namespace"] = namespace or "default"
    return {
        "apiVersion": spec.api_version,
        "kind": spec.kind,
        "metadata": meta,
        "spec": fields or {"size": 1},
    }


READER_ROLE = "operator-metrics-test-reader"
"""The name of the Role/ClusterRole and binding of `ApiBackend.grant`."""

EXEC_TOKEN_PREFIX = "exec-token-"
EXEC_TOKENS = 100
"""A credential plugin's tokens, `exec-token-1` to `exec-token-100`: a real control plane's
token file lets each in as a cluster admin (the double lets any token in)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ControlPlane:
    """etcd + kube-apiserver from `KUBEBUILDER_ASSETS`, as envtest starts them."""

    def __init__(
        self, assets: Path, watch_cache: bool = False, extra_args: tuple[str, ...] = ()
    ) -> None:
        self.assets = assets
        self.watch_cache = watch_cache
        self.extra_args = extra_args
        self.dir = Path(tempfile.mkdtemp(prefix="operator-metrics-envtest-"))
        self.token = uuid.uuid4().hex
        self.reader_token = uuid.uuid4().hex
        self.procs: list[subprocess.Popen[bytes]] = []
        self.host = ""
        self._ports = (_free_port(), _free_port(), _free_port())  # etcd, its peers, the API

    def start(self) -> None:
        """Start etcd and kube-apiserver; on the ports, certificates and tokens of the first
        start when started again (the same address)."""
        etcd_port, peer_port, api_port = self._ports
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        self.etcd_url = etcd_url
        self._spawn(
            "etcd",
            [
                str(self.assets / "etcd"),
                f"--data-dir={self.dir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                "--unsafe-no-fsync=true",
            ],
        )
        key = self.dir / "sa.key"
        if not key.exists():
            subprocess.run(
                ["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True
            )
        tokens = self.dir / "tokens.csv"
        exec_tokens = "".join(
            f'{EXEC_TOKEN_PREFIX}{n},exec-user,exec-uid,"system:masters"\n'
            for n in range(1, EXEC_TOKENS + 1)
        )
        tokens.write_text(  # the admin, and a user whom only the tests' RBAC objects authorize
            f'{self.token},admin,admin-uid,"system:masters"\n'
            f"{self.reader_token},{READER_USER},reader-uid\n" + exec_tokens
        )
        cert_dir = self.dir / "certs"  # kube-apiserver's self-signed serving cert, kept
        cert_dir.mkdir(exist_ok=True)
        self._spawn(
            "kube-apiserver",
            [
                str(self.assets / "kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={api_port}",
                f"--cert-dir={cert_dir}",
                f"--token-auth-file={tokens}",
                "--authorization-mode=RBAC",
                f"--service-account-key-file={key}",
                f"--service-account-signing-key-file={key}",
                "--service-account-issuer=https://kubernetes.default.svc",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--allow-privileged=true",
                "--disable-admission-plugins=ServiceAccount",
                # off: watches read etcd, so its compaction gives a real 410; on (the default
                # of real clusters): watches are served by the watch cache, with bookmarks
                f"--watch-cache={'true' if self.watch_cache else 'false'}",
                *self.extra_args,
            ],
        )
        self.host = f"https://127.0.0.1:{api_port}"
        self._wait_ready()

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.dir / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the process
        self.procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT))

    def api_client(self, token: str | None = None) -> Any:
        from kubernetes import client

        cfg = client.Configuration()
        cfg.host = self.host
        cfg.verify_ssl = False  # self-signed serving cert generated in --cert-dir
        cfg.api_key = {"BearerToken": token or self.token}
        cfg.api_key_prefix = {"BearerToken": "Bearer"}
        return client.ApiClient(cfg)

    def _wait_ready(self, timeout: float = 60.0) -> None:
        import urllib3

        http = urllib3.PoolManager(cert_reqs="CERT_NONE")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"control plane process exited; logs in {self.dir}")
            with contextlib.suppress(Exception):
                r = http.request(
                    "GET",
                    f"{self.host}/readyz",
                    headers={"Authorization": f"Bearer {self.token}"},
                    timeout=2.0,
                )
                if r.status == 200:
                    return
            time.sleep(0.25)
        raise RuntimeError(f"kube-apiserver not ready in {timeout}s; logs in {self.dir}")

    def compact(self) -> None:
        """Compact etcd's history up to its current revision (its v3 JSON gateway): a watch
        from an older resourceVersion then gets 410 Gone (the watch cache is off)."""
        import json

        import urllib3

        http = urllib3.PoolManager()
        head = http.request(
            "POST", f"{self.etcd_url}/v3/kv/range", body=json.dumps({"key": "AA=="})
        )  # any key: the answer's header carries the current revision
        revision = int(json.loads(head.data)["header"]["revision"])
        done = http.request(
            "POST",
            f"{self.etcd_url}/v3/kv/compaction",
            body=json.dumps({"revision": str(revision), "physical": True}),
        )
        if done.status != 200:
            raise RuntimeError(f"etcd compaction failed: {done.status} {done.data!r}")

    def _etcd_put(self, key: bytes, value: bytes) -> None:
        import base64
        import json

        import urllib3

        body = {"key": base64.b64encode(key).decode(), "value": base64.b64encode(value).decode()}
        urllib3.PoolManager().request("POST", f"{self.etcd_url}/v3/kv/put", body=json.dumps(body))

    def new_history(self) -> None:
        """Start again on an empty etcd behind the same address (ports, serving certificate,
        tokens): another history whose resourceVersions restart far below the old ones, as
        after etcd is restored from an old backup or a cluster is rebuilt; then install the
        test CRDs again. The old history first gets 300 more revisions (one key outside
        kube-apiserver's prefix) so that it is sure to be ahead of the new one."""
        for n in range(300):
            self._etcd_put(b"operator-metrics-test/history", str(n).encode())
        self._stop_processes()
        shutil.rmtree(self.dir / "etcd")
        self.start()
        install_test_crds(self.backend())

    def backend(self) -> ApiBackend:
        return ApiBackend(
            self.api_client(),
            self.api_client,
            lambda: self.api_client(self.reader_token),
            self.host,
            self.token,
            compact=self.compact,
            new_history=self.new_history,
        )

    def _stop_processes(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.procs = []

    def stop(self) -> None:
        self._stop_processes()
        shutil.rmtree(self.dir, ignore_errors=True)


class ApiBackend:
    """A test's control of the API server, through the official client: the same calls drive
    the test double and a real control plane (`double` is None for the latter)."""

    def __init__(
        self,
        admin_client: Any,
        client_factory: Callable[[], Any],
        reader_factory: Callable[[], Any],
        host: str,
        token: str | None,
        double: KubeApiDouble | None = None,
        compact: Callable[[], None] | None = None,
        new_history: Callable[[], None] | None = None,
    ) -> None:
        from kubernetes import client

        self.double = double
        self.host = host
        self.token = token  # None: the double needs no credentials
        self._client_factory = client_factory
        self._reader_factory = reader_factory
        self._compact = compact or (double.compact if double else None)
        self._new_history = new_history
        self._first_backup: Any = None  # the double's, once set up: what `new_history` restores
        self.custom = client.CustomObjectsApi(admin_client)
        self.rbac = client.RbacAuthorizationV1Api(admin_client)
        self.core = client.CoreV1Api(admin_client)
        self.ext = client.ApiextensionsV1Api(admin_client)
        self._namespaces: set[str] = set()
        self._grants: set[str | None] = set()

    def api_client(self) -> Any:
        """A new `ApiClient` for the code under test (not the setup's cluster admin: the
        double's `forbid` applies to it)."""
        return self._client_factory()

    def compact(self) -> None:
        """Compact the server's history: a watch from any resourceVersion seen so far gets
        410 Gone (etcd's compaction on a real server, the double's own otherwise)."""
        assert self._compact is not None, "a backend compacts on the double or a control plane"
        self._compact()

    def new_history(self) -> None:
        """Give the server another history behind the same address, with the test CRDs and no
        objects: resourceVersions go back (a real control plane starts again on an empty
        etcd; the double goes back to its first backup, open watches cut, as if it had)."""
        if self.double is not None:
            assert self._first_backup is not None
            self.double.restore(self._first_backup)
        else:
            assert self._new_history is not None, "a backend resets the double or a plane"
            self._new_history()
        self._namespaces.clear()
        self._grants.clear()

    def reader_client(self) -> Any:
        """A new `ApiClient` authenticated as `READER_USER`, whom only `grant` authorizes
        (RBAC decides on both backends)."""
        return self._reader_factory()

    def grant(self, spec: ResourceSpec, namespace: str | None) -> None:
        """Let `READER_USER` list/watch `spec` in `namespace` (None: cluster-wide), with a
        Role and RoleBinding (ClusterRole and ClusterRoleBinding) made through the API."""
        role = {
            "metadata": {"name": READER_ROLE},
            "rules": [{"apiGroups": [spec.group], "resources": [spec.plural],
                       "verbs": ["get", "list", "watch"]}],
        }  # fmt: skip
        kind = "Role" if namespace else "ClusterRole"
        binding = {
            "metadata": {"name": READER_ROLE},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind,
                        "name": READER_ROLE},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                          "name": READER_USER}],
        }  # fmt: skip
        if namespace:
            self._ensure_namespace(namespace)
            self.rbac.create_namespaced_role(namespace, role)
            self.rbac.create_namespaced_role_binding(namespace, binding)
        else:
            self.rbac.create_cluster_role(role)
            self.rbac.create_cluster_role_binding(binding)
        self._grants.add(namespace)

    def revoke(self, namespace: str | None) -> None:
        """Undo `grant(..., namespace)` (nothing if there is none)."""
        from kubernetes.client.exceptions import ApiException

        self._grants.discard(namespace)
        try:
            if namespace:
                self.rbac.delete_namespaced_role_binding(READER_ROLE, namespace)
                self.rbac.delete_namespaced_role(READER_ROLE, namespace)
            else:
                self.rbac.delete_cluster_role_binding(READER_ROLE)
                self.rbac.delete_cluster_role(READER_ROLE)
        except ApiException as exc:
            if exc.status != 404:
                raise

    @staticmethod
    def _spec(obj: Mapping[str, Any]) -> ResourceSpec:
        for spec in ALL_RESOURCES:
            if (spec.api_version, spec.kind) == (obj["apiVersion"], obj["kind"]):
                return spec
        raise KeyError(obj["kind"])

    def _ensure_namespace(self, ns: str) -> None:
        from kubernetes.client.exceptions import ApiException

        if ns in self._namespaces:
            return
        try:
            self.core.create_namespace({"metadata": {"name": ns}})
        except ApiException as exc:
            if exc.status != 409:
                raise
        self._namespaces.add(ns)

    def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        spec = self._spec(obj)
        if spec.namespaced:
            ns = obj["metadata"]["namespace"]
            self._ensure_namespace(ns)
            return dict(
                self.custom.create_namespaced_custom_object(
                    spec.group, spec.version, ns, spec.plural, dict(obj)
                )
            )
        return dict(
            self.custom.create_cluster_custom_object(
                spec.group, spec.version, spec.plural, dict(obj)
            )
        )

    def update(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        spec = self._spec(obj)
        body = {"spec": obj.get("spec")}
        name = obj["metadata"]["name"]
        if spec.namespaced:
            ns = obj["metadata"]["namespace"]
            return dict(
                self.custom.patch_namespaced_custom_object(
                    spec.group, spec.version, ns, spec.plural, name, body
                )
            )
        return dict(
            self.custom.patch_cluster_custom_object(
                spec.group, spec.version, spec.plural, name, body
            )
        )

    def update_status(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        spec = self._spec(obj)
        body = {"status": obj.get("status")}
        name = obj["metadata"]["name"]
        if spec.namespaced:
            ns = obj["metadata"]["namespace"]
            return dict(
                self.custom.patch_namespaced_custom_object_status(
                    spec.group, spec.version, ns, spec.plural, name, body
                )
            )
        return dict(
            self.custom.patch_cluster_custom_object_status(
                spec.group, spec.version, spec.plural, name, body
            )
        )

    def delete(self, obj: Mapping[str, Any]) -> None:
        spec = self._spec(obj)
        name = obj["metadata"]["name"]
        if spec.namespaced:
            self.custom.delete_namespaced_custom_object(
                spec.group, spec.version, obj["metadata"]["namespace"], spec.plural, name
            )
        else:
            self.custom.delete_cluster_custom_object(spec.group, spec.version, spec.plural, name)

    def install_crd(self, spec: ResourceSpec, timeout: float = 30.0) -> None:
        """Apply the CRD of `spec` and wait until its resource is served."""
        from kubernetes.client.exceptions import ApiException

        try:
            self.ext.create_custom_resource_definition(_crd(spec.plural))
        except ApiException as exc:
            if exc.status != 409:
                raise
        _wait_until(lambda: self._established(spec) and self._served(spec), timeout, spec)

    def uninstall_crd(self, spec: ResourceSpec, timeout: float = 60.0) -> None:
        """Delete the CRD of `spec` and wait until it and its resource are gone."""
        from kubernetes.client.exceptions import ApiException

        try:
            self.ext.delete_custom_resource_definition(spec.full_name)
        except ApiException as exc:
            if exc.status != 404:
                raise
        _wait_until(lambda: self._crd(spec) is None and not self._served(spec), timeout, spec)

    def _crd(self, spec: ResourceSpec) -> Any:
        from kubernetes.client.exceptions import ApiException

        try:
            return self.ext.read_custom_resource_definition(spec.full_name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def _established(self, spec: ResourceSpec) -> bool:
        crd = self._crd(spec)
        conditions = (crd and crd.status and crd.status.conditions) or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    def _served(self, spec: ResourceSpec) -> bool:
        """Whether the resource is served, asked with a GET of an object that does not exist:
        a JSON NotFound once it is, the plain-text "404 page not found" before (Established
        can precede the handler by a moment). A GET, so the request logs show no extra LIST."""
        from kubernetes.client.exceptions import ApiException

        name = "operator-metrics-probe"
        try:
            if spec.namespaced:
                self.custom.get_namespaced_custom_object(
                    spec.group, spec.version, "default", spec.plural, name
                )
            else:
                self.custom.get_cluster_custom_object(spec.group, spec.version, spec.plural, name)
        except ApiException as exc:
            if exc.status != 404:
                raise
            return "application/json" in (exc.headers or {}).get("Content-Type", "")
        return True

    def _list(self, spec: ResourceSpec) -> list[dict[str, Any]]:
        got = self.custom.list_cluster_custom_object(spec.group, spec.version, spec.plural)
        return list(got.get("items", []))

    def clean(self) -> None:
        """Delete every test object and grant so each test starts from an empty cluster."""
        for namespace in list(self._grants):
            self.revoke(namespace)
        for spec in (MEMCACHED, CLUSTER_THINGS):
            for item in self._list(spec):
                with contextlib.suppress(Exception):
                    self.delete(item)
        with contextlib.suppress(Exception):
            self.uninstall_crd(WIDGETS)


def _wait_until(done: Callable[[], bool], timeout: float, spec: ResourceSpec) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{spec.full_name}: not as expected after {timeout}s")
        time.sleep(0.1)


def install_test_crds(backend: ApiBackend) -> None:
    """The CRDs every runtime test starts with (widgets are installed by the tests needing it)."""
    backend.install_crd(MEMCACHED)
    backend.install_crd(CLUSTER_THINGS)


def _start_plane(
    watch_cache: bool, extra_args: tuple[str, ...] = ()
) -> Iterator[ControlPlane | None]:
    assets = real_assets()
    if assets is None:
        yield None
        return
    plane = ControlPlane(assets, watch_cache=watch_cache, extra_args=extra_args)
    plane.start()
    try:
        install_test_crds(plane.backend())
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane | None]:
    """A real control plane for the session when `KUBEBUILDER_ASSETS` is set, else None. Its
    watch cache is off, so that etcd's compaction gives watches a real 410."""
    yield from _start_plane(watch_cache=False)


@pytest.fixture(scope="session")
def cached_control_plane() -> Iterator[ControlPlane | None]:
    """A second real control plane (started only for the tests that ask for it) with the
    watch cache on, as real clusters run: only the watch cache sends BOOKMARK events and
    serves streaming lists."""
    yield from _start_plane(watch_cache=True)


@pytest.fixture(scope="session")
def control_plane_without_watch_list() -> Iterator[ControlPlane | None]:
    """A third real control plane whose API server refuses streaming lists (the WatchList
    feature gate off, the watch cache on as in clusters), when `KUBEBUILDER_ASSETS` is set;
    else None."""
    yield from _start_plane(watch_cache=True, extra_args=("--feature-gates=WatchList=false",))


@contextlib.contextmanager
def double_backend(watch_list: str = "enabled") -> Iterator[ApiBackend]:
    """A fresh double, set up through the API as a control plane is (`watch_list`: see the
    double's streaming-list switch)."""
    with KubeApiDouble(
        ALL_RESOURCES, installed=False, bookmark_interval=0.3, watch_list=watch_list
    ) as double:
        backend = ApiBackend(
            double.admin_api_client(),
            double.api_client,
            lambda: double.api_client(READER_TOKEN),
            double.url,
            None,
            double,
        )
        install_test_crds(backend)  # as the admin: not in the double's request log
        backend._first_backup = double.backup()
        yield backend


def _backend_of(plane: ControlPlane | None, watch_list: str = "enabled") -> Iterator[ApiBackend]:
    if plane is None:
        with double_backend(watch_list) as backend:
            yield backend
        return
    backend = plane.backend()
    try:
        yield backend
    finally:
        backend.clean()


@pytest.fixture
def kube(control_plane: ControlPlane | None) -> Iterator[ApiBackend]:
    """The API backend of one test: a fresh double, or the shared real control plane; set up
    through the API in both cases."""
    yield from _backend_of(control_plane)


@pytest.fixture
def kube_watch_cache(cached_control_plane: ControlPlane | None) -> Iterator[ApiBackend]:
    """Like `kube`, on the real control plane with the watch cache (bookmarks) when there is
    one."""
    yield from _backend_of(cached_control_plane)


@pytest.fixture
def double_only() -> Iterator[ApiBackend]:
    """A fresh double even when `KUBEBUILDER_ASSETS` is set, for the few tests of what only the
    double can serve; each says why no real server can (see its docstring)."""
    with double_backend() as backend:
        yield backend


@pytest.fixture
def kube_without_watch_list(
    control_plane_without_watch_list: ControlPlane | None,
) -> Iterator[ApiBackend]:
    """As `kube`, for an API server with the WatchList feature off (it answers a streaming
    list with 422 Invalid)."""
    yield from _backend_of(control_plane_without_watch_list, "disabled")
