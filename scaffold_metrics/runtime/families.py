"""Metric family descriptors and samples: the vocabulary generated code speaks.

A `MetricFamilyDef` knows how to write its own HELP/TYPE headers in both exposition formats, so
the store and server never reason about types; a `Sample` renders to one finished line, once.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .exposition import (
    COMMON_VALUES,
    escape_help,
    escape_label_value,
    format_value,
    is_valid_label_name,
    is_valid_metric_name,
)


class MetricType(str, enum.Enum):
    """Family types. `INFO` and `STATESET` exist only in OpenMetrics; text 0.0.4 says gauge."""

    GAUGE = "gauge"
    COUNTER = "counter"
    INFO = "info"
    STATESET = "stateset"


_OPENMETRICS_SUFFIX = {MetricType.INFO: "_info", MetricType.COUNTER: "_total"}


@dataclass(frozen=True)
class MetricFamilyDef:
    """One metric family: its name, HELP, type and the names of its labels, in order."""

    name: str
    help: str
    type: MetricType
    label_names: tuple[str, ...]
    text_header: bytes = field(init=False, repr=False, compare=False)
    openmetrics_header: bytes = field(init=False, repr=False, compare=False)
    # `name{a="%s",b="%s"} %s\n`: a sample line is one `%` of this (names hold no `%`).
    _line_format: str = field(init=False, repr=False, compare=False)
    _quotes: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not is_valid_metric_name(self.name):
            raise ValueError(f"invalid metric name {self.name!r}")
        for label in self.label_names:
            if not is_valid_label_name(label):
                raise ValueError(f"invalid label name {label!r} in {self.name}")
        if len(set(self.label_names)) != len(self.label_names):
            raise ValueError(f"duplicate label names in {self.name}: {self.label_names}")
        suffix = _OPENMETRICS_SUFFIX.get(self.type)
        if suffix is not None and not self.name.endswith(suffix):
            raise ValueError(f"{self.type.value} family {self.name!r} must end with {suffix}")
        om_only = self.type in (MetricType.INFO, MetricType.STATESET)
        text_type = "gauge" if om_only else self.type.value
        text = f"# HELP {self.name} {escape_help(self.help)}\n# TYPE {self.name} {text_type}\n"
        om_name = self.name[: -len(suffix)] if suffix else self.name
        om_help = escape_help(self.help).replace('"', '\\"')
        om = f"# HELP {om_name} {om_help}\n# TYPE {om_name} {self.type.value}\n"
        object.__setattr__(self, "text_header", text.encode())
        object.__setattr__(self, "openmetrics_header", om.encode())
        labels = ",".join(f'{n}="%s"' for n in self.label_names)
        line_format = f"{self.name}{{{labels}}} %s\n" if labels else f"{self.name} %s\n"
        object.__setattr__(self, "_line_format", line_format)
        object.__setattr__(self, "_quotes", 2 * len(self.label_names))

    def render_sample(self, label_values: tuple[str, ...], value: float) -> str:
        """Render one sample line (with its newline), valid in both formats."""
        formatted = COMMON_VALUES.get(value) or format_value(value)  # mostly 0 or 1
        try:
            line = self._line_format % (*label_values, formatted)
        except TypeError:  # `%` counts the label values for us
            raise ValueError(f"wrong label count for {self.name}") from None
        # Label values almost never need escaping, so render first and look: the line holds
        # exactly the format's quotes, no backslash and one final newline unless a value holds
        # one of the three characters to escape. Then render again with escaped values.
        if line.count('"') != self._quotes or line.count("\n") != 1 or "\\" in line:
            line = self._line_format % (*map(escape_label_value, label_values), formatted)
        return line


# Renders one sample line from its label values and its formatted value (see `line_function`).
LineFunction = Callable[[Sequence[Any], str], str]


def line_function(family: MetricFamilyDef) -> LineFunction:
    """`family`'s `_line_format % (*label_values, value)` as a function compiled for it.

    An f-string with one field per label renders a line in half the time `%` takes (which
    parses its format on every call), and the store renders every sample of every watch event.
    Same result: label values go through `str`, a wrong number of them raises. Only the
    family's names, validated when it was created (letters, digits, `_`, `:`), enter the source.
    """
    params = "".join(f"v{i}, " for i in range(len(family.label_names)))
    pairs = ",".join(f'{label}="{{v{i}!s}}"' for i, label in enumerate(family.label_names))
    text = f"{family.name}{{{{{pairs}}}}} {{value}}\n" if pairs else f"{family.name} {{value}}\n"
    # e.g. `(v0, v1, ) = label_values` and `return f'up{{job="{v0!s}",...}} {value}\n'`
    source = (
        f"def line(label_values, value):\n    ({params}) = label_values\n    return f{text!r}\n"
    )
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    function: LineFunction = namespace["line"]
    return function


class Sample(NamedTuple):
    """One series value of one object: label values line up with `family.label_names`.

    A named tuple: generators create one per series on every change, so creation is cheap.
    """

    family: MetricFamilyDef
    label_values: tuple[str, ...]
    value: float

    def render(self) -> str:
        """The finished exposition line for this sample."""
        return self.family.render_sample(self.label_values, self.value)
