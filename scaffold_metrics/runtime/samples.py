"""`SampleSet`: what a generator returns for one object, samples plus the problems it met.

A value of the wrong type must cost only its own series, not the object's other samples, and
must still be counted; so generators collect problems here instead of raising.

This runs for every sample of every watch event, so samples are kept as plain
`(family, label_values, value)` tuples (`raw`), which the store renders directly; `Sample`
objects are built only for code that iterates the set.
"""

from __future__ import annotations

from collections.abc import Iterator

from .families import MetricFamilyDef, Sample

RawSample = tuple[MetricFamilyDef, tuple[str, ...], float]


class SampleSet:
    """Samples of one object, in generation order, and the problems met while reading it."""

    __slots__ = ("problems", "raw")

    def __init__(self) -> None:
        self.raw: list[RawSample] = []
        self.problems: list[str] = []

    @property
    def samples(self) -> list[Sample]:
        """The samples as `Sample` objects."""
        return [Sample(*raw) for raw in self.raw]

    def __iter__(self) -> Iterator[Sample]:
        return (Sample(*raw) for raw in self.raw)

    def __len__(self) -> int:
        return len(self.raw)

    def add(self, family: MetricFamilyDef, label_values: tuple[str, ...], value: float) -> None:
        """Add one sample."""
        self.raw.append((family, label_values, value))

    def problem(self, message: str) -> None:
        """Record a value that could not be turned into a sample (counted as a generator error)."""
        self.problems.append(message)
