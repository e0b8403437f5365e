"""Kubernetes API backends for the runtime tests: the test double, or a real control plane.

By default tests run against `tests/kubeapi_double.py`. When `KUBEBUILDER_ASSETS` names a
directory holding `etcd` and `kube-apiserver` (the envtest convention), the same tests run
against a real control plane started here (etcd + kube-apiserver on 127.0.0.1, RBAC on, a
static token file with an admin and the unprivileged `READER_USER`). Either way a test
controls the server through one `ApiBackend`, which makes the same official-client calls to
both (create namespaces and objects, patch, delete, apply and remove the CRDs of `CRD_FILES`,
`grant`/`revoke` the reader list/watch with a Role and RoleBinding), so the real-server code
path runs in every run against the double too. `double` is None against the real server, and
tests that need double-only controls (compact, request log, ...) skip there.

`kube_without_watch_list` is the same for a server that refuses streaming lists: the double
with `watch_list="disabled"`, or a second control plane started with
`--feature-gates=WatchList=false` (beta and on by default in v1.34 to v1.36, off in v1.33).
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ControlPlane:
    """etcd + kube-apiserver from `KUBEBUILDER_ASSETS`, as envtest starts them."""

    def __init__(self, assets: Path, extra_args: tuple[str, ...] = ()) -> None:
        self.assets = assets
        self.extra_args = extra_args
        self.dir = Path(tempfile.mkdtemp(prefix="operator-metrics-envtest-"))
        self.token = uuid.uuid4().hex
        self.reader_token = uuid.uuid4().hex
        self.procs: list[subprocess.Popen[bytes]] = []
        self.host = ""

    def start(self) -> None:
        etcd_port, peer_port, api_port = _free_port(), _free_port(), _free_port()
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
        subprocess.run(
            ["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True
        )
        tokens = self.dir / "tokens.csv"
        tokens.write_text(  # the admin, and a user whom only the tests' RBAC objects authorize
            f'{self.token},admin,admin-uid,"system:masters"\n'
            f"{self.reader_token},{READER_USER},reader-uid\n"
        )
        cert_dir = self.dir / "certs"
        cert_dir.mkdir()
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
                "--watch-cache=false",  # watches read etcd, so its compaction gives a real 410
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

    def backend(self) -> ApiBackend:
        return ApiBackend(
            self.api_client(),
            self.api_client,
            lambda: self.api_client(self.reader_token),
            self.host,
            self.token,
            compact=self.compact,
        )

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
            if proc.poll() is None:
                proc.kill()
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
    ) -> None:
        from kubernetes import client

        self.double = double
        self.host = host
        self.token = token  # None: the double needs no credentials
        self._client_factory = client_factory
        self._reader_factory = reader_factory
        self._compact = compact or (double.compact if double else None)
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


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane | None]:
    """A real control plane for the session when `KUBEBUILDER_ASSETS` is set, else None."""
    assets = real_assets()
    if assets is None:
        yield None
        return
    plane = ControlPlane(assets)
    plane.start()
    try:
        install_test_crds(plane.backend())
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def control_plane_without_watch_list() -> Iterator[ControlPlane | None]:
    """A second real control plane whose API server refuses streaming lists (the WatchList
    feature gate off), when `KUBEBUILDER_ASSETS` is set; else None."""
    assets = real_assets()
    if assets is None:
        yield None
        return
    plane = ControlPlane(assets, ("--feature-gates=WatchList=false",))
    plane.start()
    try:
        install_test_crds(plane.backend())
        yield plane
    finally:
        plane.stop()


@pytest.fixture
def kube(control_plane: ControlPlane | None) -> Iterator[ApiBackend]:
    """The API backend of one test: a fresh double, or the shared real control plane; set up
    through the API in both cases."""
    yield from _backend(control_plane, "enabled")


@pytest.fixture
def kube_without_watch_list(
    control_plane_without_watch_list: ControlPlane | None,
) -> Iterator[ApiBackend]:
    """As `kube`, for an API server with the WatchList feature off (it answers a streaming
    list with 422 Invalid)."""
    yield from _backend(control_plane_without_watch_list, "disabled")


def _backend(control_plane: ControlPlane | None, watch_list: str) -> Iterator[ApiBackend]:
    if control_plane is None:
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
            yield backend
        return
    backend = control_plane.backend()
    try:
        yield backend
    finally:
        backend.clean()


def need_double(kube: ApiBackend) -> KubeApiDouble:
    """The double, or skip: the test needs a control a real API server does not offer."""
    if kube.double is None:
        pytest.skip("needs test-double controls (compact/request log/...)")
    return kube.double
