"""An HTTP proxy of the tests' own that changes what an API server sends, on the way back.

Some bytes no kube-apiserver sends: its Go JSON encoder writes valid UTF-8 only and never a
lone surrogate, every object has `metadata` as an object, every line of a watch is an event.
A client still meets them when something between it and the server is broken or hostile (a
proxy or gateway that corrupts or forges responses, a server that is not kube-apiserver).
`RewritingProxy` is such a thing: it ends TLS (a certificate of its own CA) and starts it
again to the upstream, passes every request and answer through, and on the way back adds
items to LIST bodies, lines to open watch streams, or cuts LIST bodies short. Everything else
is the upstream's own answer, in front of the test double and a real kube-apiserver alike.
"""

from __future__ import annotations

import contextlib
import http.client
import queue
import ssl
import threading
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import trustme
from kubeapi_double import QuietHTTPServer
from request_log import SentRequest

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class RewritingProxy:
    """Forwards to `upstream` ("scheme://host:port"); `url` is its own address, with the
    upstream's scheme. Use it as a context manager."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        assert parts.hostname and parts.port, f"upstream needs host and port: {upstream}"
        self._scheme = parts.scheme
        self._upstream = (parts.hostname, parts.port)
        self._lock = threading.Lock()
        self._streams: set[queue.Queue[bytes | None]] = set()
        self._requests: list[SentRequest] = []
        self.list_items: list[bytes] = []
        """JSON texts put first in the `items` of every LIST answer."""
        self.cut_lists = False
        """When set, every LIST answer loses its second half (not JSON any more)."""
        self._server = QuietHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.proxy = self  # type: ignore[attr-defined]
        if self._scheme == "https":
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            trustme.CA().issue_cert("127.0.0.1").configure_cert(context)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> RewritingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            streams = list(self._streams)
        for stream in streams:
            stream.put(None)

    @property
    def url(self) -> str:
        port = self._server.server_address[1]
        return urlunsplit((self._scheme, f"127.0.0.1:{port}", "", "", ""))

    def add_watch_line(self, line: bytes) -> None:
        """Send `line` (a newline is added) on every open watch stream, between two of the
        upstream's lines."""
        with self._lock:
            streams = list(self._streams)
        for stream in streams:
            stream.put(line.rstrip(b"\n") + b"\n")

    @property
    def requests(self) -> list[SentRequest]:
        """The requests passed through, with the status of their answers."""
        with self._lock:
            return list(self._requests)

    def watches(self) -> list[SentRequest]:
        return [r for r in self.requests if r.is_watch]

    # -- forwarding ---------------------------------------------------------------------------

    def _connect(self) -> http.client.HTTPConnection:
        host, port = self._upstream
        if self._scheme == "https":  # the upstream's serving certificate is self-signed
            return http.client.HTTPSConnection(
                host, port, timeout=60, context=ssl._create_unverified_context()
            )
        return http.client.HTTPConnection(host, port, timeout=60)

    def forward(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers["Accept-Encoding"] = "identity"  # bodies stay readable here
        parts = urlsplit(handler.path)
        query = dict(parse_qsl(parts.query))
        upstream = self._connect()
        try:
            upstream.request(handler.command, handler.path, body, headers)
            resp = upstream.getresponse()
            sent = SentRequest(handler.command, parts.path, query,
                               headers.get("Authorization", ""), resp.status)  # fmt: skip
            if sent.is_watch and resp.status == 200:
                self._stream(handler, resp, sent)
            else:
                self._log(sent)
                self._answer(handler, resp, resp.read())
        finally:
            upstream.close()

    def _log(self, sent: SentRequest) -> None:
        with self._lock:
            self._requests.append(sent)

    def _head(self, handler: BaseHTTPRequestHandler, resp: http.client.HTTPResponse) -> None:
        handler.send_response_only(resp.status, resp.reason)
        for key, value in resp.getheaders():
            if key.lower() not in _HOP_BY_HOP:
                handler.send_header(key, value)

    def _answer(
        self, handler: BaseHTTPRequestHandler, resp: http.client.HTTPResponse, body: bytes
    ) -> None:
        if handler.command == "GET" and resp.status == 200 and b'"items":[' in body:
            if self.list_items:
                added = b",".join(self.list_items)
                at = body.index(b'"items":[') + len(b'"items":[')
                body = body[:at] + added + (b"" if body[at : at + 1] == b"]" else b",") + body[at:]
            if self.cut_lists:
                body = body[: len(body) // 2]
        self._head(handler, resp)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _stream(
        self, handler: BaseHTTPRequestHandler, resp: http.client.HTTPResponse, sent: SentRequest
    ) -> None:
        """Pass a watch on line by line (as chunks), with the lines `add_watch_line` adds
        from the moment it is in `requests`."""
        lines: queue.Queue[bytes | None] = queue.Queue()

        def read_upstream() -> None:
            # ends with the stream, or with any error once the upstream is closed under it
            with contextlib.suppress(Exception):
                for line in resp:
                    lines.put(line)
            lines.put(None)

        self._head(handler, resp)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        with self._lock:
            self._streams.add(lines)
            self._requests.append(sent)
        threading.Thread(target=read_upstream, daemon=True).start()
        try:
            while (line := lines.get()) is not None:
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                handler.wfile.flush()
            handler.wfile.write(b"0\r\n\r\n")
        except OSError:
            handler.close_connection = True
        finally:
            with self._lock:
                self._streams.discard(lines)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.server.proxy.forward(self)  # type: ignore[attr-defined]

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests read `RewritingProxy.requests` instead."""
