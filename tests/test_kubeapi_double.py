"""Keep the kube-apiserver test double faithful to the real server's recorded exchanges.

Each test compares what the double answers with a transcript in
`tests/data/kube-api-transcripts/` (captured from kube-apiserver v1.36.2): status codes,
content types, body shapes, 410 inside a 200 watch, bookmark shape and chunk framing.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubeapi_double import LAST_APPLIED, MEMCACHED, KubeApiDouble

TRANSCRIPTS = Path(__file__).parent / "data" / "kube-api-transcripts"
BASE = "/apis/cache.example.com/v1alpha1"


def transcript(name: str) -> tuple[int, dict[str, str], list[str]]:
    """(status, headers, body lines without the `[+ 1.0s] ` prefix) of one transcript."""
    text = (TRANSCRIPTS / name).read_text()
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("HTTP/1.1 "))
    status = int(lines[start].split()[1])
    headers: dict[str, str] = {}
    i = start + 1
    while lines[i].strip():
        key, _, value = lines[i].partition(":")
        headers[key.strip().lower()] = value.strip()
        i += 1
    body = [re.sub(r"^\[\+\s*[\d.]+s\] ", "", line) for line in lines[i + 1 :]]
    return status, headers, body


def transcript_events(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in transcript(name)[2] if line.startswith("{")]


def memcached(name: str, namespace: str, size: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "cache.example.com/v1alpha1",
        "kind": "Memcached",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"size": size},
    }


@pytest.fixture
def double() -> Iterator[KubeApiDouble]:
    with KubeApiDouble(bookmark_interval=0.4) as d:
        for ns in ("default", "other"):
            for i in range(3):
                d.create(memcached(f"example-{i}", ns, i + 1))
        yield d


def get(double: KubeApiDouble, path: str, timeout: float = 10.0) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", double.port, timeout=timeout)
    conn.request("GET", path, headers={"Accept": "application/json"})
    return conn.getresponse()


def events(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in body.split(b"\n") if line.strip()]


def test_paged_list_shape_matches_transcript(double: KubeApiDouble) -> None:
    status, headers, body = transcript("01-list-all-namespaces-limit.txt")
    real = json.loads(body[0])
    resp = get(double, f"{BASE}/memcacheds?limit=4")
    assert resp.status == status == 200
    assert resp.headers["Content-Type"] == headers["content-type"]
    assert resp.headers["Transfer-Encoding"] == headers["transfer-encoding"] == "chunked"
    page = json.loads(resp.read())
    assert page.keys() == real.keys()
    assert page["kind"] == real["kind"] == "MemcachedList"
    assert page["metadata"].keys() == real["metadata"].keys()
    assert page["metadata"]["remainingItemCount"] == real["metadata"]["remainingItemCount"] == 2
    assert len(page["items"]) == 4
    snapshot_rv = int(page["metadata"]["resourceVersion"])
    assert all(int(o["metadata"]["resourceVersion"]) <= snapshot_rv for o in page["items"])
    # the object shape, managedFields and last-applied annotation included
    ours, theirs = page["items"][0], real["items"][0]
    assert ours.keys() == theirs.keys()
    assert ours["metadata"].keys() == theirs["metadata"].keys()
    assert (
        ours["metadata"]["annotations"][LAST_APPLIED]
        == theirs["metadata"]["annotations"][LAST_APPLIED]
    )
    assert (
        ours["metadata"]["managedFields"][0].keys() == theirs["metadata"]["managedFields"][0].keys()
    )
    assert [o["metadata"]["name"] for o in page["items"]] == [
        o["metadata"]["name"] for o in real["items"]
    ]

    _, _, body2 = transcript("02-list-continue.txt")
    real2 = json.loads(body2[0])
    token = page["metadata"]["continue"]
    double.create(memcached("late", "default"))  # after the snapshot: not in page 2
    page2 = json.loads(get(double, f"{BASE}/memcacheds?limit=4&continue={token}").read())
    assert page2["metadata"] == {"continue": "", "resourceVersion": str(snapshot_rv)}
    assert page2["metadata"].keys() == real2["metadata"].keys()
    assert [o["metadata"]["name"] for o in page2["items"]] == ["example-1", "example-2"]


def test_namespaced_list(double: KubeApiDouble) -> None:
    _, _, body = transcript("03-list-namespaced.txt")
    real = json.loads(body[0])
    page = json.loads(get(double, f"{BASE}/namespaces/default/memcacheds").read())
    assert page.keys() == real.keys()
    assert page["metadata"].keys() == real["metadata"].keys()
    assert {o["metadata"]["namespace"] for o in page["items"]} == {"default"}
    assert len(page["items"]) == 3


def test_not_served_resource_is_plain_text_404(double: KubeApiDouble) -> None:
    status, headers, body = transcript("04-not-found-resource.txt")
    resp = get(double, "/apis/nothere.example.com/v1/things")
    data = resp.read()
    assert resp.status == status == 404
    assert resp.headers["Content-Type"] == headers["content-type"]
    assert data.decode().strip() == body[0].strip() == "404 page not found"
    assert len(data) == int(headers["content-length"])
    double.uninstall_crd(MEMCACHED.plural)
    assert get(double, f"{BASE}/memcacheds").status == 404
    double.install_crd(MEMCACHED.plural)
    assert get(double, f"{BASE}/memcacheds").status == 200


def test_forbidden_is_a_json_status_naming_user_verb_and_scope(double: KubeApiDouble) -> None:
    status, headers, body = transcript("05-unauthenticated.txt")
    double.forbid(None)
    resp = get(double, f"{BASE}/memcacheds")
    assert resp.status == status == 403
    assert resp.headers["Content-Type"] == headers["content-type"]
    assert json.loads(resp.read()) == json.loads(body[0])
    # the namespace itself is not forbidden
    assert get(double, f"{BASE}/namespaces/default/memcacheds").status == 200
    double.forbid("default")
    status_obj = json.loads(get(double, f"{BASE}/namespaces/default/memcacheds?watch=1").read())
    assert status_obj["message"].endswith(
        'cannot watch resource "memcacheds" in API group "cache.example.com" '
        'in the namespace "default"'
    )
    double.allow("default")
    double.allow(None)
    assert get(double, f"{BASE}/memcacheds").status == 200


def test_watch_from_list_rv_streams_changes_and_bookmarks(double: KubeApiDouble) -> None:
    real = transcript_events("09-watch-from-list-rv-with-bookmarks.txt")
    rv = json.loads(get(double, f"{BASE}/memcacheds?limit=1").read())["metadata"]["resourceVersion"]
    obj = double.create(memcached("example-9", "default"))
    obj["spec"] = {"size": 2}
    double.update(obj)
    obj["status"] = {"conditions": [{"type": "Available", "status": "True"}]}
    double.update_status(obj)
    double.delete(obj)
    started = time.monotonic()
    resp = get(
        double, f"{BASE}/memcacheds?watch=1&resourceVersion={rv}&allowWatchBookmarks=true"
        "&timeoutSeconds=1"
    )  # fmt: skip
    assert resp.status == 200
    assert resp.headers["Transfer-Encoding"] == "chunked"
    got = events(resp.read())
    assert 0.9 < time.monotonic() - started < 3, "the server ends the stream at timeoutSeconds"
    types = [e["type"] for e in got]
    assert (
        types[:4] == [e["type"] for e in real[:4]] == ["ADDED", "MODIFIED", "MODIFIED", "DELETED"]
    )
    assert [e["object"]["metadata"]["generation"] for e in got[:4]] == [1, 2, 2, 2]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in got[:4]]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)
    bookmarks = got[4:]
    assert bookmarks and all(e["type"] == "BOOKMARK" for e in bookmarks)
    real_bookmark = real[-1]
    for b in bookmarks:
        assert b.keys() == real_bookmark.keys()
        assert b["object"].keys() == real_bookmark["object"].keys()
        assert b["object"]["metadata"].keys() == {"resourceVersion"}
    assert bookmarks[-1]["object"]["metadata"]["resourceVersion"] == str(rvs[-1])


def test_watch_too_old_rv_is_410_inside_200(double: KubeApiDouble) -> None:
    status, _, _ = transcript("10-watch-too-old-rv.txt")
    real = transcript_events("10-watch-too-old-rv.txt")
    double.compact()
    horizon = double.resource_version
    resp = get(double, f"{BASE}/memcacheds?watch=1&resourceVersion=1&allowWatchBookmarks=true")
    assert resp.status == status == 200
    got = events(resp.read())  # the stream ends after the one event
    assert len(got) == len(real) == 1
    assert got[0].keys() == real[0].keys()
    assert got[0]["object"].keys() == real[0]["object"].keys()
    assert got[0]["object"]["code"] == 410 and got[0]["object"]["reason"] == "Expired"
    assert got[0]["object"]["message"] == f"too old resource version: 1 ({horizon})"
    assert re.fullmatch(r"too old resource version: \d+ \(\d+\)", real[0]["object"]["message"])


def test_expired_continue_token_is_http_410(double: KubeApiDouble) -> None:
    page = json.loads(get(double, f"{BASE}/memcacheds?limit=2").read())
    double.create(memcached("x", "default"))
    double.compact()
    resp = get(double, f"{BASE}/memcacheds?limit=2&continue={page['metadata']['continue']}")
    assert resp.status == 410
    assert resp.headers["Content-Type"] == "application/json"
    status = json.loads(resp.read())
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "Expired", 410)


def test_send_initial_events_ends_with_annotated_bookmark(double: KubeApiDouble) -> None:
    real = transcript_events("11-watch-send-initial-events.txt")
    resp = get(
        double, f"{BASE}/namespaces/default/memcacheds?watch=1&sendInitialEvents=true"
        "&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1"
    )  # fmt: skip
    got = events(resp.read())
    assert [e["type"] for e in got[:4]] == [e["type"] for e in real[:4]]
    assert got[3]["object"]["metadata"].keys() == real[3]["object"]["metadata"].keys()
    assert got[3]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_resource_version_zero_sends_synthetic_added(double: KubeApiDouble) -> None:
    real = transcript_events("12-watch-timeout-no-events.txt")
    resp = get(
        double, f"{BASE}/namespaces/other/memcacheds?watch=1&resourceVersion=0&timeoutSeconds=1"
    )
    got = events(resp.read())
    assert [e["type"] for e in got] == [e["type"] for e in real] == ["ADDED"] * 3
    assert [e["object"]["metadata"]["name"] for e in got] == [
        e["object"]["metadata"]["name"] for e in real
    ]


def raw_chunks(double: KubeApiDouble, path: str) -> list[bytes]:
    """The HTTP chunks of a response body, as framed on the wire."""
    with socket.create_connection(("127.0.0.1", double.port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        f = sock.makefile("rb")
        while f.readline() not in (b"\r\n", b""):
            pass
        chunks = []
        while True:
            size = int(f.readline().strip(), 16)
            if size == 0:
                return chunks
            chunks.append(f.read(size))
            assert f.read(2) == b"\r\n"


def test_chunk_boundaries_do_not_follow_event_lines(double: KubeApiDouble) -> None:
    text = (TRANSCRIPTS / "13-raw-chunk-framing.txt").read_text()
    assert "creationTimes\n" in text  # the real server split an event inside a JSON string
    chunks = raw_chunks(
        double, f"{BASE}/namespaces/other/memcacheds?watch=1&resourceVersion=0&timeoutSeconds=1"
    )
    assert any(not c.endswith(b"\n") for c in chunks), "some chunk ends mid-event"
    assert [e["type"] for e in events(b"".join(chunks))] == ["ADDED"] * 3


def test_drop_connections_truncates_open_watches(double: KubeApiDouble) -> None:
    resp = get(double, f"{BASE}/memcacheds?watch=1&resourceVersion=0&timeoutSeconds=30")
    resp.read1(1)  # the stream is open
    double.drop_connections()
    with pytest.raises((http.client.IncompleteRead, ConnectionError)):
        resp.read()


def test_stall_sends_nothing_not_even_bookmarks(double: KubeApiDouble) -> None:
    rv = double.resource_version
    double.stall_watches(1.0)
    resp = get(
        double, f"{BASE}/memcacheds?watch=1&resourceVersion={rv}&allowWatchBookmarks=true"
        "&timeoutSeconds=30", timeout=0.7,
    )  # fmt: skip
    with pytest.raises(TimeoutError):
        resp.read1(1)


def test_request_log_records_queries(double: KubeApiDouble) -> None:
    get(double, f"{BASE}/memcacheds?limit=7").read()
    assert double.requests[-1].path == f"{BASE}/memcacheds"
    assert double.requests[-1].query == {"limit": "7"}
    assert double.requests[-1].status == 200
    assert double.list_requests()[-1] is double.requests[-1]
