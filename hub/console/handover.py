"""The shift handover: what happened to alerts since a time, and what is still open.

People are named by their display names (`acknowledged_by_name`, `resolved_by_name`), as the
console shows them; the user names stay for the record.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Final

from hub.access.records import people_names
from hub.console.records import handover_alerts
from hub.core.store import Store
from hub.escalation.roster import Roster, Shift
from hub.watch.settings import WatchPolicy

DEFAULT_HOURS: Final = 12.0
HANDOVER_LIMIT: Final = 2000
AlertFilter = Callable[[dict[str, Any]], bool]


def shift_start(
    roster: Roster | None, policy: WatchPolicy, site: str, now: float
) -> tuple[str, float] | None:
    """The name and start of the roster shift on duty at `site` now, the latest begun first."""
    if roster is None:
        return None
    moment = policy.settings(site, None, None).local(now)
    begun = [(shift.name, _began(shift, moment)) for shift in roster.shifts_at(site, now)]
    found = [(name, at.timestamp()) for name, at in begun if at is not None]
    return max(found, key=lambda f: f[1]) if found else None


def _began(shift: Shift, moment: datetime) -> datetime | None:
    overnight = shift.end <= shift.start
    for day in (moment.date(), moment.date() - timedelta(days=1)):
        begin = datetime.combine(day, shift.start, moment.tzinfo)
        finish = datetime.combine(day + timedelta(days=int(overnight)), shift.end, moment.tzinfo)
        if begin <= moment < finish:
            return begin
    return None


async def handover(store: Store, since: float, until: float, shown: AlertFilter) -> dict[str, Any]:
    """Alerts opened, acknowledged or resolved in [since, until), and every alert still open.

    `shown(alert)` keeps the alerts the caller may see (scope, site, no test alerts).
    """
    listed = await handover_alerts(store, since, until, HANDOVER_LIMIT)
    alerts = [alert for alert in listed if shown(alert)]
    names = await people_names(
        store, [a[key] for a in alerts for key in ("acknowledged_by", "resolved_by") if a[key]]
    )
    for alert in alerts:
        for key in ("acknowledged_by", "resolved_by"):
            who = alert[key]
            alert[f"{key}_name"] = "" if not who else names.get(who, "the hub")

    def within(at: float | None) -> bool:
        return at is not None and since <= at < until

    happened = [
        {**a, "during": [k for k in _MOMENTS if within(a[f"{k}_at"])]}
        for a in alerts
        if any(within(a[f"{k}_at"]) for k in _MOMENTS)
    ]
    still_open = [a for a in alerts if a["state"] != "resolved"]
    return {
        "since": since,
        "until": until,
        "counts": {
            "opened": sum("opened" in a["during"] for a in happened),
            "acknowledged": sum("acknowledged" in a["during"] for a in happened),
            "resolved": sum("resolved" in a["during"] for a in happened),
            "still_open": len(still_open),
        },
        "happened": happened,
        "still_open": still_open,
    }


_MOMENTS: Final = ("opened", "acknowledged", "resolved")
