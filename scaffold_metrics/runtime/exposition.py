"""Prometheus exposition-format primitives: name checks, label escaping, float formatting.

Kept free of any object model so the store can call these on its hot path and the scaffolder
can reuse the same name rules when it plans metric names.
"""

from __future__ import annotations

import math
import re

METRIC_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"

_LABEL_VALUE_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n"})
_HELP_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n"})
# Most samples are 0 or 1 (info, conditions, booleans): look those up instead of formatting.
COMMON_VALUES = {0.0: "0", 1.0: "1"}


def is_valid_metric_name(name: str) -> bool:
    """True when `name` may be used as a metric family name."""
    return bool(METRIC_NAME_RE.match(name))


def is_valid_label_name(name: str) -> bool:
    """True when `name` may be used as a label name (the `__` prefix is reserved)."""
    return bool(LABEL_NAME_RE.match(name)) and not name.startswith("__")


def escape_label_value(value: str) -> str:
    """Escape a label value so no input can end the quoted string or start a new line."""
    return value.translate(_LABEL_VALUE_ESCAPES)


def escape_help(text: str) -> str:
    """Escape HELP text: a newline in a description must not start a fake sample line."""
    return text.translate(_HELP_ESCAPES)


def format_value(value: float) -> str:
    """Format a sample value the way both text 0.0.4 and OpenMetrics 1.0.0 accept."""
    common = COMMON_VALUES.get(value)
    if common is not None:
        return common
    if type(value) is float and value.is_integer() and -1e15 < value < 1e15:
        return str(int(value))  # the usual other value (a time, a size): skip the checks below
    if value != value:  # NaN
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))
