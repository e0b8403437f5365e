"""Load test of the /metrics endpoint (loopback only, bounded time): a test, not a benchmark.

50 Prometheus-like scrapers scrape back to back while 1,000 events/s flow into the store and
200 abusive clients hold connections (slow readers of the uncompressed body, request tricklers,
idle keep-alives). Every response must be complete and parseable, the scrapers' p50 within 5x
of an idle scrape, the server's RSS growth bounded, and no thread or fd may be left behind.

CI runs it for 12 s; `OPERATOR_METRICS_LOAD_SECONDS=60` gives the documented 60 s run.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OBJECTS = 20_000
SCRAPERS = 50
SLOW_CLIENTS = 200
SECONDS = float(os.environ.get("OPERATOR_METRICS_LOAD_SECONDS", "12"))
RSS_GROWTH_LIMIT = 96 * 1024 * 1024  # 70 slow readers with a private 2.6 MB body each: ~180 MB
PROMETHEUS_HEADERS = (
    "Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n"
    "Accept-Encoding: gzip\r\n"
)


class Scrape:
    """One keep-alive HTTP/1.1 connection that scrapes /metrics and times each response."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.request = f"GET /metrics HTTP/1.1\r\nHost: x\r\n{PROMETHEUS_HEADERS}\r\n".encode()
        self.buffer = b""

    def once(self) -> tuple[float, int, bytes]:
        start = time.perf_counter()
        self.sock.sendall(self.request)
        while b"\r\n\r\n" not in self.buffer:
            self._recv()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = next(
            int(v) for k, _, v in (h.partition(": ") for h in lines[1:]) if k == "Content-Length"
        )
        while len(self.buffer) < length:
            self._recv()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return time.perf_counter() - start, status, body

    def _recv(self) -> None:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("server closed the connection mid-response")
        self.buffer += chunk

    def close(self) -> None:
        self.sock.close()


@dataclass
class Results:
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    to_parse: list[bytes] = field(default_factory=list)
    responses: int = 0
    # digests of compressed bodies already checked whole: concurrent scrapes share one body,
    # and decompressing every copy would cost the client a core the server then lacks
    verified: set[bytes] = field(default_factory=set)


def check_complete(status: int, body: bytes) -> bytes:
    """The decompressed body; raises unless it is a 200 with a whole OpenMetrics body."""
    assert status == 200, status
    text = gzip.decompress(body)  # also checks the gzip trailer (CRC and length)
    assert text.endswith(b"# EOF\n") and text.count(b"# EOF") == 1, text[-100:]
    assert text.count(b"\n# TYPE ") + text.startswith(b"# TYPE ") >= 2
    return text


def scraper(port: int, until: float, results: Results, lock: threading.Lock, index: int) -> None:
    scrape = Scrape(port)
    n = 0
    try:
        while time.monotonic() < until:
            latency, status, body = scrape.once()
            digest = hashlib.sha256(body).digest()
            with lock:
                seen = digest in results.verified
            if not seen:
                text = check_complete(status, body)
            n += 1
            with lock:
                results.latencies.append(latency)
                results.responses += 1
                results.verified.add(digest)
                if not seen and n == 10 and index % 10 == 0:  # a strict parse, after the run
                    results.to_parse.append(text)
    except Exception as exc:
        with lock:
            results.failures.append(f"scraper {index}: {exc!r}")
    finally:
        scrape.close()


def slow_clients(port: int) -> list[socket.socket]:
    """200 connections that hold the server: slow readers, tricklers and idle keep-alives."""
    held = []
    for i in range(SLOW_CLIENTS):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", port))
        if i % 3 == 0:  # asks for the whole uncompressed body and never reads it
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        elif i % 3 == 1:  # starts a request it never finishes
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        held.append(s)  # else: connected and idle
    return held


def lone_scrapes(port: int, count: int) -> list[float]:
    """Latencies of `count` scrapes by one scraper on its own connection."""
    scrape = Scrape(port)
    try:
        latencies = []
        for _ in range(count):
            latency, status, body = scrape.once()
            check_complete(status, body)
            latencies.append(latency)
        return latencies
    finally:
        scrape.close()


def proc_status(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "Threads"):
                out[key] = int(value.split()[0]) * (1024 if key == "VmRSS" else 1)
    out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return out


@pytest.mark.timeout(SECONDS * 3 + 120)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_endpoint_under_load() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, HERE])}
    server = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "load_server.py"), str(OBJECTS)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert server.stdin is not None and server.stdout is not None
    try:
        port = int(server.stdout.readline().split()[1])
        server.stdin.write("feed\n")
        server.stdin.flush()
        assert server.stdout.readline().strip() == "feeding"
        idle = lone_scrapes(port, 30)  # events flowing, one scraper: the idle scrape
        warm = [threading.Thread(target=lone_scrapes, args=(port, 1)) for _ in range(4)]
        for t in warm:  # both render threads exist before the baseline is taken
            t.start()
        for t in warm:
            t.join()
        time.sleep(0.3)
        before = proc_status(server.pid)
        held = slow_clients(port)
        results, lock = Results(), threading.Lock()
        until = time.monotonic() + SECONDS
        threads = [
            threading.Thread(target=scraper, args=(port, until, results, lock, i))
            for i in range(SCRAPERS)
        ]
        for t in threads:
            t.start()
        peak = dict(before)
        while any(t.is_alive() for t in threads):
            now = proc_status(server.pid)
            peak = {k: max(peak[k], now[k]) for k in peak}
            time.sleep(0.1)
        for t in threads:
            t.join()
        for s in held:
            s.close()
        time.sleep(1.0)  # the server notices the closed connections
        idle += lone_scrapes(port, 30)  # before and after: the same machine conditions
        settle = time.monotonic() + 10
        after = proc_status(server.pid)
        while after["fds"] != before["fds"] and time.monotonic() < settle:
            time.sleep(0.1)  # the server sees the last connections close
            after = proc_status(server.pid)
    finally:
        if server.stdin is not None:
            server.stdin.close()
        out = server.stdout.read() if server.stdout is not None else ""
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    assert not results.failures, results.failures[:5]
    assert results.responses >= SCRAPERS, results.responses
    for text in results.to_parse:
        families = {f.name for f in text_string_to_metric_families(text.decode())}
        assert {"widget", "widget_spec_replicas"} <= families
    idle_p50 = statistics.median(idle)
    loaded_p50 = statistics.median(results.latencies)
    report = (
        f"idle p50 {idle_p50 * 1000:.1f} ms, loaded p50 {loaded_p50 * 1000:.1f} ms over "
        f"{results.responses} scrapes; RSS {before['VmRSS'] >> 20} -> "
        f"peak {peak['VmRSS'] >> 20} MB; "
        f"threads {before['Threads']} -> peak {peak['Threads']} -> {after['Threads']}; "
        f"fds {before['fds']} -> peak {peak['fds']} -> {after['fds']}; server said {out.strip()!r}"
    )
    print(report)
    assert loaded_p50 <= 5 * idle_p50, report
    assert peak["VmRSS"] - before["VmRSS"] <= RSS_GROWTH_LIMIT, report
    assert peak["Threads"] <= before["Threads"] + 2, report  # no thread per connection
    # No connection leaves a thread behind; the render pool may have started its second thread
    # only under load (its threads start lazily, and stay): bounded by the pool, not a leak.
    assert after["Threads"] <= before["Threads"] + 2, report
    assert after["fds"] == before["fds"], report
    assert server.returncode == 0, out
    events = int(out.split()[1])
    assert events >= 0.8 * 1000 * SECONDS, out  # the feeder kept its rate under load
