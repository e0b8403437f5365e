"""The generated Grafana dashboards: every query of every panel and variable runs against a real
Prometheus scraping the runtime that serves the generated metrics, and returns series (the
state timelines the values they should); the JSON loads through grafana-foundation-sdk's model
without losing a key; the bytes are deterministic; what the plan lacks is left out and named."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from monitoring_projects import (
    HOSTILE_CRD,
    HOSTILE_KIND,
    KAFKA_CRD,
    KAFKA_METRICS,
    KAFKA_SOURCE,
    crd_with_conditions,
    load_yaml,
    project_kinds,
)
from prom_helpers import PROMTOOL, query, running_prometheus, wait_for_query
from scaffold_helpers import MEMCACHED_V1, imported_package, run_cli

from scaffold_metrics.plan import FamilyPlan, KindPlan
from scaffold_metrics.runtime import MetricsStore, start_metrics_server
from scaffold_metrics.runtime.selfmetrics import SelfMetrics

pytest.importorskip("grafana_foundation_sdk", reason="needs operator-metrics[dashboards]")

MEMCACHED_CRD = "config/crd/memcacheds.yaml"
CORPUS = Path(__file__).resolve().parent / "data" / "crds"
V1BETA1 = CORPUS / "operator-sdk-memcached-v1beta1.yaml"
PROVIDERS = CORPUS / "crossplane-providers.yaml"  # cluster-scoped, with conditions
OBJECTS = (("o0", "shop"), ("o1", "web"), ("o2", "web"))
GRAFANA_VARIABLES = {"$namespace": ".*", "$__rate_interval": "1m"}


def _project(root: Path, *crds: tuple[Path, str], metrics: str = "") -> Path:
    for source, target in crds:
        (root / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, root / target)
    result = run_cli("init", "--crd", root / "config/crd", "--project", root, "--dashboards")
    assert result.exit_code == 0, result.stderr
    if metrics:
        config = root / ".operator-metrics.yaml"
        config.write_text(config.read_text() + metrics)
        result = run_cli("generate", "--project", root)
        assert result.exit_code == 0, result.stderr
    return root


def _three_kinds(root: Path) -> Path:
    """Memcached, Kafka (every opt-in field) and the cluster-scoped Provider."""
    return _project(
        root,
        (MEMCACHED_V1, MEMCACHED_CRD),
        (KAFKA_SOURCE, KAFKA_CRD),
        (PROVIDERS, "config/crd/providers.yaml"),
        metrics=KAFKA_METRICS,
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _three_kinds(tmp_path_factory.mktemp("dashboards") / "operator")


def _dashboard(project: Path, kind: KindPlan) -> dict[str, Any]:
    directory = load_yaml(project / ".operator-metrics.yaml")["dashboards"]["directory"]
    data: dict[str, Any] = json.loads(
        (project / directory / f"{kind.module}-dashboard.json").read_text()
    )
    return data


def _targets(dashboard: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target


def _sample_value(family: FamilyPlan, index: int) -> Any:
    """A value of the family's kind for the index-th test object (None: leave it unset)."""
    kind = family.value_kind.name
    if kind in ("info", "created", "labels", "annotations"):
        return None
    if kind == "deletion_timestamp":
        return "2026-01-02T00:00:00Z" if index == 1 else None
    values: dict[str, Any] = {
        "metadata_generation": 5,
        "number": 2 + index,
        "number_string": str(2 + index),
        "quantity": "1Gi",
        "bool": index % 2 == 0,
        "timestamp": "2026-01-01T12:00:00Z",
        "string": f"3.{index}.0",
        "length": [1, 2],
        "map": {"a": 1},
        "conditions": [
            {"type": "Ready", "status": "True" if index == 0 else "False"},
            {"type": "Available", "status": "Unknown"},
        ],
    }
    if kind == "enum":
        return family.states[index % len(family.states)]
    return values[kind]


def sample_object(kind: KindPlan, name: str, namespace: str, index: int) -> dict[str, Any]:
    """An object of `kind` with a value for every planned family (as the API would send it)."""
    obj: dict[str, Any] = {
        "apiVersion": kind.api_version,
        "kind": kind.kind,
        "metadata": {
            "name": name,
            "uid": f"{kind.module}-{name}",
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
    }
    if kind.namespaced:
        obj["metadata"]["namespace"] = namespace
    for family in kind.families:
        value = _sample_value(family, index)
        if value is None:
            continue
        node = obj
        for key in family.path[:-1]:
            node = node.setdefault(key, {})
        node[family.path[-1]] = value
    return obj


class _FedCollector:
    """A synced collector whose store the test fills (list/watch are tested elsewhere)."""

    def __init__(self, store: MetricsStore) -> None:
        self.store = store
        self.has_synced = True

    def start(self) -> None:
        """Nothing to start."""

    def stop(self) -> None:
        """Nothing to stop."""


def _substituted(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, expr
    return expr


def _label_values(base: str, label: str, match: str) -> list[str]:
    url = f"{base}/api/v1/label/{label}/values?" + urllib.parse.urlencode({"match[]": match})
    with urllib.request.urlopen(url, timeout=5) as resp:
        answer = json.loads(resp.read())
    assert answer["status"] == "success", answer
    values: list[str] = answer["data"]
    return values


def test_every_dashboard_query_returns_series_from_the_runtime(project: Path) -> None:
    kinds = project_kinds(project)
    assert [k.kind for k in kinds] == ["Kafka", "Memcached", "Provider"]
    self_metrics = SelfMetrics()
    collectors = []
    with imported_package(project) as package:
        generators = {g.kind: g for g in package.GENERATORS}
        for kind in kinds:
            store = MetricsStore(generators[kind.kind](), self_metrics=self_metrics)
            for index, (name, namespace) in enumerate(OBJECTS):
                store.upsert(sample_object(kind, name, namespace, index))
            self_metrics.record_list(kind.kind, None, ok=True)
            self_metrics.record_sync(kind.kind, None)
            self_metrics.record_watch(kind.kind, None, ok=True)
            collectors.append(_FedCollector(store))
    server = start_metrics_server(collectors, port=0, host="127.0.0.1", self_metrics=self_metrics)
    try:
        with running_prometheus([f"127.0.0.1:{server.port}"]) as prom:
            # two scrapes at least, so every rate() over the window has its two samples
            wait_for_query(prom, "count_over_time(up[1m]) >= 3")
            for kind in kinds:
                dashboard = _dashboard(project, kind)
                namespace_variables = [
                    v for v in dashboard["templating"]["list"] if v["name"] == "namespace"
                ]
                assert len(namespace_variables) == kind.namespaced
                for variable in namespace_variables:
                    match = variable["query"].removeprefix("label_values(").split(",")[0]
                    assert sorted(_label_values(prom, "namespace", match)) == ["shop", "web"]
                targets = list(_targets(dashboard))
                assert len(targets) >= 10
                for title, target in targets:
                    assert kind.namespaced or "$namespace" not in target["expr"]
                    result = query(prom, _substituted(target["expr"]))
                    assert result, f"{kind.kind} panel {title!r}: no series for {target['expr']}"
                _check_state_timelines(prom, kind, dashboard)
    finally:
        server.stop()


def _check_state_timelines(prom: str, kind: KindPlan, dashboard: dict[str, Any]) -> None:
    """The condition and enum timelines give each object the number their mapping names."""
    panels = {p["title"]: p for p in dashboard["panels"]}
    condition = panels["Condition status"]
    mapping = condition["fieldConfig"]["defaults"]["mappings"][0]["options"]
    text = {float(value): option["text"] for value, option in mapping.items()}
    result = query(prom, _substituted(condition["targets"][0]["expr"]))
    got = {
        (r["metric"][kind.label_name], r["metric"]["type"]): text[float(r["value"][1])]
        for r in result
    }
    assert got == {
        ("o0", "Ready"): "True",
        ("o1", "Ready"): "False",
        ("o2", "Ready"): "False",
        **{(name, "Available"): "Unknown" for name, _ in OBJECTS},
    }
    for family in (f for f in kind.families if f.value_kind.name == "enum"):
        panel = panels[family.source]
        mapping = panel["fieldConfig"]["defaults"]["mappings"][0]["options"]
        text = {float(value): option["text"] for value, option in mapping.items()}
        result = query(prom, _substituted(panel["targets"][0]["expr"]))
        got = {r["metric"][kind.label_name]: text[float(r["value"][1])] for r in result}
        assert got == {
            name: family.states[index % len(family.states)]
            for index, (name, _ns) in enumerate(OBJECTS)
        }


def _lost_keys(original: Any, reloaded: Any, where: str = "") -> list[str]:
    """Paths of `original` that the reloaded model does not give back as they were."""
    if isinstance(original, dict):
        if not isinstance(reloaded, dict):
            return [where or "/"]
        lost = []
        for key, value in original.items():
            if key not in reloaded:
                lost.append(f"{where}/{key}")
            else:
                lost.extend(_lost_keys(value, reloaded[key], f"{where}/{key}"))
        return lost
    if isinstance(original, list):
        if not isinstance(reloaded, list) or len(original) != len(reloaded):
            return [where]
        return [
            p
            for i, (a, b) in enumerate(zip(original, reloaded, strict=True))
            for p in _lost_keys(a, b, f"{where}/{i}")
        ]
    return [] if original == reloaded else [where]


def test_dashboards_load_through_the_builder_model_without_losing_anything(project: Path) -> None:
    from grafana_foundation_sdk.cog import plugins
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models.dashboard import Dashboard

    plugins.register_default_plugins()  # panel options and queries decode to their own types
    for kind in project_kinds(project):
        original = _dashboard(project, kind)
        model = Dashboard.from_json(original)
        reloaded = json.loads(json.dumps(model, cls=JSONEncoder))
        assert _lost_keys(original, reloaded) == [], kind.kind
        panels = [p for p in model.panels if getattr(p, "type_val", "") != "row"]
        assert all(not isinstance(p.options, dict) for p in panels), kind.kind
        assert {p.type_val for p in panels} >= {"stat", "timeseries", "table", "state-timeline"}
        variables = {v.name: v.type_val for v in model.templating.list_val or []}
        namespace = {"namespace": "query"} if kind.namespaced else {}
        assert variables == {"datasource": "datasource", **namespace}, kind.kind


def test_a_lost_key_is_noticed() -> None:
    """The comparison above fails when the model drops a key it does not know."""
    assert _lost_keys({"a": {"b": 1, "typo": 2}}, {"a": {"b": 1}}) == ["/a/typo"]


def test_dashboards_are_deterministic(project: Path, tmp_path: Path) -> None:
    """Regenerated elsewhere (another path, a fresh plan), every byte is the same; uids are
    the kind's own and panel ids run in order."""
    again = tmp_path / "elsewhere"
    shutil.copytree(project, again)
    check = run_cli("generate", "--check", "--project", again)
    assert check.exit_code == 0, check.stdout + check.stderr
    kinds = project_kinds(project)
    for kind in kinds:
        dashboard = _dashboard(project, kind)
        assert dashboard["uid"].startswith(f"om-{kind.module}-") and len(dashboard["uid"]) <= 40
        ids = [p["id"] for p in dashboard["panels"]]
        assert ids == list(range(1, len(ids) + 1))
    assert len({_dashboard(project, k)["uid"] for k in kinds}) == len(kinds) == 3


def test_panels_the_plan_cannot_feed_are_left_out_and_named(tmp_path: Path) -> None:
    root = _project(tmp_path / "op", (V1BETA1, MEMCACHED_CRD))
    (kind,) = project_kinds(root)
    dashboard = _dashboard(root, kind)
    titles = {p["title"] for p in dashboard["panels"]}
    assert "Conditions" not in titles and "Condition status" not in titles
    assert "Objects per namespace" in titles and "operator-metrics runtime" in titles
    assert dashboard["description"].startswith("Generated by operator-metrics: ")
    assert (
        "conditions: Memcached has no status.conditions field planned" in dashboard["description"]
    )


def test_dashboards_of_kinds_gone_or_turned_off_are_removed(tmp_path: Path) -> None:
    root = _project(tmp_path / "op", (MEMCACHED_V1, MEMCACHED_CRD), (KAFKA_SOURCE, KAFKA_CRD))
    grafana = root / load_yaml(root / ".operator-metrics.yaml")["dashboards"]["directory"]
    mine = grafana / "team-dashboard.json"
    mine.write_text('{"title": "my own"}\n')
    (root / KAFKA_CRD).unlink()
    result = run_cli("init", "--crd", root / MEMCACHED_CRD, "--project", root)
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in grafana.iterdir()) == [
        "memcached-dashboard.json",
        "team-dashboard.json",
    ]
    result = run_cli("init", "--crd", root / MEMCACHED_CRD, "--project", root, "--no-dashboards")
    assert result.exit_code == 0, result.stderr
    assert [p.name for p in grafana.iterdir()] == ["team-dashboard.json"]
    assert "dashboards" not in load_yaml(root / ".operator-metrics.yaml")


def test_without_the_builder_library_dashboards_are_a_clear_error(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [m for m in sys.modules if m.split(".")[0] == "grafana_foundation_sdk"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "grafana_foundation_sdk", None)
    result = run_cli("generate", "--check", "--project", project)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: the dashboards need grafana-foundation-sdk")
    assert "pip install 'operator-metrics[dashboards]'" in result.stderr


def test_a_hostile_kind_name_stays_inside_the_dashboard_strings(tmp_path: Path) -> None:
    """Every query of a kind named with quotes, braces and a newline still parses as PromQL
    (checked by promtool as recording rules) and matches the kind label exactly."""
    root = tmp_path / "evil-operator"
    root.mkdir()
    (root / "crd.yaml").write_text(HOSTILE_CRD)
    result = run_cli("init", "--crd", root / "crd.yaml", "--project", root, "--dashboards")
    assert result.exit_code == 0, result.stderr
    (kind,) = project_kinds(root)
    assert kind.kind == HOSTILE_KIND
    dashboard = _dashboard(root, kind)
    exprs = [_substituted(t["expr"]) for _title, t in _targets(dashboard)]
    assert any(f"{{kind={json.dumps(HOSTILE_KIND)}}}" in e for e in exprs)
    rules = tmp_path / "queries.yaml"
    records = [{"record": f"dashboard:query{i}", "expr": e} for i, e in enumerate(exprs)]
    rules.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": records}]}))
    proc = subprocess.run([PROMTOOL, "check", "rules", str(rules)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


GRAFANA_REFERENCE = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}"
)
"""Grafana's own variable syntax (its `variableRegex`), as it finds references in text."""


def _shown_texts(node: Any) -> Iterator[str]:
    """Every title and description in a dashboard, at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("title", "description") and isinstance(value, str):
                yield value
            else:
                yield from _shown_texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _shown_texts(item)


def test_crd_text_that_looks_like_grafana_variables_is_shown_not_replaced(tmp_path: Path) -> None:
    """A kind or field description holding `$namespace`, `${datasource}` or `[[namespace]]`
    would be replaced by the variable's value in Grafana; the dashboard shows it as written."""
    kind_name = "Ev$namespace"
    crd = (
        crd_with_conditions(kind_name, "evs")
        .replace(
            "                    type: {type: string}",
            "                    type: {type: string, description: "
            "'In ${datasource} [[namespace]] $__range'}",
        )
        .replace(
            "          status:\n",
            "          spec:\n            type: object\n            properties:\n"
            "              size: {type: integer, "
            "description: 'Pods in $namespace, ${namespace:csv}'}\n"
            "          status:\n",
        )
    )
    root = tmp_path / "op"
    root.mkdir()
    (root / "crd.yaml").write_text(crd)
    result = run_cli("init", "--crd", root / "crd.yaml", "--project", root, "--dashboards")
    assert result.exit_code == 0, result.stderr
    (kind,) = project_kinds(root)
    texts = list(_shown_texts(_dashboard(root, kind)))
    assert any("Pods in $\u200bnamespace" in t for t in texts), texts
    assert any(t.startswith("Ev$\u200bnamespace") for t in texts), texts
    for text in texts:
        assert not GRAFANA_REFERENCE.search(text), text
