"""The value-kind definitions: each one complete, and what it names exists in the runtime."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from schema_helpers import CORPUS, load, plan_of, render_package

from scaffold_metrics import value_kinds as vk
from scaffold_metrics.runtime import values


@pytest.mark.parametrize("kind", vk.ALL, ids=lambda k: k.name)
def test_every_reader_exists_and_takes_the_generated_arguments(kind: vk.ValueKind) -> None:
    if kind.reader is None:
        assert kind.metric_type == "info"
        return
    reader = getattr(values, f"read_{kind.reader}")
    arguments = kind.reader_arguments(("spec", "x"), ("A", "B"), ("app",))
    # samples, family, labels, obj, then what the generated call passes
    inspect.signature(reader).bind(None, None, (), {}, *arguments)


def test_value_kind_names_are_unique() -> None:
    names = [k.name for k in vk.ALL]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("kind", vk.ALL, ids=lambda k: k.name)
def test_every_kind_has_a_help_text(kind: vk.ValueKind) -> None:
    about = vk.About("Widget", "widgets", "example.com", ("status", "ready"))
    text = kind.help(about)
    assert text.endswith(".") and ("Widget" in text)


def test_kinds_read_by_one_reader_take_the_same_arguments() -> None:
    by_reader: dict[str, set[tuple[str, ...]]] = {}
    for kind in vk.ALL:
        if kind.reader is not None:
            by_reader.setdefault(kind.reader, set()).add(kind.argument_names)
    assert all(len(shapes) == 1 for shapes in by_reader.values()), by_reader
    for kind in vk.ALL:  # one name per argument the generated row passes
        assert len(kind.argument_names) == len(kind.reader_arguments((), (), ()))


@pytest.mark.parametrize("name", CORPUS)
def test_generated_generate_is_one_loop_per_reader(tmp_path: Path, name: str) -> None:
    """However many families and however long their names, `generate` stays a few lines: one
    loop per runtime reader over a table with a row per family."""
    plan = plan_of(load(name))
    package = render_package(tmp_path, plan)
    for kind in plan.kinds:
        text = (tmp_path / package / "kinds" / f"{kind.module}.py").read_text()
        body = text[text.index("    def generate(") :].splitlines()
        readers = len(kind.reader_tables)
        constants = len(kind.constant_families)
        # def, docstring, samples, labels, constants, 2 lines per reader, custom, return
        assert len(body) == 4 + constants + 2 * readers + 2, "\n".join(body)
        rows = [line for line in text.splitlines() if line.startswith("    (")]  # one per row
        assert len(rows) == sum(len(t.families) for t in kind.reader_tables)
