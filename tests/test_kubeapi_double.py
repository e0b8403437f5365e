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
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubeapi_double import (
    LAST_APPLIED,
    MEMCACHED,
    PODS,
    READER_TOKEN,
    READER_USER,
    STATEFULSETS,
    KubeApiDouble,
    RawJson,
    ResourceSpec,
)
from kubernetes import client

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


def reader_get(double: KubeApiDouble, path: str) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", double.port, timeout=10)
    conn.request("GET", path, headers={"Authorization": f"Bearer {READER_TOKEN}"})
    return conn.getresponse()


def test_rbac_objects_decide_for_the_reader(double: KubeApiDouble) -> None:
    """Role/ClusterRole rules bound to a User decide 403 for `READER_TOKEN`, in the shape of
    the real server's Status (transcript 06, another user)."""
    status, headers, body = transcript("06-forbidden-cluster-scope.txt")
    resp = reader_get(double, f"{BASE}/memcacheds")
    assert resp.status == status == 403
    assert resp.headers["Content-Type"] == headers["content-type"]
    want = json.loads(body[0].replace("system:serviceaccount:default:limited", READER_USER))
    assert json.loads(resp.read()) == want
    rbac = client.RbacAuthorizationV1Api(double.admin_api_client())
    rule = {"apiGroups": [MEMCACHED.group], "resources": [MEMCACHED.plural], "verbs": ["list"]}
    rbac.create_cluster_role({"metadata": {"name": "lister"}, "rules": [rule]})
    subject = {"kind": "User", "name": READER_USER, "apiGroup": "rbac.authorization.k8s.io"}
    ref = {"kind": "ClusterRole", "name": "lister", "apiGroup": "rbac.authorization.k8s.io"}
    rbac.create_namespaced_role_binding(
        "default", {"metadata": {"name": "b"}, "roleRef": ref, "subjects": [subject]}
    )
    ns_path = f"{BASE}/namespaces/default/memcacheds"
    assert reader_get(double, ns_path).status == 200  # a RoleBinding grants in its namespace
    assert reader_get(double, f"{BASE}/namespaces/other/memcacheds").status == 403
    assert reader_get(double, f"{BASE}/memcacheds").status == 403  # not at the cluster scope
    assert reader_get(double, ns_path + "?watch=1").status == 403  # only the verbs listed
    other = {**subject, "name": "someone-else"}
    rbac.create_cluster_role_binding(
        {"metadata": {"name": "c"}, "roleRef": ref, "subjects": [other]}
    )
    assert reader_get(double, f"{BASE}/memcacheds").status == 403  # bound to another user
    rbac.delete_namespaced_role_binding("b", "default")
    assert reader_get(double, ns_path).status == 403  # revoked
    rbac.create_cluster_role_binding(
        {"metadata": {"name": "d"}, "roleRef": ref, "subjects": [subject]}
    )
    assert reader_get(double, f"{BASE}/memcacheds").status == 200
    assert reader_get(double, ns_path).status == 200
    with pytest.raises(client.exceptions.ApiException) as exc:
        rbac.delete_cluster_role("missing")
    assert exc.value.status == 404


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
    # a test's own setup, as the cluster admin, is neither refused nor logged
    logged = len(double.requests)
    admin = client.CustomObjectsApi(double.admin_api_client())
    got = admin.list_namespaced_custom_object(
        MEMCACHED.group, MEMCACHED.version, "default", MEMCACHED.plural
    )
    assert len(got["items"]) == 3
    assert len(double.requests) == logged
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


STREAMING_LIST = "watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"


def test_send_initial_events_ends_with_annotated_bookmark(double: KubeApiDouble) -> None:
    real = transcript_events("11-watch-send-initial-events.txt")
    _, real_headers, _ = transcript("11-watch-send-initial-events.txt")
    rv = double.resource_version
    threading.Timer(0.3, lambda: double.create(memcached("example-9", "default"))).start()
    resp = get(
        double,
        f"{BASE}/namespaces/default/memcacheds?{STREAMING_LIST}&allowWatchBookmarks=true"
        "&timeoutSeconds=1",
    )
    assert resp.status == 200
    assert resp.headers["Content-Type"] == real_headers["content-type"]
    assert resp.headers["Transfer-Encoding"] == real_headers["transfer-encoding"]
    got = events(resp.read())
    # ADDED of the state, the end bookmark, the live ADDED, then plain bookmarks only
    assert [e["type"] for e in got[:5]] == [e["type"] for e in real[:5]]
    assert all(e["type"] == "BOOKMARK" for e in got[5:]) and got[5:]
    names = [e["object"]["metadata"]["name"] for e in got[:3]]
    assert names == [e["object"]["metadata"]["name"] for e in real[:3]]
    for ours, theirs in zip(got[:3], real[:3], strict=True):
        assert ours.keys() == theirs.keys()
        assert ours["object"].keys() == theirs["object"].keys()
        assert ours["object"]["metadata"].keys() == theirs["object"]["metadata"].keys()
    # the end bookmark: exactly the real one's fields, at the state's resourceVersion
    end = got[3]["object"]
    assert json.dumps(end) == json.dumps(
        {**real[3]["object"], "metadata": {**real[3]["object"]["metadata"],
                                           "resourceVersion": str(rv)}}
    )  # fmt: skip
    assert all(int(e["object"]["metadata"]["resourceVersion"]) <= rv for e in got[:3])
    assert int(got[4]["object"]["metadata"]["resourceVersion"]) == rv + 1
    for plain in got[5:]:
        assert plain["object"]["metadata"].keys() == real[5]["object"]["metadata"].keys()


def test_send_initial_events_without_bookmarks_has_no_end_marker(double: KubeApiDouble) -> None:
    """The end bookmark is a bookmark: the real server sends it only when they are allowed."""
    resp = get(double, f"{BASE}/namespaces/other/memcacheds?{STREAMING_LIST}&timeoutSeconds=1")
    assert [e["type"] for e in events(resp.read())] == ["ADDED"] * 3


def test_send_initial_events_false_starts_from_now(double: KubeApiDouble) -> None:
    threading.Timer(0.3, lambda: double.create(memcached("late", "other"))).start()
    resp = get(
        double,
        f"{BASE}/namespaces/other/memcacheds?watch=1&sendInitialEvents=false"
        "&resourceVersionMatch=NotOlderThan&timeoutSeconds=1",
    )
    got = events(resp.read())
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in got] == [("ADDED", "late")]


def invalid(message: str, *causes: tuple[str, str, str]) -> dict[str, Any]:
    """The 422 Status of `errors.NewInvalid` for ListOptions, as kube-apiserver sends it."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f'ListOptions.meta.k8s.io "" is invalid: {message}',
        "reason": "Invalid",
        "details": {
            "group": "meta.k8s.io",
            "kind": "ListOptions",
            "causes": [{"reason": r, "message": m, "field": f} for f, r, m in causes],
        },
        "code": 422,
    }


NEEDS_MATCH = "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
NEEDS_GATE = (
    "Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is "
    "enabled"
)


@pytest.mark.parametrize(
    ("query", "want"),
    [
        (
            "watch=1&sendInitialEvents=true",
            invalid(f"resourceVersionMatch: {NEEDS_MATCH}",
                    ("resourceVersionMatch", "FieldValueForbidden", NEEDS_MATCH)),
        ),
        (
            "watch=1&sendInitialEvents=true&resourceVersionMatch=Exact",
            invalid(
                f"[resourceVersionMatch: {NEEDS_MATCH}, resourceVersionMatch: Unsupported "
                'value: "Exact": supported values: "NotOlderThan"]',
                ("resourceVersionMatch", "FieldValueForbidden", NEEDS_MATCH),
                ("resourceVersionMatch", "FieldValueNotSupported",
                 'Unsupported value: "Exact": supported values: "NotOlderThan"'),
            ),
        ),
        (
            "watch=1&resourceVersionMatch=NotOlderThan",
            invalid(
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch "
                "unless sendInitialEvents is provided",
                ("resourceVersionMatch", "FieldValueForbidden", "Forbidden: "
                 "resourceVersionMatch is forbidden for watch unless sendInitialEvents is "
                 "provided"),
            ),
        ),
        (
            "sendInitialEvents=true",
            invalid("sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list",
                    ("sendInitialEvents", "FieldValueForbidden",
                     "Forbidden: sendInitialEvents is forbidden for list")),
        ),
    ],
)  # fmt: skip
def test_list_options_are_validated_as_the_real_server_does(
    double: KubeApiDouble, query: str, want: dict[str, Any]
) -> None:
    resp = get(double, f"{BASE}/memcacheds?{query}&timeoutSeconds=1")
    assert resp.status == 422
    assert resp.headers["Content-Type"] == "application/json"
    assert json.loads(resp.read()) == want


def test_watch_list_disabled_refuses_streaming_lists() -> None:
    """The WatchList feature gate off (the default of v1.33): 422 for sendInitialEvents."""
    with KubeApiDouble(watch_list="disabled") as double:
        double.create(memcached("example-0", "default"))
        resp = get(double, f"{BASE}/memcacheds?{STREAMING_LIST}&allowWatchBookmarks=true")
        assert resp.status == 422
        assert json.loads(resp.read()) == invalid(
            f"sendInitialEvents: {NEEDS_GATE}", ("sendInitialEvents", "FieldValueForbidden",
                                                 NEEDS_GATE)
        )  # fmt: skip
        assert double.watch_requests()[0].status == 422
        plain = get(double, f"{BASE}/memcacheds?watch=1&resourceVersion=0&timeoutSeconds=1")
        assert [e["type"] for e in events(plain.read())] == ["ADDED"]


def test_servers_before_watch_list_refuse_resource_version_match_on_a_watch() -> None:
    """v1.19-v1.26 (`watch_list="legacy"`) ignore sendInitialEvents and refuse the rest."""
    with KubeApiDouble(watch_list="legacy") as double:
        resp = get(double, f"{BASE}/memcacheds?{STREAMING_LIST}&allowWatchBookmarks=true")
        assert resp.status == 422
        on_watch = "Forbidden: resourceVersionMatch is forbidden for watch"
        needs_rv = "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"
        assert json.loads(resp.read()) == invalid(
            f"[resourceVersionMatch: {on_watch}, resourceVersionMatch: {needs_rv}]",
            ("resourceVersionMatch", "FieldValueForbidden", on_watch),
            ("resourceVersionMatch", "FieldValueForbidden", needs_rv),
        )


def test_watch_list_unknown_is_a_plain_watch_without_end_marker() -> None:
    """A server that ignores the parameters: a watch from now, ADDED of the current state as
    for any watch without a resourceVersion, and plain bookmarks only."""
    with KubeApiDouble(watch_list="unknown", bookmark_interval=0.3) as double:
        double.create(memcached("example-0", "default"))
        resp = get(
            double,
            f"{BASE}/memcacheds?{STREAMING_LIST}&allowWatchBookmarks=true&timeoutSeconds=1",
        )
        assert resp.status == 200
        got = events(resp.read())
        assert got[0]["type"] == "ADDED"
        assert got[1:] and all(e["type"] == "BOOKMARK" for e in got[1:])
        assert all("annotations" not in e["object"]["metadata"] for e in got[1:])
        assert double.watch_requests()[0].query["sendInitialEvents"] == "true", "logged as sent"


def test_cut_initial_events_breaks_the_stream_before_the_end_bookmark(
    double: KubeApiDouble,
) -> None:
    double.cut_initial_events(after=2)
    resp = get(double, f"{BASE}/memcacheds?{STREAMING_LIST}&allowWatchBookmarks=true")
    with pytest.raises(http.client.IncompleteRead) as cut:
        resp.read()
    assert [e["type"] for e in events(cut.value.partial)] == ["ADDED", "ADDED"]
    again = get(
        double, f"{BASE}/memcacheds?{STREAMING_LIST}&allowWatchBookmarks=true&timeoutSeconds=1"
    )
    assert [e["type"] for e in events(again.read())][:7] == ["ADDED"] * 6 + ["BOOKMARK"]


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
    # the burst of initial events fills the server's 2048-byte buffer, chunk after chunk
    real_sizes = [int(x, 16) for x in re.findall(r"^\[\+\s*[\d.]+s\] ([0-9a-f]+)$", text, re.M)]
    assert real_sizes[0] == 2048 and real_sizes[-1] == 0
    assert [len(c) for c in chunks[:-1]] == [2048] * (len(chunks) - 1)


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


# -- discovery and the writes kopf makes (no transcripts: shapes follow kube-apiserver's types) --


def get_json(double: KubeApiDouble, path: str) -> Any:
    resp = get(double, path)
    assert resp.status == 200, (path, resp.status)
    assert resp.headers["Content-Type"] == "application/json"
    return json.loads(resp.read())


def request(
    double: KubeApiDouble,
    method: str,
    path: str,
    body: Any,
    content_type: str = "application/merge-patch+json",
) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", double.port, timeout=10)
    conn.request(method, path, json.dumps(body), headers={"Content-Type": content_type})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    ctype = resp.headers["Content-Type"]
    return resp.status, json.loads(data) if ctype == "application/json" else data


RESOURCE_KEYS = {"name", "singularName", "namespaced", "kind", "verbs"}


def test_core_discovery(double: KubeApiDouble) -> None:
    versions = get_json(double, "/api")
    assert versions["kind"] == "APIVersions"
    assert versions["versions"] == ["v1"]
    assert versions["serverAddressByClientCIDRs"][0].keys() == {"clientCIDR", "serverAddress"}
    core = get_json(double, "/api/v1")
    assert (core["kind"], core["groupVersion"]) == ("APIResourceList", "v1")
    by_name = {r["name"]: r for r in core["resources"]}
    assert {"namespaces", "namespaces/status", "events"} <= by_name.keys()
    assert all(r.keys() >= RESOURCE_KEYS for r in core["resources"])
    assert by_name["namespaces"]["namespaced"] is False
    assert by_name["events"]["namespaced"] is True
    assert {"create", "list", "watch"} <= set(by_name["events"]["verbs"])


def test_group_discovery_lists_served_resources(double: KubeApiDouble) -> None:
    groups = get_json(double, "/apis")
    assert (groups["kind"], groups["apiVersion"]) == ("APIGroupList", "v1")
    gv = {"groupVersion": "cache.example.com/v1alpha1", "version": "v1alpha1"}
    assert groups["groups"] == [
        {"name": "cache.example.com", "versions": [gv], "preferredVersion": gv}
    ]
    group = get_json(double, "/apis/cache.example.com")
    assert (group["kind"], group["name"], group["preferredVersion"]) == (
        "APIGroup",
        "cache.example.com",
        gv,
    )
    resources = get_json(double, BASE)
    assert resources.keys() == {"kind", "apiVersion", "groupVersion", "resources"}
    assert (resources["kind"], resources["groupVersion"]) == (
        "APIResourceList",
        "cache.example.com/v1alpha1",
    )
    main, status = resources["resources"]
    assert main == {
        "name": "memcacheds",
        "singularName": "memcached",
        "namespaced": True,
        "kind": "Memcached",
        "verbs": [
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "create",
            "update",
            "watch",
        ],
    }
    assert status == {
        "name": "memcacheds/status",
        "singularName": "",
        "namespaced": True,
        "kind": "Memcached",
        "verbs": ["get", "patch", "update"],
    }
    assert {r.verb for r in double.requests} == {"discovery"}


def test_discovery_follows_crd_install(double: KubeApiDouble) -> None:
    _, headers, body = transcript("04-not-found-resource.txt")
    double.uninstall_crd(MEMCACHED.plural)
    assert get_json(double, "/apis")["groups"] == []
    for path in (BASE, "/apis/cache.example.com", "/apis/nothere.example.com/v1"):
        resp = get(double, path)
        assert resp.status == 404
        assert resp.headers["Content-Type"] == headers["content-type"]
        assert resp.read().decode().strip() == body[0].strip()
    double.install_crd(MEMCACHED.plural)
    assert [r["name"] for r in get_json(double, BASE)["resources"]] == [
        "memcacheds",
        "memcacheds/status",
    ]


def test_preferred_version_follows_kubernetes_version_priority() -> None:
    specs = [
        ResourceSpec("multi.example.com", v, "things", "Thing", namespaced=False)
        for v in ("v1alpha1", "v1", "v1beta1", "v2beta1")
    ]
    with KubeApiDouble(specs) as d:
        (group,) = get_json(d, "/apis")["groups"]
        assert [v["version"] for v in group["versions"]] == ["v1", "v2beta1", "v1beta1", "v1alpha1"]
        assert group["preferredVersion"]["version"] == "v1"
        (main,) = get_json(d, "/apis/multi.example.com/v1beta1")["resources"][:1]
        assert (main["name"], main["namespaced"]) == ("things", False)


def test_get_one_object(double: KubeApiDouble) -> None:
    obj = get_json(double, f"{BASE}/namespaces/other/memcacheds/example-1")
    assert obj == double.objects()[4]
    resp = get(double, f"{BASE}/namespaces/other/memcacheds/nope")
    assert resp.status == 404
    status = json.loads(resp.read())
    assert (status["kind"], status["reason"]) == ("Status", "NotFound")
    assert status["message"] == 'memcacheds.cache.example.com "nope" not found'


def watch_after(double: KubeApiDouble, rv: int) -> list[dict[str, Any]]:
    resp = get(double, f"{BASE}/memcacheds?watch=1&resourceVersion={rv}&timeoutSeconds=1")
    return events(resp.read())


def test_merge_patch_follows_the_servers_rules(double: KubeApiDouble) -> None:
    path = f"{BASE}/namespaces/default/memcacheds/example-0"
    before = double.objects()[0]
    rv0 = double.resource_version

    # metadata: applied, MODIFIED, generation unchanged; null deletes a key
    status, obj = request(double, "PATCH", path, {"metadata": {"annotations": {"a": "1"}}})
    assert status == 200
    assert obj["metadata"]["annotations"]["a"] == "1"
    assert obj["metadata"]["generation"] == before["metadata"]["generation"]
    assert int(obj["metadata"]["resourceVersion"]) == rv0 + 1
    status, obj = request(double, "PATCH", path, {"metadata": {"annotations": {"a": None}}})
    assert "a" not in obj["metadata"]["annotations"]
    # spec: generation counts it; status on the main resource is ignored (status subresource)
    status, obj = request(double, "PATCH", path, {"spec": {"size": 9}, "status": {"x": 1}})
    assert (obj["spec"], obj["metadata"]["generation"]) == ({"size": 9}, 2)
    assert "status" not in obj
    # /status: only status changes
    status, obj = request(double, "PATCH", f"{path}/status", {"status": {"x": 1}, "spec": {}})
    assert (status, obj["status"], obj["spec"], obj["metadata"]["generation"]) == (
        200,
        {"x": 1},
        {"size": 9},
        2,
    )
    # system metadata stays; a patch that changes nothing writes nothing
    rv = double.resource_version
    status, same = request(double, "PATCH", path, {"metadata": {"uid": "x", "generation": 7}})
    assert status == 200 and same == obj and double.resource_version == rv
    seen = [
        (e["type"], e["object"]["metadata"]["resourceVersion"]) for e in watch_after(double, rv0)
    ]
    assert seen == [("MODIFIED", str(rv0 + i)) for i in range(1, 5)]

    # optimistic concurrency, missing objects, other patch types
    status, doc = request(double, "PATCH", path, {"metadata": {"resourceVersion": "1"}})
    assert (status, doc["reason"], doc["code"]) == (409, "Conflict", 409)
    status, doc = request(double, "PATCH", f"{BASE}/namespaces/default/memcacheds/nope", {})
    assert (status, doc["reason"]) == (404, "NotFound")
    status, doc = request(double, "PATCH", path, [], "application/json-patch+json")
    assert (status, doc["reason"]) == (415, "UnsupportedMediaType")
    assert double.resource_version == rv
    assert [r.verb for r in double.requests if r.method == "PATCH"] == ["patch"] * 8


def test_post_event_creates_and_echoes_it(double: KubeApiDouble) -> None:
    rv = double.resource_version
    body = {
        "metadata": {"namespace": "default", "generateName": "kopf-event-"},
        "type": "Normal",
        "reason": "Logging",
        "message": "hello",
        "involvedObject": {"apiVersion": MEMCACHED.api_version, "kind": "Memcached"},
    }
    status, event = request(
        double, "POST", "/api/v1/namespaces/default/events", body, "application/json"
    )
    assert status == 201
    assert (event["apiVersion"], event["kind"], event["message"]) == ("v1", "Event", "hello")
    meta = event["metadata"]
    assert re.fullmatch(r"kopf-event-[a-z0-9]{5}", meta["name"])
    assert meta["resourceVersion"] == str(rv + 1) and meta["uid"] and meta["creationTimestamp"]
    assert double.posted_events == [event]
    status, doc = request(
        double, "POST", "/api/v1/namespaces/other/events", body, "application/json"
    )
    assert (status, doc["reason"]) == (400, "BadRequest")  # namespace mismatch
    assert watch_after(double, rv) == [], "Events are not memcacheds"


def test_post_and_delete_objects_follow_the_servers_rules(double: KubeApiDouble) -> None:
    rv = double.resource_version
    body = memcached("made", "default", 4) | {"status": {"nodes": ["x"]}}
    status, obj = request(
        double, "POST", f"{BASE}/namespaces/default/memcacheds", body, "application/json"
    )
    assert status == 201
    meta = obj["metadata"]
    assert (meta["name"], meta["namespace"], meta["generation"]) == ("made", "default", 1)
    assert meta["resourceVersion"] == str(rv + 1) and meta["uid"] and meta["creationTimestamp"]
    assert "status" not in obj, "status is written through /status only"
    assert LAST_APPLIED not in meta.get("annotations", {}), "a plain create, not kubectl apply"
    for path, doc, want in [
        (f"{BASE}/namespaces/default/memcacheds", body, (409, "AlreadyExists")),
        (f"{BASE}/namespaces/nowhere/memcacheds", memcached("x", "nowhere"), (404, "NotFound")),
        (f"{BASE}/namespaces/other/memcacheds", memcached("x", "default"), (400, "BadRequest")),
        (f"{BASE}/namespaces/default/memcacheds", {**body, "kind": "Other"}, (400, "BadRequest")),
    ]:
        status, answer = request(double, "POST", path, doc, "application/json")
        assert (status, answer["reason"]) == want, path
    unnamed = {**body, "metadata": {"generateName": "gen-"}}
    status, obj = request(
        double, "POST", f"{BASE}/namespaces/other/memcacheds", unnamed, "application/json"
    )
    assert status == 201 and re.fullmatch(r"gen-[a-z0-9]{5}", obj["metadata"]["name"])

    status, gone = request(double, "DELETE", f"{BASE}/namespaces/default/memcacheds/made", None)
    assert (status, gone["metadata"]["name"]) == (200, "made")
    status, answer = request(double, "DELETE", f"{BASE}/namespaces/default/memcacheds/made", None)
    assert (status, answer["reason"]) == (404, "NotFound")
    assert [e["type"] for e in watch_after(double, rv)] == ["ADDED", "ADDED", "DELETED"]


def test_finalizers_hold_a_deletion_until_the_last_one_goes(double: KubeApiDouble) -> None:
    path = f"{BASE}/namespaces/default/memcacheds/example-0"
    request(double, "PATCH", path, {"metadata": {"finalizers": ["example.com/cleanup"]}})
    rv = double.resource_version
    status, obj = request(double, "DELETE", path, None)
    assert status == 200 and obj["metadata"]["deletionTimestamp"]
    assert get(double, path).status == 200, "still there while a finalizer is pending"
    status, obj = request(double, "DELETE", path, None)  # a second delete changes nothing
    assert status == 200 and double.resource_version == rv + 1
    status, obj = request(double, "PATCH", path, {"metadata": {"finalizers": None}})
    assert status == 200
    assert get(double, path).status == 404
    seen = [
        (e["type"], bool(e["object"]["metadata"].get("finalizers")))
        for e in watch_after(double, rv)
    ]
    assert seen == [("MODIFIED", True), ("DELETED", True)], "no MODIFIED for the emptying patch"


def test_namespaces_can_be_created_once(double: KubeApiDouble) -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}
    status, doc = request(double, "POST", "/api/v1/namespaces", ns, "application/json")
    assert (status, doc["kind"], doc["status"]["phase"]) == (201, "Namespace", "Active")
    status, doc = request(double, "POST", "/api/v1/namespaces", ns, "application/json")
    assert (status, doc["reason"], doc["message"]) == (
        409,
        "AlreadyExists",
        'namespaces "team-a" already exists',
    )
    status, doc = request(
        double, "POST", "/api/v1/namespaces", ns | {"metadata": {}}, "application/json"
    )
    assert (status, doc["reason"]) == (422, "Invalid")
    status, _ = request(
        double,
        "POST",
        "/api/v1/namespaces",
        {**ns, "metadata": {"name": "default"}},
        "application/json",
    )
    assert status == 409, "a new cluster has the default namespace"


CRDS = Path(__file__).parent / "data" / "test-crds"


def test_crds_are_created_read_and_deleted(double: KubeApiDouble) -> None:
    crd = yaml.safe_load((CRDS / "test.example.com_widgets.yaml").read_text())
    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    widgets = "/apis/test.example.com/v1/namespaces/default/widgets"
    assert get(double, widgets).status == 404, "not served before its CRD"
    status, doc = request(double, "POST", crds, crd, "application/json")
    assert status == 201
    conditions = {c["type"]: c["status"] for c in doc["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    assert doc["status"]["acceptedNames"]["kind"] == "Widget"
    assert get_json(double, f"{crds}/widgets.test.example.com")["spec"] == crd["spec"]
    assert get_json(double, widgets)["kind"] == "WidgetList"
    status, doc = request(double, "POST", crds, crd, "application/json")
    assert (status, doc["reason"]) == (409, "AlreadyExists")
    renamed = crd | {"metadata": {"name": "wrong"}}
    status, doc = request(double, "POST", crds, renamed, "application/json")
    assert (status, doc["reason"]) == (422, "Invalid")
    # a resource the double started with has a CRD too
    memcacheds = get_json(double, f"{crds}/memcacheds.cache.example.com")
    assert memcacheds["status"]["storedVersions"] == ["v1alpha1"]

    status, _ = request(
        double,
        "POST",
        widgets,
        {
            "apiVersion": "test.example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "w"},
            "spec": {},
        },
        "application/json",
    )
    assert status == 201
    status, doc = request(double, "DELETE", f"{crds}/widgets.test.example.com", None)
    assert status == 200 and doc["metadata"]["deletionTimestamp"]
    assert get(double, widgets).status == 404
    assert get(double, f"{crds}/widgets.test.example.com").status == 404
    status, doc = request(double, "DELETE", f"{crds}/widgets.test.example.com", None)
    assert (status, doc["reason"]) == (404, "NotFound")
    assert double.unrouted_requests() == []


def test_requests_the_double_does_not_implement_are_logged(double: KubeApiDouble) -> None:
    status, _ = request(double, "PUT", f"{BASE}/namespaces/default/memcacheds/example-0", {})
    assert status == 405
    assert get(double, "/api/v1/namespaces").status == 405
    assert get(double, "/no/such/path").status == 404
    assert get(double, "/apis/nothere.example.com/v1").status == 404  # served: not found
    assert get(double, f"{BASE}/memcacheds").status == 200
    assert [(r.method, r.path) for r in double.unrouted_requests()] == [
        ("PUT", f"{BASE}/namespaces/default/memcacheds/example-0"),
        ("GET", "/api/v1/namespaces"),
        ("GET", "/no/such/path"),
    ]


def test_request_text_is_read_as_go_reads_it(double: KubeApiDouble) -> None:
    """kube-apiserver's Go decoder reads invalid UTF-8 and lone surrogate escapes as U+FFFD,
    so what a client writes is served back as valid UTF-8."""
    obj = memcached("text", "default")
    obj["metadata"]["labels"] = {"lone": "a\ud800b"}  # json.dumps: the `\ud800` escape
    status, created = request(
        double, "POST", f"{BASE}/namespaces/default/memcacheds", obj, "application/json"
    )
    assert status == 201
    assert created["metadata"]["labels"] == {"lone": "a\ufffdb"}
    conn = http.client.HTTPConnection("127.0.0.1", double.port, timeout=10)
    body = b'{"metadata": {"labels": {"bytes": "x\xff\xfey"}}}'
    path = f"{BASE}/namespaces/default/memcacheds/text"
    conn.request("PATCH", path, body, headers={"Content-Type": "application/merge-patch+json"})
    assert conn.getresponse().status == 200
    served = get_json(double, path)["metadata"]["labels"]
    assert served == {"lone": "a\ufffdb", "bytes": "x\ufffd\ufffdy"}


def test_raw_json_and_injected_objects_go_out_verbatim(double: KubeApiDouble) -> None:
    double.inject({"metadata": "a string"})
    obj = memcached("raw", "default")
    obj["spec"] = {"size": RawJson(b"9" * 5000), "note": RawJson(b'"\xff"')}
    double.create(obj)
    body = get(double, f"{BASE}/memcacheds").read()
    assert b'"size":' + b"9" * 5000 in body
    assert b'"note":"\xff"' in body
    assert b'"metadata":"a string"' in body


def test_restore_goes_back_to_the_backups_objects_and_resource_versions(
    double: KubeApiDouble,
) -> None:
    backup = double.backup()
    double.create(memcached("later", "default"))
    double.create(memcached("later-too", "default"))
    seen = double.resource_version
    double.restore(backup)
    assert double.resource_version == backup.rv < seen
    assert "later" not in {o["metadata"]["name"] for o in double.objects()}
    double.create(memcached("after-restore", "default"))
    assert double.resource_version == backup.rv + 1  # new writes count on from the backup
    # A watch from where a client had got is accepted and sends nothing, not even a
    # bookmark: kube-apiserver sends none below a watch's resourceVersion.
    resp = get(
        double,
        f"{BASE}/memcacheds?watch=1&resourceVersion={seen}&allowWatchBookmarks=true"
        "&timeoutSeconds=1",
    )
    assert resp.status == 200
    assert list(events(resp.read())) == []
    double.future_watch = "too_large"
    resp = get(double, f"{BASE}/memcacheds?watch=1&resourceVersion={seen}")
    (error,) = events(resp.read())
    assert error["type"] == "ERROR" and error["object"]["code"] == 504
    assert error["object"]["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"
    assert error["object"]["message"] == (
        f"Timeout: Too large resource version: {seen}, current: {double.resource_version}"
    )
    double.future_watch = "wait"
    # ("wait", the default:) once the new history passes it, events and bookmarks come
    for i in range(seen - double.resource_version + 1):
        double.create(memcached(f"catching-up-{i}", "default"))
    resp = get(
        double,
        f"{BASE}/memcacheds?watch=1&resourceVersion={seen}&allowWatchBookmarks=true"
        "&timeoutSeconds=1",
    )
    got = list(events(resp.read()))
    assert [e["type"] for e in got][:1] == ["ADDED"]
    assert got[-1]["type"] == "BOOKMARK"
    assert int(got[-1]["object"]["metadata"]["resourceVersion"]) > seen


def test_builtin_pods_and_statefulsets_with_name_field_selectors() -> None:
    """Core pods under /api/v1 and apps/v1 StatefulSets, served when asked for: GET, LIST and
    WATCH, `fieldSelector=metadata.name=...` as every resource of the real server takes it."""
    with KubeApiDouble((MEMCACHED, PODS, STATEFULSETS), bookmark_interval=0.2) as d:
        for name in ("a", "b"):
            d.create(
                {
                    "apiVersion": "apps/v1",
                    "kind": "StatefulSet",
                    "metadata": {"name": name, "namespace": "ops"},
                    "spec": {"replicas": 2},
                }
            )
        d.create(
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a-0", "namespace": "ops"}}
        )
        pod = get_json(d, "/api/v1/namespaces/ops/pods/a-0")
        assert (pod["apiVersion"], pod["kind"], pod["metadata"]["name"]) == ("v1", "Pod", "a-0")
        assert get(d, "/api/v1/namespaces/ops/pods/nope").status == 404
        pods = get_json(d, "/api/v1/namespaces/ops/pods")
        assert (pods["apiVersion"], pods["kind"], len(pods["items"])) == ("v1", "PodList", 1)
        sts = "/apis/apps/v1/namespaces/ops/statefulsets"
        listed = get_json(d, f"{sts}?fieldSelector=metadata.name%3Db")
        assert [o["metadata"]["name"] for o in listed["items"]] == ["b"]
        assert get_json(d, f"{sts}?fieldSelector=metadata.name%3D%3Da")["items"][0]["spec"] == {
            "replicas": 2
        }
        bad = get(d, f"{sts}?fieldSelector=spec.replicas%3D2")
        assert bad.status == 400
        assert json.loads(bad.read())["message"] == (
            '"spec.replicas=2": field label not supported: spec.replicas'
        )
        rv = listed["metadata"]["resourceVersion"]
        d.update(
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": {"name": "a", "namespace": "ops"},
                "spec": {"replicas": 3},
            }
        )
        d.update(
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": {"name": "b", "namespace": "ops"},
                "spec": {"replicas": 1},
            }
        )
        watch = get(
            d,
            f"{sts}?watch=1&resourceVersion={rv}&fieldSelector=metadata.name%3Db&timeoutSeconds=1",
        )
        seen = [(e["type"], e["object"]["metadata"].get("name")) for e in events(watch.read())]
        assert seen == [("MODIFIED", "b")]
        # discovery: pods with the core resources, apps/v1 as a group
        core = get_json(d, "/api/v1")
        assert "pods" in [r["name"] for r in core["resources"]]
        groups = [g["name"] for g in get_json(d, "/apis")["groups"]]
        assert "apps" in groups and "" not in groups


def test_resource_names_grant_only_the_named_object() -> None:
    """The Role `init --shards` generates (get of pods; get/list/watch of its own StatefulSet
    by `resourceNames`) decides as kube-apiserver does: a rule naming objects grants a get of
    one of them, or a list/watch whose `metadata.name` field selector names one of them."""
    golden = Path(__file__).parent / "golden/sharded/config/memcached-operator-metrics-shards.yaml"
    (role,) = [d for d in yaml.safe_load_all(golden.read_text()) if d and d["kind"] == "Role"]
    (own,) = role["rules"][1]["resourceNames"]
    with KubeApiDouble((MEMCACHED, PODS, STATEFULSETS)) as d:
        for name in (own, "someone-elses"):
            d.create(
                {
                    "apiVersion": "apps/v1",
                    "kind": "StatefulSet",
                    "metadata": {"name": name, "namespace": "default"},
                    "spec": {"replicas": 2},
                }
            )
        d.create(
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p-0", "namespace": "default"}}
        )
        rbac = client.RbacAuthorizationV1Api(d.admin_api_client())
        rbac.create_namespaced_role(
            "default", {"metadata": role["metadata"], "rules": role["rules"]}
        )
        subject = {"kind": "User", "name": READER_USER, "apiGroup": "rbac.authorization.k8s.io"}
        binding = {"metadata": {"name": "shard"}, "roleRef": role_ref(role), "subjects": [subject]}
        rbac.create_namespaced_role_binding("default", binding)
        sts = "/apis/apps/v1/namespaces/default/statefulsets"
        by_name = f"{sts}?fieldSelector=metadata.name%3D"
        assert reader_get(d, f"{sts}/{own}").status == 200
        assert reader_get(d, f"{sts}/someone-elses").status == 403
        assert reader_get(d, sts).status == 403  # a list of no one object
        assert reader_get(d, by_name + own).status == 200
        assert reader_get(d, by_name + "someone-elses").status == 403
        watch = reader_get(d, f"{by_name}{own}&watch=1&timeoutSeconds=1")
        assert watch.status == 200
        watch.close()
        assert reader_get(d, f"{by_name}someone-elses&watch=1").status == 403
        assert reader_get(d, "/api/v1/namespaces/default/pods/p-0").status == 200
        assert reader_get(d, "/api/v1/namespaces/default/pods").status == 403  # get only


def role_ref(role: dict[str, Any]) -> dict[str, str]:
    """A RoleBinding's reference to `role`."""
    return {
        "kind": "Role",
        "name": role["metadata"]["name"],
        "apiGroup": "rbac.authorization.k8s.io",
    }
