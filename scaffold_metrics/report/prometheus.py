"""A minimal Prometheus HTTP API client (urllib): range queries, cut into pieces under the
server's 11,000-points-per-series limit, and the list of metric names (to tell a family that
does not exist from one with no samples in the period).

Every failure becomes a `PrometheusError` saying what to check, never a traceback.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from ..errors import PrometheusError

MAX_POINTS = 10_000  # per series and request; Prometheus refuses more than 11,000
TIMEOUT = 60.0


@dataclass(frozen=True)
class Series:
    """One series of a range query: its labels and its (unix time, value) points."""

    labels: dict[str, str]
    points: tuple[tuple[float, float], ...]


class PrometheusClient:
    """Queries one Prometheus server at `base_url` (`http://host:9090`, maybe with a path)."""

    def __init__(self, base_url: str, timeout: float = TIMEOUT) -> None:
        parsed = urllib.parse.urlparse(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise PrometheusError(
                f"--prometheus {base_url[:200]!r} is not an http(s) URL",
                hint="such as http://prometheus.monitoring:9090",
                exit_code=2,
            )
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _get(self, path: str, params: dict[str, str]) -> Any:
        url = f"{self.base_url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            detail = _error_text(exc.read())
            raise PrometheusError(
                f"Prometheus at {self.base_url} answered {exc.code}: {detail}",
                hint="check the URL points at the Prometheus API (GET /api/v1/query_range)",
            ) from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise PrometheusError(
                f"Prometheus at {self.base_url} is unreachable ({reason})",
                hint="check --prometheus (scheme, host, port) and that Prometheus is running; "
                "from outside the cluster, `kubectl port-forward` to it first",
            ) from exc
        try:
            answer = json.loads(body)
        except ValueError as exc:
            raise PrometheusError(
                f"{self.base_url} did not answer with Prometheus API JSON",
                hint="check the URL points at Prometheus, not a UI or proxy login page",
            ) from exc
        if not isinstance(answer, dict) or answer.get("status") != "success":
            raise PrometheusError(f"Prometheus refused the query: {_error_text(body)}")
        return answer.get("data")

    def query_range(self, promql: str, start: float, end: float, step: int) -> list[Series]:
        """The series of `promql` from `start` to `end` (inclusive) every `step` seconds,
        points of pieces joined per series."""
        merged: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = {}
        piece_start = start
        while piece_start <= end:
            piece_end = min(end, piece_start + step * (MAX_POINTS - 1))
            data = self._get(
                "/api/v1/query_range",
                {
                    "query": promql,
                    "start": _number(piece_start),
                    "end": _number(piece_end),
                    "step": str(step),
                },
            )
            for item in (data or {}).get("result", []):
                key = tuple(sorted(item.get("metric", {}).items()))
                points = merged.setdefault(key, [])
                points.extend((float(t), float(v)) for t, v in item.get("values", []))
            piece_start = piece_end + step
        return [Series(dict(key), tuple(points)) for key, points in sorted(merged.items())]

    def metric_names(self) -> set[str]:
        """Every metric name the server has (in its retention)."""
        data = self._get("/api/v1/label/__name__/values", {})
        return {str(name) for name in data or []}


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


def _error_text(body: bytes) -> str:
    try:
        answer = json.loads(body)
        return str(answer.get("error") or answer)[:500]
    except (ValueError, AttributeError):
        return body.decode("utf-8", errors="replace")[:200].strip() or "(empty answer)"
