"""The resident page's charts read the rollups, and raw only what the rollups do not count yet:
each bucket's mean must be what the raw readings say, whether or not they are rolled up."""

from __future__ import annotations

from collections import defaultdict

from hub.console.resident_history import chart
from hub.core.store import StoredItem
from hub.telemetry.settings import DAY_S
from tests.conftest import HubFactory
from tests.support.clock import FakeClock

NOW = 1_790_000_000.0 // 3600 * 3600  # on the hour
DAYS = 8


def readings(first_day: int, last_day: int) -> list[StoredItem]:
    """Mary's radar every 7 minutes: a heart rate (0 now and then: no reading), her breathing,
    and whether she is there, which changes every 140 minutes."""
    items = []
    for k in range(int(first_day * DAY_S / 420), int(last_day * DAY_S / 420)):
        at = NOW - DAYS * DAY_S + k * 420 + 11
        heart = 0 if k % 17 == 0 else 52 + k % 23
        items += [
            StoredItem("radar-101", "reading", "heart_rate", heart, at, at, True),
            StoredItem("radar-101", "reading", "respiration_rate", 12 + k % 5, at, at, True),
            StoredItem("radar-101", "reading", "presence", (k // 20) % 2 == 0, at, at, True),
        ]
    return items


def expected_means(
    items: list[StoredItem], start: float, bucket_s: float, slots: int
) -> dict[str, list[float | None]]:
    sums: defaultdict[tuple[str, int], list[float]] = defaultdict(list)
    for item in items:
        slot = int((item.sensed_at - start) // bucket_s)
        assert isinstance(item.value, int)  # True counts 1
        if 0 <= slot < slots and not (item.name == "heart_rate" and item.value == 0):
            sums[(item.name, slot)].append(float(item.value))
    digits = {"heart_rate": 1, "respiration_rate": 1, "presence": 3}
    return {
        name: [
            round(sum(v) / len(v), digits[name]) if (v := sums.get((name, i))) else None
            for i in range(slots)
        ]
        for name in digits
    }


async def test_the_week_and_the_day_are_what_the_raw_readings_say(hub_factory: HubFactory) -> None:
    hub = await hub_factory(FakeClock(NOW))
    rolled, fresh = readings(0, 6), readings(6, DAYS)
    await hub.ingest.records.save_batches([("sunrise", "gw-east", "e", 1, rolled)])
    await hub.upkeep.roll_up()
    # The last two days arrive after the roll-up: the chart reads them raw until they are in.
    await hub.ingest.records.save_batches([("sunrise", "gw-east", "e", 2, fresh)])

    for span_s, bucket_s in ((7 * DAY_S, 3600.0), (DAY_S, 300.0), (3 * DAY_S, 600.0)):
        start = NOW - span_s
        slots = int(span_s // bucket_s)
        drawn = await chart(hub.store, hub.registry, "E-0001", (start, NOW), bucket_s)
        want = expected_means(rolled + fresh, start, bucket_s, slots)
        assert drawn["occupancy_source"] == "presence"
        assert [p["heart_rate"] for p in drawn["points"]] == want["heart_rate"], span_s
        assert [p["respiration_rate"] for p in drawn["points"]] == want["respiration_rate"]
        assert [p["occupancy"] for p in drawn["points"]] == want["presence"]
