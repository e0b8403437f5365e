"""The README's quick start, executed command by command in a temporary operator repository,
so it cannot go stale. Only what needs the outside world is stood in for, each the closest
this machine allows:

- `pip install "operator-metrics @ git+https://github.com/…"`: no network to the git host; the
  wheel line shown right after it runs instead, with a wheel built from this checkout.
- `kubectl apply -f deploy/`: no cluster; a `kubectl` on PATH validates every manifest the
  command would apply against the Kubernetes schemas (kubernetes-validate, offline).
- The pod: the entry point runs with this checkout's runtime (the image's `requirements.txt`
  install), against the API server test double holding one Memcached, on a free port
  (`METRICS_PORT`; the shown `curl` runs with that port), scraped by a real Prometheus.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kubeapi_double import KubeApiDouble
from prom_helpers import free_port, running_prometheus, wait_for_query
from scaffold_helpers import MEMCACHED_V1

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
CRD = "config/crd/bases/cache.example.com_memcacheds.yaml"
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: memcached-operator
  namespace: memcached-operator-system
spec:
  selector:
    matchLabels: {app: memcached-operator}
  template:
    metadata:
      labels: {app: memcached-operator}
    spec:
      serviceAccountName: memcached-operator
      containers:
        - name: operator
          image: example.com/memcached-operator:v0.1.0
"""
PLAIN_MAIN = """\
import time

if __name__ == "__main__":
    while True:
        time.sleep(1)
"""
KOPF_MAIN = """\
import kopf


@kopf.on.create("cache.example.com", "v1alpha1", "memcacheds")
def created(spec, **_):
    return {"size": spec.get("size")}
"""
KUBECTL = f"""\
#!{sys.executable}
import sys
from pathlib import Path
sys.path.insert(0, {str(TESTS)!r})
from manifest_validation import validate_manifest_file
args = sys.argv[1:]
assert args[:2] == ["apply", "-f"] and len(args) == 3, args
for file in sorted(Path(args[2]).rglob("*.y*ml")):
    for kind in validate_manifest_file(file):
        print(f"{{kind.lower()}} validated ({{file}})")
"""
KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{{name: double, cluster: {{server: "{url}"}}}}]
contexts: [{{name: double, context: {{cluster: double, user: admin}}}}]
current-context: double
users: [{{name: admin, user: {{token: {token}}}}}]
"""


def quick_start() -> tuple[list[list[str]], list[str], str]:
    """The quick start's shell blocks (commands, comments dropped), its Python block's lines
    and the metrics output it shows."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(\w*)\n(.*?)```", section, re.DOTALL)
    shell = [
        [ln for ln in body.splitlines() if ln.strip() and not ln.startswith("#")]
        for lang, body in blocks
        if lang == "sh"
    ]
    (python,) = [body.splitlines() for lang, body in blocks if lang == "python"]
    (shown,) = [body for lang, body in blocks if lang == ""]
    return shell, python, shown


def wiring_lines(python: list[str], call: str, note: str) -> str:
    """The import and the one call of the README's wiring block for one kind of operator
    (comments dropped), checked against the lines `init`'s note says to add."""
    lines = [ln.split("#")[0].rstrip() for ln in python if ln.startswith(("from ", call))]
    assert len(lines) == 2, python
    for line in lines:
        assert f"\n    {line}" in note, (line, note)
    return "\n".join(lines) + "\n"


def repository(root: Path, main: str) -> Path:
    (root / "config/crd/bases").mkdir(parents=True)
    shutil.copyfile(MEMCACHED_V1, root / CRD)
    (root / "deploy").mkdir()
    (root / "deploy/operator.yaml").write_text(DEPLOYMENT)
    (root / "main.py").write_text(main)
    return root


def user_env(tmp_path: Path) -> dict[str, str]:
    """A shell as the user's: no PYTHONPATH to this checkout, our `kubectl` first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(KUBECTL)
    kubectl.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    return env


def bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=500,
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist)],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    (built,) = dist.glob("operator_metrics-*.whl")
    return built


def install_and_init(root: Path, wheel: Path, env: dict[str, str]) -> str:
    """Run the quick start's first block as shown (the git line stood in for by the wheel's)."""
    (install, _deploy), _python, _shown = quick_start()
    git_line, wheel_line = install[1], install[2]
    assert git_line.startswith('pip install "operator-metrics @ git+https://github.com/')
    assert wheel_line == f"pip install ./{wheel.name}", "README wheel name is stale"
    shutil.copyfile(wheel, root / wheel.name)
    script = "\n".join(ln for ln in install if ln != git_line)
    result = bash(script, root, env)
    assert result.returncode == 0, result.stderr
    return result.stderr


def test_quick_start_plain_operator_to_memcached_info_in_prometheus(
    tmp_path: Path, wheel: Path
) -> None:
    shell, python, shown = quick_start()
    root = repository(tmp_path / "memcached-operator", PLAIN_MAIN)
    env = user_env(tmp_path)
    err = install_and_init(root, wheel, env)
    wiring = wiring_lines(python, "wiring.start()", err)
    (root / "main.py").write_text(wiring + PLAIN_MAIN)

    port = free_port()
    with KubeApiDouble() as double:
        double.create(
            {
                "apiVersion": "cache.example.com/v1alpha1",
                "kind": "Memcached",
                "metadata": {"name": "example-memcached", "namespace": "default"},
                "spec": {"size": 3},
            }
        )
        (tmp_path / "kubeconfig").write_text(
            KUBECONFIG.format(url=double.url, token="test-double-cluster-admin")
        )
        pod_env = {
            **env,
            "PYTHONPATH": str(REPO),
            "KUBECONFIG": str(tmp_path / "kubeconfig"),
            "METRICS_PORT": str(port),
        }
        pod = subprocess.Popen(
            [sys.executable, "main.py"], cwd=root, env=pod_env, stderr=subprocess.PIPE, text=True
        )
        try:
            deploy = [ln.replace("8389", str(port)) for ln in shell[1]]
            result = None
            for _ in range(100):
                result = bash("\n".join(deploy), root, env)
                if result.returncode == 0:
                    break
                time.sleep(0.2)
            assert result is not None and result.returncode == 0, (result, pod.poll())
            validated = result.stdout.splitlines()
            assert "service validated (deploy/memcached-operator-metrics-service.yaml)" in validated
            assert "deployment validated (deploy/operator.yaml)" in validated
            assert "clusterrole validated (deploy/memcached-operator-metrics-rbac.yaml)" in (
                validated
            )
            metrics = [ln for ln in validated if not ln.endswith(".yaml)")]
            assert metrics == shown.splitlines()
            with running_prometheus([f"127.0.0.1:{port}"]) as prom:
                (series,) = wait_for_query(prom, "memcached_info")
                assert series["metric"]["namespace"] == "default"
                assert series["metric"]["memcached"] == "example-memcached"
        finally:
            pod.terminate()
            pod.wait(timeout=30)


def test_quick_start_kopf_operator_gets_the_readme_wiring(tmp_path: Path, wheel: Path) -> None:
    _shell, python, _shown = quick_start()
    root = repository(tmp_path / "memcached-operator", KOPF_MAIN)
    err = install_and_init(root, wheel, user_env(tmp_path))
    wiring = wiring_lines(python, "wiring.register_kopf()", err)
    (root / "main.py").write_text(KOPF_MAIN + "\n" + wiring)
    code = (
        "import kopf, main\n"
        "handlers = kopf.get_default_registry()._watching.get_all_handlers()\n"
        "print([h.id for h in handlers])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        env={**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{REPO}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "['operator-metrics/memcacheds.cache.example.com']\n"
