"""The gzip body compressed piece by piece is the very gzip of the whole body."""

from __future__ import annotations

import gzip
import random

import pytest

from scaffold_metrics.runtime.sharedbody import GZIP_LEVEL, gzip_chunks


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
