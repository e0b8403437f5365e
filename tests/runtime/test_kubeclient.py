"""Raw request helpers: error parsing, paths, line splitting, and the runtime's import hygiene."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

from scaffold_metrics.runtime.kubeclient import ApiError, Response, resource_path


def test_resource_paths() -> None:
    assert resource_path("cache.example.com", "v1alpha1", "memcacheds", None) == (
        "/apis/cache.example.com/v1alpha1/memcacheds"
    )
    assert resource_path("cache.example.com", "v1alpha1", "memcacheds", "ns") == (
        "/apis/cache.example.com/v1alpha1/namespaces/ns/memcacheds"
    )
    assert resource_path("", "v1", "configmaps", "ns") == "/api/v1/namespaces/ns/configmaps"


def test_plain_text_404_keeps_the_body() -> None:
    err = ApiError.from_status(404, b"404 page not found\n")
    assert (err.status, err.reason, err.message) == (404, "", "404 page not found")
    assert not err.expired


def test_json_status_is_read() -> None:
    body = json.dumps(
        {"kind": "Status", "status": "Failure", "message": "m", "reason": "Expired", "code": 410}
    ).encode()
    err = ApiError.from_status(410, body)
    assert (err.status, err.reason, err.message, err.expired) == (410, "Expired", "m", True)


class _Raw:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def stream(self, amt: int) -> Iterator[bytes]:
        yield from self.chunks


def test_lines_are_split_on_newlines_not_chunks() -> None:
    chunks = [b'{"a":', b'1}\n{"b"', b":2}\n\n", b'{"c":3}']
    lines = list(Response(_Raw(chunks)).iter_lines())
    assert [json.loads(line) for line in lines] == [{"a": 1}, {"b": 2}, {"c": 3}]


def test_runtime_collectors_import_no_scaffolder_dependencies() -> None:
    code = (
        "import sys, scaffold_metrics.runtime.collector\n"
        "bad = {'click', 'jinja2', 'black', 'ruamel'} & {m.split('.')[0] for m in sys.modules}\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
