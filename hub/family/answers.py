"""What a family is told about the response to an alert: only what the record shows.

"Someone is coming" is never said because a button was pressed. The family app says:

- acknowledged: a staff member acknowledged the alert (the alert's own record);
- alerted: a named staff member was reached (a delivered notification attempt), and how;
- nobody_reached: an escalation step reached nobody and no staff member has been reached
  since: the family is given the care service's number to call now;
- waiting: none of these yet.

A relative's "I've seen it" and "I'm handling it" are shown as they were recorded, apart
from the staff's answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from hub.family.records import FamilyRecords

# How a family member would say the channel that reached a staff member.
CHANNEL_WORDS: Final[dict[str, str]] = {
    "push": "phone",
    "console": "nurses' station screen",
    "apprise": "message",
}


@dataclass(slots=True)
class Answers:
    """The record of one alert's response, as the family app needs it."""

    reached: list[tuple[str, str, float]] = field(default_factory=list)  # name, channel, at
    asked: list[str] = field(default_factory=list)  # who asked for someone to be sent
    seen: list[str] = field(default_factory=list)  # relatives who said "I've seen it"
    handling: tuple[str, float] | None = None  # the first "I'm handling it": who, when


async def answers(
    records: FamilyRecords, alert_ids: Sequence[int], responders: set[str]
) -> dict[int, Answers]:
    """Each alert's deliveries to `responders` (the staff) and family answers, from the
    record. A relative named in a step is a user too, but never "the staff was alerted"."""
    found: dict[int, Answers] = {alert_id: Answers() for alert_id in alert_ids}
    if not alert_ids:
        return found
    for row in await records.deliveries(alert_ids):
        user = str(row["recipient_user"] or row["recipient"])
        if user in responders:
            found[int(row["alert_id"])].reached.append((user, str(row["channel"]), row["at"]))
    for row in await records.answers(alert_ids):
        record = found[int(row["alert_id"])]
        actor = str(row["actor"])
        if row["action"] == "help_requested":
            record.asked.append(actor)
        elif row["action"] == "family_seen":
            record.seen.append(actor)
        elif record.handling is None:
            record.handling = (actor, float(row["at"]))
    return found


def staff_response(
    alert: dict[str, Any], record: Answers, names: dict[str, str], call: str | None
) -> dict[str, Any]:
    """The staff's response as the record shows it (see the module's docstring)."""
    if alert["acknowledged_by"]:
        who = alert["acknowledged_by"]
        return _response("acknowledged", names.get(who, who), alert["acknowledged_at"], None)
    if record.reached:
        who, channel, at = record.reached[-1]
        return _response("alerted", names.get(who, who), at, CHANNEL_WORDS.get(channel, channel))
    if alert["nobody_reached_at"] is not None:
        return {**_response("nobody_reached", None, alert["nobody_reached_at"], None), "call": call}
    return _response("waiting", None, None, None)


def _response(kind: str, name: str | None, at: float | None, channel: str | None) -> dict[str, Any]:
    return {"kind": kind, "name": name, "at": at, "channel": channel, "call": None}


def family_answers(record: Answers, names: dict[str, str]) -> dict[str, Any]:
    """Who asked for someone, who has seen it, and who is handling it, by name."""
    handling = record.handling
    return {
        "help_requested_by": [names.get(who, who) for who in dict.fromkeys(record.asked)],
        "seen_by": [names.get(who, who) for who in dict.fromkeys(record.seen)],
        "handling": {"name": names.get(handling[0], handling[0]), "since": handling[1]}
        if handling
        else None,
    }
