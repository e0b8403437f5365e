"""Reading one HTTP/1.1 request head from a connection, within documented bounds.

The metrics endpoint answers GET and HEAD only, so a request is its head: a request line and
headers. Every way a client could make the server hold memory or a connection without end is
bounded here: the request line (414), the number and total size of header lines (431), the time
from a request's first byte to its blank line (408), and bytes that cannot start an HTTP request
(a TLS hello on the plain port, 400) are refused at once instead of waiting for a line end.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

_METHOD_START = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")


@dataclass(frozen=True)
class ServerLimits:
    """Bounds of the metrics endpoint; the defaults are documented in docs/runtime-server.md."""

    max_connections: int = 512  # open connections; the next one is answered 503 and closed
    max_request_line: int = 8 * 1024  # bytes of "GET /path HTTP/1.1"; longer: 414
    max_header_count: int = 100  # header lines; more: 431
    max_head_bytes: int = 16 * 1024  # request line plus headers; more: 431
    head_timeout: float = 10.0  # seconds from a request's first byte to its end (or TLS handshake)
    idle_timeout: float = 60.0  # seconds a keep-alive connection may wait for its next request
    write_timeout: float = 60.0  # seconds a client may take to read one whole response


class HttpError(Exception):
    """A request that is answered with `status` and then the connection is closed."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


@dataclass
class Request:
    """One parsed request head; header names are lower-case, values decoded as latin-1."""

    method: str
    target: str
    version: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def keep_alive(self) -> bool:
        """Whether the client lets the connection stay open after the response."""
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection


class RequestReader:
    """Reads request heads from one connection, keeping pipelined bytes for the next request."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        transport: asyncio.BaseTransport,
        limits: ServerLimits,
    ) -> None:
        self._reader = reader
        self._transport = transport
        self._limits = limits
        self._buffer = bytearray()

    async def next_request(self) -> Request | None:
        """The next request, or None when the client closed or stayed idle too long.

        Raises HttpError for a request that breaks a bound or is not HTTP.
        """
        limits = self._limits
        if not self._buffer:
            chunk = await self._read(limits.idle_timeout)
            if not chunk:
                return None
            self._buffer += chunk
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limits.head_timeout
        while True:
            head = self._take_head()
            if head is not None:
                return parse_head(head, limits)
            chunk = await self._read(deadline - loop.time())
            if chunk is None:
                raise HttpError(408, "Request Timeout")
            if not chunk:
                return None
            self._buffer += chunk

    async def _read(self, timeout: float) -> bytes | None:
        """The next bytes (b"" when the client closed), or None when `timeout` passed first.

        A timer that ends the stream is cheaper than `asyncio.wait_for` (a task per read); once
        it fired the connection takes no more input and is closed by the caller.
        """
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            if isinstance(self._transport, asyncio.ReadTransport):
                self._transport.pause_reading()
            self._reader.feed_eof()

        if timeout <= 0:
            return None
        timer = asyncio.get_running_loop().call_later(timeout, expire)
        try:
            chunk = await self._reader.read(self._limits.max_head_bytes + 1)
        finally:
            timer.cancel()
        return None if expired else chunk

    def _take_head(self) -> bytes | None:
        """The complete head at the start of the buffer (removed from it), else None; raises
        as soon as the bytes so far cannot become an acceptable request."""
        buf = self._buffer
        while buf[:2] == b"\r\n" or buf[:1] == b"\n":  # blank lines before a request are allowed
            del buf[: 2 if buf[:1] == b"\r" else 1]
        if buf == b"\r":
            return None
        if buf and buf[0] not in _METHOD_START:
            raise HttpError(400, "Bad Request")
        limits = self._limits
        end = buf.find(b"\n")
        line_end = end if end >= 0 else len(buf)
        if line_end > limits.max_request_line:
            raise HttpError(414, "URI Too Long")
        stop = buf.find(b"\r\n\r\n")
        size = stop + 4 if stop >= 0 else -1
        bare = buf.find(b"\n\n")
        if bare >= 0 and (size < 0 or bare + 2 < size):
            size = bare + 2
        if size < 0:
            if len(buf) > limits.max_head_bytes:
                raise HttpError(431, "Request Header Fields Too Large")
            return None
        if size > limits.max_head_bytes:
            raise HttpError(431, "Request Header Fields Too Large")
        head = bytes(buf[:size])
        del buf[:size]
        return head


_REQUEST_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) (HTTP/[0-9.]+)\r?")
_HEADER_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*(.*?)[ \t]*\r?")


def parse_head(head: bytes, limits: ServerLimits) -> Request:
    """Parse a complete request head (request line, headers, blank line)."""
    lines = head.rstrip(b"\r\n").split(b"\n")
    match = _REQUEST_LINE.fullmatch(lines[0])
    if match is None:
        raise HttpError(400, "Bad Request")
    method, target, version = match.groups()
    if version not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise HttpError(505, "HTTP Version Not Supported")
    if len(lines) - 1 > limits.max_header_count:
        raise HttpError(431, "Request Header Fields Too Large")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        field = _HEADER_LINE.fullmatch(line)
        if field is None:
            raise HttpError(400, "Bad Request")  # also obsolete line folding
        key = field[1].decode("ascii").lower()
        text = field[2].decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return Request(method.decode("ascii"), target.decode("ascii"), version.decode("ascii"), headers)
