"""One distinct snake name per kind, and distinct metric names across kinds.

A kind's snake name is its module (`kinds/<name>.py`), its metric prefix and its label; two
kinds that snake-case alike (`FooBar` and `FOOBar`, or `Widget` in two groups) must not share
one, or one kind's module would silently replace the other's and its series be served twice.
Each kind gets the plainest name that is unique in the project, so adding a CRD renames only
the kinds it collides with.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import NoReturn, Protocol

from .crd import Crd
from .errors import InputError
from .naming import RUNTIME_METRICS_PREFIX, group_prefix, snake_case

# A longer name is not offered: it must stay a file name (255 bytes) with room for `.py`.
MAX_KIND_NAME = 200


def _candidates(crd: Crd) -> list[str]:
    """Names to try for `crd`, plainest first: the kind; prefixed by its group's first segment;
    by its whole group; then, for kinds alike within one group, by the plural (which Kubernetes
    keeps unique in a group) instead of the kind. Names that would start like the runtime's
    self-metrics (`operator_metrics_`) are never offered."""
    kind, plural = snake_case(crd.kind), snake_case(crd.plural)
    short, group = group_prefix(crd.group), snake_case(crd.group)
    names = [kind, f"{short}_{kind}", f"{group}_{kind}", f"{short}_{plural}", f"{group}_{plural}"]
    return [
        name
        for name in dict.fromkeys(names)
        if len(name) <= MAX_KIND_NAME and not _runtime_like(name)
    ]


def _runtime_like(name: str) -> bool:
    """True for a name whose families would start like the runtime's own self-metrics."""
    return name == RUNTIME_METRICS_PREFIX or name.startswith(f"{RUNTIME_METRICS_PREFIX}_")


def unique_kind_names(crds: Sequence[Crd]) -> dict[str, str]:
    """Snake name per CRD name: every kind its own, whatever the input order.

    Every kind whose name is shared moves on to its next candidate until no name is shared; a
    clash no candidate resolves (CRD names that snake-case alike too) is an error."""
    candidates = {crd.name: _candidates(crd) for crd in crds}
    for crd in crds:
        if not candidates[crd.name]:
            raise InputError(f"kind {crd.kind[:80]!r} gives no usable name", crd.file, crd.line)
    level = dict.fromkeys(candidates, 0)
    while True:
        names = {name: candidates[name][level[name]] for name in candidates}
        counts = Counter(names.values())
        clashing = sorted(name for name, snake in names.items() if counts[snake] > 1)
        if not clashing:
            return names
        for name in clashing:
            level[name] += 1
            if level[name] == len(candidates[name]):
                _raise_clash(crds, names[name])


def _raise_clash(crds: Sequence[Crd], snake: str) -> NoReturn:
    alike = [crd for crd in crds if snake in _candidates(crd)]
    first, second = alike[0], alike[-1]
    raise InputError(
        f"kinds {first.kind} ({first.name}) and {second.kind} ({second.name}) cannot be given "
        f"distinct metric names (both would be {snake})",
        second.file,
        second.line,
        hint="generate them in separate packages (`init --package`)",
    )


class _Family(Protocol):
    @property
    def name(self) -> str: ...


class _Kind(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def crd_name(self) -> str: ...
    @property
    def families(self) -> Sequence[_Family]: ...


def check_distinct_families(kinds: Iterable[_Kind], crds: Sequence[Crd]) -> None:
    """Refuse a plan in which two kinds would serve a family of the same name (a field path of
    one kind spelling another kind's name: `Foo`'s `spec.info` and `FooSpec`'s `_info`)."""
    owner: dict[str, _Kind] = {}
    by_name = {crd.name: crd for crd in crds}
    for kind in kinds:
        for family in kind.families:
            other = owner.setdefault(family.name, kind)
            if other is not kind and other.crd_name != kind.crd_name:
                crd = by_name.get(kind.crd_name)
                raise InputError(
                    f"metric {family.name} would be served by two kinds, {other.kind} "
                    f"({other.crd_name}) and {kind.kind} ({kind.crd_name})",
                    crd.file if crd else None,
                    crd.line if crd else None,
                    hint="rename one in the config: metrics.kinds.<kind>.rename (see "
                    "docs/metrics-config.md)",
                )
