"""The value-kind definitions: each one complete, and what it names exists in the runtime."""

from __future__ import annotations

import inspect

import pytest

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
