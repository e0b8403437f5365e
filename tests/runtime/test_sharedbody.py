"""Bodies made of the stores' pieces: the gzip of the pieces is the gzip of the whole body, and a
plain body sent a batch at a time is the rendered body."""

from __future__ import annotations

import gzip
import http.client
import random

import pytest
from store_fakes import FakeCollector, WidgetGenerator, widget

from scaffold_metrics.runtime import MetricsStore, SelfMetrics, start_metrics_server
from scaffold_metrics.runtime.server import render_exposition
from scaffold_metrics.runtime.sharedbody import BATCH, GZIP_LEVEL, Pieces, gzip_chunks


@pytest.mark.parametrize("count", [0, 1, 7, 2047, 2048, 2049, 10_000])
def test_gzip_of_the_pieces_is_the_gzip_of_the_body(count: int) -> None:
    rng = random.Random(count)
    chunks = [
        b'widget_info{namespace="ns%d",name="w%d"} 1\n'
        % (rng.randint(0, 20), i)
        * rng.randint(0, 3)
        for i in range(count)
    ]
    body = b"".join(chunks)
    packed = gzip_chunks(chunks)
    assert packed == gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
    assert gzip.decompress(packed) == body


def test_a_piece_larger_than_a_batch_is_compressed_whole() -> None:
    big = bytes(random.Random(1).randbytes(3 << 20))  # incompressible, 3 MiB
    chunks = [b"# HELP x y\n", big, b"x 1\n"]
    assert gzip.decompress(gzip_chunks(chunks)) == b"".join(chunks)


@pytest.mark.parametrize("count", [0, 1, BATCH - 1, BATCH, 3 * BATCH + 5])
def test_pieces_come_out_in_order_a_batch_at_a_time(count: int) -> None:
    chunks = [b"line %d\n" % i for i in range(count)]
    body = Pieces(chunks)
    batches = list(body.batches())
    assert b"".join(batches) == body.joined() == b"".join(chunks)
    assert len(body) == sum(map(len, chunks))
    assert len(batches) == -(-count // BATCH)


def test_a_plain_scrape_sends_the_rendered_body_in_batches() -> None:
    """A plain body of several batches and many write slices is the rendered body, byte for
    byte, with its length; so is the gzip one, decompressed."""
    registry = SelfMetrics()
    store = MetricsStore(WidgetGenerator(), self_metrics=registry)
    store.replace([widget(f"w{i:05d}", namespace=f"ns{i % 7}") for i in range(6000)], None)
    server = start_metrics_server([FakeCollector(store)], 0, "127.0.0.1", self_metrics=registry)
    try:
        expected = render_exposition([store], registry, openmetrics=False)
        assert len(expected) > 4 * 64 * 1024
        for encoding in ("identity", "gzip"):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            conn.request("GET", "/metrics", headers={"Accept-Encoding": encoding})
            resp = conn.getresponse()
            got = resp.read()
            conn.close()
            assert resp.status == 200
            assert int(resp.getheader("Content-Length") or -1) == len(got)
            assert (gzip.decompress(got) if encoding == "gzip" else got) == expected
    finally:
        server.stop()
