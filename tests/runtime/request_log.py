"""A log of the requests the code under test sends, kept at its API client.

The runtime reaches the API server through one door, the official client's `call_api`. A
`RequestLog` attached to an `ApiClient` records each request there (method, path, query, the
Authorization header the client computed) with the status it got, and can run a hook after a
request was answered. The record is the same against the test double and a real
kube-apiserver, whose TLS a proxy could not read: what is asserted is what the client sent,
and every answer is the server's own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class SentRequest:
    """One request as the client sent it, and the HTTP status of its answer."""

    method: str
    path: str
    query: dict[str, str]
    authorization: str
    status: int

    @property
    def is_watch(self) -> bool:
        return self.query.get("watch") in ("1", "true")


class RequestLog:
    """Requests of every `ApiClient` given to `attach`, in the order they were answered."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[SentRequest] = []
        self.after: Callable[[SentRequest], None] | None = None
        """Called (in the client's thread) once a request was answered, before the client
        reads the body: a test's way to change the server between two requests."""

    def attach(self, api_client: Any) -> Any:
        """Record the requests of `api_client` from now on; returns it."""
        call_api = api_client.call_api
        new_client = hasattr(api_client, "param_serialize")  # kubernetes >= 35

        def recording_call_api(*args: Any, **kwargs: Any) -> Any:
            if new_client:  # (method, url, header_params, ...): the URL and auth are made
                method, url = args[0], args[1]
                headers = args[2] if len(args) > 2 else kwargs.get("header_params")
                path, query = _split(url)
            else:  # (path, method, ...): call_api adds the query and auth itself
                path, method = args[0], args[1]
                query = dict(kwargs.get("query_params") or [])
                bearer = api_client.configuration.auth_settings().get("BearerToken") or {}
                headers = {"Authorization": bearer.get("value", "")}
            try:
                response = call_api(*args, **kwargs)
            except Exception as exc:  # no answer (connection refused, reset): status 0
                self._record(method, path, query, headers, int(getattr(exc, "status", 0) or 0))
                raise
            self._record(method, path, query, headers, int(getattr(response, "status", 0)))
            return response

        api_client.call_api = recording_call_api
        return api_client

    def _record(
        self, method: str, path: str, query: dict[str, str], headers: Any, status: int
    ) -> None:
        found = [v for k, v in (headers or {}).items() if k.lower() == "authorization"]
        sent = SentRequest(method, path, query, str(found[0]) if found else "", status)
        with self._lock:
            self._requests.append(sent)
        if self.after is not None:
            self.after(sent)

    @property
    def requests(self) -> list[SentRequest]:
        with self._lock:
            return list(self._requests)

    def watches(self) -> list[SentRequest]:
        return [r for r in self.requests if r.is_watch]

    def lists(self) -> list[SentRequest]:
        return [r for r in self.requests if not r.is_watch]


def _split(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    return parts.path, dict(parse_qsl(parts.query))
