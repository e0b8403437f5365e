"""A loopback TCP proxy of the tests' own, between the code under test and an API server.

Dropped connections, stalls and a server that cannot be reached are faults of the network,
not of the server: doing them on the bytes (TLS passes through untouched) gives the same
faults in front of the test double and in front of a real kube-apiserver, so the tests that
need them run on both.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from urllib.parse import urlsplit, urlunsplit

_CHUNK = 65536


class TcpProxy:
    """Forwards every connection to `upstream` ("scheme://host:port"); `url` is its address
    with the upstream's scheme. Use it as a context manager."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        assert parts.hostname and parts.port, f"upstream needs host and port: {upstream}"
        self._upstream = (parts.hostname, parts.port)
        self._scheme = parts.scheme
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._stall_until = 0.0
        self._refusing = False
        self._closing = False
        self.accepted = 0
        """Connections accepted so far (a client that reconnects opens a new one)."""
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        port = self._listener.getsockname()[1]
        return urlunsplit((self._scheme, f"127.0.0.1:{port}", "", "", ""))

    def drop_connections(self) -> None:
        """Reset every open connection at once (no TLS close, no chunked end): a dying
        proxy or node. New connections are served as before."""
        with self._lock:
            sockets, self._open = self._open, set()
        for sock in sockets:
            _reset(sock)

    def stall(self, seconds: float) -> None:
        """For `seconds`, forward nothing from the server, on open and new connections."""
        with self._lock:
            self._stall_until = time.monotonic() + seconds

    def refuse(self) -> None:
        """Drop every open connection and reset each new one until `accept`: the server is
        unreachable (a node or proxy down), so a client can only back off and retry."""
        with self._lock:
            self._refusing = True
        self.drop_connections()

    def accept(self) -> None:
        """Undo `refuse`: connections reach the upstream again."""
        with self._lock:
            self._refusing = False

    def close(self) -> None:
        with self._lock:
            self._closing = True
        with contextlib.suppress(OSError):
            self._listener.close()
        self.drop_connections()

    # -- forwarding ---------------------------------------------------------------------------

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                refusing = self._refusing
            if refusing:
                _reset(client)
                continue
            try:
                server = socket.create_connection(self._upstream, timeout=10)
            except OSError:
                _reset(client)
                continue
            server.settimeout(None)
            with self._lock:
                if self._closing:
                    _reset(client)
                    _reset(server)
                    return
                self.accepted += 1
                self._open.update((client, server))
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_server: bool) -> None:
        try:
            while True:
                data = source.recv(_CHUNK)
                if not data:
                    break
                if from_server:
                    self._wait_out_stall(sink)
                sink.sendall(data)
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
        except OSError:
            _reset(source)
            _reset(sink)

    def _wait_out_stall(self, sink: socket.socket) -> None:
        while True:
            with self._lock:
                left = self._stall_until - time.monotonic()
                dropped = sink not in self._open
            if dropped:
                raise OSError("connection dropped during a stall")
            if left <= 0:
                return
            time.sleep(min(left, 0.05))


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset (linger 0), as a connection that dies does, not a clean FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)  # wakes the pump blocked reading it
    with contextlib.suppress(OSError):
        sock.close()
