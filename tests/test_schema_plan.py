"""The schema-driven plan: valid, unique, bounded and deterministic on the whole corpus; the
`metrics:` config honoured and validated; the runtime readers' conversions."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from schema_helpers import CORPUS, MEMCACHED, load, plan_of

from scaffold_metrics.errors import InputError
from scaffold_metrics.families_plan import RESERVED_SUFFIXES, lint_safe_name
from scaffold_metrics.metric_config import DEFAULT_MAX_FAMILIES, parse_metrics_config
from scaffold_metrics.plan import PlanOptions
from scaffold_metrics.runtime import MetricFamilyDef, MetricType, SampleSet
from scaffold_metrics.runtime.values import (
    parse_quantity,
    parse_timestamp,
    read_labels,
    read_number,
)

NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def _options(text: str, file: Path = Path("cfg.yaml")) -> PlanOptions:
    data = YAML(typ="rt").load(textwrap.dedent(text))
    return PlanOptions(metrics=parse_metrics_config(data, file))


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_plans_are_valid_bounded_and_deterministic(name: str) -> None:
    plan = plan_of(load(name))
    assert plan == plan_of(load(name))
    for kind in plan.kinds:
        names = [f.name for f in kind.families]
        assert len(names) == len(set(names))
        assert 2 <= len(names) <= DEFAULT_MAX_FAMILIES
        assert names[:2] == [f"{kind.snake}_info", f"{kind.snake}_created"]
        for f in kind.families:
            assert NAME.match(f.name), f.name
            assert f.type == "info" or not f.name.endswith(RESERVED_SUFFIXES), f.name
            assert lint_safe_name(f.name) == f.name
            assert f.help and "\n" not in f.help
            MetricFamilyDef(f.name, f.help, MetricType(f.type), kind.object_labels + f.extra_labels)


def test_memcached_plan() -> None:
    kind = plan_of(load(MEMCACHED)).kinds[0]
    assert [(f.name, f.type, f.extra_labels) for f in kind.families] == [
        ("memcached_info", "info", ()),
        ("memcached_created", "gauge", ()),
        ("memcached_status_condition", "gauge", ("type", "status")),
        ("memcached_spec_size", "gauge", ()),  # a size before a setting
        ("memcached_spec_container_port", "gauge", ()),
    ]
    assert kind.families[3].help == "Size defines the number of Memcached instances."


def test_printer_columns_enums_quantities_and_depth() -> None:
    kind = plan_of(load("keda-scaledobjects.yaml")).kinds[0]
    by_source = {f.source: f for f in kind.families}
    assert by_source["spec.minReplicaCount"].reason == "printer column 'Min'"
    assert by_source["spec.fallback.behavior"].type == "stateset"
    assert by_source["spec.fallback.behavior"].states[0] == "static"
    assert by_source["status.lastActiveTime"].value == "timestamp"
    assert all(len(f.path) <= 3 or f.reason.startswith("printer") for f in kind.families)


def test_huge_schema_is_capped_and_explains_what_it_left_out() -> None:
    from scaffold_metrics.families_plan import plan_kind_families
    from scaffold_metrics.metric_config import MetricsConfig
    from scaffold_metrics.plan import select_version

    crd = load("prometheus-operator-prometheuses.yaml")[0]
    kind = plan_of([crd]).kinds[0]
    assert len(kind.families) == DEFAULT_MAX_FAMILIES
    choice = plan_kind_families(
        crd, select_version(crd, None), kind.snake, MetricsConfig(), kind.object_labels
    )
    reasons = " ".join(o.reason for o in choice.left_out)
    assert "over the cap of 40" in reasons and "deeper than 2 levels" in reasons
    # The cap keeps the observed state: every top-level status gauge survives it.
    sources = {f.source for f in kind.families}
    assert {
        "status.replicas",
        "status.shards",
        "status.unavailableReplicas",
        "status.updatedReplicas",
    } <= sources
    capped = [o.path for o in choice.left_out if "over the cap" in o.reason]
    assert capped and not any(path.startswith("status.") for path in capped)


def test_collisions_reserved_suffixes_and_units(tmp_path: Path) -> None:
    crd = tmp_path / "crd.yaml"
    crd.write_text(textwrap.dedent("""\
            apiVersion: apiextensions.k8s.io/v1
            kind: CustomResourceDefinition
            metadata: {name: widgets.example.com}
            spec:
              group: example.com
              names: {kind: Widget, plural: widgets}
              scope: Namespaced
              versions:
                - name: v1
                  served: true
                  storage: true
                  schema:
                    openAPIV3Schema:
                      type: object
                      properties:
                        spec:
                          type: object
                          properties:
                            fooBar: {type: integer}
                            foo: {type: object, properties: {bar: {type: integer}}}
                            count: {type: integer}
                            timeoutSeconds: {type: integer}
                            timeoutMs: {type: integer}
                            "weird key!": {type: boolean}
                            phase:
                              type: string
                              description: "Evil \\"\\"\\" description.\\nimport os"
                              enum: ['a"b', "x\\\\y"]
            """))
    kind = plan_of(load(crd)).kinds[0]
    names = [f.name for f in kind.families]
    assert "widget_spec_foo_bar" in names and "widget_spec_foo_bar_2" in names
    assert "widget_spec_counts" in names  # not `_count`, reserved for summaries and histograms
    assert "widget_spec_timeout_seconds" in names and "widget_spec_timeout_millisecond" in names
    assert "widget_spec_weird_key" in names
    phase = next(f for f in kind.families if f.source == "spec.phase")
    assert phase.states == ('a"b', "x\\y") and phase.help == 'Evil """ description.'


def test_config_include_exclude_rename_type_labels_cap() -> None:
    options = _options("""\
        max_families: 6
        labels: [team]
        kinds:
          Certificate:
            include: [spec.privateKey, status.conditions]
            exclude: [spec.revisionHistoryLimit, status.notAfter]
            rename: {spec.privateKey.size: certificate_key_size}
            type: {status.failedIssuanceAttempts: counter}
        """)
    kind = plan_of(load("cert-manager-certificates.yaml"), options).kinds[0]
    by_source = {f.source: f for f in kind.families}
    assert "spec.privateKey.rotationPolicy" in by_source  # deep, by opting in the object
    assert "status.notAfter" not in by_source and "spec.revisionHistoryLimit" not in by_source
    assert by_source["metadata.labels"].name == "certificate_labels"
    assert by_source["metadata.labels"].extra_labels == ("label_team",)
    # Opted-in families (5 + 4 always planned + 1 renamed) are never capped; defaults fill
    # what the cap leaves: nothing here.
    assert len([f for f in kind.families if f.reason.startswith("included")]) == 5
    assert not [f for f in kind.families if f.reason.endswith("field")]
    small = plan_of(load("cert-manager-certificates.yaml"), _options("max_families: 6\n"))
    assert len(small.kinds[0].families) == 6
    assert by_source["spec.privateKey.size"].name == "certificate_key_size"
    assert by_source["status.failedIssuanceAttempts"].type == "counter"


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("bogus: 1\n", "unknown key 'bogus' in `metrics`", 1),
        ("kinds:\n  Certificate:\n    include: [spec.nope]\n", "has no field spec.nope", 3),
        ("kinds:\n  Nope: {}\n", "metrics.kinds.Nope: no CRD", 2),
        ("kinds:\n  Certificate:\n    rename: {spec.isCA: x_total}\n", "reserved", 3),
        ("kinds:\n  Certificate:\n    type: {spec.isCA: histogram}\n", "invalid value", 3),
        ("kinds:\n  Certificate:\n    type: {status.conditions: counter}\n", "cannot change", 3),
        ("kinds:\n  Certificate:\n    rename: {spec.nope: x}\n", "not a planned metric", 3),
        ("max_families: 0\n", "positive integer", 1),
        ("labels: ['bad key!']\n", "not a Kubernetes label key", 1),
        ("annotations: ['bad key!']\n", "not a Kubernetes annotation key", 1),
        ("annotations: [a, -b]\n", "not a Kubernetes annotation key", 1),
        ("annotations: team\n", "must be a list of annotation keys", 1),
        ("annotations: {team: 1}\n", "must be a list of annotation keys", 1),
        ("annotations: [team, team]\n", "lists a key twice", 1),
        (
            "kinds:\n  Certificate:\n    annotations:\n      - ok\n      - Bad/key\n",
            "`metrics.kinds.Certificate.annotations`: 'Bad/key' is not a Kubernetes annotation",
            5,
        ),
        ("kinds:\n  Certificate:\n    annotations: [a.b, a_b]\n", "same metric label name", 2),
        (
            "kinds:\n  Certificate:\n    include: [metadata.annotations]\n",
            "metadata.annotations needs an `annotations` allow-list",
            3,
        ),
        (
            "labels: [team]\nkinds:\n  Certificate:\n    include:\n      - metadata.annotations\n",
            "metadata.annotations needs an `annotations` allow-list",
            5,
        ),
        (
            "annotations: [team]\nkinds:\n  Certificate:\n"
            "    type: {metadata.annotations: counter}\n",
            "cannot change",
            4,
        ),
        ("kinds:\n  Certificate:\n    include: [spec.dnsNames, foo]\n", "must start with", 3),
        (
            "kinds:\n  Certificate:\n    include: [metadata.something]\n",
            "metadata.something is not a metadata field operator-metrics knows",
            3,
        ),
        (
            "kinds:\n  Certificate:\n    exclude:\n      - metadata.resourceVersion\n",
            "metadata.resourceVersion is not a metadata field operator-metrics knows",
            4,
        ),
        (
            "kinds:\n  Certificate:\n    rename: {metadata.generation: certificate_gen}\n",
            "metadata.generation is not a planned metric of Certificate: include it",
            3,
        ),
        (
            "kinds:\n  Certificate:\n    type: {spec.isCA: timestamp}\n",
            "spec.isCA: `type: timestamp` reads a plain string field, this one is bool",
            3,
        ),
    ],
)
def test_config_errors_name_file_and_line(text: str, message: str, line: int) -> None:
    with pytest.raises(InputError) as caught:
        plan_of(load("cert-manager-certificates.yaml"), _options(text))
    assert message in caught.value.what
    assert caught.value.location() == f"cfg.yaml:{line}"


def test_config_annotations_allow_list() -> None:
    options = _options("""\
        max_families: 4
        labels: [team]
        annotations: [example.com/owner, Team_Name]
        kinds:
          Certificate:
            include: [metadata.annotations]
            exclude: [metadata.annotations]
        """)
    kind = plan_of(load("cert-manager-certificates.yaml"), options).kinds[0]
    by_source = {f.source: f for f in kind.families}
    annotations = by_source["metadata.annotations"]
    assert (annotations.name, annotations.type, annotations.value) == (
        "certificate_annotations",
        "gauge",
        "annotations",
    )
    assert annotations.extra_labels == ("annotation_example_com_owner", "annotation_team_name")
    assert annotations.label_keys == ("example.com/owner", "Team_Name")
    assert annotations.reason == "annotation allow-list"
    assert annotations.help == (
        "Kubernetes annotations of a Certificate (allow-listed keys), as annotation_* labels."
    )
    assert by_source["metadata.labels"].extra_labels == ("label_team",)
    # Mandatory like labels (an exclude cannot drop it) and counted against the cap: info,
    # created, conditions, labels, annotations leave no room under 4 for schema fields.
    names = [f.name for f in kind.families]
    assert names == [
        "certificate_info",
        "certificate_created",
        "certificate_status_condition",
        "certificate_labels",
        "certificate_annotations",
    ]
    without = plan_of(load("cert-manager-certificates.yaml"), _options("max_families: 4\n"))
    assert len(without.kinds[0].families) == 4
    assert not [f for f in without.kinds[0].families if f.value == "annotations"]


def test_metadata_generation_and_deletion_timestamp_are_opt_in() -> None:
    default = plan_of(load("cert-manager-certificates.yaml")).kinds[0]
    sources = {f.source for f in default.families}
    assert not sources & {"metadata.generation", "metadata.deletionTimestamp"}
    options = _options("""\
        max_families: 1
        kinds:
          Certificate:
            include: [metadata.deletionTimestamp, metadata.generation]
            exclude: [metadata.generation]
        """)
    kind = plan_of(load("cert-manager-certificates.yaml"), options).kinds[0]
    # Included, so planned whatever the cap; the exclude of a metadata path changes nothing.
    assert [(f.name, f.type, f.value, f.path, f.reason) for f in kind.families[2:4]] == [
        (
            "certificate_deletion_timestamp",
            "gauge",
            "timestamp",
            ("metadata", "deletionTimestamp"),
            "included in config (metadata.deletionTimestamp)",
        ),
        (
            "certificate_metadata_generation",
            "gauge",
            "number",
            ("metadata", "generation"),
            "included in config (metadata.generation)",
        ),
    ]
    assert kind.families[2].help == (
        "Time a Certificate was asked to be deleted, in Unix seconds "
        "(set while finalizers hold it)."
    )
    assert kind.families[3].help == (
        "Sequence number of the desired state of a Certificate (metadata.generation); "
        "compare with status.observedGeneration."
    )
    assert kind.families[3].extra_labels == kind.families[2].extra_labels == ()


def test_metadata_fields_rename_and_type_once_included() -> None:
    options = _options("""\
        kinds:
          Certificate:
            include: [metadata.generation, metadata.deletionTimestamp]
            rename: {metadata.deletionTimestamp: certificate_deletion_requested}
            type: {metadata.generation: counter}
        """)
    kind = plan_of(load("cert-manager-certificates.yaml"), options).kinds[0]
    by_source = {f.source: f for f in kind.families}
    generation = by_source["metadata.generation"]
    assert (generation.name, generation.type) == (
        "certificate_metadata_generation_total",
        "counter",
    )
    assert by_source["metadata.deletionTimestamp"].name == "certificate_deletion_requested"


def test_annotations_per_kind_list_replaces_the_top_level_one() -> None:
    crds = load("cert-manager-certificates.yaml") + load(MEMCACHED)
    options = _options("""\
        annotations: [owner]
        kinds:
          Certificate:
            annotations: [cost-center]
          Memcached:
            annotations: []
        """)
    plan = plan_of(crds, options)
    families = {k.kind: {f.source: f for f in k.families} for k in plan.kinds}
    certificate = families["Certificate"]["metadata.annotations"]
    assert certificate.extra_labels == ("annotation_cost_center",)
    assert "metadata.annotations" not in families["Memcached"]
    plan = plan_of(crds, _options("annotations: [owner]\n"))
    for kind in plan.kinds:
        (family,) = [f for f in kind.families if f.value == "annotations"]
        assert (family.name, family.extra_labels) == (
            f"{kind.snake}_annotations",
            ("annotation_owner",),
        )


def test_annotations_family_name_taken_by_a_rename() -> None:
    options = _options("""\
        annotations: [owner]
        kinds:
          Memcached:
            rename: {spec.size: memcached_annotations}
        """)
    kind = plan_of(load(MEMCACHED), options).kinds[0]
    by_source = {f.source: f.name for f in kind.families}
    assert by_source["spec.size"] == "memcached_annotations"
    assert by_source["metadata.annotations"] == "memcached_metadata_annotations"


def test_map_and_schema_less_includes() -> None:
    options = _options(
        "kinds:\n  Prometheus:\n    include: [spec.nodeSelector, spec.resources.limits]\n"
    )
    with pytest.raises(InputError, match="map of string values"):
        plan_of(load("prometheus-operator-prometheuses.yaml"), options)
    options = _options("kinds:\n  Prometheus:\n    include: [spec.resources.limits]\n")
    kind = plan_of(load("prometheus-operator-prometheuses.yaml"), options).kinds[0]
    limits = next(f for f in kind.families if f.source == "spec.resources.limits")
    assert (limits.value, limits.extra_labels) == ("map", ("key",))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", 0.5),
        ("1Gi", 2.0**30),
        ("1e3", 1000.0),
        ("2", 2.0),
        ("1.5k", 1500.0),
        ("25%", 0.25),
        ("-3M", -3e6),
        ("abc", None),
        ("1Gb", None),
    ],
)
def test_parse_quantity(text: str, value: float | None) -> None:
    assert parse_quantity(text) == value


def test_parse_timestamp() -> None:
    assert parse_timestamp("1970-01-01T00:00:00Z") == 0.0
    assert parse_timestamp("2024-01-02T03:04:05.999+01:00") == 1704164645.0 - 3600
    assert parse_timestamp("yesterday") is None
    assert parse_timestamp("2024-13-02T03:04:05Z") is None


def test_read_labels_reads_annotations_by_path() -> None:
    family = MetricFamilyDef(
        "x_annotations", "a", MetricType.GAUGE, ("x", "annotation_a", "annotation_b")
    )
    path = ("metadata", "annotations")
    samples = SampleSet()
    obj = {"metadata": {"labels": {"a": "label"}, "annotations": {"b": 2}}}
    read_labels(samples, family, ("o",), obj, ("a", "b"), path)
    assert [s.label_values for s in samples] == [("o", "", "2")]
    samples = SampleSet()
    for none in (
        {},
        {"metadata": {"labels": {"a": "1"}}},
        {"metadata": {"annotations": {"c": "1"}}},
    ):
        read_labels(samples, family, ("o",), none, ("a", "b"), path)
    assert (len(samples), samples.problems) == (0, [])
    read_labels(samples, family, ("o",), {"metadata": {"annotations": ["a"]}}, ("a",), path)
    assert len(samples) == 0
    assert samples.problems and "metadata.annotations" in samples.problems[0]


def test_readers_absent_null_and_wrong_type() -> None:
    family = MetricFamilyDef("x_spec_n", "n", MetricType.GAUGE, ("x",))
    samples = SampleSet()
    for obj in ({}, {"spec": None}, {"spec": {"n": None}}):
        read_number(samples, family, ("a",), obj, ("spec", "n"))
    assert (len(samples), samples.problems) == (0, [])
    read_number(samples, family, ("a",), {"spec": {"n": True}}, ("spec", "n"))
    read_number(samples, family, ("a",), {"spec": "oops"}, ("spec", "n"))
    assert len(samples) == 0 and len(samples.problems) == 2
