"""One paged LIST and one WATCH stream, exactly as the API server speaks them.

No retry policy lives here (the collector owns it): these functions do one exchange and turn
every way it can end into a return value or one of a few exceptions the collector can act on:
`ApiError` (HTTP error status, or an ERROR event inside a 200 watch stream, e.g. 410 Expired),
`WatchIdle` (nothing at all, not even a bookmark, arrived within the read timeout),
`WatchDisconnected` (the connection broke mid-stream), `WatchUnreadable` (the server sent
something that is not JSON where an event or a list belongs) and, for a streaming list,
`InitialEventsIncomplete` (the stream ended or fell silent before the bookmark that closes the
initial state).

A streaming list is a WATCH with `sendInitialEvents=true&resourceVersionMatch=NotOlderThan`
and no resourceVersion (KEP-3157, "consistent read": the state at least as new as the moment
the request arrived): ADDED for every current object, then a BOOKMARK annotated
`k8s.io/initial-events-end: "true"` whose resourceVersion is that state's, then the watch goes on
as any other. The server sends the end bookmark only when bookmarks are allowed, so they are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .jsondecode import decode_json
from .kubeclient import ApiError, Response, open_get


class WatchIdle(Exception):
    """The watch stream sent nothing within the idle timeout: resume from the last RV."""


INITIAL_EVENTS_END = "k8s.io/initial-events-end"
"""The annotation of the BOOKMARK that ends a streaming list's initial state."""


class InitialEventsIncomplete(Exception):
    """A streaming list ended, or sent nothing for the initial-events timeout, before its
    initial-events-end bookmark: what arrived so far is not known to be the whole state."""


class WatchDisconnected(Exception):
    """The connection broke (reset, truncated chunked body, refused): resume after a backoff."""


class WatchUnreadable(Exception):
    """A watch line or list body that is not a JSON object: which change it held is unknown,
    and resuming would read the same line again, so the collector lists again instead."""


@dataclass
class ListResult:
    """All items of a (paged) LIST and the list's `metadata.resourceVersion` (snapshot RV).

    `items` is empty when each page went to `list_all`'s `on_page` instead; `count` is the
    number of items listed either way.
    """

    items: list[dict[str, Any]]
    resource_version: str
    pages: int
    count: int = 0


def list_all(
    api_client: Any,
    path: str,
    page_size: int,
    timeout: tuple[float, float],
    on_open: Callable[[Response | None], None] | None = None,
    extra_query: Sequence[tuple[str, str]] = (),
    on_page: Callable[[list[Any]], None] | None = None,
) -> ListResult:
    """LIST every page (`limit` / `continue`); an expired continue token raises `ApiError` 410.

    The resourceVersion of the first page is the snapshot every later page was read at, and
    therefore the one to start watching from. `extra_query` (a `fieldSelector`) goes on every
    page. With `on_page`, each page's items go to it as soon as they are decoded and are not
    kept (a list of 100,000 objects then never holds more than one decoded page).
    """
    from urllib3 import exceptions as http_errors  # the kubernetes client's transport

    items: list[dict[str, Any]] = []
    resource_version = ""
    token = ""
    pages = count = 0
    while True:
        query = [("limit", str(page_size)), *extra_query]
        if token:
            query.append(("continue", token))
        try:
            resp = open_get(api_client, path, query, timeout)
        except (http_errors.HTTPError, OSError) as exc:
            raise WatchDisconnected(f"list {path}: {exc}") from exc
        if on_open is not None:
            on_open(resp)
        try:
            body = resp.read_all()
        except (http_errors.HTTPError, OSError) as exc:
            raise WatchDisconnected(f"list {path}: {exc}") from exc
        finally:
            resp.close()
            if on_open is not None:
                on_open(None)
        try:
            doc = decode_json(body)
        except ValueError as exc:
            raise WatchUnreadable(f"list {path}: not JSON: {exc}") from exc
        del body  # the page's JSON text: not needed once decoded
        page = doc.get("items") if isinstance(doc, dict) else None
        meta = doc.get("metadata") if isinstance(doc, dict) else None
        if not isinstance(page, (list, type(None))) or not isinstance(meta, (dict, type(None))):
            raise WatchUnreadable(f"list {path}: not a list of objects")
        pages += 1
        count += len(page or ())
        if on_page is None:
            items.extend(page or [])
        else:
            del doc  # only the page's items stay alive, and only while `on_page` runs
            on_page(page or [])
        del page
        meta = meta or {}
        if not resource_version:
            resource_version = str(meta.get("resourceVersion") or "")
        token = str(meta.get("continue") or "")
        if not token:
            return ListResult(items, resource_version, pages, count)


def is_initial_events_end(event: Mapping[str, Any]) -> bool:
    """True for the BOOKMARK annotated `k8s.io/initial-events-end: "true"`."""
    if event.get("type") != "BOOKMARK":
        return False
    obj = event.get("object")
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    notes = meta.get("annotations") if isinstance(meta, Mapping) else None
    return isinstance(notes, Mapping) and notes.get(INITIAL_EVENTS_END) == "true"


def watch_events(
    api_client: Any,
    path: str,
    resource_version: str | None,
    timeout_seconds: int,
    idle_timeout: float,
    connect_timeout: float,
    on_open: Callable[[Response | None], None] | None = None,
    initial_events_timeout: float | None = None,
    extra_query: Sequence[tuple[str, str]] = (),
) -> Iterator[dict[str, Any]]:
    """Yield the events of one WATCH from `resource_version` until the server ends it.

    Bookmarks are requested and yielded like any event (their RV is where to resume). An ERROR
    event raises `ApiError` (410 Expired included: the server says so inside a 200 stream).

    `resource_version` None makes it a streaming list (see the module docstring). Until the
    initial-events-end bookmark has been yielded, a silence of `initial_events_timeout`
    (at most `idle_timeout`) or the end of the stream raises `InitialEventsIncomplete`; after
    it, the stream is read as any watch, with `idle_timeout`.
    """
    from urllib3 import exceptions as http_errors  # the kubernetes client's transport

    initial = resource_version is None
    read_timeout = idle_timeout
    if resource_version is None:
        query = [
            ("watch", "1"),
            ("sendInitialEvents", "true"),
            ("resourceVersionMatch", "NotOlderThan"),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(timeout_seconds)),
        ]
        if initial_events_timeout is not None:
            read_timeout = min(idle_timeout, initial_events_timeout)
    else:
        query = [
            ("watch", "1"),
            ("resourceVersion", resource_version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(timeout_seconds)),
        ]
    query.extend(extra_query)
    try:
        resp = open_get(api_client, path, query, (connect_timeout, read_timeout))
    except http_errors.ReadTimeoutError as exc:
        if initial:
            raise InitialEventsIncomplete(
                f"watch {path}: no response headers in {read_timeout}s"
            ) from exc
        raise WatchIdle(f"watch {path}: no response headers in {read_timeout}s") from exc
    except (http_errors.HTTPError, OSError) as exc:
        raise WatchDisconnected(f"watch {path}: {exc}") from exc
    if on_open is not None:
        on_open(resp)
    try:
        for line in resp.iter_lines():
            try:
                event = decode_json(line)
            except ValueError as exc:
                raise WatchUnreadable(f"watch {path}: an event that is not JSON: {exc}") from exc
            if not isinstance(event, dict):
                raise WatchUnreadable(f"watch {path}: an event that is not a JSON object")
            if event.get("type") == "ERROR":
                obj = event.get("object")
                raise ApiError.from_status_object(obj if isinstance(obj, dict) else {})
            if initial and is_initial_events_end(event):
                initial = False
                resp.set_read_timeout(idle_timeout)
            yield event
        if initial:
            raise InitialEventsIncomplete(
                f"watch {path}: the stream ended before the initial-events-end bookmark"
            )
    except (TimeoutError, http_errors.ReadTimeoutError) as exc:
        if initial:
            raise InitialEventsIncomplete(
                f"watch {path}: nothing received for {read_timeout}s before the "
                "initial-events-end bookmark"
            ) from exc
        raise WatchIdle(f"watch {path}: nothing received for {idle_timeout}s") from exc
    except (http_errors.HTTPError, OSError, ValueError) as exc:
        raise WatchDisconnected(f"watch {path}: {exc}") from exc
    finally:
        if on_open is not None:
            on_open(None)
        resp.close()
