"""Generated generators, imported and run on representative objects of every corpus kind."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from scaffold_helpers import MEMCACHED_V1, copy_crd, imported_package, run_cli
from schema_helpers import (
    CORPUS,
    as_set,
    expected_samples,
    exposition,
    import_generators,
    load,
    plan_of,
    render_package,
    sample_object,
)

from scaffold_metrics.metric_config import parse_metrics_config
from scaffold_metrics.plan import PlanOptions

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


@pytest.mark.parametrize("name", CORPUS)
def test_samples_match_the_plan(tmp_path: Path, name: str) -> None:
    plan = plan_of(load(name))
    generators = import_generators(tmp_path, plan)
    for kind in plan.kinds:
        generator = generators[kind.crd_name]
        obj = sample_object(kind)
        samples = generator.generate(obj)
        assert samples.problems == []
        assert as_set(samples) == expected_samples(kind, obj)
        text = exposition(generator.families, samples)
        parsed = {f.name for f in text_string_to_metric_families(text)}
        assert {f.name for f in kind.families} <= parsed | {
            f.name.removesuffix("_info") for f in kind.families
        }


@pytest.mark.parametrize("name", CORPUS)
def test_object_without_status_gives_no_status_series(tmp_path: Path, name: str) -> None:
    plan = plan_of(load(name))
    generators = import_generators(tmp_path, plan)
    for kind in plan.kinds:
        obj = sample_object(kind, with_status=False)
        samples = generators[kind.crd_name].generate(obj)
        assert samples.problems == []
        got = as_set(samples)
        assert got == expected_samples(kind, obj)
        status_families = {f.name for f in kind.families if f.path[:1] == ("status",)}
        assert not {s[0] for s in got} & status_families


@pytest.mark.parametrize("name", CORPUS)
def test_wrong_types_cost_their_series_and_count_as_problems(tmp_path: Path, name: str) -> None:
    plan = plan_of(load(name))
    generators = import_generators(tmp_path, plan)
    for kind in plan.kinds:
        obj = sample_object(kind)
        broken = [f for f in kind.families if f.path and f.path[0] in ("spec", "status")]
        for f in broken:
            target = obj
            for key in f.path[:-1]:
                target = target[key]
            target[f.path[-1]] = {"not": "a value"}
        samples = generators[kind.crd_name].generate(obj)
        assert len(samples.problems) == len(broken)
        assert not {s.family.name for s in samples} & {f.name for f in broken}


def test_memcached_samples(tmp_path: Path) -> None:
    plan = plan_of(load("operator-sdk-cache.example.com_memcacheds.yaml"))
    generator = next(iter(import_generators(tmp_path, plan).values()))
    obj = {
        "metadata": {"name": "m", "namespace": "ns", "creationTimestamp": "2024-01-02T03:04:05Z"},
        "spec": {"size": 3, "containerPort": 11211},
        "status": {"conditions": [{"type": "Available", "status": "Unknown"}]},
    }
    text = exposition(generator.families, generator.generate(obj))
    assert 'memcached_spec_size{namespace="ns",memcached="m"} 3\n' in text
    assert 'memcached_spec_container_port{namespace="ns",memcached="m"} 11211\n' in text
    assert 'memcached_created{namespace="ns",memcached="m"} 1704164645\n' in text
    assert (
        'memcached_status_condition{namespace="ns",memcached="m",type="Available",'
        'status="Unknown"} 1\n' in text
    )
    assert (
        'memcached_status_condition{namespace="ns",memcached="m",type="Available",'
        'status="True"} 0\n' in text
    )
    # A new object: no status, no spec values yet: identity and creation only, no problems.
    fresh = generator.generate({"metadata": {"name": "n", "namespace": "ns"}})
    assert [s.family.name for s in fresh] == ["memcached_info"]
    assert fresh.problems == []


@pytest.mark.skipif(not Path(PROMTOOL).exists(), reason="promtool not installed")
@pytest.mark.parametrize(
    "name",
    [
        "operator-sdk-cache.example.com_memcacheds.yaml",
        "keda-scaledobjects.yaml",
        "cert-manager-certificates.yaml",
        "prometheus-operator-prometheuses.yaml",
        "strimzi-kafkas.yaml",
    ],
)
def test_promtool_check_metrics(tmp_path: Path, name: str) -> None:
    plan = plan_of(load(name))
    generators = import_generators(tmp_path, plan)
    for kind in plan.kinds:
        generator = generators[kind.crd_name]
        first = generator.generate(sample_object(kind))
        text = exposition(generator.families, first)
        result = subprocess.run(
            [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.strip() == "" and result.stderr.strip() == "", result.stderr


def test_generated_code_is_deterministic_and_lint_clean(tmp_path: Path) -> None:
    crds = [crd for name in CORPUS for crd in load(name)]
    # Kinds must be unique across the corpus (Memcached is there twice): plan files apart.
    plans = [plan_of(load(name)) for name in CORPUS]
    first = [render_package(tmp_path / "a", p) for p in plans]
    second = [render_package(tmp_path / "b", p) for p in plans]
    for a, b in zip(first, second, strict=True):
        for module in (tmp_path / "a" / a / "kinds").glob("*.py"):
            assert module.read_bytes() == (tmp_path / "b" / b / "kinds" / module.name).read_bytes()
    assert crds
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff not installed")
    result = subprocess.run(
        [
            ruff,
            "check",
            "--isolated",
            "--no-cache",
            "--select",
            "E,F,W,I,B,UP,SIM,RUF",
            "--line-length",
            "100",
            "--target-version",
            "py310",
            str(tmp_path / "a"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def mypy_strict(mypy: str, package: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`mypy --strict` of a generated package, with none of the user's mypy config."""
    repo = Path(__file__).resolve().parent.parent
    return subprocess.run(
        [mypy, "--strict", "--no-incremental", "--config-file", "/dev/null", "-p", package],
        cwd=cwd,
        env={"MYPYPATH": str(repo), "PATH": str(Path(mypy).parent)},
        capture_output=True,
        text=True,
        check=False,
    )


def test_generated_code_is_mypy_strict_clean(tmp_path: Path) -> None:
    mypy = shutil.which("mypy")
    if mypy is None:
        pytest.skip("mypy not installed")
    plan = plan_of(load("keda-scaledobjects.yaml") + load("cert-manager-certificates.yaml"))
    package = render_package(tmp_path, plan)
    result = mypy_strict(mypy, package, tmp_path)
    assert result.returncode == 0, result.stdout


def test_config_choices_reach_the_generated_samples(tmp_path: Path) -> None:
    from ruamel.yaml import YAML

    data = YAML(typ="rt").load(
        "kinds:\n"
        "  ScaledObject:\n"
        "    include: [spec.triggers, spec.advanced.horizontalPodAutoscalerConfig.behavior]\n"
        "    exclude: [spec.fallback]\n"
        "    rename: {spec.pollingInterval: keda_polling_seconds}\n"
        "    type: {status.pausedReplicaCount: counter}\n"
        "    labels: [app.kubernetes.io/name, team]\n"
    )
    options = PlanOptions(metrics=parse_metrics_config(data, Path("cfg.yaml")))
    plan = plan_of(load("keda-scaledobjects.yaml"), options)
    kind = plan.kinds[0]
    names = {f.name for f in kind.families}
    assert "keda_polling_seconds" in names
    assert "scaled_object_status_paused_replica_counts_total" in names
    assert "scaled_object_spec_triggers_items" in names
    assert not any("fallback" in n for n in names)
    generator = next(iter(import_generators(tmp_path, plan).values()))
    obj = sample_object(kind)
    obj["metadata"]["labels"] = {"team": "x"}
    samples = generator.generate(obj)
    assert samples.problems == []
    assert as_set(samples) == expected_samples(kind, obj)
    labels = [s for s in samples if s.family.name == "scaled_object_labels"]
    assert [s.label_values for s in labels] == [("team-a", "sample-1", "", "x")]


ANNOTATIONS_CONFIG = "metrics:\n  labels: [team]\n  annotations: [example.com/owner, team]\n"
HOSTILE_VALUE = 'x"} memcached_info{namespace="ns",memcached="forged"} 1\n# TYPE y gauge\ny 1\\'


METADATA_FIELDS_CONFIG = (
    "metrics:\n  kinds:\n    Memcached:\n"
    "      include: [metadata.generation, metadata.deletionTimestamp]\n"
)


def _annotated_project(root: Path, metrics: str = ANNOTATIONS_CONFIG) -> Path:
    """The memcached example scaffolded by the CLI, regenerated with a `metrics:` config (an
    annotations allow-list unless told)."""
    copy_crd(MEMCACHED_V1, root)
    assert run_cli("init", "--crd", root / "crd.yaml", "--out", root).exit_code == 0
    config = root / ".operator-metrics.yaml"
    config.write_text(config.read_text() + metrics)
    result = run_cli("generate", "--project", root)
    assert result.exit_code == 0, result.stderr
    return root


def _parsed(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    return {
        f.name: [(s.labels, s.value) for s in f.samples]
        for f in text_string_to_metric_families(text)
    }


def test_annotations_allow_list_end_to_end(tmp_path: Path) -> None:
    project = _annotated_project(tmp_path)
    module = (project / "pkg/metrics/kinds/memcached.py").read_text()
    assert "read_labels(" in module and '("metadata", "annotations"))' in module
    identity = {"namespace": "ns", "memcached": "m"}
    with imported_package(project) as package:
        (generator_class,) = package.GENERATORS
        families = generator_class.families
        names = [f.name for f in families]
        assert names[3:5] == ["memcached_labels", "memcached_annotations"]
        generator = generator_class()

        def run(metadata: dict[str, Any]) -> str:
            samples = generator.generate({"metadata": {"name": "m", "namespace": "ns", **metadata}})
            assert samples.problems == []
            return exposition(families, samples)

        text = run({"annotations": {"example.com/owner": "alice", "other": "x"}})
        assert _parsed(text)["memcached_annotations"] == [
            ({**identity, "annotation_example_com_owner": "alice", "annotation_team": ""}, 1.0)
        ]
        assert "memcached_labels" not in _parsed(text)  # annotations are not labels
        both = run({"labels": {"team": "l"}, "annotations": {"team": "a"}})
        assert _parsed(both)["memcached_labels"] == [({**identity, "label_team": "l"}, 1.0)]
        assert _parsed(both)["memcached_annotations"] == [
            ({**identity, "annotation_example_com_owner": "", "annotation_team": "a"}, 1.0)
        ]
        # None of the keys set, or no annotations at all: no sample, as kube-state-metrics.
        for metadata in ({"annotations": {"other": "x"}}, {"annotations": None}, {}):
            assert "memcached_annotations" not in _parsed(run(metadata))
        hostile = run({"annotations": {"team": HOSTILE_VALUE}})
    parsed = _parsed(hostile)
    assert parsed == {
        "memcached_info": [(identity, 1.0)],
        "memcached_annotations": [
            (
                {**identity, "annotation_example_com_owner": "", "annotation_team": HOSTILE_VALUE},
                1.0,
            )
        ],
    }
    if Path(PROMTOOL).exists():
        for body in (text, hostile):
            check = subprocess.run(
                [PROMTOOL, "check", "metrics"], input=body, capture_output=True, text=True
            )
            assert check.returncode == 0 and not check.stdout.strip(), check.stdout + check.stderr


def test_metadata_generation_and_deletion_timestamp_end_to_end(tmp_path: Path) -> None:
    project = _annotated_project(tmp_path, METADATA_FIELDS_CONFIG)
    module = (project / "pkg/metrics/kinds/memcached.py").read_text()
    assert '("metadata", "generation")' in module and '("metadata", "deletionTimestamp")' in module
    identity = {"namespace": "ns", "memcached": "m"}
    base = {"name": "m", "namespace": "ns", "generation": 3}
    with imported_package(project) as package:
        (generator_class,) = package.GENERATORS
        families = generator_class.families
        assert [f.name for f in families][2:4] == [
            "memcached_metadata_generation",
            "memcached_deletion_timestamp",
        ]
        generator = generator_class()

        def run(metadata: dict[str, Any]) -> str:
            samples = generator.generate({"metadata": metadata})
            assert samples.problems == []
            return exposition(families, samples)

        deleting = run({**base, "deletionTimestamp": "2024-01-02T03:04:05Z"})
        alive = run(base)
    assert _parsed(deleting) == {
        "memcached_info": [(identity, 1.0)],
        "memcached_metadata_generation": [(identity, 3.0)],
        "memcached_deletion_timestamp": [(identity, 1704164645.0)],
    }
    assert _parsed(alive) == {
        "memcached_info": [(identity, 1.0)],
        "memcached_metadata_generation": [(identity, 3.0)],
    }
    assert (
        "# HELP memcached_deletion_timestamp Time a Memcached was asked to be deleted, in Unix "
        "seconds (set while finalizers hold it).\n# TYPE memcached_deletion_timestamp gauge\n"
    ) in deleting
    if Path(PROMTOOL).exists():
        for body in (deleting, alive):
            check = subprocess.run(
                [PROMTOOL, "check", "metrics"], input=body, capture_output=True, text=True
            )
            assert check.returncode == 0 and not check.stdout.strip(), check.stdout + check.stderr


@pytest.mark.parametrize("metrics", [ANNOTATIONS_CONFIG, METADATA_FIELDS_CONFIG])
def test_configured_generated_code_is_ruff_and_mypy_clean(tmp_path: Path, metrics: str) -> None:
    ruff, mypy = shutil.which("ruff"), shutil.which("mypy")
    if ruff is None or mypy is None:
        pytest.skip("ruff or mypy not installed")
    project = _annotated_project(tmp_path, metrics)
    lint = subprocess.run(
        [
            *(ruff, "check", "--isolated", "--no-cache", "--select", "E,F,W,I,B,UP,SIM,RUF"),
            *("--line-length", "100", "--target-version", "py310", str(project / "pkg")),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout
    typed = mypy_strict(mypy, "pkg.metrics", project)
    assert typed.returncode == 0, typed.stdout
