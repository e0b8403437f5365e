"""Fuzzing the CRD reader: whatever the input, `init` succeeds or exits 2 with an `error:` line.

Inputs start from a valid CRD and are mutated the ways hostile or broken manifests differ from
it: any subtree replaced by arbitrary YAML (wrong types, `served: "false"`, huge numbers, odd
strings), anchors and aliases (including aliases to an enclosing node and exploding chains),
deep flow nesting, several documents, and raw text damage. Never a traceback, exit 123 or a
signal; every example within a time bound; nothing written when the input is refused.

CI runs a bounded number of examples (a few seconds); for a longer local run set
`OPERATOR_METRICS_FUZZ_EXAMPLES`, e.g. `OPERATOR_METRICS_FUZZ_EXAMPLES=5000 python3 -m pytest
tests/test_crd_fuzz.py`.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hostile_yaml import billion_laughs_enum, long_kind, nested_all_of, recursive_all_of
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scaffold_helpers import run_cli, tree

EXAMPLES = int(os.environ.get("OPERATOR_METRICS_FUZZ_EXAMPLES", "30"))
EXAMPLE_TIME_LIMIT = 10.0  # CPU seconds, as the bounds promise for any input

KEYS = [
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "spec",
    "group",
    "names",
    "plural",
    "singular",
    "listKind",
    "shortNames",
    "scope",
    "versions",
    "served",
    "storage",
    "deprecated",
    "schema",
    "openAPIV3Schema",
    "validation",
    "version",
    "type",
    "properties",
    "items",
    "enum",
    "format",
    "description",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "additionalProperties",
    "required",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
    "status",
    "conditions",
    "additionalPrinterColumns",
    "jsonPath",
    "JSONPath",
]
WORDS = [
    "true",
    "false",
    "null",
    "~",
    "yes",
    "no",
    "Namespaced",
    "Cluster",
    "v1",
    "v1beta1",
    "object",
    "string",
    "integer",
    "number",
    "boolean",
    "array",
    "date-time",
    "int-or-string",
    "1e400",
    ".inf",
    ".nan",
    "0o17",
    "0x1F",
    "-0",
    "CustomResourceDefinition",
    "apiextensions.k8s.io/v1",
    "apiextensions.k8s.io/v1beta1",
]
_PLAIN = re.compile(r"^[A-Za-z][A-Za-z0-9_./-]*$")


def base_crd() -> dict[str, Any]:
    """A valid CRD with every part the reader looks at."""
    field = {"type": "integer", "description": "How many."}
    conditions = {
        "type": "array",
        "items": {"type": "object", "properties": {"type": {"type": "string"}, "status": {}}},
    }
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "size": field,
                    "phase": {"type": "string", "enum": ["Pending", "Ready"]},
                    "at": {"type": "string", "format": "date-time"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            },
            "status": {"type": "object", "properties": {"conditions": conditions}},
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "additionalPrinterColumns": [
                        {"name": "Size", "type": "integer", "jsonPath": ".spec.size"}
                    ],
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(WORDS),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(min_size=1, max_size=8))
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4)
    ),
    max_leaves=20,
)


class Raw(str):
    """YAML text spliced into a document as it is (deep nesting, alias chains)."""


@dataclass(frozen=True)
class NestedAllOf:
    """`value` wrapped in `{allOf: [...]}` `depth` times (emitted as text: no recursion here)."""

    depth: int
    value: Any


def deep_nesting(depth: int, mapping: bool) -> Raw:
    if mapping:
        return Raw("{a: " * depth + "x" + "}" * depth)
    return Raw("[" * depth + "]" * depth)


def alias_chain(levels: int, width: int, anchor: str) -> Raw:
    """`[&c0 [x, x], &c1 [*c0, *c0], ...]`: each level repeats the previous one `width` times."""
    parts = [f"&{anchor}0 [" + ", ".join(["lol"] * width) + "]"]
    for level in range(1, levels + 1):
        parts.append(f"&{anchor}{level} [" + ", ".join([f"*{anchor}{level - 1}"] * width) + "]")
    return Raw("[" + ", ".join(parts) + "]")


def containers(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Paths of every key or index in `node` (where a mutation can go)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*path, key)
            yield from containers(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield (*path, index)
            yield from containers(value, (*path, index))


def set_at(root: Any, path: tuple[Any, ...], value: Any) -> None:
    node = root
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value


class Emitter:
    """YAML text of a tree, in flow style, with anchors and aliases placed at random."""

    def __init__(self, rng: random.Random, alias_rate: float) -> None:
        self.rng = rng
        self.alias_rate = alias_rate
        self.anchors: list[str] = []
        self.open: list[str] = []

    def scalar(self, value: Any) -> str:
        if value is None:
            return "null"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float):
            return ".nan" if math.isnan(value) else ".inf" if value > 0 else "-.inf"
        if isinstance(value, int):
            return str(value)
        text = str(value)
        if _PLAIN.match(text) and self.rng.random() < 0.7:
            return text
        return json.dumps(text, ensure_ascii=False)

    def emit(self, value: Any) -> str:
        if isinstance(value, Raw):
            return str(value)
        if isinstance(value, NestedAllOf):
            inner = self.emit(value.value)
            return "{allOf: [" * value.depth + inner + "]}" * value.depth
        if self.anchors and self.rng.random() < self.alias_rate:
            pool = self.anchors + self.open  # an open anchor makes a recursive alias
            return "*" + self.rng.choice(pool)
        anchor = ""
        name = ""
        if isinstance(value, (dict, list)) and self.rng.random() < self.alias_rate:
            name = f"a{len(self.anchors) + len(self.open)}"
            anchor = f"&{name} "
            self.open.append(name)
        if isinstance(value, dict):
            body = ", ".join(f"{self.scalar(k)}: {self.emit(v)}" for k, v in value.items())
            text = anchor + "{" + body + "}"
        elif isinstance(value, list):
            text = anchor + "[" + ", ".join(self.emit(v) for v in value) + "]"
        else:
            return self.scalar(value)
        if name:
            self.open.remove(name)
            self.anchors.append(name)
        return text

    def document(self, doc: dict[str, Any]) -> str:
        """Top level in block style (as real manifests are), values in flow style."""
        return "".join(f"{self.scalar(k)}: {self.emit(v)}\n" for k, v in doc.items())


SCHEMA = ("spec", "versions", 0, "schema", "openAPIV3Schema")
SCHEMA_SPOTS = (
    SCHEMA,
    (*SCHEMA, "properties", "spec"),
    (*SCHEMA, "properties", "spec", "properties", "size"),
    (*SCHEMA, "properties", "spec", "properties", "phase"),
    (*SCHEMA, "properties", "spec", "properties", "labels", "additionalProperties"),
    (*SCHEMA, "properties", "status", "properties", "conditions"),
)
ENUM = (*SCHEMA, "properties", "spec", "properties", "phase", "enum")
NAME_SPOTS = (
    ("spec", "names", "kind"),
    ("spec", "names", "plural"),
    ("spec", "names", "singular"),
    ("spec", "group"),
    ("spec", "versions", 0, "name"),
    ("metadata", "name"),
)
FLAG_SPOTS = (("spec", "versions", 0, "served"), ("spec", "versions", 0, "storage"))
MUTATIONS = ("value", "value", "value", "deep", "chain", "recursive", "allOf", "name", "flag")


def get_at(root: Any, path: tuple[Any, ...]) -> Any:
    node = root
    for step in path:
        node = node[step]
    return node


@st.composite
def mutation(draw: st.DrawFn, doc: dict[str, Any]) -> tuple[tuple[Any, ...], Any]:
    """Where to change `doc` and what to put there."""
    kind = draw(st.sampled_from(MUTATIONS))
    anywhere = st.sampled_from(list(containers(doc)))
    if kind == "deep":
        depth = draw(st.one_of(st.integers(1, 200), st.integers(1, 30_000)))
        return draw(anywhere), deep_nesting(depth, draw(st.booleans()))
    if kind == "chain":
        levels, width = draw(st.integers(1, 9)), draw(st.integers(1, 10))
        anchor = f"c{draw(st.integers(0, 9))}"
        return draw(st.sampled_from([ENUM, *SCHEMA_SPOTS])), alias_chain(levels, width, anchor)
    if kind == "recursive":
        key = draw(st.sampled_from(["allOf", "anyOf", "properties", "items", "not"]))
        inner = "*r" if key in ("items", "not") else "[*r]" if key.endswith("Of") else "{x: *r}"
        return draw(st.sampled_from(SCHEMA_SPOTS)), Raw(f"&r {{type: object, {key}: {inner}}}")
    if kind == "allOf":
        path = draw(st.sampled_from(SCHEMA_SPOTS))
        try:
            value: Any = get_at(doc, path)
        except (KeyError, IndexError, TypeError):
            value = {"type": "object"}  # an earlier mutation replaced the container
        return path, NestedAllOf(draw(st.one_of(st.integers(1, 20), st.integers(1, 1500))), value)
    if kind == "name":
        alphabet = st.sampled_from("abcxyzABCXYZ019-._")
        return draw(st.sampled_from(NAME_SPOTS)), draw(st.text(alphabet, min_size=1, max_size=6000))
    if kind == "flag":
        flag = draw(st.sampled_from(["false", "true", "False", "no", 0, 1, None, [], "", "yes"]))
        return draw(st.sampled_from(FLAG_SPOTS)), flag
    return draw(anywhere), draw(values)


@st.composite
def crd_texts(draw: st.DrawFn) -> str:
    doc = base_crd()
    for _ in range(draw(st.integers(0, 4))):
        path, value = draw(mutation(doc))
        try:
            set_at(doc, path, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation replaced the container
    rng = draw(st.randoms(use_true_random=False))
    emitter = Emitter(rng, draw(st.sampled_from([0.0, 0.0, 0.02, 0.1, 0.3])))
    documents = [emitter.document(doc)]
    if draw(st.booleans()) and draw(st.booleans()):
        documents.append(emitter.document(base_crd()))
    text = "---\n".join(documents)
    for _ in range(draw(st.integers(0, 2)) if draw(st.booleans()) else 0):
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 8))
        noise = draw(st.text(alphabet=" \t\n-:?&*[]{}#|>'\"!%@`,\x00\ufeff", max_size=4))
        text = text[:at] + noise + text[at + cut :]
    return text


class ExampleTimeout(BaseException):
    """Raised by the timer: a BaseException, so the CLI's internal-error handler lets it by."""


@contextmanager
def cpu_time_limit(seconds: float) -> Iterator[None]:
    """Fail an example that spends more than `seconds` of CPU time. A CPU-time timer (SIGPROF)
    is immune to a loaded machine and leaves pytest-timeout's wall-clock SIGALRM alone."""

    def expire(signum: int, frame: object) -> None:
        raise ExampleTimeout(f"example used more than {seconds} s of CPU time")

    previous = signal.signal(signal.SIGPROF, expire)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(text=crd_texts())
# The known hostile shapes, every run (the 30,000-deep flow sequence, which crashed the process,
# runs in a child process in test_hostile_yaml.py instead).
@example(text=recursive_all_of())
@example(text=nested_all_of(1000))
@example(text=long_kind(5000))
@example(text=billion_laughs_enum())
def test_init_succeeds_or_exits_2_with_an_error_line(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        crd = Path(tmp) / "crd.yaml"
        crd.write_text(text, encoding="utf-8", errors="surrogatepass")
        project = Path(tmp) / "op"
        with cpu_time_limit(EXAMPLE_TIME_LIMIT):
            result = run_cli("init", "--crd", crd, "--out", project)
        assert "Traceback" not in result.stderr, result.stderr
        assert result.exit_code in (0, 2), (result.exit_code, result.stderr)
        if result.exit_code == 2:
            assert result.stderr.startswith("error: "), result.stderr
            assert not project.exists() or tree(project) == {}
        else:
            for path, data in tree(project).items():
                if path.endswith(".py"):
                    compile(data, path, "exec")
