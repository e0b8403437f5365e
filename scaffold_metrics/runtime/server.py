"""The `/metrics` HTTP endpoint (plus `/healthz` and `/readyz`), on the standard library only.

The stores already hold finished bytes, so a scrape is a few joins, a header per family and
optionally gzip: `http.server.ThreadingHTTPServer` is plenty and adds no dependency to the
operator's image. Several collectors (namespaces) may share one store; families with the same
name across stores are merged, so every family has exactly one HELP/TYPE and is never
interleaved with another.
"""

from __future__ import annotations

import gzip
import logging
import signal
import socket
import sys
import threading
from collections.abc import Iterable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any, Protocol

from .exposition import OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE
from .families import MetricFamilyDef
from .selfmetrics import DEFAULT_SELF_METRICS, SelfMetrics
from .store import MetricsStore

log = logging.getLogger(__name__)

DEFAULT_PORT = 8389
GZIP_LEVEL = 1


class CollectorLike(Protocol):
    """What the server needs of a collector: its store, whether it listed once, start/stop."""

    @property
    def store(self) -> MetricsStore: ...

    @property
    def has_synced(self) -> bool: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


def _media_ranges(header: str) -> Iterable[tuple[str, dict[str, str], float]]:
    """Parse an Accept-style header into (value, params, q); malformed q counts as 0."""
    for part in header.split(","):
        fields = [f.strip() for f in part.split(";")]
        if not fields[0]:
            continue
        params: dict[str, str] = {}
        for f in fields[1:]:
            k, _, v = f.partition("=")
            params[k.strip().lower()] = v.strip().strip('"')
        try:
            q = float(params.get("q", "1"))
        except ValueError:
            q = 0.0
        yield fields[0].lower(), params, q


def wants_openmetrics(accept: str | None) -> bool:
    """True when the Accept header prefers OpenMetrics (as Prometheus sends it) over text."""
    if not accept:
        return False
    om_q = text_q = 0.0
    for media, params, q in _media_ranges(accept):
        if media == "application/openmetrics-text":
            if params.get("version") in (None, "1.0.0", "0.0.1"):
                om_q = max(om_q, q)
        elif media in ("text/plain", "text/*", "*/*"):
            text_q = max(text_q, q)
    return om_q > 0 and om_q >= text_q


def accepts_gzip(accept_encoding: str | None) -> bool:
    """True when the Accept-Encoding header allows gzip."""
    if not accept_encoding:
        return False
    gzip_q: float | None = None
    star_q: float | None = None
    for coding, _params, q in _media_ranges(accept_encoding):
        if coding == "gzip":
            gzip_q = q
        elif coding == "*":
            star_q = q
    if gzip_q is not None:
        return gzip_q > 0
    return star_q is not None and star_q > 0


def unique_stores(collectors: Iterable[CollectorLike]) -> list[MetricsStore]:
    """The stores of `collectors`, each once (by identity), in first-seen order."""
    seen: dict[int, MetricsStore] = {}
    for c in collectors:
        seen.setdefault(id(c.store), c.store)
    return list(seen.values())


def render_exposition(
    stores: Sequence[MetricsStore], self_metrics: SelfMetrics, *, openmetrics: bool
) -> bytes:
    """The whole `/metrics` body: every store's families, then the self-metrics families.

    Stores hand out references to their objects' bytes; the body is built by one final join,
    so each byte is copied once per scrape.
    """
    merged: dict[str, tuple[MetricFamilyDef, list[bytes]]] = {}

    def add(family: MetricFamilyDef, chunks: list[bytes]) -> None:
        entry = merged.get(family.name)
        if entry is None:
            merged[family.name] = (family, chunks)
        else:
            entry[1].extend(chunks)

    objects: dict[tuple[str, str], int] = {}
    for store in stores:
        for family, chunks in store.family_chunks():
            add(family, chunks)
        for namespace, count in store.counts_by_namespace().items():
            key = (store.kind, namespace or "")
            objects[key] = objects.get(key, 0) + count
    for family, body in self_metrics.families(objects):
        add(family, [body])
    out: list[bytes] = []
    for family, chunks in merged.values():
        out.append(family.openmetrics_header if openmetrics else family.text_header)
        out.extend(chunks)
    if openmetrics:
        out.append(b"# EOF\n")
    return b"".join(out)


class _Handler(BaseHTTPRequestHandler):
    """Serves one connection; the owning `MetricsServer` is reachable as `self.server.owner`."""

    protocol_version = "HTTP/1.1"
    timeout = 60  # idle keep-alive connections must not pin a thread forever
    # Headers and body go out in two writes: with Nagle's algorithm the body would wait for
    # the client's delayed ACK of the headers (40 ms on Linux) on every keep-alive scrape.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self._respond(send_body=True)

    def do_HEAD(self) -> None:
        self._respond(send_body=False)

    def _respond(self, *, send_body: bool) -> None:
        owner = self.server.owner
        path = self.path.split("?", 1)[0]
        headers: dict[str, str] = {}
        if path == "/metrics":
            openmetrics = wants_openmetrics(self.headers.get("Accept"))
            body = render_exposition(owner.stores, owner.self_metrics, openmetrics=openmetrics)
            headers["Content-Type"] = OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE
            headers["Vary"] = "Accept, Accept-Encoding"
            if accepts_gzip(self.headers.get("Accept-Encoding")):
                body = gzip.compress(body, compresslevel=GZIP_LEVEL)
                headers["Content-Encoding"] = "gzip"
            status = 200
        elif path == "/healthz":
            status, body = 200, b"ok\n"
        elif path == "/readyz":
            ready = owner.ready()
            status, body = (200, b"ok\n") if ready else (503, b"not synced\n")
        else:
            status, body = 404, b"not found\n"
        headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: MetricsServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A scraper that hangs up early (scrape timeout) is routine, not a traceback on stderr."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            log.debug("client %s disconnected: %s", client_address, error)
            return
        log.exception("error serving %s", client_address)


class _Server6(_Server):
    address_family = socket.AF_INET6


class MetricsServer:
    """A running metrics endpoint and the collectors it started; `stop()` ends both."""

    def __init__(
        self,
        collectors: Sequence[CollectorLike],
        host: str,
        port: int,
        self_metrics: SelfMetrics,
    ) -> None:
        self.collectors = tuple(collectors)
        self.stores = unique_stores(self.collectors)
        self.self_metrics = self_metrics
        self.host = host
        server_cls = _Server6 if ":" in host else _Server
        self._httpd = server_cls((host, port), _Handler)
        self._httpd.owner = self
        self.port: int = self._httpd.server_address[1]
        self._thread: threading.Thread | None = None
        self._started: list[CollectorLike] = []
        self._stop_lock = threading.Lock()
        self._stopped = False

    @property
    def url(self) -> str:
        """Base URL a client on this host can use (wildcard hosts become loopback)."""
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def ready(self) -> bool:
        """True when every collector finished its first list."""
        return all(c.has_synced for c in self.collectors)

    def _start(self) -> None:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name=f"metrics-server:{self.port}", daemon=True
        )
        self._thread.start()
        try:
            for c in self.collectors:
                c.start()
                self._started.append(c)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop serving, then stop the collectors that were started; safe to call twice."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()
        for c in reversed(self._started):
            try:
                c.stop()
            except Exception:
                log.exception("stopping collector %r failed", c)


def start_metrics_server(
    collectors: Sequence[CollectorLike],
    port: int = DEFAULT_PORT,
    host: str = "0.0.0.0",
    *,
    self_metrics: SelfMetrics | None = None,
) -> MetricsServer:
    """Bind `host:port` (0 = any free port), serve in a daemon thread, start the collectors.

    Returns at once. The port is bound before any collector starts, so a busy port fails fast
    (OSError) without a watch left running. `MetricsServer.stop()` stops serving and then
    calls `stop()` on each collector.
    """
    server = MetricsServer(
        collectors, host, port, self_metrics if self_metrics is not None else DEFAULT_SELF_METRICS
    )
    server._start()
    return server


def serve_metrics(
    collectors: Sequence[CollectorLike],
    port: int = DEFAULT_PORT,
    host: str = "0.0.0.0",
    *,
    self_metrics: SelfMetrics | None = None,
) -> None:
    """Serve and collect until SIGTERM/SIGINT (or KeyboardInterrupt), then stop everything.

    Signal handlers are installed only when called from the main thread (and restored on exit);
    from another thread it serves until KeyboardInterrupt or process exit.
    """
    done = threading.Event()
    previous: dict[int, Any] = {}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    # Handlers first: a SIGTERM that arrives while the port is bound or a collector starts
    # must stop everything cleanly, not kill the process with the default action.
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, on_signal)
    try:
        server = start_metrics_server(collectors, port, host, self_metrics=self_metrics)
        try:
            log.info("serving metrics on %s/metrics", server.url)
            while not done.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
