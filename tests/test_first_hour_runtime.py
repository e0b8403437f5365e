"""The generated entry point at run time, as a pod runs it (a subprocess): a setting or an
install the metrics cannot start with is one `error:` line and exit 2, never a traceback,
for `wiring.serve()` (main.py), `wiring.start()` and `wiring.register_kopf()` alike."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from scaffold_helpers import run_cli
from user_repos import CRD_PATH, kustomize_operator

REPO = Path(__file__).resolve().parent.parent
KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
  - name: nowhere
    cluster: {server: "https://127.0.0.1:9"}
contexts:
  - name: nowhere
    context: {cluster: nowhere, user: nobody}
current-context: nowhere
users:
  - name: nobody
    user: {token: not-a-real-token}
"""
# Runs a snippet with some top-level modules made unimportable, as in a CLI-only install.
RUNNER = """\
import runpy, sys
blocked = set(sys.argv[1].split(",")) - {""}
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
code = sys.argv[2]
if code == "main.py":
    sys.argv = ["main.py"]
    runpy.run_path("main.py", run_name="__main__")
else:
    exec(code)
"""
START = "from pkg.metrics import wiring; wiring.start()"
REGISTER_KOPF = "from pkg.metrics import wiring; wiring.register_kopf()"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = kustomize_operator(tmp_path_factory.mktemp("runtime") / "backup-operator")
    (root / "main.py").unlink()  # let init create the plain entry point
    result = run_cli("init", "--crd", root / CRD_PATH, "--project", root)
    assert result.exit_code == 0, result.stderr
    (root / "kubeconfig").write_text(KUBECONFIG)
    (root / "bad-kubeconfig").write_text("clusters: [unclosed\n")
    return root


def run(
    project: Path, code: str, blocked: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("KUBERNETES_", "METRICS_"))}
    base.pop("WATCH_NAMESPACE", None)
    environ = {
        **base,
        "PYTHONPATH": f"{project}{os.pathsep}{REPO}",
        "KUBECONFIG": str(project / "kubeconfig"),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", RUNNER, blocked, code],
        cwd=project,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        yield blocker.getsockname()[1]


@pytest.mark.parametrize("code", ["main.py", START])
def test_metrics_port_that_is_not_a_number(project: Path, code: str) -> None:
    assert one_error(run(project, code, METRICS_PORT="abc")) == (
        "error: METRICS_PORT='abc' is not a port number (1-65535)\n"
    )


@pytest.mark.parametrize("code", ["main.py", START])
def test_watch_namespace_with_an_invalid_name(project: Path, code: str) -> None:
    assert one_error(run(project, code, WATCH_NAMESPACE="team-a, Team_B")) == (
        "error: WATCH_NAMESPACE='team-a, Team_B': 'Team_B' is not a namespace name (lower-case "
        "letters, digits and '-', at most 63 characters); separate namespaces with commas, "
        "leave it empty for all\n"
    )


@pytest.mark.parametrize("code", ["main.py", START])
def test_malformed_kubeconfig(project: Path, code: str) -> None:
    err = one_error(run(project, code, KUBECONFIG=str(project / "bad-kubeconfig")))
    assert err.startswith("error: no Kubernetes configuration: not in a cluster (")
    assert f"no usable kubeconfig at {project / 'bad-kubeconfig'} (" in err
    assert err.endswith("; run in a pod with a service account, or set KUBECONFIG\n")


@pytest.mark.parametrize("code", ["main.py", START])
def test_port_already_in_use(project: Path, code: str, busy_port: int) -> None:
    result = run(project, code, METRICS_PORT=str(busy_port), METRICS_HOST="127.0.0.1")
    assert one_error(result) == (
        f"error: cannot serve metrics on 127.0.0.1:{busy_port}: Address already in use; "
        "choose another with METRICS_PORT or METRICS_HOST\n"
    )


@pytest.mark.parametrize("code", ["main.py", START, REGISTER_KOPF])
def test_web_config_that_cannot_be_honoured(project: Path, code: str) -> None:
    web_config = project / "web-config.yml"
    web_config.write_text("tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\ntypo: 1\n")
    err = one_error(run(project, code, METRICS_WEB_CONFIG=str(web_config)))
    assert err.startswith("error: ") and "typo" in err and f"{web_config}:4" in err, err


@pytest.mark.parametrize("code", ["main.py", START])
def test_cli_only_install_names_the_extra(project: Path, code: str) -> None:
    assert one_error(run(project, code, blocked="kubernetes")) == (
        "error: No module named 'kubernetes' (this is a CLI-only install of operator-metrics): "
        'install "operator-metrics[runtime]" in the operator\'s image\n'
    )


def test_kopf_wiring_without_kopf_names_the_kopf_extra(project: Path) -> None:
    assert one_error(run(project, REGISTER_KOPF, blocked="kopf")) == (
        "error: No module named 'kopf' (this is a CLI-only install of operator-metrics): "
        'install "operator-metrics[kopf]" in the operator\'s image\n'
    )


def test_kopf_wiring_follows_metrics_port_and_watch_namespace(project: Path) -> None:
    code = (
        "import kopf\n"
        "from pkg.metrics import wiring\n"
        "handle = wiring.register_kopf()\n"
        "ids = sorted(h.id for h in kopf.get_default_registry()._changing.get_all_handlers())\n"
        "events = [h.id for h in kopf.get_default_registry()._watching.get_all_handlers()]\n"
        "print(handle.port, handle.host, [c.clusterwide for c in handle.collectors], events)\n"
    )
    result = run(project, code, METRICS_PORT="9555", METRICS_HOST="127.0.0.1")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "9555 127.0.0.1 [True] ['operator-metrics/memcacheds.cache.example.com']\n"
    )
    namespaced = run(project, code, WATCH_NAMESPACE="team-a")
    assert namespaced.returncode == 0, namespaced.stderr
    assert namespaced.stdout.startswith("8389 0.0.0.0 [False] ")


@pytest.mark.parametrize("code", ["main.py", START])
def test_sharding_settings_that_cannot_be_right(project: Path, code: str) -> None:
    assert one_error(run(project, code, METRICS_SHARD="3", METRICS_TOTAL_SHARDS="3")) == (
        "error: METRICS_SHARD='3' is not a shard of 3 (0 to 2, counted from 0)\n"
    )
    assert one_error(run(project, code, METRICS_TOTAL_SHARDS="two", METRICS_SHARD="0")) == (
        "error: METRICS_TOTAL_SHARDS='two' is not a number of shards (1 or more)\n"
    )
    assert one_error(run(project, code, METRICS_TOTAL_SHARDS="2")) == (
        "error: METRICS_TOTAL_SHARDS='2' without METRICS_SHARD: set both (shard N of M, N from 0 "
        "to M-1)\n"
    )
    err = one_error(run(project, code, METRICS_POD_NAME="metrics-0"))
    assert err.startswith("error: automatic sharding needs both METRICS_POD_NAME and "), err
