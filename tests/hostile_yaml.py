"""Hostile CRD texts (deep nesting, recursive and exploding aliases, huge names) and a way to run
the CLI on them in a child process under a time and memory limit, so that a regression fails
the test instead of crashing, hanging or swapping out the test run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MEMORY_LIMIT = 1536 * 1024 * 1024  # address space of the child: a runaway fails, not swaps
TIME_LIMIT = 10.0  # seconds: what the bounds promise for any input

_HEAD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names:
    kind: {kind}
    plural: widgets
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
{spec}
"""
_INDENT = " " * 12


def crd_with_spec(spec_lines: list[str], kind: str = "Widget") -> str:
    """A CRD whose `spec` property schema is `spec_lines` (indented for its place)."""
    return _HEAD.format(kind=kind, spec="\n".join(_INDENT + line for line in spec_lines))


def recursive_all_of() -> str:
    return crd_with_spec(["&a {type: object, allOf: [*a]}"])


def nested_all_of(depth: int) -> str:
    schema = "{type: object}"
    for _ in range(depth):
        schema = f"{{allOf: [{schema}]}}"
    return crd_with_spec([schema])


def nested_flow_sequence_in_unread_key(depth: int) -> str:
    text = crd_with_spec(["{type: object}"])
    return text.replace("spec:\n  group", f"spec:\n  unused: {'[' * depth}{']' * depth}\n  group")


def billion_laughs_enum(levels: int = 9) -> str:
    lines = ["type: string", "x-l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, levels + 1):
        lines.append(f"x-l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 10) + "]")
    lines.append(f"enum: *l{levels}")
    return crd_with_spec(lines)


def fanned_out_properties(levels: int = 9, width: int = 10) -> str:
    lines = ["x-p0: &p0 {type: integer}"]
    for level in range(1, levels + 1):
        props = ", ".join(f"f{j}: *p{level - 1}" for j in range(width))
        lines.append(f"x-p{level}: &p{level} {{type: object, properties: {{{props}}}}}")
    lines += ["type: object", f"properties: {{a: *p{levels}}}"]
    return crd_with_spec(lines)


def long_kind(length: int) -> str:
    return crd_with_spec(["{type: object}"], kind="K" * length)


_CHILD = """\
import resource, sys
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from scaffold_metrics.cli import cli
try:
    cli.main(args=sys.argv[2:], prog_name="operator-metrics")
finally:
    # VmHWM is this process's own peak; ru_maxrss would include the parent's RSS at fork time.
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    sys.stderr.write(f"\\nmax-rss-kib={peak}\\n")
"""


@dataclass(frozen=True)
class BoundedRun:
    """How a child `operator-metrics` run ended (returncode < 0: killed by that signal)."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    max_rss_mib: float


def run_bounded(*args: str | Path, timeout: float = 3 * TIME_LIMIT) -> BoundedRun:
    """Run `operator-metrics ARGS` in a child under `MEMORY_LIMIT`, killed after `timeout`."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(MEMORY_LIMIT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    seconds = time.monotonic() - start
    stderr, _, rss = done.stderr.rpartition("max-rss-kib=")
    max_rss = int(rss) / 1024 if rss.strip().isdigit() else float("nan")
    return BoundedRun(done.returncode, done.stdout, stderr, seconds, max_rss)
