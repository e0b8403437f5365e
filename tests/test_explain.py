"""`operator-metrics explain`: table and JSON, from --crd or from the project config."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from schema_helpers import CRD_DIR, MEMCACHED

from scaffold_metrics.cli import cli


def test_explain_table() -> None:
    result = CliRunner().invoke(cli, ["explain", "--crd", str(MEMCACHED)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Memcached (memcacheds.cache.example.com/v1alpha1): 5 families"
    assert lines[1].split() == ["NAME", "TYPE", "LABELS", "SOURCE", "WHY"]
    row = next(line for line in lines if "memcached_status_condition" in line)
    assert row.split()[:4] == [
        "memcached_status_condition",
        "gauge",
        "namespace,memcached,type,status",
        "status.conditions",
    ]


def test_explain_json_lists_left_out_fields() -> None:
    crd = CRD_DIR / "prometheus-operator-prometheuses.yaml"
    result = CliRunner().invoke(cli, ["explain", "--crd", str(crd), "--output", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    (kind,) = data["kinds"]
    assert kind["kind"] == "Prometheus" and len(kind["families"]) == 40
    assert kind["families"][0] == {
        "name": "prometheus_info",
        "type": "info",
        "labels": ["namespace", "prometheus"],
        "source": "metadata.name",
        "reason": "every kind",
        "value": "info",
    }
    reasons = {o["reason"] for o in kind["left_out"]}
    assert "over the cap of 40 families per kind" in reasons


def test_explain_from_project_config_honours_metrics_section(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["init", "--crd", str(MEMCACHED), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    config = tmp_path / ".operator-metrics.yaml"
    config.write_text(
        config.read_text()
        + "metrics:\n  kinds:\n    Memcached:\n      rename: {spec.size: memcached_replicas}\n"
    )
    result = runner.invoke(cli, ["explain", "--project", str(tmp_path), "--output", "json"])
    assert result.exit_code == 0, result.output
    names = [f["name"] for f in json.loads(result.output)["kinds"][0]["families"]]
    assert "memcached_replicas" in names and "memcached_spec_size" not in names
    # generate honours the same config.
    result = runner.invoke(cli, ["generate", "--project", str(tmp_path)])
    assert result.exit_code == 0, result.output
    module = (tmp_path / "pkg/metrics/kinds/memcached.py").read_text()
    assert 'name="memcached_replicas"' in module


def test_explain_config_error_exit_code(tmp_path: Path) -> None:
    runner = CliRunner()
    runner.invoke(cli, ["init", "--crd", str(MEMCACHED), "--out", str(tmp_path)])
    config = tmp_path / ".operator-metrics.yaml"
    text = config.read_text() + "metrics:\n  kinds:\n    Memcached:\n      exclude: [spec.nope]\n"
    config.write_text(text)
    result = runner.invoke(cli, ["explain", "--project", str(tmp_path)])
    assert result.exit_code == 2
    line = text.splitlines().index("      exclude: [spec.nope]") + 1
    assert f".operator-metrics.yaml:{line}" in result.output


def test_explain_shows_the_annotations_family(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["init", "--crd", str(MEMCACHED), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    config = tmp_path / ".operator-metrics.yaml"
    config.write_text(config.read_text() + "metrics:\n  annotations: [example.com/owner]\n")
    result = runner.invoke(cli, ["explain", "--project", str(tmp_path), "--output", "json"])
    assert result.exit_code == 0, result.output
    families = json.loads(result.output)["kinds"][0]["families"]
    assert families[3] == {
        "name": "memcached_annotations",
        "type": "gauge",
        "labels": ["namespace", "memcached", "annotation_example_com_owner"],
        "source": "metadata.annotations",
        "reason": "annotation allow-list",
        "value": "annotations",
        "annotation_keys": ["example.com/owner"],
    }
    table = runner.invoke(cli, ["explain", "--project", str(tmp_path)])
    assert table.exit_code == 0, table.output
    row = next(line for line in table.output.splitlines() if "memcached_annotations" in line)
    assert row.split()[:4] == [
        "memcached_annotations",
        "gauge",
        "namespace,memcached,annotation_example_com_owner",
        "metadata.annotations",
    ]


def test_explain_shows_the_opt_in_metadata_fields(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["init", "--crd", str(MEMCACHED), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    config = tmp_path / ".operator-metrics.yaml"
    include = "      include: [metadata.generation, metadata.deletionTimestamp]\n"
    config.write_text(config.read_text() + "metrics:\n  kinds:\n    Memcached:\n" + include)
    result = runner.invoke(cli, ["explain", "--project", str(tmp_path), "--output", "json"])
    assert result.exit_code == 0, result.output
    families = json.loads(result.output)["kinds"][0]["families"]
    assert families[2:4] == [
        {
            "name": "memcached_metadata_generation",
            "type": "gauge",
            "labels": ["namespace", "memcached"],
            "source": "metadata.generation",
            "reason": "included in config (metadata.generation)",
            "value": "number",
        },
        {
            "name": "memcached_deletion_timestamp",
            "type": "gauge",
            "labels": ["namespace", "memcached"],
            "source": "metadata.deletionTimestamp",
            "reason": "included in config (metadata.deletionTimestamp)",
            "value": "timestamp",
        },
    ]
    table = runner.invoke(cli, ["explain", "--project", str(tmp_path)])
    assert table.exit_code == 0, table.output
    wanted = {"metadata.generation", "metadata.deletionTimestamp"}
    rows = [row[:4] for row in map(str.split, table.output.splitlines()) if set(row[3:4]) & wanted]
    assert rows == [
        ["memcached_metadata_generation", "gauge", "namespace,memcached", "metadata.generation"],
        [
            "memcached_deletion_timestamp",
            "gauge",
            "namespace,memcached",
            "metadata.deletionTimestamp",
        ],
    ]


def test_explain_names_the_panels_and_alerts_the_plan_cannot_feed(tmp_path: Path) -> None:
    """What the dashboards and the alerts rules header leave out, explain says before any
    of them is generated; including the fields it asks for makes the lines go away."""
    runner = CliRunner()
    result = runner.invoke(cli, ["init", "--crd", str(MEMCACHED), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    data = json.loads(
        runner.invoke(cli, ["explain", "--project", str(tmp_path), "--output", "json"]).output
    )
    generation = {
        "what": "generation not observed",
        "reason": "Memcached has no status.observedGeneration field",
    }
    assert data["kinds"][0]["monitoring_left_out"] == [
        generation,
        {
            "what": "deletion stuck on finalizers",
            "reason": "Memcached plans no metadata.deletionTimestamp: include it under `metrics:`",
        },
    ]
    table = runner.invoke(cli, ["explain", "--project", str(tmp_path)]).output.splitlines()
    at = table.index("  dashboard panels and alerts left out (init --dashboards/--alerts):")
    assert table[at + 2].split()[:4] == ["deletion", "stuck", "on", "finalizers"]
    config = tmp_path / ".operator-metrics.yaml"
    include = "      include: [metadata.deletionTimestamp]\n"
    config.write_text(config.read_text() + "metrics:\n  kinds:\n    Memcached:\n" + include)
    data = json.loads(
        runner.invoke(cli, ["explain", "--project", str(tmp_path), "--output", "json"]).output
    )
    assert data["kinds"][0]["monitoring_left_out"] == [generation]
