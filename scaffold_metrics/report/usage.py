"""Usage from range-query points: each point stands for the step before it (a Prometheus value
at t is the latest sample up to t; the first step is cut at the start of the period), so
object-hours are the sum of count * step and weighted hours the
sum of weight * step. Objects created or deleted inside the period count for the steps they
were seen in, accurate to a step.

A step where a group's series is missing while it was there before and after is a gap, unless
the scrape target was up then (`up == 1`: there really were no objects). Gaps are reported,
with their length, and count for nothing: neither zero objects nor the last value carried on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .prometheus import Series

HOUR = 3600.0


@dataclass(frozen=True)
class Gap:
    """Steps without data, from `start` to `end` (unix seconds)."""

    start: float
    end: float

    @property
    def hours(self) -> float:
        """The gap's length in hours."""
        return (self.end - self.start) / HOUR


@dataclass(frozen=True)
class Row:
    """The usage of one kind in one group (a namespace, or a label's value)."""

    kind: str
    group: str
    object_hours: float
    weight_hours: Mapping[str, float]
    gaps: tuple[Gap, ...] = ()

    @property
    def gap_hours(self) -> float:
        """Hours of the period this group's usage was not measured."""
        return sum(g.hours for g in self.gaps)


@dataclass(frozen=True)
class KindUsage:
    """One kind's rows, where they came from, and its object counts per step (for charts;
    None where a group had no point)."""

    kind: str
    source: str
    group_label: str
    weights: tuple[tuple[str, str], ...]  # (name, field)
    rows: tuple[Row, ...]
    times: tuple[float, ...] = ()
    counts: Mapping[str, tuple[float | None, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Grid:
    """The report's steps, anchored at `end`: `end - k * step` back to the first one after
    `start`; each stands for the step ending at its time."""

    start: float
    end: float
    step: int

    @property
    def count(self) -> int:
        """How many steps the period has."""
        return max(0, int(-(-(self.end - self.start) // self.step)))

    @property
    def first(self) -> float:
        """The time of the first step (what a range query starts at)."""
        return self.end - (self.count - 1) * self.step

    @property
    def times(self) -> tuple[float, ...]:
        """The time of every step."""
        return tuple(self.first + i * self.step for i in range(self.count))

    def index(self, t: float) -> int:
        """The step a point's time falls on."""
        return round((t - self.first) / self.step)

    def seconds(self, i: int) -> float:
        """How long step `i` stands for (the first may be cut by the start of the period)."""
        return float(min(self.step, self.first + i * self.step - self.start))


def by_group(series: Sequence[Series], label: str, grid: Grid) -> dict[str, dict[int, float]]:
    """Each series' points by step, keyed by its value of `label` ("" when it has none)."""
    groups: dict[str, dict[int, float]] = {}
    size = grid.count
    for s in series:
        points = groups.setdefault(s.labels.get(label, ""), {})
        for t, v in s.points:
            i = grid.index(t)
            if 0 <= i < size and v == v:  # NaN (a value that is not a number) counts nothing
                points[i] = points.get(i, 0.0) + v
    return groups


def up_steps(series: Sequence[Series], grid: Grid) -> set[int] | None:
    """The steps at which a scrape target of the job was up; None when `up` was never seen
    (gaps are then judged from the usage series alone)."""
    if not series:
        return None
    ok: set[int] = set()
    for s in series:
        ok.update(grid.index(t) for t, v in s.points if v >= 1)
    return ok


def gaps_of(present: set[int], up: set[int] | None, grid: Grid) -> tuple[Gap, ...]:
    """Missing steps between the first and the last present one (not explained by `up`)."""
    if not present:
        return ()
    missing = [
        i
        for i in range(min(present), max(present))
        if i not in present and (up is None or i not in up)
    ]
    gaps: list[Gap] = []
    times = grid.times
    for i in missing:
        start, end = times[i] - grid.seconds(i), times[i]
        if gaps and gaps[-1].end == start:
            gaps[-1] = Gap(gaps[-1].start, end)
        else:
            gaps.append(Gap(start, end))
    return tuple(gaps)


def integrate(points: Mapping[int, float], grid: Grid) -> float:
    """sum of value * step length, in hours."""
    return sum(v * grid.seconds(i) for i, v in points.items()) / HOUR


def kind_usage(
    kind: str,
    source: str,
    group_label: str,
    objects: Sequence[Series],
    weights: Sequence[tuple[str, str, Sequence[Series]]],
    up: set[int] | None,
    grid: Grid,
) -> KindUsage:
    """The rows of one kind from its object-count series and its weights' series."""
    counted = by_group(objects, group_label, grid)
    weighed = {name: by_group(series, group_label, grid) for name, _field, series in weights}
    groups = sorted(set(counted).union(*(set(w) for w in weighed.values())))
    rows = tuple(
        Row(
            kind,
            group,
            integrate(counted.get(group, {}), grid),
            {name: integrate(w.get(group, {}), grid) for name, w in weighed.items()},
            gaps_of(set(counted.get(group, {})), up, grid),
        )
        for group in groups
    )
    times = grid.times
    counts = {g: tuple(counted.get(g, {}).get(i) for i in range(len(times))) for g in groups}
    return KindUsage(
        kind,
        source,
        group_label,
        tuple((name, fld) for name, fld, _s in weights),
        rows,
        times,
        counts,
    )
