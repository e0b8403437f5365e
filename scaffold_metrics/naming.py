"""Name rules: Kubernetes kinds and schema paths into Prometheus and Python names.

Whatever a CRD calls things, the names that come out are valid metric, label, module and
identifier names, and the same input always gives the same name.
"""

from __future__ import annotations

import keyword
import re

# Acronyms stay one word: a plural one (`OSDs`, `PGs`), one with a lower-case letter inside
# (`NVMeOF`), a single leading capital before a word (`VLogs`, `ETag`).
_PLURAL_ACRONYM = re.compile(r"([A-Z]{2,})s(?![a-z])")
_MIXED_ACRONYM = re.compile(r"([A-Z]{2,})([a-z])(?=[A-Z])")
_LEADING_LETTER = re.compile(r"^([A-Z])([A-Z])(?=[a-z])")
_ACRONYM_BOUNDARY = re.compile(r"([A-Z]+)([A-Z][a-z])")
_WORD_BOUNDARY = re.compile(r"([a-z0-9])([A-Z])")
_NOT_NAME_CHAR = re.compile(r"[^a-z0-9_]+")
_REPEATED_UNDERSCORE = re.compile(r"_{2,}")

# The runtime's own families (`operator_metrics_objects`, ...) start with this: no kind's may.
RUNTIME_METRICS_PREFIX = "operator_metrics"

# Labels every object sample carries; a kind whose snake name clashes gets `<name>_name`.
RESERVED_LABELS = frozenset({"namespace", "le", "quantile"})


def snake_case(text: str) -> str:
    """`MemcachedCluster` → `memcached_cluster`, `HTTPRoute` → `http_route`, `TYPE` → `type`,
    acronyms whole: `maxOSDs` → `max_osds`, `NVMeOFGateway` → `nvmeof_gateway`, `VLogs` → `vlogs`.

    Any character that cannot appear in a name becomes `_`; the result is never empty, never
    starts with a digit and never starts or ends with `_`.
    """
    text = _PLURAL_ACRONYM.sub(lambda m: m.group(1) + "S", text)
    text = _MIXED_ACRONYM.sub(lambda m: m.group(1) + m.group(2).upper(), text)
    text = _LEADING_LETTER.sub(lambda m: m.group(1) + m.group(2).lower(), text)
    text = _ACRONYM_BOUNDARY.sub(r"\1_\2", text)
    text = _WORD_BOUNDARY.sub(r"\1_\2", text).lower()
    text = _NOT_NAME_CHAR.sub("_", text)
    text = _REPEATED_UNDERSCORE.sub("_", text).strip("_")
    if not text:
        return "x"
    if text[0].isdigit():
        return f"x_{text}"
    return text


def kind_label_name(kind_snake: str) -> str:
    """The label carrying the object's name: the kind in snake case, unless that is reserved."""
    if kind_snake in RESERVED_LABELS:
        return f"{kind_snake}_name"
    return kind_snake


def python_module_name(snake: str) -> str:
    """A module name from a snake name, avoiding Python keywords (`class` → `class_`)."""
    return f"{snake}_" if keyword.iskeyword(snake) else snake


def python_constant(metric_name: str) -> str:
    """The module-level constant holding a family descriptor: `MEMCACHED_INFO`."""
    return metric_name.upper()


def python_class_prefix(kind: str) -> str:
    """A CamelCase identifier prefix from a kind, safe whatever the kind contains."""
    parts = snake_case(kind).split("_")
    return "".join(p[:1].upper() + p[1:] for p in parts)


def group_prefix(group: str) -> str:
    """Disambiguating prefix from an API group: `networking.istio.io` → `networking`."""
    return snake_case(group.split(".", 1)[0])


def kind_metric_prefix(kind: str, group: str) -> str:
    """The snake name a kind's families start with: `snake_case(kind)`, prefixed by its
    group when it would start like the runtime's own families (`OperatorMetrics`)."""
    name = snake_case(kind)
    if name == RUNTIME_METRICS_PREFIX or name.startswith(f"{RUNTIME_METRICS_PREFIX}_"):
        return f"{group_prefix(group)}_{name}"
    return name
