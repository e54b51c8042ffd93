"""Rollups: a series' readings summed up per minute and per hour, for charts over long spans.

A bucket holds how many readings it had (`n`), their sum (`total`: a mean is total / n), the
lowest and highest; a series of yes/no readings (in bed, present, door open) also has the time in
"yes" (`true_s`) out of the time its state was known (`known_s`). A bool counts 1 or 0.

The sums are exact: a bucket is always worked out again from every raw reading it holds, so a
reading that arrives late (a gateway's store-and-forward) is counted in its bucket as the
bucket is redone. An hour is summed from its minutes (hub/telemetry/records.py).

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
# How long a yes/no reading tells the state after it, when no other reading follows: the edge
# repeats an unchanged value at least every minute (edge/repeats.py), so a longer silence is a
# device not heard, not a state that held.
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

    @property
    def empty(self) -> bool:
        """No reading and no state known: not worth a row."""
        return self.n == 0 and not self.known_s

    def count(self, value: float) -> None:
        self.n += 1
        self.total += value
        self.low = value if self.low is None else min(self.low, value)
        self.high = value if self.high is None else max(self.high, value)

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


def held_minutes(touched: Iterable[int], points: Sequence[Point]) -> list[int]:
    """The minutes a yes/no reading in these minutes tells the state of: its own, and those up
    to the next reading's (whose state before it it sets), LOOKBACK_S at most."""
    times = [at for at, _ in points]
    held: set[int] = set()
    for minute in touched:
        last = bisect.bisect_left(times, minute + MINUTE) - 1
        if last < 0 or times[last] < minute:
            held.add(minute)
            continue
        following = times[last + 1] if last + 1 < len(times) else times[last] + LOOKBACK_S
        until = min(following, times[last] + LOOKBACK_S)
        held.update(range(minute, start_of(until, MINUTE) + MINUTE, MINUTE))
    return sorted(held)


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
    the next, for LOOKBACK_S at most (the reading before `start` counts too)."""
    state: float | None = None
    held_until = since = start
    if first > 0:
        state, held_until = points[first - 1][1], points[first - 1][0] + LOOKBACK_S
    true_s = known_s = 0.0

    def hold(until: float) -> None:
        nonlocal true_s, known_s
        span = max(0.0, min(until, held_until) - since)
        if state is not None:
            known_s += span
            true_s += span if state else 0.0

    for at, value in points[first:last]:
        hold(at)
        state, since, held_until = value, at, at + LOOKBACK_S
    hold(end)
    return true_s, known_s
