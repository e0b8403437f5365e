"""The metric plan as data: what `plan` produces and `render`, `explain` and `export` read.

Kept apart from the planning code so that every consumer (and the planner's parts) can import
it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from .value_kinds import ValueKind


@dataclass(frozen=True)
class FamilyPlan:
    """One metric family of a kind and how its value is read from an object."""

    name: str
    help: str
    type: str
    source: str
    reason: str
    value_kind: ValueKind
    path: tuple[str, ...] = ()
    extra_labels: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    label_keys: tuple[str, ...] = ()

    @property
    def value(self) -> str:
        """What the value reads as (`number`, `enum`, ...), as `explain` shows it."""
        return self.value_kind.value

    @property
    def reader(self) -> str | None:
        """The `read_*` function of `scaffold_metrics.runtime.values` that reads the value
        (None: the family's one sample is a constant 1)."""
        return self.value_kind.reader

    @property
    def reader_arguments(self) -> tuple[object, ...]:
        """What the generated reader call passes after `samples, FAMILY, labels, obj`."""
        return self.value_kind.reader_arguments(self.path, self.states, self.label_keys)


@dataclass(frozen=True)
class LeftOut:
    """A field the plan does not measure, and why (depth, cap, type, config)."""

    path: str
    reason: str


@dataclass(frozen=True)
class KindPlan:
    """Everything the templates need to render one kind's metrics module, and what its plan
    left out (for `explain`)."""

    crd_name: str
    kind: str
    group: str
    version: str
    plural: str
    namespaced: bool
    snake: str
    label_name: str
    module: str
    class_prefix: str
    source: str
    families: tuple[FamilyPlan, ...]
    left_out: tuple[LeftOut, ...] = ()

    @property
    def api_version(self) -> str:
        """`group/version`, as objects of this kind carry it."""
        return f"{self.group}/{self.version}"

    @property
    def object_labels(self) -> tuple[str, ...]:
        """Labels identifying the object on every sample: namespace (if namespaced) and name."""
        return self.labels_for(self.namespaced, self.label_name)

    @staticmethod
    def labels_for(namespaced: bool, label_name: str) -> tuple[str, ...]:
        """The object labels of a kind: namespace (if namespaced) and the name label."""
        return ("namespace", label_name) if namespaced else (label_name,)


@dataclass(frozen=True)
class MetricsPlan:
    """The plan for a whole project: kinds sorted by module name."""

    kinds: tuple[KindPlan, ...]
