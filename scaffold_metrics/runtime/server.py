"""The `/metrics` HTTP endpoint (plus `/healthz` and `/readyz`), on the standard library only.

The stores already hold finished bytes, so a scrape is a few joins, a header per family and
optionally gzip, shared by concurrent scrapes. One asyncio loop serves every connection within
`ServerLimits` (connections, request size, deadlines), optionally behind TLS and basic auth
from a Prometheus web config file; it adds no dependency to the operator's image beyond PyYAML
(and bcrypt for basic auth). Several collectors (namespaces) may share one store; families with
the same name across stores are merged, so every family has exactly one HELP/TYPE and is never
interleaved with another.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import FrameType
from typing import Any, Protocol

from .exposition import OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE
from .families import MetricFamilyDef
from .httpproto import HttpError, Request, RequestReader, ServerLimits
from .selfmetrics import DEFAULT_SELF_METRICS, SelfMetrics
from .sharedbody import Body, Pieces, SharedBodies
from .store import MetricsStore
from .webconfig import (
    BasicAuth,
    ReloadingTlsContext,
    WebConfig,
    load_web_config,
    web_config_path,
)

log = logging.getLogger(__name__)

DEFAULT_PORT = 8389
DEFAULT_HOST = "0.0.0.0"
METRICS_HOST_ENV = "METRICS_HOST"


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
    return b"".join(exposition_chunks(stores, self_metrics, openmetrics=openmetrics))


def exposition_chunks(
    stores: Sequence[MetricsStore], self_metrics: SelfMetrics, *, openmetrics: bool
) -> list[bytes]:
    """The pieces of the `/metrics` body in order (references to the stores' bytes, nothing
    copied): joined, they are `render_exposition`; compressed as they are, the gzip body,
    without the whole plain body ever existing (see `sharedbody.gzip_chunks`)."""
    # name -> the family and its chunk sequences (stores' views are shared: never mutated).
    merged: dict[str, tuple[MetricFamilyDef, list[Sequence[bytes]]]] = {}

    def add(family: MetricFamilyDef, chunks: Sequence[bytes]) -> None:
        entry = merged.get(family.name)
        if entry is None:
            merged[family.name] = (family, [chunks])
        else:
            entry[1].append(chunks)

    objects: dict[tuple[str, str], int] = {}
    for store in stores:
        for family, chunks in store.family_chunks():
            add(family, chunks)
        for namespace, count in store.counts_by_namespace().items():
            key = (store.kind, namespace or "")
            objects[key] = objects.get(key, 0) + count
    for family, body in self_metrics.families(objects):
        add(family, (body,))
    out: list[bytes] = []
    for family, parts in merged.values():
        out.append(family.openmetrics_header if openmetrics else family.text_header)
        for part in parts:
            out.extend(part)
    if openmetrics:
        out.append(b"# EOF\n")
    return out


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}
_WRITE_CHUNK = 64 * 1024  # a slow reader holds at most about this much beyond the shared body
_LINGER_SECONDS = 1.0
_LINGER_BYTES = 16 * 1024 * 1024
_PROBE_PATHS = ("/healthz", "/readyz")  # kubelet probes carry no credentials
_OVERLOAD_LOG_SECONDS = 60.0


def _overloaded_response() -> bytes:
    body = b"too many connections\n"
    return (
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Retry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )


_OVERLOADED = _overloaded_response()


def metrics_host(host: str | None) -> str:
    """The address to bind: `host`, else `$METRICS_HOST`, else every IPv4 interface."""
    if host is not None:
        return host
    return os.environ.get(METRICS_HOST_ENV) or DEFAULT_HOST


class MetricsServer:
    """A running metrics endpoint and the collectors it started; `stop()` ends both.

    One asyncio event loop in a daemon thread serves every connection, so an idle or slow
    client costs a few kilobytes, not a thread; bodies are rendered on a small thread pool and
    shared by concurrent scrapes (`SharedBodies`). `ServerLimits` bounds the rest.
    """

    def __init__(
        self,
        collectors: Sequence[CollectorLike],
        host: str,
        port: int,
        self_metrics: SelfMetrics,
        *,
        web_config: WebConfig | None = None,
        limits: ServerLimits | None = None,
    ) -> None:
        self.collectors = tuple(collectors)
        self.stores = unique_stores(self.collectors)
        self.self_metrics = self_metrics
        self.host = host
        self.limits = limits if limits is not None else ServerLimits()
        self.web_config = web_config
        tls = web_config.tls if web_config is not None else None
        self._tls = ReloadingTlsContext(tls) if tls is not None else None
        users = web_config.basic_auth_users if web_config is not None else {}
        self._auth = BasicAuth(users) if users else None
        self._render_pool = ThreadPoolExecutor(2, thread_name_prefix="metrics-render")
        self._auth_pool = ThreadPoolExecutor(1, thread_name_prefix="metrics-auth")
        self._bodies = SharedBodies(self._render, self._render_pool)
        self._connections: set[asyncio.Task[None]] = set()
        self._last_overload_log = 0.0
        # The loop runs in its own thread from the start and binds there, so the caller's
        # thread may have an event loop of its own running (an asyncio program, kopf).
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="metrics-server", daemon=True
        )
        self._thread.start()
        try:
            listening = asyncio.run_coroutine_threadsafe(self._listen(host, port), self._loop)
            self._listener = listening.result()
        except BaseException:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._close_resources()
            raise
        self.port: int = self._listener.sockets[0].getsockname()[1]
        self._thread.name = f"metrics-server:{self.port}"
        self._started: list[CollectorLike] = []
        self._stop_lock = threading.Lock()
        self._stopped = False

    async def _listen(self, host: str, port: int) -> asyncio.Server:
        ssl_context = self._tls.listening if self._tls is not None else None
        return await asyncio.start_server(
            self._serve_connection,
            host or None,
            port,
            ssl=ssl_context,
            ssl_handshake_timeout=self.limits.head_timeout if ssl_context else None,
            limit=self.limits.max_head_bytes + 1,
        )

    @property
    def url(self) -> str:
        """Base URL a client on this host can use (wildcard hosts become loopback)."""
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://{host}:{self.port}"

    @property
    def open_connections(self) -> int:
        """Client connections open right now (for tests and debugging)."""
        return len(self._connections)

    def ready(self) -> bool:
        """True when every collector finished its first list."""
        return all(c.has_synced for c in self.collectors)

    def _render(self, openmetrics: bool) -> list[bytes]:
        return exposition_chunks(self.stores, self.self_metrics, openmetrics=openmetrics)

    # -- connections ---------------------------------------------------------------------------

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        ending = "abort"  # or "close" after a complete response, "linger" after an error
        try:
            if len(self._connections) > self.limits.max_connections:
                self._log_overload()
                writer.write(_OVERLOADED)
                ending = "linger"
                return
            requests = RequestReader(reader, writer.transport, self.limits)
            while True:
                try:
                    request = await requests.next_request()
                except HttpError as exc:
                    await self._send(writer, exc.status, {}, f"{exc.reason}\n".encode(), False)
                    ending = "linger"
                    return
                if request is None:
                    return
                if not await self._respond(request, writer):
                    ending = "close"
                    return
        except (OSError, asyncio.TimeoutError) as exc:  # resets, TLS errors, slow readers
            log.debug("client %s: %r", writer.get_extra_info("peername"), exc)
        except asyncio.CancelledError:  # the server is stopping
            ending = "abort"
        except Exception:
            log.exception("error serving %s", writer.get_extra_info("peername"))
        finally:
            try:
                if ending == "linger":
                    await self._linger(reader, writer)
            finally:
                self._connections.discard(task)
                if ending == "abort":
                    writer.transport.abort()
                else:
                    writer.close()  # lets the last response go out first

    async def _linger(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """After an error answer, half-close and drop what the client still sends for a moment.

        Closing with unread input makes the kernel send a reset, and the client would lose the
        answer (431, 503) that says why; the drain is bounded in time and bytes.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _LINGER_SECONDS
        try:
            await asyncio.wait_for(writer.drain(), _LINGER_SECONDS)
            if writer.can_write_eof():
                writer.write_eof()
            dropped = 0
            while dropped < _LINGER_BYTES:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                chunk = await asyncio.wait_for(reader.read(_WRITE_CHUNK), remaining)
                if not chunk:
                    return
                dropped += len(chunk)
        except (OSError, asyncio.TimeoutError, asyncio.CancelledError):
            return

    def _log_overload(self) -> None:
        now = time.monotonic()
        if now - self._last_overload_log >= _OVERLOAD_LOG_SECONDS:
            self._last_overload_log = now
            log.warning(
                "metrics endpoint at its limit of %d connections: answering 503",
                self.limits.max_connections,
            )

    async def _respond(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection must close afterwards."""
        keep_alive = request.keep_alive
        if request.method not in ("GET", "HEAD"):
            allow = {"Allow": "GET, HEAD"}
            await self._send(writer, 405, allow, b"method not allowed\n", False)
            return False
        if "transfer-encoding" in request.headers or request.headers.get(
            "content-length", "0"
        ).strip() not in ("", "0"):
            await self._send(writer, 400, {}, b"request bodies are not accepted\n", False)
            return False
        path = request.path
        if self._auth is not None and path not in _PROBE_PATHS:
            header = request.headers.get("authorization")
            verdict = self._auth.cached(header)
            if verdict is None and header is not None:
                loop = asyncio.get_running_loop()
                verdict = await loop.run_in_executor(self._auth_pool, self._auth.check, header)
            if not verdict:
                challenge = {"WWW-Authenticate": 'Basic realm="operator-metrics"'}
                await self._send(writer, 401, challenge, b"unauthorized\n", keep_alive)
                return keep_alive
        headers: dict[str, str] = {}
        if path == "/metrics":
            openmetrics = wants_openmetrics(request.headers.get("accept"))
            compressed = accepts_gzip(request.headers.get("accept-encoding"))
            try:
                body = await self._bodies.body(openmetrics=openmetrics, compressed=compressed)
            except Exception:
                log.exception("rendering /metrics failed")
                await self._send(writer, 500, {}, b"rendering failed\n", False)
                return False
            headers["Content-Type"] = OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE
            headers["Vary"] = "Accept, Accept-Encoding"
            if compressed:
                headers["Content-Encoding"] = "gzip"
            status = 200
        elif path == "/healthz":
            status, body = 200, b"ok\n"
        elif path == "/readyz":
            status, body = (200, b"ok\n") if self.ready() else (503, b"not synced\n")
        else:
            status, body = 404, b"not found\n"
        await self._send(writer, status, headers, body, keep_alive, request.method == "HEAD")
        return keep_alive

    async def _send(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        headers: dict[str, str],
        body: Body,
        keep_alive: bool,
        head_only: bool = False,
    ) -> None:
        """Write one response; a client that does not read it within `write_timeout` is cut.

        The body goes out in slices of the shared bytes (a plain `/metrics` body: of batches of
        its pieces), waiting for the socket to drain, so a slow reader never holds a private
        copy of it.
        """
        lines = [f"HTTP/1.1 {status} {_REASONS[status]}"]
        headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        lines.append(f"Content-Length: {len(body)}")
        if not keep_alive:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if head_only:
            body = b""
        if len(body) <= _WRITE_CHUNK:
            writer.write(head + (body.joined() if isinstance(body, Pieces) else body))
            return
        writer.write(head)
        deadline = asyncio.get_running_loop().time() + self.limits.write_timeout
        transport = writer.transport
        for batch in body.batches() if isinstance(body, Pieces) else (body,):
            view = memoryview(batch)
            for offset in range(0, len(batch), _WRITE_CHUNK):
                writer.write(view[offset : offset + _WRITE_CHUNK])
                if transport.get_write_buffer_size() > _WRITE_CHUNK:
                    remaining = deadline - asyncio.get_running_loop().time()
                    await asyncio.wait_for(writer.drain(), max(remaining, 0.001))

    # -- lifecycle -----------------------------------------------------------------------------

    def _start(self) -> None:
        try:
            for c in self.collectors:
                c.start()
                self._started.append(c)
        except BaseException:
            self.stop()
            raise

    async def _shutdown(self) -> None:
        self._listener.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._listener.wait_closed()

    def _close_resources(self) -> None:
        self._loop.close()
        self._render_pool.shutdown(wait=False, cancel_futures=True)
        self._auth_pool.shutdown(wait=False, cancel_futures=True)

    def stop(self) -> None:
        """Stop serving, then stop the collectors that were started; safe to call twice."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        done = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        try:
            done.result(timeout=10)
        except Exception:
            log.exception("closing the metrics endpoint failed")
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._close_resources()
        for c in reversed(self._started):
            try:
                c.stop()
            except Exception:
                log.exception("stopping collector %r failed", c)


def start_metrics_server(
    collectors: Sequence[CollectorLike],
    port: int = DEFAULT_PORT,
    host: str | None = None,
    *,
    self_metrics: SelfMetrics | None = None,
    web_config: str | os.PathLike[str] | None = None,
    limits: ServerLimits | None = None,
) -> MetricsServer:
    """Bind `host:port` (0 = any free port), serve in a daemon thread, start the collectors.

    `host` None means `$METRICS_HOST`, else `0.0.0.0`; `web_config` None means
    `$METRICS_WEB_CONFIG`, else plain HTTP without auth. Returns at once. The web config is
    validated (WebConfigError) and the port bound before any collector starts, so bad config or
    a busy port (OSError) fails fast without a watch left running. `MetricsServer.stop()` stops
    serving and then calls `stop()` on each collector.
    """
    path = web_config_path(os.fspath(web_config) if web_config is not None else None)
    config = load_web_config(path) if path is not None else None
    server = MetricsServer(
        collectors,
        metrics_host(host),
        port,
        self_metrics if self_metrics is not None else DEFAULT_SELF_METRICS,
        web_config=config,
        limits=limits,
    )
    server._start()
    return server


def serve_metrics(
    collectors: Sequence[CollectorLike],
    port: int = DEFAULT_PORT,
    host: str | None = None,
    *,
    self_metrics: SelfMetrics | None = None,
    web_config: str | os.PathLike[str] | None = None,
    limits: ServerLimits | None = None,
) -> None:
    """Serve and collect until SIGTERM/SIGINT (or KeyboardInterrupt), then stop everything.

    `host` and `web_config` as for `start_metrics_server`. Signal handlers are installed only
    when called from the main thread (and restored on exit); from another thread it serves
    until KeyboardInterrupt or process exit.
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
        server = start_metrics_server(
            collectors,
            port,
            host,
            self_metrics=self_metrics,
            web_config=web_config,
            limits=limits,
        )
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
