"""`init --shards M`: a metrics-only StatefulSet of M shards beside the operator (whose own
Deployment stays as it is), its headless Service, the Role a shard reads its ordinal and the
replicas with, and the ServiceMonitor scraping every shard; recorded, kept by `generate`,
removed by `--shards 0`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from manifest_validation import validate_manifest_file
from ruamel.yaml import YAML
from scaffold_helpers import run_cli, tree
from user_repos import CRD_PATH, MANAGER, kustomize_operator

REPO = Path(__file__).resolve().parents[1]
SHARDS = "config/manager/backup-operator-metrics-shards.yaml"
MONITOR = "config/manager/backup-operator-metrics-servicemonitor.yaml"


def init(root: Path, *flags: str) -> tuple[int, str]:
    result = run_cli("init", "--crd", root / CRD_PATH, "--project", root, *flags)
    return result.exit_code, result.stderr


def docs(path: Path) -> list[dict]:  # type: ignore[type-arg]
    return [d for d in YAML(typ="safe").load_all(path.read_text()) if d]


def test_init_shards_generates_a_metrics_statefulset_beside_the_operator(tmp_path: Path) -> None:
    root = kustomize_operator(tmp_path / "backup-operator")
    code, err = init(root, "--shards", "3", "--service-monitor")
    assert code == 0, err
    assert f"create    {SHARDS}\n" in err and "create    pkg/metrics/__main__.py\n" in err
    assert validate_manifest_file(root / SHARDS) == [
        "StatefulSet",
        "Service",
        "Role",
        "RoleBinding",
    ]
    sts, headless, role, binding = docs(root / SHARDS)
    assert sts["metadata"] == {
        "name": "backup-operator-metrics-shard",
        "namespace": "backup-system",
        "labels": {
            "app.kubernetes.io/name": "backup-operator-metrics-shard",
            "app.kubernetes.io/component": "metrics",
        },
    }
    spec = sts["spec"]
    assert spec["replicas"] == 3 and spec["serviceName"] == headless["metadata"]["name"]
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "backup-operator"
    (container,) = pod["containers"]
    assert container["image"] == "example.com/backup-operator:v0.3.1"  # the operator's
    assert container["command"] == ["python3", "-m", "pkg.metrics"]  # metrics only
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"]}
    assert env == {
        "METRICS_POD_NAME": "metadata.name",
        "METRICS_POD_NAMESPACE": "metadata.namespace",
    }
    assert container["ports"] == [{"name": "cr-metrics", "containerPort": 8389, "protocol": "TCP"}]
    # the headless Service selects exactly the shards' pods
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"] == spec["selector"]["matchLabels"]
    assert set(spec["selector"]["matchLabels"].items()) <= set(
        spec["template"]["metadata"]["labels"].items()
    )
    # a shard may read its own pod and its StatefulSet (by name), nothing else
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
        {
            "apiGroups": ["apps"],
            "resources": ["statefulsets"],
            "resourceNames": ["backup-operator-metrics-shard"],
            "verbs": ["get", "list", "watch"],
        },
    ]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "backup-operator", "namespace": "backup-system"}
    ]
    # the ServiceMonitor scrapes the shards (all of them, through the headless Service)
    assert validate_manifest_file(root / MONITOR) == ["ServiceMonitor"]
    (monitor,) = docs(root / MONITOR)
    selected = monitor["spec"]["selector"]["matchLabels"].items()
    assert selected and set(selected) <= set(headless["metadata"]["labels"].items())
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["backup-system"]}
    # the operator's own Deployment is not made a StatefulSet, nor scaled
    manager = (root / "config/manager/manager.yaml").read_text()
    assert manager.startswith(MANAGER) and "StatefulSet" not in manager
    assert "note: add backup-operator-metrics-shards.yaml to the resources of " in err
    config = YAML(typ="safe").load((root / ".operator-metrics.yaml").read_text())
    assert config["shards"] == 3
    assert run_cli("generate", "--check", "--project", root).exit_code == 0


def test_the_shards_command_serves_only_metrics_and_checks_its_shard(tmp_path: Path) -> None:
    root = kustomize_operator(tmp_path / "backup-operator")
    assert init(root, "--shards", "2")[0] == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("METRICS_")}
    env["PYTHONPATH"] = f"{root}{os.pathsep}{REPO}"
    proc = subprocess.run(
        [sys.executable, "-m", "pkg.metrics", "--shard", "2", "--total-shards", "2"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr == "error: --shard '2' is not a shard of 2 (0 to 1, counted from 0)\n"


def test_shards_are_kept_changed_and_removed(tmp_path: Path) -> None:
    root = kustomize_operator(tmp_path / "backup-operator")
    assert init(root, "--shards", "3", "--service-monitor")[0] == 0
    assert init(root)[0] == 0  # a later init without the flag keeps them
    assert docs(root / SHARDS)[0]["spec"]["replicas"] == 3
    assert init(root, "--shards", "5")[0] == 0
    assert docs(root / SHARDS)[0]["spec"]["replicas"] == 5
    assert run_cli("generate", "--check", "--project", root).exit_code == 0
    code, err = init(root, "--shards", "0")
    assert code == 0, err
    files = tree(root)
    assert SHARDS not in files and "pkg/metrics/__main__.py" not in files
    assert "shards" not in YAML(typ="safe").load(files[".operator-metrics.yaml"])
    (monitor,) = docs(root / MONITOR)  # back to the operator's metrics Service
    assert monitor["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "backup-operator"
    }
    assert run_cli("generate", "--check", "--project", root).exit_code == 0


def test_one_shard_and_a_bad_recorded_count_are_refused(tmp_path: Path) -> None:
    root = kustomize_operator(tmp_path / "backup-operator")
    before = tree(root)
    code, err = init(root, "--shards", "1")
    assert code == 2 and err.startswith("error: --shards 1 is no sharding"), err
    assert tree(root) == before
    assert init(root)[0] == 0
    config = root / ".operator-metrics.yaml"
    config.write_text(config.read_text() + "shards: many\n")
    result = run_cli("generate", "--project", root)
    assert result.exit_code == 2
    line = config.read_text().splitlines().index("shards: many") + 1
    assert result.stderr.startswith(
        f"error: `shards` must be a number of metrics replicas from 2 to 1000: {config}:{line}"
    ), result.stderr


def test_an_operator_that_serves_the_metrics_itself_is_told_to_stop(tmp_path: Path) -> None:
    root = kustomize_operator(tmp_path / "backup-operator")
    main = root / "main.py"
    main.write_text(
        main.read_text().replace(
            'if __name__ == "__main__":\n',
            'if __name__ == "__main__":\n'
            "    from pkg.metrics import wiring\n\n    wiring.start()\n",
        )
    )
    assert "operator's process too" not in init(root)[1]
    code, err = init(root, "--shards", "2")
    assert code == 0
    assert (
        "note: main.py serves the metrics in the operator's process too: with --shards the "
        "metrics StatefulSet serves them (python3 -m pkg.metrics); remove that call"
    ) in err
