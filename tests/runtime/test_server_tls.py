"""TLS, client certificates and basic auth from a Prometheus web config file, and METRICS_HOST."""

from __future__ import annotations

import base64
import contextlib
import http.client
import os
import socket
import ssl
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest
import trustme
from prom_helpers import query, running_prometheus, values_by, wait_for_query
from store_fakes import FakeCollector, WidgetGenerator, widget

from scaffold_metrics.runtime.httpproto import ServerLimits
from scaffold_metrics.runtime.selfmetrics import SelfMetrics
from scaffold_metrics.runtime.server import MetricsServer, start_metrics_server
from scaffold_metrics.runtime.store import MetricsStore
from scaffold_metrics.runtime.webconfig import WebConfigError, load_web_config

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PASSWORD = "s3cret-scrape"


@dataclass
class Pki:
    """A test CA, the server's certificate and key, and a client certificate, as files."""

    dir: Path
    ca: trustme.CA
    ca_file: Path
    cert_file: Path
    key_file: Path
    client_cert_file: Path
    client_key_file: Path

    def issue_server_cert(self, *identities: str) -> None:
        leaf = self.ca.issue_cert(*identities)
        leaf.cert_chain_pems[0].write_to_path(str(self.cert_file))
        leaf.private_key_pem.write_to_path(str(self.key_file))

    def client_context(self, *, with_cert: bool = True) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        if with_cert:
            ctx.load_cert_chain(str(self.client_cert_file), str(self.client_key_file))
        return ctx


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    client = ca.issue_cert("prometheus@example.com", common_name="prometheus")
    client_cert, client_key = tmp_path / "client.pem", tmp_path / "client-key.pem"
    client.cert_chain_pems[0].write_to_path(str(client_cert))
    client.private_key_pem.write_to_path(str(client_key))
    p = Pki(
        tmp_path, ca, ca_file, tmp_path / "tls.crt", tmp_path / "tls.key", client_cert, client_key
    )
    p.issue_server_cert("127.0.0.1", "localhost")
    return p


def write_config(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def widget_store() -> MetricsStore:
    store = MetricsStore(WidgetGenerator(), self_metrics=SelfMetrics())
    store.upsert(widget("a", replicas=3))
    return store


@pytest.fixture
def serve() -> Iterator[list[MetricsServer]]:
    servers: list[MetricsServer] = []
    yield servers
    for s in servers:
        s.stop()


def https_get(
    server: MetricsServer, path: str, ctx: ssl.SSLContext, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


# -- the file ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("tls_config:\n  cert_file: a\n", "unknown web config key tls_config", 1),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  keyfile: c\n",
            "unknown web config key tls_server_config.keyfile",
            4,
        ),
        ("http_server_config:\n  http2: false\n", "http_server_config is not supported", 1),
        ("basic_auth_users:\n  alice: plaintext\n", "basic_auth_users.alice is not a bcrypt", 2),
        ("tls_server_config:\n  key_file: b\n", "tls_server_config needs cert_file", 1),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS14\n",
            "min_version 'TLS14' is not one of",
            4,
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n"
            "  client_auth_type: RequireAndVerifyClientCert\n",
            "needs client_ca_file",
            1,
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: c\n",
            "client_auth_type is NoClientCert",
            1,
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n"
            "  client_auth_type: RequireAnyClientCert\n  client_ca_file: c\n",
            "RequireAnyClientCert",
            4,
        ),
        ("tls_server_config: [a]\n", "tls_server_config must be a mapping", 1),
        ("basic_auth_users: {a: 1\n", "not valid YAML", 2),
        ("- 1\n", "the web config must be a mapping", 1),
        ("tls_server_config:\n  cert_file: nope.crt\n  key_file: nope.key\n", "cannot load", 1),
    ],
)
def test_bad_web_config_is_refused_with_file_and_line(
    tmp_path: Path, text: str, message: str, line: int
) -> None:
    path = write_config(tmp_path / "web.yml", text)
    with pytest.raises(WebConfigError) as info:
        load_web_config(str(path))
    assert message in str(info.value)
    assert str(info.value).endswith(f"{path}:{line}"), str(info.value)


def test_bad_web_config_fails_before_binding_or_starting_collectors(tmp_path: Path) -> None:
    path = write_config(tmp_path / "web.yml", "basic_auth_users: {a: b}\n")
    collector = FakeCollector(widget_store())
    with pytest.raises(WebConfigError):
        start_metrics_server([collector], port=0, host="127.0.0.1", web_config=str(path))
    assert collector.started == 0


def test_empty_web_config_serves_plain_http(tmp_path: Path, serve: list[MetricsServer]) -> None:
    path = write_config(tmp_path / "web.yml", "")
    serve.append(start_metrics_server([], port=0, host="127.0.0.1", web_config=str(path)))
    assert serve[0].url.startswith("http://")


# -- TLS -----------------------------------------------------------------------------------------


def test_tls_with_a_required_client_certificate(pki: Pki, serve: list[MetricsServer]) -> None:
    config = write_config(
        pki.dir / "web.yml",
        """\
        tls_server_config:
          cert_file: tls.crt   # relative to the config file, as exporter-toolkit does
          key_file: tls.key
          client_ca_file: ca.pem
          client_auth_type: RequireAndVerifyClientCert
          min_version: TLS13
        """,
    )
    server = start_metrics_server(
        [FakeCollector(widget_store())], port=0, host="127.0.0.1", web_config=str(config)
    )
    serve.append(server)
    assert server.url.startswith("https://127.0.0.1:")
    status, _, body = https_get(server, "/metrics", pki.client_context())
    assert status == 200 and b'widget_info{namespace="default",name="a"} 1' in body
    with pytest.raises((ssl.SSLError, ConnectionError)):
        https_get(server, "/metrics", pki.client_context(with_cert=False))
    stranger = trustme.CA().issue_cert("intruder@example.com")  # a cert our CA did not sign
    ctx = pki.client_context(with_cert=False)
    stranger.configure_cert(ctx)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        https_get(server, "/metrics", ctx)
    # plain HTTP on the TLS port gets nothing useful
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
        assert b"widget_info" not in s.recv(65536)
    # TLS 1.2 is below min_version
    old = pki.client_context()
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises((ssl.SSLError, ConnectionError)):
        https_get(server, "/healthz", old)


def test_a_stalled_tls_handshake_is_cut_at_the_head_deadline(
    pki: Pki, serve: list[MetricsServer]
) -> None:
    config = write_config(
        pki.dir / "web.yml",
        f"tls_server_config:\n  cert_file: {pki.cert_file}\n" f"  key_file: {pki.key_file}\n",
    )
    limits = ServerLimits(head_timeout=1.0)
    server = start_metrics_server(
        [], port=0, host="127.0.0.1", web_config=str(config), limits=limits
    )
    serve.append(server)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        start = time.monotonic()
        conn.sendall(bytes.fromhex("160301"))  # the start of a ClientHello, then nothing
        with contextlib.suppress(ConnectionResetError):  # closed or reset: either is fine
            assert conn.recv(1000) == b""
        assert time.monotonic() - start < 5


def test_certificates_are_reloaded_when_the_files_change(
    pki: Pki, serve: list[MetricsServer]
) -> None:
    config = write_config(
        pki.dir / "web.yml",
        f"tls_server_config:\n  cert_file: {pki.cert_file}\n" f"  key_file: {pki.key_file}\n",
    )
    server = start_metrics_server([], port=0, host="127.0.0.1", web_config=str(config))
    serve.append(server)

    def served_names() -> list[str]:
        ctx = pki.client_context(with_cert=False)
        with (
            socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw,
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            cert = tls.getpeercert()
        return sorted(value for _, value in cert["subjectAltName"])

    assert served_names() == ["127.0.0.1", "localhost"]
    pki.issue_server_cert("127.0.0.1", "renewed.example.com")  # cert-manager renews
    deadline = time.monotonic() + 10
    while served_names() != ["127.0.0.1", "renewed.example.com"]:
        assert time.monotonic() < deadline, "the renewed certificate was never served"
        time.sleep(0.2)
    # a half-written renewal keeps the previous certificate instead of failing handshakes
    pki.key_file.write_text("not a key")
    time.sleep(1.2)
    assert served_names() == ["127.0.0.1", "renewed.example.com"]


# -- basic auth ----------------------------------------------------------------------------------


def test_basic_auth(tmp_path: Path, serve: list[MetricsServer]) -> None:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    config = write_config(tmp_path / "web.yml", f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    server = start_metrics_server(
        [FakeCollector(widget_store())], port=0, host="127.0.0.1", web_config=str(config)
    )
    serve.append(server)

    def get(path: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()

    status, headers = get("/metrics", {})
    assert status == 401 and headers["www-authenticate"].startswith("Basic ")
    assert get("/metrics", basic("prometheus", "wrong"))[0] == 401
    assert get("/metrics", basic("nobody", PASSWORD))[0] == 401
    assert get("/metrics", {"Authorization": "Basic !!!"})[0] == 401
    assert get("/metrics", {"Authorization": "Bearer x"})[0] == 401
    assert get("/metrics", basic("prometheus", PASSWORD))[0] == 200
    assert get("/metrics", basic("prometheus", PASSWORD))[0] == 200  # cached verdict
    assert get("/healthz", {})[0] == 200  # kubelet probes carry no credentials
    assert get("/readyz", {})[0] == 200


# -- a real Prometheus ---------------------------------------------------------------------------


def test_prometheus_scrapes_over_tls_with_a_client_certificate_and_basic_auth(
    pki: Pki, serve: list[MetricsServer]
) -> None:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    config = write_config(
        pki.dir / "web.yml",
        f"""\
        tls_server_config:
          cert_file: {pki.cert_file}
          key_file: {pki.key_file}
          client_ca_file: {pki.ca_file}
          client_auth_type: RequireAndVerifyClientCert
        basic_auth_users:
          prometheus: {hashed}
        """,
    )
    server = start_metrics_server(
        [FakeCollector(widget_store())], port=0, host="127.0.0.1", web_config=str(config)
    )
    serve.append(server)
    options = {
        "scheme": "https",
        "tls_config": {
            "ca_file": str(pki.ca_file),
            "cert_file": str(pki.client_cert_file),
            "key_file": str(pki.client_key_file),
        },
        "basic_auth": {"username": "prometheus", "password": PASSWORD},
    }
    target = f"127.0.0.1:{server.port}"
    with running_prometheus([target], scrape_options=options) as prom:
        wait_for_query(prom, "up", lambda r: [float(x["value"][1]) for x in r] == [1.0])
        assert values_by(query(prom, "widget_spec_replicas"), "name") == {"a": 3.0}
    # the same Prometheus without the password is refused (and says so in `up`)
    wrong = {**options, "basic_auth": {"username": "prometheus", "password": "nope"}}
    with running_prometheus([target], scrape_options=wrong) as prom:
        wait_for_query(prom, "up", lambda r: [float(x["value"][1]) for x in r] == [0.0])
        assert query(prom, "widget_spec_replicas") == []


# -- METRICS_HOST and METRICS_WEB_CONFIG ---------------------------------------------------------


def test_metrics_host_and_web_config_from_the_environment(
    pki: Pki, monkeypatch: pytest.MonkeyPatch, serve: list[MetricsServer]
) -> None:
    config = write_config(
        pki.dir / "web.yml",
        f"tls_server_config:\n  cert_file: {pki.cert_file}\n" f"  key_file: {pki.key_file}\n",
    )
    monkeypatch.setenv("METRICS_HOST", "127.0.0.1")
    monkeypatch.setenv("METRICS_WEB_CONFIG", str(config))
    server = start_metrics_server([FakeCollector(widget_store())], port=0)
    serve.append(server)
    assert server.host == "127.0.0.1"
    assert https_get(server, "/healthz", pki.client_context(with_cert=False))[0] == 200
    # explicit arguments win over the environment
    plain = write_config(pki.dir / "plain.yml", "")
    other = start_metrics_server([], port=0, host="localhost", web_config=str(plain))
    serve.append(other)
    assert other.host == "localhost" and other.url.startswith("http://")
    monkeypatch.delenv("METRICS_HOST")
    monkeypatch.delenv("METRICS_WEB_CONFIG")
    default = start_metrics_server([], port=0)
    serve.append(default)
    assert default.host == "0.0.0.0" and default.url.startswith("http://127.0.0.1:")


def test_serve_metrics_takes_host_and_web_config(pki: Pki) -> None:
    config = write_config(
        pki.dir / "web.yml",
        f"tls_server_config:\n  cert_file: {pki.cert_file}\n" f"  key_file: {pki.key_file}\n",
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = textwrap.dedent(f"""
        from scaffold_metrics.runtime.server import serve_metrics
        serve_metrics([], port={port}, host="127.0.0.1", web_config={str(config)!r})
        """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, HERE])}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                conn = http.client.HTTPSConnection(
                    "127.0.0.1", port, context=pki.client_context(with_cert=False), timeout=2
                )
                conn.request("GET", "/healthz")
                assert conn.getresponse().status == 200
                conn.close()
                break
            except (OSError, http.client.HTTPException):
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline
                time.sleep(0.1)
        proc.terminate()
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
