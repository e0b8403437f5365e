"""The value kinds: what a planned field is read as, and everything that follows from that.

One definition per kind holds its metric type, its name, its extra labels, its help text, the
runtime reader the generated code calls (with its arguments) and its kube-state-metrics shape.
The planner, the template, `explain` and `export ksm` ask the kind instead of branching on its
name, so a new kind of value is one definition here plus, when it reads differently, one
`read_*` function in `scaffold_metrics.runtime.values`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .naming import snake_case
from .runtime.values import CONDITION_STATUSES

CREATED_PATH = ("metadata", "creationTimestamp")
NAME_PATH = ("metadata", "name")
LABELS_PATH = ("metadata", "labels")
ANNOTATIONS_PATH = ("metadata", "annotations")
GENERATION_PATH = ("metadata", "generation")
DELETION_PATH = ("metadata", "deletionTimestamp")

# A kube-state-metrics `each:` block; tuples in it are object paths (written in flow style).
KsmShape = dict[str, Any]


@dataclass(frozen=True)
class About:
    """What a help text may say about a field: its kind, the CRD, its path and description."""

    kind: str
    plural: str
    group: str
    path: tuple[str, ...]
    description: str = ""

    @property
    def dotted(self) -> str:
        """The path as `explain` and the config write it."""
        return ".".join(self.path)


@dataclass(frozen=True)
class ValueKind:
    """A scalar read straight into the sample value (number, boolean, timestamp, quantity).

    Subclasses change what differs; every attribute is what one place of the scaffolder asks.
    """

    name: str  # the definition's own name (unique)
    value: str  # what the value reads as: explain's `value`
    reader: str | None  # `read_<reader>` of runtime.values; None: a constant 1
    help_suffix: str = ""
    metric_type: str = "gauge"  # the default type
    retypable: bool = True  # may the config make it a counter?
    keeps_path: bool = True  # does the family carry the path (`info` has none)?
    # The names of `reader_arguments` in the generated reader table's loop.
    argument_names: tuple[str, ...] = ("path",)
    reserved_suffix_ok: bool = False  # may its name end in `_info`, `_count`...?

    def base_name(self, snake: str, path: tuple[str, ...]) -> str:
        """`<kind>_<path in snake case>`, before lint and uniqueness fixes."""
        return "_".join([snake, *(snake_case(p) for p in path)])

    def extra_labels(
        self, name: str, path: tuple[str, ...], object_labels: Sequence[str], keys: Sequence[str]
    ) -> tuple[str, ...]:
        """Labels after the object labels (`keys`: the allow-list of a metadata map)."""
        return ()

    def help(self, about: About) -> str:
        """The family's HELP text: the field's description, else its path, plus the unit."""
        text = about.description or f"{about.kind} {about.dotted}."
        if not text.endswith((".", "!", "?")):
            text += "."
        return f"{text}{self.help_suffix}"

    def reader_arguments(
        self, path: tuple[str, ...], states: tuple[str, ...], label_keys: tuple[str, ...]
    ) -> tuple[object, ...]:
        """What the generated `read_*` call passes after `samples, FAMILY, labels, obj`."""
        return (path,)

    def ksm(
        self,
        path: tuple[str, ...],
        states: tuple[str, ...],
        extra_labels: tuple[str, ...],
        label_keys: tuple[str, ...],
        name_label: str,
    ) -> KsmShape | None:
        """The kube-state-metrics `each:` block, or None when KSM cannot express it."""
        return {"type": "Gauge", "gauge": {"path": path}}


def _free(label: str, prefix: str, object_labels: Sequence[str]) -> str:
    """`label`, or `<prefix>_<label>` when an object label already has that name."""
    return f"{prefix}_{label}" if label in object_labels else label


@dataclass(frozen=True)
class _Info(ValueKind):
    """`<kind>_info`: one sample of 1 per object, as operator-sdk and kube-state-metrics do."""

    def base_name(self, snake: str, path: tuple[str, ...]) -> str:
        return f"{snake}_info"

    def help(self, about: About) -> str:
        return f"Information about a {about.kind} custom resource ({about.plural}.{about.group})."

    def ksm(
        self,
        path: tuple[str, ...],
        states: tuple[str, ...],
        extra_labels: tuple[str, ...],
        label_keys: tuple[str, ...],
        name_label: str,
    ) -> KsmShape | None:
        return {"type": "Info", "info": {"labelsFromPath": {name_label: NAME_PATH}}}


@dataclass(frozen=True)
class _MetadataField(ValueKind):
    """A `metadata` field of every object (CRD schemas never describe it): a fixed name."""

    suffix: str = ""
    help_text: str = ""  # `{kind}` is replaced by the kind

    def base_name(self, snake: str, path: tuple[str, ...]) -> str:
        return f"{snake}_{self.suffix}"

    def help(self, about: About) -> str:
        return self.help_text.replace("{kind}", about.kind)


@dataclass(frozen=True)
class _Enum(ValueKind):
    """A string with an `enum`: a state set, the family's own name as the state label."""

    def extra_labels(
        self, name: str, path: tuple[str, ...], object_labels: Sequence[str], keys: Sequence[str]
    ) -> tuple[str, ...]:
        return (name,)

    def reader_arguments(
        self, path: tuple[str, ...], states: tuple[str, ...], label_keys: tuple[str, ...]
    ) -> tuple[object, ...]:
        return (path, states)

    def ksm(
        self,
        path: tuple[str, ...],
        states: tuple[str, ...],
        extra_labels: tuple[str, ...],
        label_keys: tuple[str, ...],
        name_label: str,
    ) -> KsmShape | None:
        shape = {"path": path, "labelName": extra_labels[0], "list": list(states)}
        return {"type": "StateSet", "stateSet": shape}


@dataclass(frozen=True)
class _String(ValueKind):
    """A string as the value of one label (named after the field) on a sample of 1: the
    kube-state-metrics `Info` way, one series per object that changes with the value."""

    def extra_labels(
        self, name: str, path: tuple[str, ...], object_labels: Sequence[str], keys: Sequence[str]
    ) -> tuple[str, ...]:
        return (string_label(path, object_labels),)

    def help(self, about: About) -> str:
        label = string_label(about.path, ())
        return f"{super().help(about)} The value is the {label} label (1 per object)."

    def ksm(
        self,
        path: tuple[str, ...],
        states: tuple[str, ...],
        extra_labels: tuple[str, ...],
        label_keys: tuple[str, ...],
        name_label: str,
    ) -> KsmShape | None:
        return {"type": "Info", "info": {"labelsFromPath": {extra_labels[0]: path}}}


def string_label(path: tuple[str, ...], object_labels: Sequence[str]) -> str:
    """The label a string family's value goes in: the field's name in snake case
    (`status.phase` → `phase`), `value` when an object label already has that name."""
    label = snake_case(path[-1])
    return "value" if label in object_labels else label


@dataclass(frozen=True)
class _Conditions(ValueKind):
    """`status.conditions`: per condition type, a state set over the condition statuses."""

    def base_name(self, snake: str, path: tuple[str, ...]) -> str:
        parts = [snake_case(p) for p in path]
        if parts[-1] == "conditions":
            parts[-1] = "condition"
        return "_".join([snake, *parts])

    def extra_labels(
        self, name: str, path: tuple[str, ...], object_labels: Sequence[str], keys: Sequence[str]
    ) -> tuple[str, ...]:
        return (
            _free("type", "condition", object_labels),
            _free("status", "condition", object_labels),
        )

    def help(self, about: About) -> str:
        return (
            f"Conditions of a {about.kind} ({about.dotted}): 1 for the current status of each "
            f"condition type, 0 for the others."
        )

    def ksm(
        self,
        path: tuple[str, ...],
        states: tuple[str, ...],
        extra_labels: tuple[str, ...],
        label_keys: tuple[str, ...],
        name_label: str,
    ) -> KsmShape | None:
        shape = {
            "path": path,
            "labelsFromPath": {extra_labels[0]: ("type",)},
            "labelName": extra_labels[1],
            "valueFrom": ("status",),
            "list": list(CONDITION_STATUSES),
        }
        return {"type": "StateSet", "stateSet": shape}


@dataclass(frozen=True)
class _Map(ValueKind):
    """A map of numbers or quantities: one series per key, the key as a label."""

    def extra_labels(
        self, name: str, path: tuple[str, ...], object_labels: Sequence[str], keys: Sequence[str]
    ) -> tuple[str, ...]:
        return (_free("key", "map", object_labels),)

    def ksm(
        self,
        path: tuple[str, ...],
        states: tuple[str, ...],
        extra_labels: tuple[str, ...],
        label_keys: tuple[str, ...],
        name_label: str,
    ) -> KsmShape | None:
        return {"type": "Gauge", "gauge": {"path": path, "labelFromKey": extra_labels[0]}}


@dataclass(frozen=True)
class _ItemCount(ValueKind):
    """An array as its number of items (kube-state-metrics cannot count them)."""

    def base_name(self, snake: str, path: tuple[str, ...]) -> str:
        return super().base_name(snake, path) + "_items"

    def ksm(
        self,
        path: tuple[str, ...],
        states: tuple[str, ...],
        extra_labels: tuple[str, ...],
        label_keys: tuple[str, ...],
        name_label: str,
    ) -> KsmShape | None:
        return None


@dataclass(frozen=True)
class _MetadataMap(ValueKind):
    """Allow-listed keys of `metadata.labels` or `metadata.annotations` as labels of one sample.

    `name` is also the config key of the allow-list; `noun` prefixes the label names.
    """

    path: tuple[str, ...] = ()
    noun: str = ""

    def base_name(self, snake: str, path: tuple[str, ...]) -> str:
        return f"{snake}_{self.name}"

    def extra_labels(
        self, name: str, path: tuple[str, ...], object_labels: Sequence[str], keys: Sequence[str]
    ) -> tuple[str, ...]:
        return tuple(label_name_for_key(k, self.noun) for k in keys)

    def help(self, about: About) -> str:
        return (
            f"Kubernetes {self.name} of a {about.kind} (allow-listed keys), "
            f"as {self.noun}_* labels."
        )

    def reader_arguments(
        self, path: tuple[str, ...], states: tuple[str, ...], label_keys: tuple[str, ...]
    ) -> tuple[object, ...]:
        return (label_keys, path)

    def ksm(
        self,
        path: tuple[str, ...],
        states: tuple[str, ...],
        extra_labels: tuple[str, ...],
        label_keys: tuple[str, ...],
        name_label: str,
    ) -> KsmShape | None:
        labels = {
            label: (*self.path, key) for label, key in zip(extra_labels, label_keys, strict=True)
        }
        return {"type": "Info", "info": {"labelsFromPath": labels}}


def label_name_for_key(key: str, prefix: str = "label") -> str:
    """`app.kubernetes.io/name` → `label_app_kubernetes_io_name` (lower case: promtool lints
    camelCase label names); `prefix` is `annotation` for annotation keys."""
    return f"{prefix}_" + "".join(c if c.isascii() and c.isalnum() else "_" for c in key).lower()


INFO = _Info(
    "info",
    "info",
    None,
    metric_type="info",
    retypable=False,
    keeps_path=False,
    reserved_suffix_ok=True,
)
CREATED = _MetadataField(
    "created",
    "timestamp",
    "timestamp",
    suffix="created",
    help_text="Creation time of a {kind}, in Unix seconds.",
)
METADATA_GENERATION = _MetadataField(
    "metadata_generation",
    "number",
    "number",
    suffix="metadata_generation",
    help_text="Sequence number of the desired state of a {kind} (metadata.generation); "
    "compare with status.observedGeneration.",
)
DELETION_TIMESTAMP = _MetadataField(
    "deletion_timestamp",
    "timestamp",
    "timestamp",
    suffix="deletion_timestamp",
    help_text="Time a {kind} was asked to be deleted, in Unix seconds "
    "(set while finalizers hold it).",
)
NUMBER = ValueKind("number", "number", "number")
# `type: string` with a number `format`: read like a quantity (a number, or its decimal text).
NUMBER_STRING = ValueKind("number_string", "number", "quantity")
STRING = _String("string", "string", "string", retypable=False)
BOOLEAN = ValueKind("bool", "bool", "bool", help_suffix=" 1 for true, 0 for false.")
TIMESTAMP = ValueKind("timestamp", "timestamp", "timestamp", help_suffix=" In Unix seconds.")
QUANTITY = ValueKind("quantity", "quantity", "quantity")
ENUM = _Enum(
    "enum",
    "enum",
    "enum",
    metric_type="stateset",
    retypable=False,
    argument_names=("path", "states"),
)
CONDITIONS = _Conditions("conditions", "conditions", "conditions", retypable=False)
MAP = _Map("map", "map", "map")
ITEM_COUNT = _ItemCount("length", "length", "length", help_suffix=" Number of items.")
LABELS = _MetadataMap(
    "labels",
    "labels",
    "labels",
    retypable=False,
    reserved_suffix_ok=True,
    argument_names=("keys", "path"),
    path=LABELS_PATH,
    noun="label",
)
ANNOTATIONS = _MetadataMap(
    "annotations",
    "annotations",
    "labels",
    retypable=False,
    reserved_suffix_ok=True,
    argument_names=("keys", "path"),
    path=ANNOTATIONS_PATH,
    noun="annotation",
)

# The metadata maps by their config key, the opt-in metadata fields by path.
METADATA_MAPS: Mapping[str, _MetadataMap] = {k.name: k for k in (LABELS, ANNOTATIONS)}
METADATA_FIELDS: Mapping[tuple[str, ...], ValueKind] = {
    GENERATION_PATH: METADATA_GENERATION,
    DELETION_PATH: DELETION_TIMESTAMP,
}
ALL: tuple[ValueKind, ...] = (
    INFO,
    CREATED,
    METADATA_GENERATION,
    DELETION_TIMESTAMP,
    NUMBER,
    NUMBER_STRING,
    STRING,
    BOOLEAN,
    TIMESTAMP,
    QUANTITY,
    ENUM,
    CONDITIONS,
    MAP,
    ITEM_COUNT,
    LABELS,
    ANNOTATIONS,
)
