"""`operator-metrics export ksm`: the exported kube-state-metrics config serves what we serve.

`ksm_samples` below evaluates a CustomResourceStateMetrics resource on an object the way
kube-state-metrics' customresourcestate package does, for the features the export uses (plain
key paths; Gauge with `path`/`labelFromKey`; StateSet with `path`/`valueFrom`/`labelName`/
`list`/`labelsFromPath`, over lists too; Info with `labelsFromPath`; resource `labelsFromPath`;
`metricNamePrefix`; its float conversions). Label sets are compared without KSM's own
`customresource_*` labels and without empty values (Prometheus treats "" as absent).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML
from schema_helpers import CORPUS, MEMCACHED, import_generators, load, plan_of, sample_object

from scaffold_metrics.cli import cli
from scaffold_metrics.families_plan import label_name_for_key
from scaffold_metrics.ksm import ksm_config
from scaffold_metrics.metric_config import parse_metrics_config
from scaffold_metrics.plan import PlanOptions

Series = set[tuple[str, frozenset[tuple[str, str]], float]]
_SUFFIX = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9}


def _get(obj: Any, path: list[str]) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _to_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        return None
    if value.lower() in ("true", "yes"):
        return 1.0
    if value.lower() in ("false", "no", "unknown"):
        return 0.0
    try:
        return float(int(datetime.datetime.fromisoformat(value).timestamp()))
    except ValueError:
        pass
    match = re.fullmatch(r"([0-9.]+)(Ki|Mi|Gi|m|k|M|G)?", value)
    if match:
        return float(match.group(1)) * _SUFFIX.get(match.group(2) or "", 1)
    if value.endswith("%"):
        return float(value[:-1]) / 100
    try:
        return float(value)
    except ValueError:
        return None


def _labels(obj: Any, paths: Mapping[str, list[str]]) -> dict[str, str]:
    out = {}
    for name, path in paths.items():
        value = _get(obj, path)
        if value is not None:
            out[name] = str(value)
    return out


def ksm_samples(resource: Mapping[str, Any], obj: Mapping[str, Any]) -> Series:
    base = _labels(obj, resource.get("labelsFromPath", {}))
    prefix = resource["metricNamePrefix"]
    out: Series = set()
    for metric in resource["metrics"]:
        name = f"{prefix}_{metric['name']}" if prefix else metric["name"]
        each = metric["each"]
        values: list[tuple[dict[str, str], float]] = []
        if each["type"] == "Gauge":
            spec = each["gauge"]
            target = _get(obj, spec["path"])
            if isinstance(target, Mapping) and "labelFromKey" in spec:
                for key, item in target.items():
                    number = _to_float(item)
                    if number is not None:
                        values.append(({spec["labelFromKey"]: key}, number))
            else:
                number = _to_float(target) if target is not None else None
                if number is not None:
                    values.append(({}, number))
        elif each["type"] == "StateSet":
            spec = each["stateSet"]
            target = _get(obj, spec["path"])
            items = target if isinstance(target, list) else [target]
            for item in items:
                current = _get(item, spec.get("valueFrom", []))
                if not isinstance(current, str):
                    continue
                extra = _labels(item, spec.get("labelsFromPath", {}))
                for state in spec["list"]:
                    labels = {**extra, spec["labelName"]: state}
                    values.append((labels, 1.0 if state == current else 0.0))
        else:
            labels = _labels(obj, each["info"].get("labelsFromPath", {}))
            if labels:
                values.append((labels, 1.0))
        for labels, value in values:
            merged = {**base, **labels}
            out.add((name, frozenset((k, v) for k, v in merged.items() if v != ""), value))
    return out


def our_samples(samples: Any) -> Series:
    return {
        (
            s.family.name,
            frozenset(
                (k, v) for k, v in zip(s.family.label_names, s.label_values, strict=True) if v != ""
            ),
            s.value,
        )
        for s in samples
    }


def _export(plan: Any) -> dict[str, Any]:
    document: dict[str, Any] = YAML(typ="safe").load(ksm_config(plan).text)
    return document


@pytest.mark.parametrize("name", CORPUS)
def test_ksm_config_serves_the_same_samples(tmp_path: Path, name: str) -> None:
    plan = plan_of(load(name))
    document = _export(plan)
    assert document["kind"] == "CustomResourceStateMetrics"
    resources = document["spec"]["resources"]
    generators = import_generators(tmp_path, plan)
    for kind, resource in zip(plan.kinds, resources, strict=True):
        assert resource["groupVersionKind"] == {
            "group": kind.group,
            "version": kind.version,
            "kind": kind.kind,
        }
        for with_status in (True, False):
            obj = sample_object(kind, with_status=with_status)
            ours = our_samples(generators[kind.crd_name].generate(obj))
            assert ksm_samples(resource, obj) == ours


def test_ksm_export_with_config_choices(tmp_path: Path) -> None:
    data = YAML(typ="rt").load(
        "labels: [app.kubernetes.io/name]\n"
        "kinds:\n"
        "  ScaledObject:\n"
        "    include: [spec.triggers]\n"
        "    rename: {spec.pollingInterval: keda_polling_interval_seconds}\n"
        "    type: {status.pausedReplicaCount: counter}\n"
    )
    plan = plan_of(
        load("keda-scaledobjects.yaml"), PlanOptions(metrics=parse_metrics_config(data, None))
    )
    exported = ksm_config(plan)
    assert any("cannot count items" in n for n in exported.notes)
    assert any("a gauge in kube-state-metrics" in n for n in exported.notes)
    (resource,) = YAML(typ="safe").load(exported.text)["spec"]["resources"]
    assert resource["metricNamePrefix"] == ""  # a renamed family does not share the prefix
    kind = plan.kinds[0]
    generator = next(iter(import_generators(tmp_path, plan).values()))
    obj = sample_object(kind)
    obj["metadata"]["labels"] = {"app.kubernetes.io/name": "web"}
    ours = {s for s in our_samples(generator.generate(obj)) if "items" not in s[0]}
    assert ksm_samples(resource, obj) == ours


def test_ksm_export_of_the_annotations_family(tmp_path: Path) -> None:
    data = YAML(typ="rt").load(
        "labels: [team]\n"
        "annotations: [example.com/owner, team]\n"
        "kinds:\n  ScaledObject:\n    annotations: [example.com/owner]\n"
    )
    crds = load("keda-scaledobjects.yaml") + load(MEMCACHED)
    plan = plan_of(crds, PlanOptions(metrics=parse_metrics_config(data, None)))
    resources = _export(plan)["spec"]["resources"]
    generators = import_generators(tmp_path, plan)
    for kind, resource in zip(plan.kinds, resources, strict=True):
        (metric,) = [m for m in resource["metrics"] if m["name"] == "annotations"]
        keys = (
            ["example.com/owner"] if kind.kind == "ScaledObject" else ["example.com/owner", "team"]
        )
        assert metric["each"] == {
            "type": "Info",
            "info": {
                "labelsFromPath": {
                    label_name_for_key(key, "annotation"): ["metadata", "annotations", key]
                    for key in keys
                }
            },
        }
        for present in ({"example.com/owner": "o", "team": "t"}, {"team": "t"}, {}):
            obj = sample_object(kind)
            obj["metadata"]["annotations"] = present
            obj["metadata"]["labels"] = {"team": "l"}
            ours = our_samples(generators[kind.crd_name].generate(obj))
            assert ksm_samples(resource, obj) == ours


def test_ksm_export_of_the_opt_in_metadata_fields(tmp_path: Path) -> None:
    data = YAML(typ="rt").load(
        "kinds:\n  Memcached:\n    include: [metadata.generation, metadata.deletionTimestamp]\n"
    )
    plan = plan_of(load(MEMCACHED), PlanOptions(metrics=parse_metrics_config(data, None)))
    (resource,) = _export(plan)["spec"]["resources"]
    metrics = {m["name"]: m for m in resource["metrics"]}
    # Exported as `created` is: a gauge of the field (KSM converts RFC 3339 to Unix seconds).
    assert metrics["created"]["each"] == {
        "type": "Gauge",
        "gauge": {"path": ["metadata", "creationTimestamp"]},
    }
    assert metrics["metadata_generation"]["each"] == {
        "type": "Gauge",
        "gauge": {"path": ["metadata", "generation"]},
    }
    assert metrics["deletion_timestamp"]["each"] == {
        "type": "Gauge",
        "gauge": {"path": ["metadata", "deletionTimestamp"]},
    }
    assert metrics["deletion_timestamp"]["help"].startswith("Time a Memcached was asked")
    kind = plan.kinds[0]
    generator = next(iter(import_generators(tmp_path, plan).values()))
    for deleting in (True, False):
        obj = sample_object(kind)
        assert obj["metadata"]["generation"] == 3
        if not deleting:
            del obj["metadata"]["deletionTimestamp"]
        ours = our_samples(generator.generate(obj))
        names = {s[0] for s in ours}
        assert "memcached_metadata_generation" in names
        assert ("memcached_deletion_timestamp" in names) is deleting
        assert ksm_samples(resource, obj) == ours


def test_export_ksm_cli(tmp_path: Path) -> None:
    out = tmp_path / "ksm.yaml"
    result = CliRunner().invoke(cli, ["export", "ksm", "--crd", str(MEMCACHED), "--out", str(out)])
    assert result.exit_code == 0, result.output
    (resource,) = YAML(typ="safe").load(out.read_text())["spec"]["resources"]
    assert resource["metricNamePrefix"] == "memcached"
    assert resource["labelsFromPath"] == {
        "namespace": ["metadata", "namespace"],
        "memcached": ["metadata", "name"],
    }
    assert [m["name"] for m in resource["metrics"]] == [
        "info",
        "created",
        "status_condition",
        "spec_size",
        "spec_container_port",
    ]
    again = CliRunner().invoke(cli, ["export", "ksm", "--crd", str(MEMCACHED)])
    assert again.output == out.read_text()


def test_export_to_an_unwritable_path_exits_2(tmp_path: Path) -> None:
    from scaffold_helpers import MEMCACHED_V1, run_cli

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = run_cli("export", "ksm", "--crd", MEMCACHED_V1, "--out", blocker / "ksm.yaml")
    assert result.exit_code == 2 and "error: cannot write" in result.stderr
    written = tmp_path / "ksm.yaml"
    assert run_cli("export", "ksm", "--crd", MEMCACHED_V1, "--out", written).exit_code == 0
    assert written.read_text().startswith("# Generated by operator-metrics")
