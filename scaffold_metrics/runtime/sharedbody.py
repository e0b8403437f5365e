"""One rendered `/metrics` body shared by every scrape that asks while it is being made.

Rendering (and gzipping) a large store costs milliseconds and a full copy of the body; fifty
scrapers each doing their own would cost fifty copies and queue behind each other for the GIL.
Instead, a scrape that finds a render of its format in flight waits for it and sends the same
bytes; the next scrape after it finished starts a fresh one, so a body is never older than the
render that was running when its request arrived. The work runs on a small thread pool, off the
event loop, so probes and other connections are served meanwhile.

A gzip body is compressed from the pieces of the body (references to the stores' bytes) a
batch at a time, and a plain body is handed out as those pieces (`Pieces`), which the server
sends a batch at a time: the whole plain body, as large as every object's text together (with
a million objects, a transient gigabyte per scrape), never exists.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor

GZIP_LEVEL = 1
BATCH = 2048  # pieces joined at a time (compressed or sent): about 400 KiB of object text

Render = Callable[[bool], Sequence[bytes]]  # openmetrics -> the pieces of the body


class Pieces:
    """A body as its pieces in order (references to immutable bytes) and its length in bytes."""

    __slots__ = ("length", "pieces")

    def __init__(self, pieces: Sequence[bytes]) -> None:
        self.pieces = pieces
        self.length = sum(map(len, pieces))

    def __len__(self) -> int:
        return self.length

    def batches(self) -> Iterator[bytes]:
        """The body in order, `BATCH` pieces joined at a time (never the whole of it)."""
        return batches(self.pieces)

    def joined(self) -> bytes:
        """The whole body as one bytes (for small bodies and tests)."""
        return b"".join(self.pieces)


Body = bytes | Pieces


def batches(pieces: Sequence[bytes]) -> Iterator[bytes]:
    """`pieces` in order, `BATCH` of them joined at a time."""
    for i in range(0, len(pieces), BATCH):
        yield b"".join(pieces[i : i + BATCH])


class SharedBodies:
    """Single-flight renders per (format, gzip): concurrent callers get the same body object
    (gzip bytes, or the plain body's `Pieces`)."""

    def __init__(self, render: Render, executor: Executor) -> None:
        self._render = render
        self._executor = executor
        self._in_flight: dict[tuple[bool, bool], asyncio.Future[Body]] = {}

    async def body(self, *, openmetrics: bool, compressed: bool) -> Body:
        """The body for this format: joined to a render in flight, else a new one."""
        key = (openmetrics, compressed)
        future = self._in_flight.get(key)
        if future is None:
            future = asyncio.ensure_future(self._make(openmetrics, compressed))
            self._in_flight[key] = future
            future.add_done_callback(lambda done: self._forget(key, done))
        return await asyncio.shield(future)

    def _forget(self, key: tuple[bool, bool], done: asyncio.Future[Body]) -> None:
        if self._in_flight.get(key) is done:
            del self._in_flight[key]
        if not done.cancelled():
            done.exception()  # retrieved: a failed render is reported to its waiters only

    async def _make(self, openmetrics: bool, compressed: bool) -> Body:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._build, openmetrics, compressed)

    def _build(self, openmetrics: bool, compressed: bool) -> Body:
        chunks = self._render(openmetrics)
        return gzip_chunks(chunks) if compressed else Pieces(chunks)


def gzip_chunks(chunks: Sequence[bytes]) -> bytes:
    """`gzip.compress(b"".join(chunks), GZIP_LEVEL, mtime=0)`, the same bytes, holding at most
    one batch of the plain text at a time."""
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # 31: a gzip header, mtime 0
    out = [compressor.compress(batch) for batch in batches(chunks)]
    out.append(compressor.flush())
    return b"".join(out)
