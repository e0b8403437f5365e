"""Name rules: whatever a kind is called, names come out valid and stable."""

from __future__ import annotations

import keyword

import pytest

from scaffold_metrics.naming import (
    kind_label_name,
    python_class_prefix,
    python_module_name,
    snake_case,
)
from scaffold_metrics.runtime.exposition import is_valid_label_name, is_valid_metric_name


@pytest.mark.parametrize(
    ("kind", "snake"),
    [
        ("Memcached", "memcached"),
        ("MemcachedCluster", "memcached_cluster"),
        ("HTTPRoute", "http_route"),
        ("ScaledObject", "scaled_object"),
        ("TYPE", "type"),
        ("Sync Status", "sync_status"),
        ("v1Thing", "v1_thing"),
        ("3Dprinter", "x_3_dprinter"),
        ("Évènement", "v_nement"),
        ("", "x"),
        ('Evil"); import os #', "evil_import_os"),
    ],
)
def test_snake_case(kind: str, snake: str) -> None:
    assert snake_case(kind) == snake
    assert is_valid_metric_name(f"{snake}_info")
    assert is_valid_label_name(kind_label_name(snake))


def test_kind_label_avoids_reserved_labels() -> None:
    assert kind_label_name("namespace") == "namespace_name"
    assert kind_label_name("memcached") == "memcached"


def test_python_names_are_identifiers() -> None:
    for word in keyword.kwlist:
        module = python_module_name(snake_case(word))
        assert module.isidentifier() and not keyword.iskeyword(module)
    assert python_class_prefix("memcached_cluster") == "MemcachedCluster"
    assert python_class_prefix("x_3_dprinter").isidentifier()
