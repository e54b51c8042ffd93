"""Rollups: a series' readings summed up per minute and per hour, for charts over long spans.

A bucket holds how many readings it had (`n`), their sum (`total`: a mean is total / n), the
lowest and highest; a series of yes/no readings (in bed, present, door open) also has the time in
"yes" (`true_s`) out of the time its state was known (`known_s`). A bool counts 1 or 0.

The sums are exact: a bucket is always worked out again from every raw reading it holds, so a
reading that arrives late (a gateway's store-and-forward) is counted in its bucket as the
bucket is redone. An hour is worked out from its minutes.

Vital-sign radars say 0 when they have no reading: a 0 heart or breathing rate is not counted,
as the resident page's charts never counted it.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

MINUTE: Final = 60
HOUR: Final = 3_600
# How long before a minute a yes/no reading still tells the state at the minute's start.
LOOKBACK_S: Final = 900.0
NO_READING_WHEN_ZERO: Final = frozenset({"heart_rate", "respiration_rate"})


@dataclass(slots=True)
class Bucket:
    n: int = 0
    total: float = 0.0
    low: float | None = None
    high: float | None = None
    true_s: float | None = None
    known_s: float | None = None

    def count(self, value: float) -> None:
        self.n += 1
        self.total += value
        self.low = value if self.low is None else min(self.low, value)
        self.high = value if self.high is None else max(self.high, value)

    def add(self, other: Bucket) -> None:
        """Fold a smaller bucket (a minute of this hour) into this one."""
        self.n += other.n
        self.total += other.total
        if other.low is not None:
            self.low = other.low if self.low is None else min(self.low, other.low)
        if other.high is not None:
            self.high = other.high if self.high is None else max(self.high, other.high)
        if other.known_s is not None:
            self.true_s = (self.true_s or 0.0) + (other.true_s or 0.0)
            self.known_s = (self.known_s or 0.0) + other.known_s

    def row(self) -> tuple[int, float, float | None, float | None, float | None, float | None]:
        return (self.n, self.total, self.low, self.high, self.true_s, self.known_s)


# A reading as the rollups see it: when it was sensed, its number (None: not a number).
Point = tuple[float, float | None]


def start_of(at: float, size: int) -> int:
    return int(at // size) * size


def runs(minutes: Iterable[int], gap: int = HOUR) -> list[list[int]]:
    """The touched minutes in runs close enough to be read from the store in one range."""
    ordered = sorted(set(minutes))
    found: list[list[int]] = []
    for minute in ordered:
        if found and minute - found[-1][-1] <= gap:
            found[-1].append(minute)
        else:
            found.append([minute])
    return found


def minute_buckets(
    points: Sequence[Point], minutes: Iterable[int], *, boolean: bool, name: str, now: float
) -> dict[int, Bucket]:
    """The given minutes of one series worked out from its `points` (ordered by time, from at
    least LOOKBACK_S before the first minute to the end of the last)."""
    times = [at for at, _ in points]
    skip_zero = name in NO_READING_WHEN_ZERO
    buckets: dict[int, Bucket] = {}
    for minute in minutes:
        bucket = Bucket()
        first = bisect.bisect_left(times, minute)
        last = bisect.bisect_left(times, minute + MINUTE)
        for _, value in points[first:last]:
            if value is not None and not (skip_zero and value == 0):
                bucket.count(value)
        if boolean:
            end = min(minute + MINUTE, max(now, minute))
            bucket.true_s, bucket.known_s = _time_in_state(points, first, last, minute, end)
        buckets[minute] = bucket
    return buckets


def _time_in_state(
    points: Sequence[Point], first: int, last: int, start: float, end: float
) -> tuple[float, float]:
    """Seconds of "yes", and seconds known, in [start, end): a state holds from its reading to
    the next (the one before `start` counts if it is at most LOOKBACK_S older)."""
    state: float | None = None
    since = start
    if first > 0 and start - points[first - 1][0] <= LOOKBACK_S:
        state = points[first - 1][1]
    true_s = known_s = 0.0
    for at, value in points[first:last]:
        if state is not None:
            known_s += at - since
            true_s += (at - since) if state else 0.0
        state, since = value, at
    if state is not None and end > since:
        known_s += end - since
        true_s += (end - since) if state else 0.0
    return true_s, known_s


def hour_bucket(minute_rows: Iterable[Bucket]) -> Bucket:
    hour = Bucket()
    for minute in minute_rows:
        hour.add(minute)
    return hour
