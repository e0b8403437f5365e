"""One exception hierarchy for the scaffolder, so the CLI can map failures to exit codes.

Every error a person can fix carries where it happened (file and line) and what to do; anything
else is an internal error and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path

EXIT_OK = 0
EXIT_DRIFT = 1
EXIT_BAD_INPUT = 2
EXIT_NO_DATA = 3  # `report`: Prometheus unreachable, the families absent, the period empty
EXIT_INTERNAL = 123


class OperatorMetricsError(Exception):
    """A problem with the user's input or environment: reported without a traceback."""

    exit_code = EXIT_BAD_INPUT

    def __init__(
        self,
        what: str,
        file: Path | str | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(what)
        self.what = what
        self.file = file
        self.line = line
        self.hint = hint

    def location(self) -> str:
        """`file:line`, `file`, or empty when the error is not about a file."""
        if self.file is None:
            return ""
        return f"{self.file}:{self.line}" if self.line is not None else str(self.file)

    def format(self) -> str:
        """The message for stderr: `error: what: file:line`, then the hint on its own line."""
        where = self.location()
        text = f"error: {self.what}: {where}" if where else f"error: {self.what}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class InputError(OperatorMetricsError):
    """A CRD, manifest or config file that cannot be used as it is."""


class UsageError(OperatorMetricsError):
    """Flags or paths that do not make sense together."""


class OutputError(OperatorMetricsError):
    """The output location cannot be written."""


class PrometheusError(OperatorMetricsError):
    """Prometheus cannot answer what a report needs: unreachable, refusing the query, or
    without the families or samples of the period (exit 3, or 2 for a malformed URL)."""

    exit_code = EXIT_NO_DATA

    def __init__(
        self, what: str, hint: str | None = None, *, exit_code: int = EXIT_NO_DATA
    ) -> None:
        super().__init__(what, hint=hint)
        self.exit_code = exit_code
