"""`SampleSet`: what a generator returns for one object, samples plus the problems it met.

A value of the wrong type must cost only its own series, not the object's other samples, and
must still be counted; so generators collect problems here instead of raising.
"""

from __future__ import annotations

from collections.abc import Iterator

from .families import MetricFamilyDef, Sample


class SampleSet:
    """Samples of one object, in generation order, and the problems met while reading it."""

    __slots__ = ("problems", "samples")

    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self.problems: list[str] = []

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def __len__(self) -> int:
        return len(self.samples)

    def add(self, family: MetricFamilyDef, label_values: tuple[str, ...], value: float) -> None:
        """Add one sample."""
        self.samples.append(Sample(family, label_values, value))

    def problem(self, message: str) -> None:
        """Record a value that could not be turned into a sample (counted as a generator error)."""
        self.problems.append(message)
