"""Response-time figures from the alert record: how fast staff acknowledged and resolved alerts.

For the alerts opened in a period (test alerts never count):
- time to acknowledge: the first staff acknowledgement − opened_at; time to resolve:
  resolved_at − opened_at; each as a median and a 90th percentile (nearest rank) in seconds.
  A staff acknowledgement is the first `acknowledged` entry of the alert's audit record (or its
  `resolved` entry, for an alert resolved without one) whose actor is neither the system nor a
  family member: a relative's answer is never a staff response;
- the share acknowledged within 60 s and within 180 s (the telecare codes of practice ask for
  97.5 % and 99 %). An alert counts towards a share once its fate is known: it was
  acknowledged, or it has waited longer than the limit without being acknowledged;
- family responses apart: how many alerts a relative marked "I've seen it" (`family_seen`) or
  "I'm handling it" (`family_handling`), and the median time to the first of them;
- how many alerts' escalation reached nobody (`nobody_reached` in the audit record,
  `alerts.nobody_reached_at`), and the list of them (`load_nobody_reached`);
- grouped per site, per zone and per shift (the roster's shift at opening).
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any, Final, TextIO

from hub.access.records import family_users
from hub.core.database import Database
from hub.escalation import records
from hub.escalation.roster import Roster

TARGETS: Final = {60: 0.975, 180: 0.99}
DEFAULT_PRIORITIES: Final = ("emergency", "routine")
DEFAULT_PERIOD_S: Final = 30 * 86400
SITE_WIDE: Final = "(site-wide)"
NO_SHIFT: Final = "(no shift)"
# What a spreadsheet reads as the start of a formula when a cell begins with it.
FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
# What staff do that counts as their response; what a family does; what the record says.
STAFF_RESPONSES: Final = ("acknowledged", "resolved")
FAMILY_RESPONSES: Final = ("family_seen", "family_handling")
RECORD_ACTIONS: Final = (*STAFF_RESPONSES, *FAMILY_RESPONSES, "nobody_reached")
NOBODY_REACHED_COLUMNS: Final = (
    "id",
    "rule",
    "priority",
    "state",
    "site",
    "zone",
    "shift",
    "room_name",
    "bed",
    "resident_code",
    "resident_name",
    "opened_at",
    "nobody_reached_at",
    "times",
    "reason",
    "acknowledged_at",
    "acknowledged_by",
    "resolved_at",
)


@dataclass(frozen=True, slots=True)
class Timing:
    site: str
    zone: str
    shift: str
    opened_at: float
    acknowledged_at: float | None  # the first staff acknowledgement
    resolved_at: float | None
    family_seen_at: float | None = None
    family_handling_at: float | None = None
    nobody_reached_at: float | None = None

    @property
    def to_family_response(self) -> float | None:
        answers = [t for t in (self.family_seen_at, self.family_handling_at) if t is not None]
        return min(answers) - self.opened_at if answers else None

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
    # Apart from the staff figures above: what relatives answered, and who was never reached.
    family_seen: int = 0
    family_handling: int = 0
    family_response_median_s: float | None = None
    nobody_reached: int = 0


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
    family = [t.to_family_response for t in timings if t.to_family_response is not None]
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
        family_seen=sum(t.family_seen_at is not None for t in timings),
        family_handling=sum(t.family_handling_at is not None for t in timings),
        family_response_median_s=statistics.median(family) if family else None,
        nobody_reached=sum(t.nobody_reached_at is not None for t in timings),
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


@dataclass
class _Answers:
    """What an alert's audit record says about who answered it and whether anyone was reached."""

    staff_at: float | None = None
    staff_by: str | None = None
    family_seen_at: float | None = None
    family_handling_at: float | None = None
    nobody: list[tuple[float, dict[str, Any]]] = field(default_factory=list)


async def _answers(
    db: Database,
    since: float,
    until: float,
    site: str | None,
    priorities: Sequence[str] | None,
) -> dict[int, _Answers]:
    """Staff and family answers and nobody-reached entries of the alerts opened in
    [since, until) (`records.opened_alerts`)."""
    family = await family_users(db)
    found: dict[int, _Answers] = {}
    entries = await records.opened_alerts_record(db, RECORD_ACTIONS, since, until, site, priorities)
    for entry in entries:
        action, actor, at = entry["action"], entry["actor"], entry["at"]
        answers = found.setdefault(int(entry["alert_id"]), _Answers())
        if action in STAFF_RESPONSES:
            if actor != "system" and actor not in family and answers.staff_at is None:
                answers.staff_at, answers.staff_by = float(at), str(actor)
        elif action == "family_seen" and answers.family_seen_at is None:
            answers.family_seen_at = float(at)
        elif action == "family_handling" and answers.family_handling_at is None:
            answers.family_handling_at = float(at)
        elif action == "nobody_reached":
            answers.nobody.append((float(at), _detail(entry["detail"])))
    return found


def _detail(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


async def load_timings(
    db: Database,
    roster: Roster,
    since: float,
    until: float,
    site: str | None = None,
    priorities: Sequence[str] = DEFAULT_PRIORITIES,
) -> list[Timing]:
    """The alerts opened in [since, until), test alerts left out."""
    rows = await records.opened_alerts(db, since, until, site, priorities)
    answers = await _answers(db, since, until, site, priorities)
    timings = []
    for row in rows:
        said = answers.get(int(row["id"]), _Answers())
        nobody_at = row["nobody_reached_at"]
        if nobody_at is None and said.nobody:
            nobody_at = said.nobody[0][0]
        timings.append(
            Timing(
                site=row["site"],
                zone=row["zone"] or SITE_WIDE,
                shift=roster.shift_name(row["site"], row["opened_at"]) or NO_SHIFT,
                opened_at=row["opened_at"],
                acknowledged_at=said.staff_at,
                resolved_at=row["resolved_at"],
                family_seen_at=said.family_seen_at,
                family_handling_at=said.family_handling_at,
                nobody_reached_at=nobody_at,
            )
        )
    return timings


async def load_nobody_reached(
    db: Database,
    roster: Roster,
    since: float,
    until: float,
    site: str | None = None,
) -> list[dict[str, Any]]:
    """Every alert opened in [since, until), of any priority, whose escalation reached nobody at
    least once (test alerts left out), oldest first: where it was, its shift, how many times and
    why nobody was reached, and whether and when staff answered it."""
    answers = await _answers(db, since, until, site, None)
    rows = await records.opened_alerts(db, since, until, site, None)
    listed = []
    for row in rows:
        said = answers.get(int(row["id"]), _Answers())
        reached_nobody_at = row.pop("nobody_reached_at")
        if reached_nobody_at is None and said.nobody:
            reached_nobody_at = said.nobody[0][0]
        if reached_nobody_at is None:
            continue
        subject = str(row.pop("subject"))
        zone = row["zone"] or _zone_of_subject(subject)
        reasons = [str(entry.get("reason") or "") for _, entry in said.nobody]
        listed.append(
            {
                **row,
                "zone": zone,
                "shift": roster.shift_name(row["site"], row["opened_at"]) or NO_SHIFT,
                "nobody_reached_at": reached_nobody_at,
                "times": len(said.nobody) or 1,
                "reason": next((r for r in reasons if r), None),
                "reasons": [
                    {
                        "step": int(entry.get("step", 0)) + 1,
                        "phase": entry.get("phase"),
                        "at": at,
                        "reason": entry.get("reason", ""),
                    }
                    for at, entry in said.nobody
                ],
                "acknowledged_at": said.staff_at,
                "acknowledged_by": said.staff_by,
            }
        )
    return listed


def _zone_of_subject(subject: str) -> str | None:
    """The zone an alert about a zone names in its subject (`zone:<site>/<zone>`)."""
    if not subject.startswith("zone:"):
        return None
    return subject.partition("/")[2] or None


def nobody_reached_counts(listed: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The alerts that reached nobody, counted in total, per site, per zone and per shift."""
    counts: dict[tuple[str, str | None, str | None], int] = {}
    for row in listed:
        zone = row["zone"] or SITE_WIDE
        for key in (
            ("total", None, None),
            ("site", row["site"], None),
            ("zone", row["site"], zone),
            ("shift", row["site"], row["shift"]),
        ):
            counts[key] = counts.get(key, 0) + 1
    order = {"total": 0, "site": 1, "zone": 2, "shift": 3}
    return [
        {"by": by, "site": site, "group": group, "alerts": n}
        for (by, site, group), n in sorted(
            counts.items(), key=lambda item: (order[item[0][0]], item[0][1] or "", item[0][2] or "")
        )
    ]


async def report(
    db: Database,
    roster: Roster,
    *,
    since: float,
    until: float,
    now: float,
    site: str | None = None,
    priorities: Sequence[str] = DEFAULT_PRIORITIES,
) -> dict[str, Any]:
    """The figures as a JSON-ready document (what the CLI prints): the figures, and the alerts
    whose escalation reached nobody."""
    timings = await load_timings(db, roster, since, until, site, priorities)
    listed = await load_nobody_reached(db, roster, since, until, site)
    return document(since, until, site, priorities, timings, now) | {
        "nobody_reached": {"alerts": listed, "counts": nobody_reached_counts(listed)}
    }


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
