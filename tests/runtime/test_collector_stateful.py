"""A collector against the API double under random changes and faults, as a hypothesis state
machine: whatever the interleaving of creates, updates, deletes, dropped connections, 410s
(compaction, expired continue tokens), 5xx answers, stalls and history resets (etcd restored
from a backup), once the faults stop the scrape equals what the server holds. Twice: for a
collector that syncs by paged LIST, and for one that syncs by streaming list only.

Bounded for CI (about 20 s). For a longer local run, raise the number of examples and steps:

    OPERATOR_METRICS_FUZZ_EXAMPLES=300 OPERATOR_METRICS_FUZZ_STEPS=60 \\
        python3 -m pytest -q tests/runtime/test_collector_stateful.py
"""

from __future__ import annotations

import os
import time
from typing import Any

from hostile_fakes import ThingGenerator
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, rule
from kubeapi_double import MEMCACHED, Backup, KubeApiDouble

from scaffold_metrics.runtime.collector import Collector
from scaffold_metrics.runtime.selfmetrics import SelfMetrics
from scaffold_metrics.runtime.store import MetricsStore

EXAMPLES = int(os.environ.get("OPERATOR_METRICS_FUZZ_EXAMPLES", "20"))
STEPS = int(os.environ.get("OPERATOR_METRICS_FUZZ_STEPS", "15"))
CONVERGE_SECONDS = 20.0

NAMES = st.sampled_from([f"m-{i}" for i in range(6)])
NAMESPACES = st.sampled_from(["default", "other"])
STATUSES = st.sampled_from(["True", "False", "Unknown"])


def sample_lines(store: MetricsStore) -> list[bytes]:
    """The scrape's sample lines (headers left out), sorted: objects are in no fixed order."""
    out: list[bytes] = []
    store.write_to(out)
    lines = b"".join(out).splitlines()
    return sorted(line for line in lines if not line.startswith(b"#"))


def expected_lines(objects: list[dict[str, Any]]) -> list[bytes]:
    """What a store that read the server's objects directly would serve."""
    store = MetricsStore(ThingGenerator(), self_metrics=SelfMetrics())
    store.replace(objects, None)
    return sample_lines(store)


class CollectorAgainstFaults(RuleBasedStateMachine):
    """One double, one cluster-wide collector into a real store; rules change the server.
    This one syncs by paged LIST; `StreamingCollectorAgainstFaults` by streaming list."""

    backups = Bundle("backups")
    list_mode = "paged"

    def __init__(self) -> None:
        super().__init__()
        self.double = KubeApiDouble((MEMCACHED,), bookmark_interval=0.2)
        self.double.start()
        self.store = MetricsStore(ThingGenerator(), self_metrics=SelfMetrics())
        self.collector = Collector(
            self.double.api_client(),
            MEMCACHED.group,
            MEMCACHED.version,
            MEMCACHED.plural,
            MEMCACHED.kind,
            None,
            self.store,
            page_size=2,
            watch_timeout=(2, 4),
            idle_timeout=0.6,
            connect_timeout=2.0,
            backoff_base=0.01,
            backoff_cap=0.05,
            list_mode=self.list_mode,
            initial_events_timeout=0.6,
        )
        self.collector.start()
        assert self.collector.wait_for_sync(10)

    def _current(self) -> dict[tuple[str, str], dict[str, Any]]:
        return {
            (o["metadata"]["namespace"], o["metadata"]["name"]): o for o in self.double.objects()
        }

    # -- changes ------------------------------------------------------------------------------

    @rule(name=NAMES, namespace=NAMESPACES, size=st.integers(0, 5))
    def create(self, name: str, namespace: str, size: int) -> None:
        if (namespace, name) in self._current():
            return
        self.double.create(
            {
                "apiVersion": MEMCACHED.api_version,
                "kind": MEMCACHED.kind,
                "metadata": {"name": name, "namespace": namespace, "labels": {"team": name}},
                "spec": {"size": size, "memory": f"{size}Mi"},
            }
        )

    @rule(data=st.data(), size=st.integers(0, 5))
    def update(self, data: st.DataObject, size: int) -> None:
        current = self._current()
        if current:
            key = data.draw(st.sampled_from(sorted(current)))
            obj = current[key]
            obj["spec"] = {"size": size, "memory": f"{size}Gi"}
            self.double.update(obj)

    @rule(data=st.data(), status=STATUSES)
    def update_status(self, data: st.DataObject, status: str) -> None:
        current = self._current()
        if current:
            obj = current[data.draw(st.sampled_from(sorted(current)))]
            obj["status"] = {"conditions": [{"type": "Ready", "status": status}]}
            self.double.update_status(obj)

    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        current = self._current()
        if current:
            self.double.delete(current[data.draw(st.sampled_from(sorted(current)))])

    @rule(seconds=st.sampled_from([0.0, 0.05, 0.3]))
    def pause(self, seconds: float) -> None:
        """Let the collector catch up (or not) before the next change: interleavings."""
        time.sleep(seconds)

    # -- faults -------------------------------------------------------------------------------

    @rule()
    def drop_connections(self) -> None:
        self.double.drop_connections()

    @rule()
    def compact(self) -> None:
        """Watches resuming from before now get 410 Expired inside the stream."""
        self.double.compact()

    @rule()
    def expire_continue(self) -> None:
        self.double.expire_next_continue(1)

    @rule(count=st.integers(1, 3), status=st.sampled_from([500, 503, 504]))
    def server_errors(self, count: int, status: int) -> None:
        self.double.fail_next(count, status)

    @rule(seconds=st.floats(0.1, 1.0))
    def stall(self, seconds: float) -> None:
        self.double.stall_watches(seconds)

    @initialize(target=backups, names=st.lists(NAMES, min_size=1, max_size=3, unique=True))
    def first_backup(self, names: list[str]) -> Backup:
        """A backup of the empty server, then objects the collector sees: any restore, from
        the first step on, takes the server back behind the collector."""
        backup = self.double.backup()
        for name in names:
            self.create(name, "default", 1)
        deadline = time.monotonic() + CONVERGE_SECONDS
        while len(self.store) < len(names) and time.monotonic() < deadline:
            time.sleep(0.01)
        return backup

    @rule(target=backups)
    def backup(self) -> Backup:
        return self.double.backup()

    @rule(backup=backups, future=st.booleans())
    def restore(self, backup: Backup, future: bool) -> None:
        """etcd restored from an older `backup`; the API server accepts a watch from past its
        history and sends nothing (`wait`, as kube-apiserver does: the collector must ask) or
        answers a 504 Too large resource version (`too_large`)."""
        current = self.double.resource_version
        if backup.rv >= current:
            return  # not back in time: a client cannot tell such a history from its own
        # A real restore loses thousands of revisions the collector had seen; here, let it
        # see the present first (bookmarks bring it there within a fraction of a second).
        deadline = time.monotonic() + CONVERGE_SECONDS
        while int(self.collector.resource_version or 0) < current:
            assert time.monotonic() < deadline, "the collector did not catch up"
            time.sleep(0.01)
        self.double.future_watch = "too_large" if future else "wait"
        self.double.restore(backup)
        # It must notice and list the new history before the next write, while that is still
        # behind what it saw (after that, no client could tell): only a list takes its
        # resourceVersion back.
        deadline = time.monotonic() + CONVERGE_SECONDS
        while int(self.collector.resource_version or current) > backup.rv:
            assert time.monotonic() < deadline, "no relist after the restore"
            time.sleep(0.01)

    # -- the end --------------------------------------------------------------------------------

    def teardown(self) -> None:
        try:
            self.double.stall_watches(0)
            self.double.fail_next(0)
            want = expected_lines(self.double.objects())
            deadline = time.monotonic() + CONVERGE_SECONDS
            got = sample_lines(self.store)
            while got != want and time.monotonic() < deadline:
                time.sleep(0.05)
                got = sample_lines(self.store)
            assert got == want, "the scrape did not converge to the server's objects"
        finally:
            self.collector.stop()
            self.double.close()


class StreamingCollectorAgainstFaults(CollectorAgainstFaults):
    """The same faults for a collector that syncs only by streaming list (never falls back):
    410s, history resets and 5xx answers make it stream the state again, a dropped connection
    or a stall can cut a stream before its end bookmark."""

    list_mode = "stream"


for machine in (CollectorAgainstFaults, StreamingCollectorAgainstFaults):
    machine.TestCase.settings = settings(
        max_examples=max(1, EXAMPLES // 2),  # the two share the time budget
        stateful_step_count=STEPS,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
test_collector_converges_to_the_servers_state = CollectorAgainstFaults.TestCase
test_streaming_collector_converges_to_the_servers_state = StreamingCollectorAgainstFaults.TestCase
