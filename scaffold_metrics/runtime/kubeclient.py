"""Raw HTTP to the Kubernetes API through the official client's `ApiClient`.

Why this exists: the official client's `Watch` gives up on 410 and deserialises into models,
and its informer cannot handle plain dicts. We only borrow the `ApiClient` for what it does
well (kubeconfig / in-cluster config, TLS, bearer token and its refresh) and do the requests
ourselves, so we control socket timeouts, stream the body and split watch events on newlines
(HTTP chunk boundaries do not follow event lines).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import socket
from collections.abc import Iterator, Sequence
from typing import Any

_ACCEPT = {"Accept": "application/json"}
_READ_SIZE = 65536


class ApiError(Exception):
    """A non-2xx answer (or an ERROR watch event) from the API server.

    `message` is the server's `Status.message` when it sent a JSON Status, else the body text
    (the API server answers an unserved resource with `text/plain` "404 page not found").
    """

    def __init__(
        self, status: int, reason: str = "", message: str = "", causes: tuple[str, ...] = ()
    ) -> None:
        super().__init__(f"HTTP {status} {reason}: {message}".strip())
        self.status = status
        self.reason = reason
        self.message = message
        self.causes = causes
        """The `reason` of each of the Status' `details.causes`."""

    @property
    def expired(self) -> bool:
        """True for 410 Gone / Expired: the resourceVersion or continue token is too old."""
        return self.status == 410

    @property
    def resource_version_too_large(self) -> bool:
        """True for the 504 "Too large resource version: X, current: Y" (cause
        `ResourceVersionTooLarge`): the server has not reached the resourceVersion asked for,
        which, for a resourceVersion this client was given, means a new history."""
        return self.status == 504 and "ResourceVersionTooLarge" in self.causes

    @classmethod
    def from_status(cls, status: int, body: bytes) -> ApiError:
        """Build from an HTTP status and body, reading a JSON `Status` when there is one."""
        text = body.decode("utf-8", "replace").strip()
        try:
            doc = json.loads(text)
        except ValueError:
            return cls(status, "", text)
        if isinstance(doc, dict) and doc.get("kind") == "Status":
            return cls.from_status_object(doc, default_code=status)
        return cls(status, "", text)

    @classmethod
    def from_status_object(cls, doc: dict[str, Any], default_code: int = 500) -> ApiError:
        """Build from a `Status` object (HTTP body or the object of a watch ERROR event)."""
        code = doc.get("code")
        details = doc.get("details")
        causes = details.get("causes") if isinstance(details, dict) else None
        return cls(
            code if isinstance(code, int) else default_code,
            str(doc.get("reason", "")),
            str(doc.get("message", "")),
            tuple(
                str(c.get("reason", ""))
                for c in (causes if isinstance(causes, list) else ())
                if isinstance(c, dict)
            ),
        )


def _kubernetes(module: str) -> Any:
    """Import a `kubernetes` module as `Any`: some client versions ship types, some do not."""
    return importlib.import_module(f"kubernetes.{module}")


class KubeConfigError(RuntimeError):
    """Neither in-cluster configuration nor a usable kubeconfig: nothing to connect with."""


def load_api_client() -> Any:
    """An `ApiClient` configured like the operator's entry point: in-cluster, else kubeconfig."""
    config = _kubernetes("config")
    client = _kubernetes("client")
    try:
        config.load_incluster_config()
    except config.ConfigException as in_cluster:
        # The client reads $KUBECONFIG once at import; read it now so a late setting counts.
        path = os.environ.get("KUBECONFIG") or None
        try:
            config.load_kube_config(config_file=path)
        except Exception as kubeconfig:  # a malformed file fails in many ways (YAML, types)
            reason = " ".join(str(kubeconfig).split()) or type(kubeconfig).__name__
            raise KubeConfigError(
                "no Kubernetes configuration: not in a cluster "
                f"({in_cluster}) and no usable kubeconfig at {path or '~/.kube/config'} "
                f"({reason}); run in a pod with a service account, or set KUBECONFIG"
            ) from kubeconfig
    return client.ApiClient()


def resource_path(group: str, version: str, plural: str, namespace: str | None) -> str:
    """`/apis/{g}/{v}[/namespaces/{ns}]/{plural}` (`/api/v1/...` for the core group)."""
    base = f"/apis/{group}/{version}" if group else f"/api/{version}"
    if namespace:
        return f"{base}/namespaces/{namespace}/{plural}"
    return f"{base}/{plural}"


class Response:
    """An open streaming HTTP response: read it whole, or line by line; abort from any thread."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self._complete = False

    def read_all(self) -> bytes:
        data = self._raw.read()
        self._complete = True
        return data if isinstance(data, bytes) else bytes(data or b"")

    def iter_lines(self) -> Iterator[bytes]:
        """Yield non-empty lines of the decoded body; a line may arrive over several chunks."""
        pending = b""
        for chunk in self._raw.stream(_READ_SIZE):
            pending += chunk
            if b"\n" not in chunk:
                continue
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.strip():
                    yield line
        self._complete = True
        if pending.strip():
            yield pending

    def set_read_timeout(self, seconds: float) -> None:
        """From now on, a read that waits `seconds` for bytes raises a timeout (the timeout
        given at `open_get` counts until then): a streaming list waits less for its initial
        events than a watch waits for its next event."""
        sock = _socket_of(self._raw)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.settimeout(seconds)

    def abort(self) -> None:
        """Make a read blocked in another thread return now (used by `Collector.stop`)."""
        sock = _socket_of(self._raw)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Give the connection back for reuse, or drop it when the body was not read to the end."""
        try:
            if not self._complete:
                self._raw.close()
            self._raw.release_conn()
        except Exception:  # closing a broken connection must never raise
            pass


def _socket_of(raw: Any) -> socket.socket | None:
    conn = getattr(raw, "connection", None) or getattr(raw, "_connection", None)
    sock = getattr(conn, "sock", None)
    if isinstance(sock, socket.socket):
        return sock
    fp = getattr(getattr(raw, "_fp", None), "fp", None)
    sock = getattr(getattr(fp, "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def open_get(
    api_client: Any,
    path: str,
    query: Sequence[tuple[str, str]],
    timeout: tuple[float, float],
) -> Response:
    """GET `path` with auth from `api_client`; raise `ApiError` for a non-2xx status.

    Works with both generations of the official client: >= 35 (`param_serialize` +
    `call_api` returning a `RESTResponse`) and older ones (`call_api` with `_preload_content`).
    """
    if hasattr(api_client, "param_serialize"):
        method, url, headers, body, post = api_client.param_serialize(
            "GET",
            path,
            query_params=list(query),
            header_params=dict(_ACCEPT),
            auth_settings=["BearerToken"],
        )
        rest = api_client.call_api(method, url, headers, body, post, _request_timeout=timeout)
        raw = getattr(rest, "response", rest)
    else:  # pragma: no cover - kubernetes < 35
        api_exception = _kubernetes("client.exceptions").ApiException
        try:
            raw = api_client.call_api(
                path,
                "GET",
                query_params=list(query),
                header_params=dict(_ACCEPT),
                auth_settings=["BearerToken"],
                _preload_content=False,
                _return_http_data_only=True,
                _request_timeout=timeout,
            )
        except api_exception as exc:
            raise ApiError.from_status(int(exc.status or 0), (exc.body or "").encode()) from exc
    status = int(raw.status)
    if not 200 <= status <= 299:
        resp = Response(raw)
        try:
            body = resp.read_all()
        finally:
            resp.close()
        raise ApiError.from_status(status, body)
    return Response(raw)
