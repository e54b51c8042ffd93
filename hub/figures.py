"""Response-time figures from the alert record: how fast alerts were acknowledged and resolved.

For the alerts opened in a period (test alerts never count):
- time to acknowledge: acknowledged_at − opened_at; time to resolve: resolved_at − opened_at;
  each as a median and a 90th percentile (nearest rank) in seconds;
- the share acknowledged within 60 s and within 180 s (the telecare codes of practice ask for
  97.5 % and 99 %). An alert counts towards a share once its fate is known: it was
  acknowledged, or it has waited longer than the limit without being acknowledged;
- grouped per site, per zone and per shift (the roster's shift at opening).
"""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, Final, TextIO

import aiosqlite

from hub.roster import Roster

TARGETS: Final = {60: 0.975, 180: 0.99}
DEFAULT_PRIORITIES: Final = ("emergency", "routine")
DEFAULT_PERIOD_S: Final = 30 * 86400
SITE_WIDE: Final = "(site-wide)"
NO_SHIFT: Final = "(no shift)"
# What a spreadsheet reads as the start of a formula when a cell begins with it.
FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class Timing:
    site: str
    zone: str
    shift: str
    opened_at: float
    acknowledged_at: float | None
    resolved_at: float | None

    @property
    def to_acknowledge(self) -> float | None:
        return None if self.acknowledged_at is None else self.acknowledged_at - self.opened_at

    @property
    def to_resolve(self) -> float | None:
        return None if self.resolved_at is None else self.resolved_at - self.opened_at


@dataclass(frozen=True, slots=True)
class Figures:
    by: str  # total, site, zone or shift
    site: str | None
    group: str | None  # the zone or the shift
    alerts: int
    acknowledged: int
    resolved: int
    ack_median_s: float | None
    ack_p90_s: float | None
    resolve_median_s: float | None
    resolve_p90_s: float | None
    ack_within_60s: float | None
    ack_within_180s: float | None
    meets_target: bool | None


def percentile(values: Sequence[float], p: float) -> float | None:
    """The nearest-rank percentile: the smallest value with at least p % at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def share_within(timings: Iterable[Timing], limit_s: float, now: float) -> float | None:
    """Share acknowledged within `limit_s`, among the alerts whose fate is known by `now`."""
    within = decided = 0
    for t in timings:
        took = t.to_acknowledge
        if took is None and now - t.opened_at <= limit_s:
            continue  # still within the limit: not yet a success or a failure
        decided += 1
        within += int(took is not None and took <= limit_s)
    return within / decided if decided else None


def summarise(
    by: str, site: str | None, group: str | None, timings: Sequence[Timing], now: float
) -> Figures:
    acks = [t.to_acknowledge for t in timings if t.to_acknowledge is not None]
    resolves = [t.to_resolve for t in timings if t.to_resolve is not None]
    shares = {limit: share_within(timings, limit, now) for limit in TARGETS}
    known = [(share, TARGETS[limit]) for limit, share in shares.items() if share is not None]
    return Figures(
        by=by,
        site=site,
        group=group,
        alerts=len(timings),
        acknowledged=len(acks),
        resolved=len(resolves),
        ack_median_s=statistics.median(acks) if acks else None,
        ack_p90_s=percentile(acks, 90),
        resolve_median_s=statistics.median(resolves) if resolves else None,
        resolve_p90_s=percentile(resolves, 90),
        ack_within_60s=shares[60],
        ack_within_180s=shares[180],
        meets_target=all(share >= goal for share, goal in known) if known else None,
    )


def _grouped(
    by: str, timings: Sequence[Timing], key: Callable[[Timing], str | None], now: float
) -> list[Figures]:
    groups: dict[tuple[str, str | None], list[Timing]] = {}
    for t in timings:
        groups.setdefault((t.site, key(t)), []).append(t)
    ordered = sorted(groups.items(), key=lambda item: (item[0][0], item[0][1] or ""))
    return [summarise(by, site, group, rows, now) for (site, group), rows in ordered]


def compute(timings: Sequence[Timing], now: float) -> list[Figures]:
    """The total, then per site, per zone and per shift."""
    return [
        summarise("total", None, None, timings, now),
        *_grouped("site", timings, lambda t: None, now),
        *_grouped("zone", timings, lambda t: t.zone, now),
        *_grouped("shift", timings, lambda t: t.shift, now),
    ]


async def load_timings(
    db: aiosqlite.Connection,
    roster: Roster,
    since: float,
    until: float,
    site: str | None = None,
    priorities: Sequence[str] = DEFAULT_PRIORITIES,
) -> list[Timing]:
    """The alerts opened in [since, until), test alerts left out."""
    marks = ", ".join("?" for _ in priorities)
    query = (
        "SELECT site, zone, opened_at, acknowledged_at, resolved_at FROM alerts "
        f"WHERE test = 0 AND opened_at >= ? AND opened_at < ? AND priority IN ({marks})"
    )
    args: list[Any] = [since, until, *priorities]
    if site is not None:
        query += " AND site = ?"
        args.append(site)
    async with db.execute(query + " ORDER BY opened_at", args) as cur:
        rows = await cur.fetchall()
    return [
        Timing(
            site=row[0],
            zone=row[1] or SITE_WIDE,
            shift=roster.shift_name(row[0], row[2]) or NO_SHIFT,
            opened_at=row[2],
            acknowledged_at=row[3],
            resolved_at=row[4],
        )
        for row in rows
    ]


async def report(
    db: aiosqlite.Connection,
    roster: Roster,
    *,
    since: float,
    until: float,
    now: float,
    site: str | None = None,
    priorities: Sequence[str] = DEFAULT_PRIORITIES,
) -> dict[str, Any]:
    """The figures as a JSON-ready document (what the API answers and the CLI prints)."""
    timings = await load_timings(db, roster, since, until, site, priorities)
    return document(since, until, site, priorities, timings, now)


def document(
    since: float,
    until: float,
    site: str | None,
    priorities: Sequence[str],
    timings: list[Timing],
    now: float,
) -> dict[str, Any]:
    """Figures computed from `timings`, with the period and targets they were computed for."""
    return {
        "since": since,
        "until": until,
        "site": site,
        "priorities": list(priorities),
        "targets": {f"ack_within_{limit}s": goal for limit, goal in TARGETS.items()},
        "figures": [asdict(f) for f in compute(timings, now)],
    }


def parse_when(text: str, zone: tzinfo = UTC) -> float:
    """An ISO 8601 date or time as epoch seconds; without an offset it is read in `zone`."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO 8601 time (e.g. 2026-11-01 or 2026-11-01T07:00)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.timestamp()


def period(since: float | None, until: float | None, now: float) -> tuple[float, float]:
    """The period asked for; by default the 30 days up to now. Refuses an empty period."""
    end = now if until is None else until
    start = end - DEFAULT_PERIOD_S if since is None else since
    if start >= end:
        raise ValueError("since must be before until")
    return start, end


def write_csv(rows: Iterable[Mapping[str, Any]], columns: Sequence[str], out: TextIO) -> None:
    """Rows as CSV under a header line of `columns`; a missing value is an empty cell.

    Every CSV the hub writes goes through here: text that a spreadsheet would read as a
    formula is neutralised (`csv_cell`).
    """
    writer = csv.writer(out)
    writer.writerow([csv_cell(column) for column in columns])
    writer.writerows([[csv_cell(row.get(key)) for key in columns] for row in rows])


def csv_cell(value: Any) -> Any:
    """A value as a CSV cell: None empty; text that starts like a formula (=, +, -, @, tab,
    carriage return) behind a single quote, so that a spreadsheet shows it as text instead of
    running it (OWASP's advice on CSV injection). Numbers are left as they are: -70 is -70."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
