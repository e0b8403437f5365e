"""Multi-document YAML files as separate documents, each with the line it starts on.

Loading each document on its own lets the fast C-backed safe loader do the common case while
line numbers stay exact: a document that needs a precise error line is re-read in round-trip
mode, and manifest edits re-serialise only the document they change. Before any loader sees a
text, `check_bounds` makes sure it is not too deep or too large once aliases are expanded.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

from .errors import InputError


def _c_parser_class() -> Any:
    """The libyaml-backed parser of ruamel.yaml.clib (CPython), or None (pure Python then)."""
    try:
        from ruamel.yaml import cyaml
    except ImportError:  # pragma: no cover - depends on the platform
        return None
    return getattr(cyaml, "CParser", None)


CParser = _c_parser_class()

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


# Bounds on what one YAML text may expand to, checked on the parser's event stream before any
# loader builds (or recurses into) the document. Real CRDs nest under 40 levels and hold under
# 20,000 nodes; these leave ample room while keeping the C loader's stack (which a deeply nested
# flow sequence overflows: SIGSEGV) and alias bombs (a billion nodes from a few lines) away.
MAX_DEPTH = 100
MAX_NODES = 200_000  # per document, an alias counting as the whole node it repeats
MAX_DOCUMENTS = 10_000  # per file


def check_bounds(text: str, file: Path, first_line: int = 1) -> None:
    """Refuse a document nested deeper than `MAX_DEPTH`, expanding (aliases followed) to more
    than `MAX_NODES` nodes, or holding an alias to an enclosing node (a recursive structure).

    `first_line` is the file line `text` starts on, for the error. Syntax errors are raised as
    the parser finds them (the caller reports them like the loader's). This runs on every CRD
    document, so the loop is kept to a type dispatch and an integer add per event."""
    counts = [0]  # running node count of each open collection, below a per-document root
    anchors: list[str | None] = [None]
    starts: list[Event | None] = [None]
    sizes: dict[str, int] = {}
    next_event, dispose = _event_source(text)
    try:
        while True:
            event = next_event()
            kind = type(event)
            if kind is ScalarEvent:
                if event.anchor is not None:
                    sizes[event.anchor] = 1
                counts[-1] += 1
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                if len(counts) > MAX_DEPTH:
                    raise InputError(
                        f"YAML nested deeper than {MAX_DEPTH} levels",
                        file,
                        first_line + event.start_mark.line,
                        hint="real manifests nest far less: is this file generated by mistake?",
                    )
                counts.append(1)
                anchors.append(event.anchor)
                starts.append(event)
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                size = counts.pop()
                anchor = anchors.pop()
                start = starts.pop()
                if size > MAX_NODES:
                    raise _too_many_nodes(file, first_line, start)
                if anchor is not None:
                    sizes[anchor] = size
                counts[-1] += size
            elif kind is AliasEvent:
                if event.anchor in anchors:
                    raise InputError(
                        f"recursive YAML alias *{event.anchor} (it refers to a node containing "
                        "it)",
                        file,
                        first_line + event.start_mark.line,
                        hint="a manifest is a tree: replace the alias by what it should contain",
                    )
                counts[-1] += sizes.get(event.anchor, 1)
            elif kind is DocumentEndEvent:
                if counts[0] > MAX_NODES:
                    raise _too_many_nodes(file, first_line, event)
                counts[0] = 0
            elif event is None or kind is StreamEndEvent:
                return
    finally:
        dispose()


def _too_many_nodes(file: Path, first_line: int, near: Event | None) -> InputError:
    line = first_line + near.start_mark.line if near is not None else first_line
    return InputError(
        f"YAML document expands to more than {MAX_NODES:,} nodes (aliases counted where they "
        "are used)",
        file,
        line,
        hint="is an alias repeating a large node (an alias bomb)?",
    )


def _event_source(text: str) -> tuple[Callable[[], Any], Callable[[], None]]:
    """(next event, dispose) over the parser events of `text`: from libyaml when available
    (fast), else from ruamel's pure-Python parser. Neither recurses: events are a flat stream
    whatever the nesting. Typed `Any`: the caller dispatches on each event's exact type."""
    if CParser is not None:
        parser = CParser(text)
        return parser.get_event, parser.dispose
    events = YAML(typ="safe", pure=True).parse(text)
    return (lambda: next(events, None)), (lambda: None)
