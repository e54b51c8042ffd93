"""Rollups worked out from a series' readings: counts, sums, extremes and time in state."""

from __future__ import annotations

from hub.telemetry.rollups import minute_buckets, runs

NOW = 1_800_000_000.0  # far after every minute below


def test_a_minute_counts_its_readings_and_nothing_of_its_neighbours() -> None:
    points = [(59.0, 70.0), (60.0, 72.0), (90.0, 80.0), (119.9, 65.0), (120.0, 99.0)]
    (minute,) = minute_buckets(points, [60], boolean=False, name="heart_rate", now=NOW).values()
    assert (minute.n, minute.total, minute.low, minute.high) == (3, 217.0, 65.0, 80.0)
    assert minute.known_s is None  # not a yes/no series


def test_a_radar_saying_zero_is_no_heart_rate() -> None:
    points = [(0.0, 0.0), (10.0, 64.0), (20.0, 0.0)]
    (minute,) = minute_buckets(points, [0], boolean=False, name="heart_rate", now=NOW).values()
    assert (minute.n, minute.total, minute.low) == (1, 64.0, 64.0)
    (other,) = minute_buckets(points, [0], boolean=False, name="battery", now=NOW).values()
    assert (other.n, other.low) == (3, 0.0)


def test_time_in_bed_runs_from_each_reading_to_the_next() -> None:
    # In bed since 30 s before the minute, out at :15, back at :45.
    points = [(-30.0, 1.0), (15.0, 0.0), (45.0, 1.0)]
    (minute,) = minute_buckets(points, [0], boolean=True, name="occupancy", now=NOW).values()
    assert (minute.true_s, minute.known_s) == (30.0, 60.0)
    assert (minute.n, minute.total) == (2, 1.0)  # the readings in the minute: out, in


def test_a_state_older_than_the_lookback_is_not_known_at_the_minute_start() -> None:
    points = [(-3600.0, 1.0), (20.0, 1.0)]
    (minute,) = minute_buckets(points, [0], boolean=True, name="occupancy", now=NOW).values()
    assert (minute.true_s, minute.known_s) == (40.0, 40.0)


def test_the_minute_now_is_known_only_up_to_now() -> None:
    (minute,) = minute_buckets([(0.0, 1.0)], [0], boolean=True, name="presence", now=25.0).values()
    assert (minute.true_s, minute.known_s) == (25.0, 25.0)


def test_touched_minutes_far_apart_are_read_in_separate_runs() -> None:
    assert runs([0, 60, 7200, 120, 7260]) == [[0, 60, 120], [7200, 7260]]
