"""The generated metering recording rules, checked and unit-tested by promtool: every rules file
(the plain one and the PrometheusRule's groups) passes `promtool check rules`, and on input
series of known objects each rule records the count and the weight sums per namespace and kind,
counting an object once however many targets expose it (`promtool test rules`)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from monitoring_projects import EXAMPLE, HOSTILE_CRD, HOSTILE_KIND, load_yaml, memcached_project
from prom_helpers import PROMTOOL, _require
from scaffold_helpers import run_cli

CORPUS = Path(__file__).resolve().parent / "data" / "crds"
OBJECTS = "namespace_kind:operator_metrics_objects:count"
WEIGHT = "namespace_kind:operator_metrics_weight:sum"


def _promtool(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    _require(PROMTOOL)
    return subprocess.run(
        [PROMTOOL, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def _series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return {"series": f"{name}{{{inner}}}", "values": values}


def _corpus_project(root: Path, crd: str, section: str) -> Path:
    (root / "config").mkdir(parents=True)
    shutil.copyfile(CORPUS / crd, root / "config" / crd)
    result = run_cli("init", "--crd", root / "config" / crd, "--project", root, "--metering")
    assert result.exit_code == 0, result.stderr
    config = root / ".operator-metrics.yaml"
    text = config.read_text()
    config.write_text(text[: text.index("  kinds:")] + section)
    result = run_cli("generate", "--project", root)
    assert result.exit_code == 0, result.stderr
    return root


def _rules_files(project: Path, tmp_path: Path) -> list[Path]:
    """The plain rules file and the PrometheusRule's groups as a rules file."""
    section = load_yaml(project / ".operator-metrics.yaml")["metering"]
    manifest = load_yaml(project / section["prometheus_rule"])
    assert manifest["kind"] == "PrometheusRule"
    extracted = tmp_path / f"{project.name}-from-prometheusrule.yaml"
    extracted.write_text(json.dumps({"groups": manifest["spec"]["groups"]}))
    plain = project / section["rules"]
    assert load_yaml(extracted)["groups"] == load_yaml(plain)["groups"]
    return [plain, extracted]


def _test_rules(rules: Path, tests: list[dict[str, Any]], tmp_path: Path) -> None:
    unit = tmp_path / "metering-test.yaml"
    unit.write_text(
        json.dumps({"rule_files": [str(rules)], "evaluation_interval": "1m", "tests": tests})
    )
    proc = _promtool("test", "rules", unit, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _memcached_tests() -> list[dict[str, Any]]:
    """ns a: two objects (one exposed by two targets), sizes 3 and 2; ns b: one of size 4,
    deleted after 10 minutes."""
    one = {"instance": "10.0.0.1:8389", "job": "memcached-operator"}
    two = {"instance": "10.0.0.2:8389", "job": "memcached-operator"}
    series = []
    for target in (one, two):
        series.append(
            _series("memcached_info", {**target, "namespace": "a", "memcached": "x"}, "1x30")
        )
        series.append(
            _series("memcached_spec_size", {**target, "namespace": "a", "memcached": "x"}, "3x30")
        )
    series += [
        _series("memcached_info", {**one, "namespace": "a", "memcached": "y"}, "1x30"),
        _series("memcached_spec_size", {**one, "namespace": "a", "memcached": "y"}, "2x30"),
        _series("memcached_info", {**one, "namespace": "b", "memcached": "x"}, "1x10 stale"),
        _series("memcached_spec_size", {**one, "namespace": "b", "memcached": "x"}, "4x10 stale"),
    ]
    kind = {"kind": "Memcached", "group": "cache.example.com"}
    weight = {**kind, "weight": "instance", "field": "spec.size"}
    objects = _labels(OBJECTS, kind)[:-1]
    return [
        {
            "interval": "1m",
            "input_series": series,
            "promql_expr_test": [
                {
                    "expr": OBJECTS,
                    "eval_time": "5m",
                    "exp_samples": [
                        {"labels": objects + ',namespace="a"}', "value": 2},
                        {"labels": objects + ',namespace="b"}', "value": 1},
                    ],
                },
                {
                    "expr": WEIGHT,
                    "eval_time": "5m",
                    "exp_samples": [
                        {"labels": _labels(WEIGHT, {**weight, "namespace": "a"}), "value": 5},
                        {"labels": _labels(WEIGHT, {**weight, "namespace": "b"}), "value": 4},
                    ],
                },
                {
                    "expr": OBJECTS,
                    "eval_time": "20m",
                    "exp_samples": [{"labels": objects + ',namespace="a"}', "value": 2}],
                },
            ],
        }
    ]


def _labels(name: str, labels: dict[str, str]) -> str:
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def test_the_example_rules_pass_promtool_and_record_known_usage(tmp_path: Path) -> None:
    for rules in _rules_files(EXAMPLE, tmp_path):
        proc = _promtool("check", "rules", rules, cwd=tmp_path)
        assert proc.returncode == 0 and "SUCCESS: 2 rules found" in proc.stdout, proc.stdout
        _test_rules(rules, _memcached_tests(), tmp_path)


def test_an_init_project_records_objects_only(tmp_path: Path) -> None:
    project = memcached_project(tmp_path / "memcached-operator", "--no-metering")
    config = project / ".operator-metrics.yaml"
    text = config.read_text()
    config.write_text(text[: text.index("metering:")] if "metering:" in text else text)
    run_cli(
        "init",
        "--crd",
        project / "config/crd/bases/cache.example.com_memcacheds.yaml",
        "--project",
        project,
        "--metering",
    )
    tests = _memcached_tests()
    tests[0]["promql_expr_test"] = [t for t in tests[0]["promql_expr_test"] if t["expr"] == OBJECTS]
    tests[0]["promql_expr_test"].append({"expr": WEIGHT, "eval_time": "5m", "exp_samples": []})
    for rules in _rules_files(project, tmp_path):
        proc = _promtool("check", "rules", rules, cwd=tmp_path)
        assert proc.returncode == 0 and "SUCCESS: 1 rules found" in proc.stdout, proc.stdout
        _test_rules(rules, tests, tmp_path)


@pytest.mark.parametrize(
    ("crd", "section", "info", "family", "namespaced"),
    [
        (
            "prometheus-operator-prometheuses.yaml",
            "  kinds:\n    Prometheus:\n      - field: spec.replicas\n        name: replica\n",
            "prometheus_info",
            "prometheus_spec_replicas",
            True,
        ),
        (
            "crossplane-providers.yaml",
            "  kinds:\n    Provider:\n"
            "      - field: spec.revisionHistoryLimit\n        name: revision\n",
            "provider_info",
            "provider_spec_revision_history_limit",
            False,
        ),
    ],
)
def test_corpus_rules_pass_promtool(
    crd: str, section: str, info: str, family: str, namespaced: bool, tmp_path: Path
) -> None:
    project = _corpus_project(tmp_path / "project", crd, section)
    kind = next(iter(load_yaml(project / ".operator-metrics.yaml")["metering"]["kinds"]))
    label = info.removesuffix("_info")
    where = {"namespace": "ns"} if namespaced else {}
    series = [
        _series(info, {**where, label: "p1", "job": "j"}, "1x20"),
        _series(info, {**where, label: "p2", "job": "j"}, "1x20"),
        _series(family, {**where, label: "p1", "job": "j"}, "2x20"),
        _series(family, {**where, label: "p2", "job": "j"}, "5x20"),
    ]
    rule = load_yaml(project / ".operator-metrics.yaml")["metering"]["kinds"][kind][0]
    group = load_yaml(project / "config" / crd)["spec"]["group"]
    weight = {"kind": kind, "group": group, "weight": rule["name"], "field": rule["field"], **where}
    tests = [
        {
            "interval": "1m",
            "input_series": series,
            "promql_expr_test": [
                {
                    "expr": OBJECTS,
                    "eval_time": "5m",
                    "exp_samples": [
                        {
                            "labels": _labels(OBJECTS, {"kind": kind, "group": group, **where}),
                            "value": 2,
                        }
                    ],
                },
                {
                    "expr": WEIGHT,
                    "eval_time": "5m",
                    "exp_samples": [{"labels": _labels(WEIGHT, weight), "value": 7}],
                },
            ],
        }
    ]
    for rules in _rules_files(project, tmp_path):
        proc = _promtool("check", "rules", rules, cwd=tmp_path)
        assert proc.returncode == 0 and "SUCCESS: 2 rules found" in proc.stdout, proc.stdout
        _test_rules(rules, tests, tmp_path)


def test_a_hostile_kind_name_is_a_label_value_only(tmp_path: Path) -> None:
    root = tmp_path / "evil-operator"
    root.mkdir()
    (root / "crd.yaml").write_text(HOSTILE_CRD)
    result = run_cli("init", "--crd", root / "crd.yaml", "--project", root, "--metering")
    assert result.exit_code == 0, result.stderr
    section = load_yaml(root / ".operator-metrics.yaml")["metering"]
    assert section["kinds"] == {HOSTILE_KIND: []}
    assert run_cli("generate", "--check", "--project", root).exit_code == 0
    for rules in _rules_files(root, tmp_path):
        proc = _promtool("check", "rules", rules, cwd=tmp_path)
        assert proc.returncode == 0 and "SUCCESS: 1 rules found" in proc.stdout, proc.stdout
        (rule,) = load_yaml(rules)["groups"][0]["rules"]
        assert rule["labels"] == {"kind": HOSTILE_KIND, "group": "example.com"}
        info = rule["expr"].rsplit("(", 1)[1].rstrip(")")
        label = info.removesuffix("_info")
        test = {
            "interval": "1m",
            "input_series": [_series(info, {"namespace": "a", label: "x"}, "1x10")],
            "promql_expr_test": [
                {
                    "expr": f"{OBJECTS}{{kind={json.dumps(HOSTILE_KIND)}}}",
                    "eval_time": "5m",
                    "exp_samples": [
                        {"labels": _labels(OBJECTS, {"group": "example.com", "namespace": "a"})[:-1]
                         + f",kind={json.dumps(HOSTILE_KIND)}}}", "value": 1}
                    ],
                }
            ],
        }  # fmt: skip
        _test_rules(rules, [test], tmp_path)
