"""The generated alerting rules, checked and unit-tested by promtool: every rules file (the plain
one and the PrometheusRule's groups) passes `promtool check rules`, and each alert fires on input
series that should fire it, with the labels and annotations written for it, and stays silent
on healthy ones (`promtool test rules`)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from monitoring_projects import (
    HOSTILE_CRD,
    HOSTILE_KIND,
    crd_with_conditions,
    kafka_project,
    load_yaml,
    memcached_project,
)
from prom_helpers import PROMTOOL, _require
from scaffold_helpers import run_cli

RULES = "deploy/prometheus/alerts-rules.yaml"
PROMETHEUS_RULE = "deploy/prometheus/alerts-prometheusrule.yaml"
MEMCACHED = {"namespace": "shop", "memcached": "cache"}
KAFKA = {"namespace": "events", "kafka": "main"}
TARGET = {"job": "memcached-operator", "instance": "10.0.0.7:8389"}
CORPUS = Path(__file__).resolve().parent / "data" / "crds"


@pytest.fixture(scope="module")
def memcached(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return memcached_project(tmp_path_factory.mktemp("alerts") / "memcached-operator", "--alerts")


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return kafka_project(tmp_path_factory.mktemp("alerts") / "kafka-operator")


def _series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return {"series": f"{name}{{{inner}}}", "values": values}


def _promtool(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    _require(PROMTOOL)
    return subprocess.run(
        [PROMTOOL, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def _test_rules(rules: Path, tests: list[dict[str, Any]], tmp_path: Path) -> None:
    """Run `promtool test rules` on `rules` with these unit tests; fail with its output."""
    unit = tmp_path / "alerts-test.yaml"
    unit.write_text(  # JSON is YAML
        json.dumps({"rule_files": [str(rules)], "evaluation_interval": "1m", "tests": tests})
    )
    proc = _promtool("test", "rules", unit, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _files(project: Path) -> tuple[Path, Path]:
    """The rules file and the PrometheusRule, where the project's config puts them."""
    alerts = load_yaml(project / ".operator-metrics.yaml")["alerts"]
    return project / alerts["rules"], project / alerts["prometheus_rule"]


def _prometheus_rule_as_rules_file(project: Path, tmp_path: Path) -> Path:
    manifest = load_yaml(_files(project)[1])
    assert manifest["apiVersion"] == "monitoring.coreos.com/v1"
    assert manifest["kind"] == "PrometheusRule"
    extracted = tmp_path / "from-prometheusrule.yaml"
    extracted.write_text(json.dumps({"groups": manifest["spec"]["groups"]}))
    return extracted


@pytest.mark.parametrize("name", ["memcached", "kafka"])
def test_every_rules_file_passes_promtool_check(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    project: Path = request.getfixturevalue(name)
    extracted = _prometheus_rule_as_rules_file(project, tmp_path)
    assert load_yaml(extracted)["groups"] == load_yaml(_files(project)[0])["groups"]
    for rules in (_files(project)[0], extracted):
        proc = _promtool("check", "rules", rules, cwd=tmp_path)
        assert proc.returncode == 0 and "SUCCESS" in proc.stdout, proc.stdout + proc.stderr


def _not_ready_test(object_labels: dict[str, str], family: str, kind: str) -> dict[str, Any]:
    """`<Kind>NotReady`: Ready False for 16 minutes fires; Ready True, a pending Available and
    a condition type not asked for (Degraded) do not."""
    other = {**object_labels, list(object_labels)[-1]: "healthy"}
    obj = "/".join(object_labels.values())
    return {
        "interval": "1m",
        "input_series": [
            _series(family, {**object_labels, "type": "Ready", "status": "True"}, "0x20"),
            _series(family, {**object_labels, "type": "Ready", "status": "False"}, "1x20"),
            _series(family, {**object_labels, "type": "Degraded", "status": "True"}, "0x20"),
            _series(family, {**other, "type": "Ready", "status": "True"}, "1x20"),
            _series(family, {**other, "type": "Available", "status": "True"}, "1x10 0x10"),
        ],
        "alert_rule_test": [
            {"eval_time": "14m", "alertname": f"{kind}NotReady", "exp_alerts": []},
            {
                "eval_time": "16m",
                "alertname": f"{kind}NotReady",
                "exp_alerts": [
                    {
                        "exp_labels": {
                            **object_labels,
                            "type": "Ready",
                            "status": "True",
                            "severity": "warning",
                        },
                        "exp_annotations": {
                            "summary": f"{kind} {obj} is not Ready.",
                            "description": f"Condition Ready of {kind} {obj} has not been True "
                            "for more than 15 minutes.",
                        },
                    }
                ],
            },
        ],
    }


def test_memcached_alerts_fire_on_their_series(memcached: Path, tmp_path: Path) -> None:
    rules = memcached / RULES
    sync = "operator_metrics_last_sync_timestamp_seconds"
    requests = "operator_metrics_list_requests_total"
    failures = "operator_metrics_list_failures_total"
    errors = "operator_metrics_generator_errors_total"
    stuck = {**TARGET, "kind": "Memcached"}  # listed all namespaces (namespace=""), never synced
    failing = {**TARGET, "kind": "Memcached", "namespace": "shop"}  # synced once, then failing
    fine = {**TARGET, "kind": "Memcached", "namespace": "web"}
    other_kind = {**TARGET, "kind": "Backup", "namespace": ""}  # not this project's kind
    runtime = {
        "interval": "1m",
        "input_series": [
            _series(requests, stuck, "1+1x40"),
            _series(failures, stuck, "1+1x40"),
            _series(requests, failing, "1+1x40"),
            _series(failures, failing, "0+1x40"),
            _series(sync, failing, "60x40"),
            _series(requests, fine, "1x40"),
            _series(failures, fine, "0x40"),
            _series(sync, fine, "60x40"),
            _series(requests, other_kind, "1x40"),
            _series(errors, {**TARGET, "kind": "Memcached"}, "0 0 0 2x37"),
            _series(errors, {**TARGET, "kind": "Backup"}, "0 5x39"),
            _series("up", TARGET, "1 1 0x38"),
        ],
        "alert_rule_test": [
            {
                "eval_time": "10m",
                "alertname": "OperatorMetricsCollectorNotSynced",
                "exp_alerts": [],
            },
            {
                "eval_time": "32m",
                "alertname": "OperatorMetricsCollectorNotSynced",
                "exp_alerts": [
                    {
                        "exp_labels": {**labels, "severity": "critical"},
                        "exp_annotations": {
                            "summary": "operator-metrics collector has not synced.",
                            "description": f"The operator-metrics collector of Memcached in "
                            f"{where} on {TARGET['instance']} has not completed a list of its "
                            "objects, or most of its lists failed, for more than 15 minutes: "
                            "its metrics are missing or stale.",
                        },
                    }
                    for labels, where in ((failing, "namespace shop"), (stuck, "all namespaces"))
                ],
            },
            {"eval_time": "6m", "alertname": "OperatorMetricsGeneratorErrors", "exp_alerts": []},
            {
                "eval_time": "9m",
                "alertname": "OperatorMetricsGeneratorErrors",
                "exp_alerts": [
                    {
                        "exp_labels": {**TARGET, "kind": "Memcached", "severity": "warning"},
                        "exp_annotations": {
                            "summary": "operator-metrics could not turn objects into samples.",
                            "description": f"2 objects or values of Memcached on "
                            f"{TARGET['instance']} could not be turned into samples in the last "
                            "10 minutes (a value of the wrong type, a string too long); their "
                            "series are missing.",
                        },
                    }
                ],
            },
            # 10 minutes after the last error the increase is gone, and so is the alert.
            {"eval_time": "25m", "alertname": "OperatorMetricsGeneratorErrors", "exp_alerts": []},
            {"eval_time": "11m", "alertname": "OperatorMetricsTargetDown", "exp_alerts": []},
            {
                "eval_time": "13m",
                "alertname": "OperatorMetricsTargetDown",
                "exp_alerts": [
                    {
                        "exp_labels": {**TARGET, "severity": "critical"},
                        "exp_annotations": {
                            "summary": "operator-metrics target is down.",
                            "description": "Prometheus has not scraped the custom-resource "
                            f"metrics of job {TARGET['job']} on {TARGET['instance']} for more "
                            "than 10 minutes (down, or no target at all).",
                        },
                    }
                ],
            },
        ],
    }
    no_target = {
        "interval": "1m",
        "input_series": [_series("up", {"job": "someone-else", "instance": "x"}, "1x20")],
        "alert_rule_test": [
            {
                "eval_time": "11m",
                "alertname": "OperatorMetricsTargetDown",
                "exp_alerts": [
                    {
                        "exp_labels": {"job": TARGET["job"], "severity": "critical"},
                        "exp_annotations": {
                            "summary": "operator-metrics target is down.",
                            "description": "Prometheus has not scraped the custom-resource "
                            f"metrics of job {TARGET['job']} for more than 10 minutes (down, or "
                            "no target at all).",
                        },
                    }
                ],
            }
        ],
    }
    condition = _not_ready_test(MEMCACHED, "memcached_status_condition", "Memcached")
    _test_rules(rules, [condition, runtime, no_target], tmp_path)


def test_kafka_alerts_fire_on_their_series(kafka: Path, tmp_path: Path) -> None:
    rules, _ = _files(kafka)
    behind = {**KAFKA, "kafka": "behind"}
    leaving = {**KAFKA, "kafka": "leaving"}
    just_asked = {**KAFKA, "kafka": "just-asked"}
    generation = {
        "interval": "1m",
        "input_series": [
            _series("kafka_metadata_generation", behind, "3x20"),
            _series("kafka_status_observed_generation", behind, "2x20"),
            _series("kafka_metadata_generation", KAFKA, "4x20"),
            _series("kafka_status_observed_generation", KAFKA, "4x20"),
        ],
        "alert_rule_test": [
            {"eval_time": "14m", "alertname": "KafkaGenerationMismatch", "exp_alerts": []},
            {
                "eval_time": "16m",
                "alertname": "KafkaGenerationMismatch",
                "exp_alerts": [
                    {
                        "exp_labels": {**behind, "severity": "warning"},
                        "exp_annotations": {
                            "summary": "Kafka events/behind has a change its operator has not "
                            "observed.",
                            "description": "Generation 3 of Kafka events/behind has not been "
                            "observed by its operator (status.observedGeneration) for more "
                            "than 15 minutes: the change is not applied, or the operator is "
                            "stuck.",
                        },
                    }
                ],
            },
        ],
    }
    deletion = {
        "interval": "1m",
        # deletion asked at t=0 and at t=10m (Unix seconds of the test clock)
        "input_series": [
            _series("kafka_deletion_timestamp", leaving, "0x30"),
            _series("kafka_deletion_timestamp", just_asked, "600x30"),
        ],
        "alert_rule_test": [
            {"eval_time": "14m", "alertname": "KafkaDeletionStuck", "exp_alerts": []},
            {
                "eval_time": "20m",
                "alertname": "KafkaDeletionStuck",
                "exp_alerts": [
                    {
                        "exp_labels": {**leaving, "severity": "warning"},
                        "exp_annotations": {
                            "summary": "Kafka events/leaving is stuck in deletion.",
                            "description": "Kafka events/leaving was asked to be deleted "
                            "20m 0s ago and its finalizers still hold it.",
                        },
                    }
                ],
            },
        ],
    }
    condition = _not_ready_test(KAFKA, "kafka_status_condition", "Kafka")
    _test_rules(rules, [condition, generation, deletion], tmp_path)


def test_alerts_the_plan_cannot_feed_are_left_out_and_named(memcached: Path) -> None:
    """The memcached CRD has no status.observedGeneration and its config includes no
    metadata.deletionTimestamp: no such alert, and the header says why."""
    text = (memcached / RULES).read_text()
    alerts = [r["alert"] for g in load_yaml(memcached / RULES)["groups"] for r in g["rules"]]
    assert alerts == [
        "MemcachedNotReady",
        "OperatorMetricsCollectorNotSynced",
        "OperatorMetricsGeneratorErrors",
        "OperatorMetricsTargetDown",
    ]
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert any("Memcached has no status.observedGeneration" in line for line in header)
    assert any("metadata.deletionTimestamp: include it" in line for line in header)


def test_alerts_are_recorded_kept_by_generate_and_removed_by_no_alerts(tmp_path: Path) -> None:
    root = memcached_project(tmp_path / "op", "--alerts")
    config = load_yaml(root / ".operator-metrics.yaml")
    assert config["alerts"]["rules"] == RULES
    assert config["alerts"]["job"] == "memcached-operator"  # the Service's name
    before = (root / RULES).read_bytes()
    check = run_cli("generate", "--check", "--project", root)
    assert check.exit_code == 0, check.stdout + check.stderr
    assert (root / RULES).read_bytes() == before
    off = run_cli("init", "--crd", root / "config/crd/bases", "--project", root, "--no-alerts")
    assert off.exit_code == 0, off.stderr
    assert not (root / RULES).exists() and not (root / PROMETHEUS_RULE).exists()
    assert "alerts" not in load_yaml(root / ".operator-metrics.yaml")


def test_alerts_paths_outside_the_project_are_refused(tmp_path: Path) -> None:
    root = memcached_project(tmp_path / "op", "--alerts")
    config = root / ".operator-metrics.yaml"
    config.write_text(config.read_text().replace(f"rules: {RULES}", "rules: ../outside.yaml"))
    result = run_cli("generate", "--project", root)
    assert result.exit_code == 2
    assert "`alerts.rules` '../outside.yaml' is outside the project" in result.stderr
    assert not (tmp_path / "outside.yaml").exists()


def test_a_cluster_scoped_kind_is_alerted_on_by_name_alone(tmp_path: Path) -> None:
    root = tmp_path / "provider-operator"
    crd = root / "config/crd/providers.yaml"
    crd.parent.mkdir(parents=True)
    crd.write_text((CORPUS / "crossplane-providers.yaml").read_text())
    result = run_cli("init", "--crd", crd, "--project", root, "--alerts")
    assert result.exit_code == 0, result.stderr
    rules, _ = _files(root)
    condition = _not_ready_test({"provider": "core"}, "provider_status_condition", "Provider")
    _test_rules(rules, [condition], tmp_path)


def test_an_unknown_key_in_a_section_is_an_error_at_its_line(tmp_path: Path) -> None:
    root = memcached_project(tmp_path / "op", "--alerts")
    config = root / ".operator-metrics.yaml"
    lines = config.read_text().splitlines()
    at = lines.index("  job: memcached-operator")
    lines.insert(at, "  severity: page")
    config.write_text("\n".join(lines) + "\n")
    result = run_cli("generate", "--project", root)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: unknown key 'severity' in `alerts`: {config}:{at + 1}")


def test_a_hostile_kind_name_is_text_in_the_annotations_never_template_code(
    tmp_path: Path,
) -> None:
    root = tmp_path / "evil-operator"
    root.mkdir()
    (root / "crd.yaml").write_text(HOSTILE_CRD)
    result = run_cli("init", "--crd", root / "crd.yaml", "--project", root, "--alerts")
    assert result.exit_code == 0, result.stderr
    rules, _ = _files(root)
    (rule,) = load_yaml(rules)["groups"][0]["rules"]
    labels = {"namespace": "a", rule["expr"].split("_status_condition")[0]: "x"}
    family = rule["expr"].split("{")[0]
    test = _not_ready_test(labels, family, rule["alert"].removesuffix("NotReady"))
    expected = test["alert_rule_test"][1]["exp_alerts"][0]["exp_annotations"]
    for key in expected:  # the kind as it is written in the CRD, not as a class name
        expected[key] = expected[key].replace(rule["alert"].removesuffix("NotReady"), HOSTILE_KIND)
    _test_rules(rules, [test], tmp_path)


def test_alert_names_keep_the_kinds_own_spelling(tmp_path: Path) -> None:
    """`HTTPRoute` alerts are `HTTPRouteNotReady` (not the class name `HttpRoute`)."""
    root = tmp_path / "gateway-operator"
    root.mkdir()
    (root / "crd.yaml").write_text(crd_with_conditions("HTTPRoute", "httproutes"))
    result = run_cli("init", "--crd", root / "crd.yaml", "--project", root, "--alerts")
    assert result.exit_code == 0, result.stderr
    rules, _ = _files(root)
    (rule,) = load_yaml(rules)["groups"][0]["rules"]
    assert rule["alert"] == "HTTPRouteNotReady"
    assert rule["expr"].startswith("http_route_status_condition{")


def test_a_runbook_url_annotates_every_alert_with_its_own_page(tmp_path: Path) -> None:
    root = memcached_project(tmp_path / "op", "--alerts")
    config = root / ".operator-metrics.yaml"
    url = "https://example.com/runbooks/memcached.md#{alert}"
    config.write_text(
        config.read_text().replace(
            "  job: memcached-operator", f"  job: memcached-operator\n  runbook_url: '{url}'"
        )
    )
    result = run_cli("generate", "--project", root)
    assert result.exit_code == 0, result.stderr
    for path in (_files(root)[0], _prometheus_rule_as_rules_file(root, tmp_path)):
        rules = [r for g in load_yaml(path)["groups"] for r in g["rules"]]
        assert len(rules) >= 4
        for rule in rules:
            expected = url.replace("{alert}", rule["alert"])
            assert rule["annotations"]["runbook_url"] == expected, rule
        proc = _promtool("check", "rules", path, cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    again = run_cli("init", "--crd", root / "config/crd/bases", "--project", root, "--alerts")
    assert again.exit_code == 0, again.stderr
    assert load_yaml(config)["alerts"]["runbook_url"] == url  # the user's edit is kept


@pytest.mark.parametrize(
    "value",
    ["runbooks.md#{alert}", "https://example.com/{{ $labels.x }}", "https://e.com/a b", "[1]"],
)
def test_a_runbook_url_that_is_not_an_http_url_is_an_error_at_its_line(
    value: str, tmp_path: Path
) -> None:
    root = memcached_project(tmp_path / "op", "--alerts")
    config = root / ".operator-metrics.yaml"
    lines = config.read_text().splitlines()
    at = lines.index("  job: memcached-operator")
    lines.insert(at, f"  runbook_url: {json.dumps(value) if value != '[1]' else value}")
    config.write_text("\n".join(lines) + "\n")
    before = _files(root)[0].read_bytes()
    result = run_cli("generate", "--project", root)
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"error: `alerts.runbook_url` must be an http(s) URL: {config}:{at + 1}"
    ), result.stderr
    assert _files(root)[0].read_bytes() == before
