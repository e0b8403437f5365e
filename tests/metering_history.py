"""A real Prometheus holding a made-up history of memcached objects with known lifetimes and
sizes, for the `report` tests: the samples are written as OpenMetrics, backfilled with
`promtool tsdb create-blocks-from openmetrics`, and the metering recording rules can then be
backfilled over them (`promtool tsdb create-blocks-from rules`).

The history, from T0 (an hour boundary six hours ago), scraped every minute at :30:
- namespace a: a1 and a2 (size 1) for exactly 3 h; a3 (size 2) created at 1 h, deleted at 1 h 30;
- namespace b: b1 (size 3) from 1 h to 3 h;
- namespace c: c1 for the first 30 min, c2 from 1 h to 1 h 30 (no objects in between, target up);
- no scrape at all (not even `up`) from 2 h to 2 h 20.

Prometheus runs with a lookback of one scrape interval: backfilled samples carry no staleness
markers, and a live Prometheus ends a deleted object's series at the next scrape, as this does.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from prom_helpers import PROMETHEUS, PROMTOOL, _require, free_port

HOUR = 3600
SCRAPE = 60
PHASE = 30
GAP = (2 * HOUR, 2 * HOUR + 20 * 60)
END = 4 * HOUR
JOB = "memcached-operator"
# (namespace, name, size, created, deleted) in seconds after T0
OBJECTS = (
    ("a", "a1", 1, 0, 3 * HOUR),
    ("a", "a2", 1, 0, 3 * HOUR),
    ("a", "a3", 2, HOUR, HOUR + 30 * 60),
    ("b", "b1", 3, HOUR, 3 * HOUR),
    ("c", "c1", 1, 0, 30 * 60),
    ("c", "c2", 1, HOUR, HOUR + 30 * 60),
)
# the objects' `team` label (exported as `memcached_labels{label_team=...}`); c1, c2 have none
TEAMS = {"a1": "x", "a2": "x", "a3": "y", "b1": "x"}


def by_team() -> tuple[tuple[str, str, int, int, int], ...]:
    """OBJECTS with the team in place of the namespace ("" for none)."""
    return tuple((TEAMS.get(n, ""), n, size, c, d) for _ns, n, size, c, d in OBJECTS)


def expected(
    start: int, end: int, objects: tuple[tuple[str, str, int, int, int], ...] = OBJECTS
) -> dict[str, tuple[float, float, float]]:
    """(object-hours, instance-hours, gap hours) per group (the first item of `objects`)
    between T0+start and T0+end, from the lifetimes: the scrape gap is neither counted nor
    carried on."""
    out: dict[str, tuple[float, float, float]] = {}
    gap_start, gap_end = max(start, GAP[0]), min(end, GAP[1])
    for namespace, _name, size, created, deleted in objects:
        lo, hi = max(start, created), min(end, deleted)
        seconds = max(0, hi - lo)
        if gap_end > gap_start:
            seconds -= max(0, min(hi, gap_end) - max(lo, gap_start))
        hours, inst, gap = out.get(namespace, (0.0, 0.0, 0.0))
        out[namespace] = (hours + seconds / HOUR, inst + size * seconds / HOUR, gap)
    for namespace in list(out):
        lives = [(c, d) for ns, _n, _s, c, d in objects if ns == namespace]
        first = max(start, min(c for c, _d in lives))
        last = min(end, max(d for _c, d in lives))
        if gap_end > gap_start and first < gap_start and gap_end < last:
            hours, inst, _gap = out[namespace]
            out[namespace] = (hours, inst, (gap_end - gap_start) / HOUR)
    return {ns: v for ns, v in out.items() if v[0] > 0}


def openmetrics(t0: int) -> str:
    """The history as OpenMetrics text, families contiguous, samples in time order."""
    scrapes = [t for t in range(PHASE, END, SCRAPE) if not GAP[0] <= t < GAP[1]]
    target = f'instance="10.0.0.7:8389",job="{JOB}"'
    lines = ["# HELP memcached Information about the Memcached.", "# TYPE memcached info"]
    for namespace, name, _size, created, deleted in OBJECTS:
        labels = f'{target},memcached="{name}",namespace="{namespace}"'
        lines += [
            f"memcached_info{{{labels}}} 1 {t0 + t}" for t in scrapes if created <= t < deleted
        ]
    lines += ["# HELP memcached_spec_size spec.size.", "# TYPE memcached_spec_size gauge"]
    for namespace, name, size, created, deleted in OBJECTS:
        labels = f'{target},memcached="{name}",namespace="{namespace}"'
        lines += [
            f"memcached_spec_size{{{labels}}} {size} {t0 + t}"
            for t in scrapes
            if created <= t < deleted
        ]
    lines += ["# HELP memcached_labels Labels of the Memcached.", "# TYPE memcached_labels gauge"]
    for namespace, name, _size, created, deleted in OBJECTS:
        team = TEAMS.get(name, "")
        labels = f'{target},label_team="{team}",memcached="{name}",namespace="{namespace}"'
        lines += [
            f"memcached_labels{{{labels}}} 1 {t0 + t}" for t in scrapes if created <= t < deleted
        ]
    lines += ["# HELP up Scrape health.", "# TYPE up gauge"]
    lines += [f"up{{{target}}} 1 {t0 + t}" for t in scrapes]
    return "\n".join([*lines, "# EOF"]) + "\n"


def _run(*args: str) -> None:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{args}: {proc.stdout}{proc.stderr}"


@dataclass
class History:
    """A data directory holding the history, and the Prometheus serving it (restartable)."""

    t0: int
    data: Path
    url: str = ""
    _proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        _require(PROMETHEUS)
        port = free_port()
        config = self.data.parent / "prometheus.yml"
        config.write_text(json.dumps({"global": {"scrape_interval": "1m"}}))
        log = open(self.data.parent / "prometheus.log", "ab")  # noqa: SIM115 (kept by Popen)
        self._proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.data}",
                "--storage.tsdb.retention.time=30d",
                f"--web.listen-address=127.0.0.1:{port}",
                f"--query.lookback-delta={SCRAPE}s",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(
            "prometheus did not start:\n"
            + (self.data.parent / "prometheus.log").read_text(errors="replace")[-3000:]
        )

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def backfill_rules(self, rules: Path) -> None:
        """Evaluate the recording rules over the history and add their blocks."""
        _require(PROMTOOL)
        out = self.data.parent / "rule-blocks"
        _run(
            PROMTOOL,
            "tsdb",
            "create-blocks-from",
            "rules",
            f"--start={self.t0}",
            f"--end={self.t0 + END}",
            f"--url={self.url}",
            f"--output-dir={out}",
            str(rules),
        )
        self.stop()
        for block in out.iterdir():
            shutil.move(str(block), self.data / block.name)
        self.start()
        self.wait_for("count_over_time(namespace_kind:operator_metrics_objects:count[12h])")

    def wait_for(self, promql: str, timeout: float = 30.0) -> None:
        """Poll until `promql` answers at the end of the history (blocks are loaded)."""
        query = urllib.parse.urlencode({"query": promql, "time": str(self.t0 + END)})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"{self.url}/api/v1/query?{query}", timeout=5) as resp:
                if json.loads(resp.read())["data"]["result"]:
                    return
            time.sleep(0.5)
        raise AssertionError(f"{promql} never answered after the backfill")


@contextlib.contextmanager
def history() -> Iterator[History]:
    """The backfilled history served by a Prometheus; everything removed afterwards."""
    _require(PROMTOOL)
    t0 = (int(time.time()) // HOUR) * HOUR - 6 * HOUR
    with tempfile.TemporaryDirectory(prefix="metering-history-") as tmp:
        source = Path(tmp) / "history.om"
        source.write_text(openmetrics(t0))
        data = Path(tmp) / "data"
        _run(PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data))
        served = History(t0, data)
        served.start()
        served.wait_for("count_over_time(memcached_info[12h])")
        try:
            yield served
        finally:
            served.stop()


__all__ = ["END", "HOUR", "JOB", "OBJECTS", "History", "by_team", "expected", "history"]
