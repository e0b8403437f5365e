"""The `metering:` section: recorded by `init --metering`, read strictly by `generate` (errors
name the line and list what is valid), its rules files written, checked for drift and removed
when the section is turned off or moved."""

from __future__ import annotations

from pathlib import Path

import pytest
from monitoring_projects import MEMCACHED_CRD, crd_with_conditions, load_yaml, memcached_project
from scaffold_helpers import run_cli

RULES = "deploy/prometheus/metering-rules.yaml"
PROMETHEUS_RULE = "deploy/prometheus/metering-prometheusrule.yaml"
WEIGHT = """\
metering:
  rules: deploy/prometheus/metering-rules.yaml
  prometheus_rule: deploy/prometheus/metering-prometheusrule.yaml
  interval: 5m
  kinds:
    Memcached:
      - field: spec.size
        name: instance
"""


def _without_metering(root: Path) -> None:
    config = root / ".operator-metrics.yaml"
    text = config.read_text()
    config.write_text(text[: text.index("metering:")] if "metering:" in text else text)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The example without its metering section, then `init --metering`."""
    root = memcached_project(tmp_path / "memcached-operator", "--no-metering")
    assert not (root / RULES).exists()
    result = run_cli("init", "--crd", root / MEMCACHED_CRD, "--project", root, "--metering")
    assert result.exit_code == 0, result.stderr
    return root


def _set_section(root: Path, section: str) -> None:
    _without_metering(root)
    config = root / ".operator-metrics.yaml"
    config.write_text(config.read_text() + section)


def test_init_records_defaults_and_writes_both_files(project: Path) -> None:
    section = load_yaml(project / ".operator-metrics.yaml")["metering"]
    assert section == {
        "rules": RULES,
        "prometheus_rule": PROMETHEUS_RULE,
        "interval": "5m",
        "kinds": {"Memcached": []},
    }
    rules = load_yaml(project / RULES)["groups"]
    assert [r["record"] for r in rules[0]["rules"]] == [
        "namespace_kind:operator_metrics_objects:count"
    ]
    manifest = load_yaml(project / PROMETHEUS_RULE)
    assert manifest["kind"] == "PrometheusRule"
    assert manifest["spec"]["groups"] == rules


def test_generate_adds_a_weight_and_check_sees_drift(project: Path) -> None:
    _set_section(project, WEIGHT)
    check = run_cli("generate", "--check", "--project", project)
    assert check.exit_code == 1
    assert "operator_metrics_weight:sum" in check.stdout
    assert run_cli("generate", "--project", project).exit_code == 0
    rules = load_yaml(project / RULES)["groups"][0]["rules"]
    assert rules[1]["labels"] == {
        "kind": "Memcached",
        "group": "cache.example.com",
        "weight": "instance",
        "field": "spec.size",
    }
    assert "memcached_spec_size" in rules[1]["expr"]
    assert run_cli("generate", "--check", "--project", project).exit_code == 0
    (project / RULES).write_text("groups: []\n")
    assert run_cli("generate", "--check", "--project", project).exit_code == 1


@pytest.mark.parametrize(
    ("change", "message", "line", "hint"),
    [
        (
            ("field: spec.size", "field: spec.sizes"),
            "'spec.sizes' is not a planned numeric",
            7,
            "spec.containerPort, spec.size",
        ),
        (("field: metadata.name", "field: spec.size"), "", 0, ""),
        (("interval: 5m", "interval: 5 minutes"), "`metering.interval`", 4, "10s to 1h"),
        (("interval: 5m", "interval: 1s"), "`metering.interval`", 4, "10s to 1h"),
        (("    Memcached:", "    Memcache:"), "'Memcache' is not a kind", 6, "kinds: Memcached"),
        (("name: instance", "name: Instance-Hours"), "not a snake_case word", 8, "lower-case"),
        (("  interval: 5m", "  intervall: 5m"), "unknown key 'intervall'", 4, "known keys"),
        (("        name: instance", "        unit: instance"), "unknown key 'unit'", 8, "field"),
        (("rules: deploy/prometheus/metering-rules.yaml", "rules: 3"), "`metering.rules`", 2, ""),
    ],
)
def test_config_errors_name_the_line(
    project: Path, change: tuple[str, str], message: str, line: int, hint: str
) -> None:
    old, new = change
    if not message:  # a control: the section as documented is valid
        _set_section(project, WEIGHT)
        assert run_cli("generate", "--project", project).exit_code == 0
        return
    _set_section(project, WEIGHT.replace(old, new, 1))
    before = (project / RULES).read_bytes()
    result = run_cli("generate", "--project", project)
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr
    offset = (project / ".operator-metrics.yaml").read_text().splitlines().index("metering:")
    assert f".operator-metrics.yaml:{offset + line}" in result.stderr, result.stderr
    assert hint in result.stderr
    assert (project / RULES).read_bytes() == before  # nothing written


def test_a_weight_on_a_non_numeric_field_lists_the_valid_ones(project: Path) -> None:
    _set_section(project, WEIGHT.replace("spec.size", "status.conditions"))
    result = run_cli("generate", "--project", project)
    assert result.exit_code == 2
    assert "'status.conditions' is not a planned numeric field of Memcached" in result.stderr
    assert "hint: fields a weight can use: spec.containerPort, spec.size" in result.stderr


def test_a_kind_by_its_crd_name_and_listed_twice(project: Path) -> None:
    by_crd = WEIGHT.replace("    Memcached:", "    memcacheds.cache.example.com:")
    _set_section(project, by_crd)
    assert run_cli("generate", "--project", project).exit_code == 0
    assert "memcached_spec_size" in (project / RULES).read_text()
    _set_section(project, by_crd + "    Memcached: []\n")
    result = run_cli("generate", "--project", project)
    assert result.exit_code == 2
    assert "`metering.kinds`: Memcached is listed twice" in result.stderr


def test_two_weights_of_the_same_name_are_an_error(project: Path) -> None:
    twice = WEIGHT + "      - field: spec.containerPort\n        name: instance\n"
    _set_section(project, twice)
    result = run_cli("generate", "--project", project)
    assert result.exit_code == 2
    assert "weight 'instance' is named twice" in result.stderr


def test_turning_metering_off_removes_its_files(project: Path) -> None:
    config = project / ".operator-metrics.yaml"
    result = run_cli("init", "--crd", project / MEMCACHED_CRD, "--project", project)
    assert result.exit_code == 0, result.stderr
    assert (project / RULES).is_file()  # no flag: kept as recorded
    result = run_cli(
        "init", "--crd", project / MEMCACHED_CRD, "--project", project, "--no-metering"
    )
    assert result.exit_code == 0, result.stderr
    assert not (project / RULES).exists()
    assert not (project / PROMETHEUS_RULE).exists()
    assert "metering" not in load_yaml(config)


def test_a_rules_path_outside_the_project_is_refused(project: Path) -> None:
    _set_section(project, WEIGHT.replace("rules: deploy/prometheus/", "rules: ../../", 1))
    result = run_cli("generate", "--project", project)
    assert result.exit_code == 2
    assert "`metering.rules`" in result.stderr


def test_the_example_meters_spec_size() -> None:
    example = Path(__file__).resolve().parent.parent / "examples" / "memcached-operator"
    section = load_yaml(example / ".operator-metrics.yaml")["metering"]
    assert section["kinds"] == {"Memcached": [{"field": "spec.size", "name": "instance"}]}
    assert (example / section["rules"]).is_file()


def test_two_crds_of_one_kind_are_told_apart_by_group(tmp_path: Path) -> None:
    root = tmp_path / "widgets-operator"
    (root / "crds").mkdir(parents=True)
    for group in ("a.example.com", "b.example.com"):
        text = crd_with_conditions("Widget", "widgets").replace("example.com", group)
        (root / "crds" / f"{group}.yaml").write_text(text)
    result = run_cli("init", "--crd", root / "crds", "--project", root, "--metering")
    assert result.exit_code == 0, result.stderr
    rules = load_yaml(root / RULES)["groups"][0]["rules"]
    assert sorted(r["labels"]["group"] for r in rules) == ["a.example.com", "b.example.com"]
    assert {r["labels"]["kind"] for r in rules} == {"Widget"}
    assert len({r["expr"] for r in rules}) == 2  # each its own kind's family
    config = root / ".operator-metrics.yaml"
    text = config.read_text()
    assert "widgets.a.example.com: []" in text and "widgets.b.example.com: []" in text
    config.write_text(text + "    Widget: []\n")
    result = run_cli("generate", "--project", root)
    assert result.exit_code == 2
    assert "'Widget' is the kind of several CRDs" in result.stderr
    assert "hint: name it by its CRD: widgets.a.example.com, widgets.b.example.com" in result.stderr
