"""String states, numeric strings, string times, priorities under the cap and names."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from scaffold_helpers import copy_crd, run_cli
from schema_helpers import import_generators, load, plan_of, sample_object
from test_ksm_export import _export, ksm_samples, our_samples

from scaffold_metrics.errors import InputError
from scaffold_metrics.families_plan import lint_safe_name
from scaffold_metrics.metric_config import parse_metrics_config
from scaffold_metrics.naming import RUNTIME_METRICS_PREFIX, snake_case
from scaffold_metrics.plan import KindPlan, PlanOptions
from scaffold_metrics.runtime import selfmetrics

GADGETS = Path(__file__).parent / "data" / "test-crds" / "test.example.com_gadgets.yaml"


def _options(text: str) -> PlanOptions:
    data = YAML(typ="rt").load(textwrap.dedent(text))
    return PlanOptions(metrics=parse_metrics_config(data, None))


def _by_source(kind: KindPlan) -> dict[str, tuple[str, str, tuple[str, ...]]]:
    return {f.source: (f.name, f.value, f.extra_labels) for f in kind.families}


def _left_out(kind: KindPlan) -> dict[str, str]:
    return {o.path: o.reason for o in kind.left_out}


def test_status_states_shown_by_printer_columns_are_planned_as_string_families() -> None:
    kind = plan_of(load("argo-cd-applications.yaml")).kinds[0]
    planned = _by_source(kind)
    assert planned["status.health.status"] == (
        "application_status_health_status",
        "string",
        ("status",),
    )
    assert planned["status.sync.status"][1:] == ("string", ("status",))
    # A spec string is a setting: a printer column alone does not plan it.
    assert "spec.project" not in planned
    assert "include it" in _left_out(kind)["spec.project"]


def test_status_version_strings_are_planned() -> None:
    (kafka,) = [k for k in plan_of(load("strimzi-kafkas.yaml")).kinds if k.kind == "Kafka"]
    assert _by_source(kafka)["status.kafkaVersion"] == (
        "kafka_status_kafka_version",
        "string",
        ("kafka_version",),
    )


def test_default_string_rule_and_free_text() -> None:
    kind = plan_of(load(GADGETS)).kinds[0]
    planned, left = _by_source(kind), _left_out(kind)
    assert planned["status.phase"] == ("gadget_status_phase", "string", ("phase",))
    assert planned["status.clusterHealth"][1:] == ("string", ("cluster_health",))
    assert left["status.message"] == "free text: include it to serve it as a label"
    assert left["status.currentPrimary"] == "string: include it to serve its value as a label"
    assert left["status.lastBackupTime"] == "string: include it to serve its value as a label"
    # A printer column into a status map of strings is valid: that key is served.
    assert planned["status.tags.owner"] == ("gadget_status_tags_owner", "string", ("owner",))
    assert "status.tags.owner" not in left
    phase = next(f for f in kind.families if f.source == "status.phase")
    assert phase.help == (
        "Where the gadget is in its lifecycle. The value is the phase label (1 per object)."
    )


def test_include_serves_any_string_and_type_reads_strings_as_times() -> None:
    options = _options("""\
        kinds:
          Gadget:
            include: [status.currentPrimary, status.message]
            type: {status.lastBackupTime: timestamp, spec.image: quantity}
        """)
    kind = plan_of(load(GADGETS), options).kinds[0]
    planned = _by_source(kind)
    assert planned["status.currentPrimary"][1:] == ("string", ("current_primary",))
    assert planned["status.message"][1] == "string"  # asked for by name: served
    assert planned["status.lastBackupTime"][1] == "timestamp"
    assert planned["spec.image"][1] == "quantity"
    reasons = {f.source: f.reason for f in kind.families}
    assert reasons["status.lastBackupTime"] == (
        "configured (status.lastBackupTime), read as a timestamp (config type)"
    )


def test_numeric_strings_read_as_numbers(tmp_path: Path) -> None:
    kind = plan_of(load(GADGETS)).kinds[0]
    assert _by_source(kind)["status.usedBytes"] == ("gadget_status_used_bytes", "number", ())
    generator = import_generators(tmp_path, plan_of(load(GADGETS)))[kind.crd_name]
    obj = {"metadata": {"name": "g", "namespace": "ns"}, "status": {"usedBytes": "1073741824"}}
    values = {s.family.name: s.value for s in generator.generate(obj)}
    assert values["gadget_status_used_bytes"] == 1073741824.0


def test_string_families_serve_the_value_as_a_label(tmp_path: Path) -> None:
    plan = plan_of(load(GADGETS))
    generator = import_generators(tmp_path, plan)[plan.kinds[0].crd_name]
    obj = {
        "metadata": {"name": "g", "namespace": "ns"},
        "status": {"phase": "Running", "clusterHealth": "x" * 257, "message": "ignored"},
    }
    samples = generator.generate(obj)
    strings = {
        (s.family.name, s.label_values, s.value) for s in samples if "status" in s.family.name
    }
    assert strings == {("gadget_status_phase", ("ns", "g", "Running"), 1.0)}
    # Longer than the bound: no series, one problem.
    assert samples.problems == [
        "gadget_status_cluster_health: status.clusterHealth: value longer than 256 characters"
    ]


def test_ksm_export_of_strings_numeric_strings_and_string_times(tmp_path: Path) -> None:
    options = _options("""\
        kinds:
          Gadget:
            include: [status.currentPrimary]
            type: {status.lastBackupTime: timestamp}
        """)
    plan = plan_of(load(GADGETS), options)
    (resource,) = _export(plan)["spec"]["resources"]
    metrics = {m["name"]: m["each"] for m in resource["metrics"]}
    assert metrics["status_phase"] == {
        "type": "Info",
        "info": {"labelsFromPath": {"phase": ["status", "phase"]}},
    }
    assert metrics["status_used_bytes"] == {
        "type": "Gauge",
        "gauge": {"path": ["status", "usedBytes"]},
    }
    assert metrics["status_last_backup_time"]["type"] == "Gauge"
    kind = plan.kinds[0]
    generator = import_generators(tmp_path, plan)[kind.crd_name]
    obj = sample_object(kind)
    obj["status"]["lastBackupTime"] = "2024-01-02T03:04:05Z"
    ours = our_samples(generator.generate(obj))
    assert ksm_samples(resource, obj) == ours
    assert ("gadget_status_last_backup_time", frozenset(
        {("namespace", "team-a"), ("gadget", "sample-1")}
    ), 1704164645.0) in ours  # fmt: skip


def test_the_cap_keeps_status_before_spec_settings(tmp_path: Path) -> None:
    kind = plan_of(load(GADGETS), _options("max_families: 12\n")).kinds[0]
    sources = [f.source for f in kind.families]
    # Mandatory (info, created, conditions), printer columns, then status states, times, counts.
    assert sources[3:9] == [
        "status.phase",  # the printer columns
        "status.placement.zone",
        "status.tags.owner",
        "status.clusterHealth",
        "status.lastSyncTime",
        "status.readyReplicas",
    ]
    cut = [o.path for o in kind.left_out if o.by_cap]
    assert "spec.paused" in cut and "spec.tier" in cut  # spec settings and booleans go first
    assert "status.readyReplicas" not in cut
    project = tmp_path / "project"
    crd = copy_crd(GADGETS, project)
    result = run_cli("init", "--crd", crd, "--out", project)
    assert result.exit_code == 0, result.stderr
    config = project / ".operator-metrics.yaml"
    config.write_text(config.read_text() + "metrics:\n  max_families: 12\n")
    result = run_cli("generate", "--project", project)
    assert result.exit_code == 0, result.stderr
    note = f"note: {len(cut)} fields left out by the cap of 12 for Gadget: see `operator-metrics"
    note += " explain`"
    assert note in result.stderr.splitlines()


def test_no_cap_note_when_nothing_was_cut(tmp_path: Path) -> None:
    project = tmp_path / "project"
    crd = copy_crd(GADGETS, project)
    result = run_cli("init", "--crd", crd, "--out", project)
    assert result.exit_code == 0, result.stderr
    assert "left out by the cap" not in result.stderr


@pytest.mark.parametrize(
    ("text", "snake"),
    [
        ("OSDs", "osds"),
        ("maxOSDs", "max_osds"),
        ("PGs", "pgs"),
        ("NVMeOF", "nvmeof"),
        ("NVMeOFGateway", "nvmeof_gateway"),
        ("VLogs", "vlogs"),
        ("VLAgent", "vl_agent"),
        ("HTTPRoute", "http_route"),
        ("isAUser", "is_a_user"),
    ],
)
def test_acronyms_stay_whole(text: str, snake: str) -> None:
    assert snake_case(text) == snake


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("ceph_spec_crash_collector_days_to_retain", "ceph_spec_crash_collector_day_to_retain"),
        ("x_spec_retention_days", "x_spec_retention_day"),
        ("x_spec_timeout_ms", "x_spec_timeout_millisecond"),
        ("x_spec_timeout_milliseconds", "x_spec_timeout_millisecond"),
        ("x_spec_size_kilobytes", "x_spec_size_kilobyte"),
        ("x_spec_timeout_seconds", "x_spec_timeout_seconds"),
        ("x_spec_wait_s", "x_spec_waits"),  # no one spelling for a bare `s`: merged
    ],
)
def test_unit_names_keep_their_separators(name: str, safe: str) -> None:
    assert lint_safe_name(name) == safe


def _crd(tmp_path: Path, kind: str, spec: str, name: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(f"""\
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata: {{name: {kind.lower()}s.example.com}}
        spec:
          group: example.com
          names: {{kind: {kind}, plural: {kind.lower()}s}}
          scope: Namespaced
          versions:
            - name: v1
              served: true
              storage: true
              schema:
                openAPIV3Schema:
                  type: object
                  properties:
                    spec: {spec}
        """))
    return path


def test_two_kinds_never_share_a_family_name(tmp_path: Path) -> None:
    foo = _crd(
        tmp_path,
        "Foo",
        "{type: object, properties: {spec: {type: object, properties: {x: {type: integer}}}}}",
        "foo",
    )
    foo_spec = _crd(
        tmp_path, "FooSpec", "{type: object, properties: {x: {type: integer}}}", "foospec"
    )
    # A family name two kinds would share is refused (with the rename hint), not numbered:
    # adding a CRD must not silently rename another kind's series.
    with pytest.raises(InputError, match="foo_spec_spec_x would be served by two kinds"):
        plan_of(load(foo) + load(foo_spec))


def test_no_kind_family_starts_like_the_runtime_self_metrics(tmp_path: Path) -> None:
    crd = _crd(
        tmp_path, "OperatorMetrics", "{type: object, properties: {objects: {type: integer}}}", "om"
    )
    kind = plan_of(load(crd)).kinds[0]
    assert all(not f.name.startswith(f"{RUNTIME_METRICS_PREFIX}_") for f in kind.families)
    assert kind.families[0].name == "example_operator_metrics_info"
    # The prefix is the runtime's: every self-metric family starts with it.
    assert all(f.name.startswith(f"{RUNTIME_METRICS_PREFIX}_") for f in selfmetrics.SELF_FAMILIES)
