"""Multi-document YAML files as separate documents, each with the line it starts on.

Loading each document on its own lets the fast C-backed safe loader do the common case while
line numbers stay exact: a document that needs a precise error line is re-read in round-trip
mode, and manifest edits re-serialise only the document they change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DOC_MARKER = re.compile(r"^---(\s.*)?$")


@dataclass(frozen=True)
class YamlDocument:
    """One document of a file: its exact text, the line its text starts on, and its first
    line of content (after comments and the `---` marker)."""

    text: str
    line: int

    @property
    def content_line(self) -> int:
        """Line of the first line that is not blank, a comment or the `---` marker."""
        for offset, raw in enumerate(self.text.splitlines()):
            stripped = raw.strip()
            if stripped and not stripped.startswith("#") and not _DOC_MARKER.match(raw):
                return self.line + offset
        return self.line

    @property
    def has_content(self) -> bool:
        """False for a segment holding only comments, blank lines or a marker."""
        return self.content_line != self.line or self._first_is_content()

    def _first_is_content(self) -> bool:
        first = self.text.splitlines()[0] if self.text else ""
        stripped = first.strip()
        return bool(stripped) and not stripped.startswith("#") and not _DOC_MARKER.match(first)


def split_documents(text: str) -> list[YamlDocument]:
    """Split on `---` lines, keeping each marker with the document that follows it.

    A leading segment of only comments stays its own entry, so that joining every entry's
    text gives back the file byte for byte.
    """
    docs: list[YamlDocument] = []
    current: list[str] = []
    start = 1
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        if _DOC_MARKER.match(line.rstrip("\r\n")) and current:
            docs.append(YamlDocument("".join(current), start))
            current, start = [], number
        current.append(line)
    if current:
        docs.append(YamlDocument("".join(current), start))
    return docs
