"""Helpers for the schema-plan tests: corpus CRDs, rendering generated modules, sample objects."""

from __future__ import annotations

import importlib
import itertools
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from scaffold_metrics.crd import Crd, load_crds
from scaffold_metrics.plan import KindPlan, MetricsPlan, PlanOptions, plan_metrics
from scaffold_metrics.render import render_python
from scaffold_metrics.runtime import MetricFamilyDef, SampleSet

CRD_DIR = Path(__file__).parent / "data" / "crds"
CORPUS = sorted(p.name for p in CRD_DIR.glob("*.yaml"))
MEMCACHED = CRD_DIR / "operator-sdk-cache.example.com_memcacheds.yaml"

# The value each kind of field gets in a representative object, and what it should read as.
TIMESTAMP_TEXT = "2024-01-02T03:04:05Z"
TIMESTAMP_SECONDS = 1704164645.0
FIELD_VALUES: dict[str, tuple[Any, float]] = {
    "number": (3, 3.0),
    "bool": (True, 1.0),
    "timestamp": (TIMESTAMP_TEXT, TIMESTAMP_SECONDS),
    "quantity": ("500m", 0.5),
    "length": ([1, 2], 2.0),
}
CONDITIONS = [
    {"type": "Ready", "status": "True", "reason": "Ok"},
    {"type": "Synced", "status": "False"},
]
_counter = itertools.count()


def load(name: str | Path) -> list[Crd]:
    """The CRDs of one corpus file (by file name) or of a path."""
    path = name if isinstance(name, Path) else CRD_DIR / name
    return load_crds([path]).crds


def plan_of(crds: list[Crd], options: PlanOptions | None = None) -> MetricsPlan:
    """The plan for `crds`, with fixed sources so rendered bytes do not depend on paths."""
    return plan_metrics(crds, options or PlanOptions(), {c.name: f"crds/{c.name}" for c in crds})


def render_package(root: Path, plan: MetricsPlan) -> str:
    """Render the kinds of `plan` into a fresh package under `root`; return its import name."""
    name = f"generated_{next(_counter)}_{id(plan)}"
    package = root / name
    (package / "kinds").mkdir(parents=True)
    (package / "custom").mkdir()
    for path in (package, package / "kinds", package / "custom"):
        (path / "__init__.py").write_text("", encoding="utf-8")
    for kind in plan.kinds:
        (package / "kinds" / f"{kind.module}.py").write_bytes(
            render_python("kind_metrics.py.j2", k=kind, sources=["crds"])
        )
        (package / "custom" / f"{kind.module}.py").write_bytes(
            render_python("custom_kind.py.j2", k=kind)
        )
    return name


def import_generators(root: Path, plan: MetricsPlan) -> dict[str, Any]:
    """Render and import every kind's module: kind name → its MetricsGenerator instance."""
    name = render_package(root, plan)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    generators = {}
    for kind in plan.kinds:
        module = importlib.import_module(f"{name}.kinds.{kind.module}")
        generators[kind.crd_name] = module.MetricsGenerator()
    return generators


def _put(obj: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    target = obj
    for key in path[:-1]:
        child = target.setdefault(key, {})
        if not isinstance(child, dict):
            return
        target = child
    target.setdefault(path[-1], value)


def sample_object(kind: KindPlan, with_status: bool = True) -> dict[str, Any]:
    """An object of `kind` with a value for every planned family (no `status` if asked)."""
    obj: dict[str, Any] = {
        "apiVersion": kind.api_version,
        "kind": kind.kind,
        "metadata": {
            "name": "sample-1",
            "namespace": "team-a",
            "creationTimestamp": TIMESTAMP_TEXT,
            "labels": {},
        },
    }
    for f in kind.families:
        if f.path and f.path[0] == "status" and not with_status:
            continue
        if f.value_kind.name == "number_string":
            _put(obj, f.path, "3")
        elif f.value in FIELD_VALUES:
            _put(obj, f.path, FIELD_VALUES[f.value][0])
        elif f.value == "string":
            _put(obj, f.path, f"Running-{f.name}")
        elif f.value == "enum":
            _put(obj, f.path, f.states[-1])
        elif f.value == "conditions":
            _put(obj, f.path, [dict(c) for c in CONDITIONS])
        elif f.value == "map":
            _put(obj, f.path, {"b": "2Ki", "a": 1})
        elif f.value == "labels":
            obj["metadata"]["labels"].update({k: f"v-{k}" for k in f.label_keys[:1]})
        elif f.value == "annotations":
            obj["metadata"]["annotations"] = {k: f"a-{k}" for k in f.label_keys[:1]}
    return obj


def expected_samples(
    kind: KindPlan, obj: Mapping[str, Any]
) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
    """What the generator should give for `obj`, worked out from the plan independently."""
    ids = (
        ("namespace", obj["metadata"]["namespace"]) if kind.namespaced else None,
        (kind.label_name, obj["metadata"]["name"]),
    )
    base = tuple(i for i in ids if i is not None)
    out: set[tuple[str, tuple[tuple[str, str], ...], float]] = set()

    def get(path: tuple[str, ...]) -> Any:
        value: Any = obj
        for key in path:
            if not isinstance(value, Mapping) or key not in value:
                return None
            value = value[key]
        return value

    for f in kind.families:
        value = get(f.path) if f.path else None
        if f.value == "info":
            out.add((f.name, base, 1.0))
        elif f.value in FIELD_VALUES and value is not None:
            out.add((f.name, base, FIELD_VALUES[f.value][1]))
        elif f.value == "string" and value is not None:
            out.add((f.name, (*base, (f.extra_labels[0], value)), 1.0))
        elif f.value == "enum" and value is not None:
            for state in f.states:
                out.add((f.name, (*base, (f.name, state)), 1.0 if state == value else 0.0))
        elif f.value == "conditions" and value is not None:
            type_label, status_label = f.extra_labels
            for cond in value:
                for status in ("True", "False", "Unknown"):
                    labels = (*base, (type_label, cond["type"]), (status_label, status))
                    out.add((f.name, labels, 1.0 if cond["status"] == status else 0.0))
        elif f.value == "map" and value is not None:
            out.add((f.name, (*base, (f.extra_labels[0], "a")), 1.0))
            out.add((f.name, (*base, (f.extra_labels[0], "b")), 2048.0))
        elif f.value in ("labels", "annotations"):
            present = obj["metadata"].get(f.value) or {}
            if any(k in present for k in f.label_keys):
                pairs = tuple(
                    (label, str(present.get(key, "")))
                    for label, key in zip(f.extra_labels, f.label_keys, strict=True)
                )
                out.add((f.name, (*base, *pairs), 1.0))
    return out


def as_set(samples: SampleSet) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
    """Samples as comparable (name, labels, value) triples; asserts there are no duplicates."""
    triples = [
        (s.family.name, tuple(zip(s.family.label_names, s.label_values, strict=True)), s.value)
        for s in samples
    ]
    assert len(triples) == len(set(triples)), "duplicate series"
    return set(triples)


def exposition(families: tuple[MetricFamilyDef, ...], samples: SampleSet) -> str:
    """Text-format exposition of one object's samples: headers once per family, then samples."""
    by_family: dict[str, list[str]] = {}
    for sample in samples:
        by_family.setdefault(sample.family.name, []).append(sample.render())
    parts = []
    for family in families:
        lines = by_family.get(family.name)
        if lines:
            parts.append(family.text_header.decode())
            parts.extend(lines)
    return "".join(parts)


def corpus_kinds() -> Iterator[tuple[str, Crd]]:
    """(file name, CRD) for every CRD in the corpus."""
    for name in CORPUS:
        for crd in load(name):
            yield name, crd
