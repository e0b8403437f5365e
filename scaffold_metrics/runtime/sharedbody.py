"""One rendered `/metrics` body shared by every scrape that asks while it is being made.

Rendering (and gzipping) a large store costs milliseconds and a full copy of the body; fifty
scrapers each doing their own would cost fifty copies and queue behind each other for the GIL.
Instead, a scrape that finds a render of its format in flight waits for it and sends the same
bytes; the next scrape after it finished starts a fresh one, so a body is never older than the
render that was running when its request arrived. The work runs on a small thread pool, off the
event loop, so probes and other connections are served meanwhile.

A gzip body is compressed from the pieces of the body (references to the stores' bytes) a
batch at a time, so the whole plain body, as large as every object's text together, never
exists for the scrapes that ask for gzip (Prometheus always does): with a million objects it
would be a transient gigabyte per scrape.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import Executor

GZIP_LEVEL = 1
_GZIP_BATCH = 2048  # pieces joined per compress call: about 400 KiB of object text

Render = Callable[[bool], Sequence[bytes]]  # openmetrics -> the pieces of the body


class SharedBodies:
    """Single-flight renders per (format, gzip): concurrent callers get the same bytes object."""

    def __init__(self, render: Render, executor: Executor) -> None:
        self._render = render
        self._executor = executor
        self._in_flight: dict[tuple[bool, bool], asyncio.Future[bytes]] = {}

    async def body(self, *, openmetrics: bool, compressed: bool) -> bytes:
        """The body for this format: joined to a render in flight, else a new one."""
        key = (openmetrics, compressed)
        future = self._in_flight.get(key)
        if future is None:
            future = asyncio.ensure_future(self._make(openmetrics, compressed))
            self._in_flight[key] = future
            future.add_done_callback(lambda done: self._forget(key, done))
        return await asyncio.shield(future)

    def _forget(self, key: tuple[bool, bool], done: asyncio.Future[bytes]) -> None:
        if self._in_flight.get(key) is done:
            del self._in_flight[key]
        if not done.cancelled():
            done.exception()  # retrieved: a failed render is reported to its waiters only

    async def _make(self, openmetrics: bool, compressed: bool) -> bytes:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._build, openmetrics, compressed)

    def _build(self, openmetrics: bool, compressed: bool) -> bytes:
        chunks = self._render(openmetrics)
        return gzip_chunks(chunks) if compressed else b"".join(chunks)


def gzip_chunks(chunks: Sequence[bytes]) -> bytes:
    """`gzip.compress(b"".join(chunks), GZIP_LEVEL, mtime=0)`, the same bytes, holding at most
    one batch of the plain text at a time."""
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # 31: a gzip header, mtime 0
    out = [
        compressor.compress(b"".join(chunks[i : i + _GZIP_BATCH]))
        for i in range(0, len(chunks), _GZIP_BATCH)
    ]
    out.append(compressor.flush())
    return b"".join(out)
