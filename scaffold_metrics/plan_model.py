"""The metric plan as data: what `plan` produces and `render`, `explain` and `export` read.

Kept apart from the planning code so that every consumer (and the planner's parts) can import
it without importing each other.
"""

from __future__ import annotations

import re
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
class ReaderTable:
    """The families of a kind one `read_*` function reads: one row each, its arguments."""

    reader: str
    argument_names: tuple[str, ...]
    families: tuple[FamilyPlan, ...]

    @property
    def name(self) -> str:
        """The module constant holding the rows: `READ_NUMBER`."""
        return f"READ_{self.reader.upper()}"


@dataclass(frozen=True)
class LeftOut:
    """A field the plan does not measure, and why (depth, cap, type, config)."""

    path: str
    reason: str
    by_cap: bool = False  # planned but for the cap on families per kind


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
    cap: int = 0  # the cap on families this kind was planned under

    @property
    def cap_note(self) -> str | None:
        """One line for `init` and `generate` when the cap cut fields out of this kind."""
        cut = sum(1 for o in self.left_out if o.by_cap)
        if not cut:
            return None
        fields = "field" if cut == 1 else "fields"
        return (
            f"note: {cut} {fields} left out by the cap of {self.cap} for {self.kind}: "
            "see `operator-metrics explain`"
        )

    @property
    def reader_tables(self) -> tuple[ReaderTable, ...]:
        """The families read by a runtime reader, grouped by it (in order of first use), so a
        generated module has one short row per family, whatever its name's length."""
        tables: dict[str, list[FamilyPlan]] = {}
        for f in self.families:
            if f.reader is not None:
                tables.setdefault(f.reader, []).append(f)
        return tuple(
            ReaderTable(reader, rows[0].value_kind.argument_names, tuple(rows))
            for reader, rows in tables.items()
        )

    @property
    def constant_families(self) -> tuple[FamilyPlan, ...]:
        """Families whose one sample is a constant 1 (`<kind>_info`)."""
        return tuple(f for f in self.families if f.reader is None)

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
    """The plan for a whole project: kinds in the natural order of their module names."""

    kinds: tuple[KindPlan, ...]

    @property
    def generator_names(self) -> list[str]:
        """`<Kind>MetricsGenerator` of every kind, in the order ruff's RUF022 keeps `__all__`
        (a natural, case-sensitive sort: `Ceph2Store` before `Ceph10Store`)."""
        names = [f"{k.class_prefix}MetricsGenerator" for k in self.kinds]
        return sorted(names, key=natural_key)


def natural_key(text: str) -> list[tuple[int, int, str]]:
    """Digit runs compare as numbers, everything else character by character."""
    return [
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in re.findall(r"\d+|\D", text)
    ]
