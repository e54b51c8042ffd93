"""What a family member sees of their residents: where they are now, recent alerts, whom to call.

The state is the bed's one truth (hub/watch/bed_state.py), the same the console's bed board and the
resident page show at the same moment: in bed, up, away, device trouble, no reading yet, or not
in a monitored bed (waiting, discharged). The place is said as hub/registry/labels.py says it: "Room
101, Sunrise Care Home", or for a bed at home "At home — cared for by Sunrise Care Home".

A family member never sees test alerts, other residents, readings of vital signs, or how a
contact is notified (Apprise URLs hold secrets).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final

from hub.alerts.lifecycle import ACTIVE_STATES, OUTCOMES
from hub.core.clock import Clock
from hub.core.store import Store
from hub.family.answers import answers, family_answers, staff_response
from hub.family.records import FamilyRecords
from hub.registry.index import Registry
from hub.registry.labels import bed_words
from hub.registry.models import Bed, Resident, Room
from hub.watch.bed_state import (  # noqa: F401 (AWAY_AFTER_S, Seen, activity_from: for callers)
    AWAY_AFTER_S,
    BedStates,
    Seen,
    activity_from,
)

RECENT_DAYS: Final = 7
RECENT_LIMIT: Final = 50
VIA_LABELS: Final[dict[str, str]] = {
    "console": "at the nurses' station",
    "phone": "by phone",
    "api": "by the care system",
    "push": "from a notification",
    "family_app": "in the family app",
}

Names = Callable[[], Awaitable[dict[str, str]]]


class FamilyView:
    """Builds the family app's view of a resident from the registry, the store and the clock."""

    def __init__(
        self,
        registry: Registry,
        store: Store,
        clock: Clock,
        names: Names,
        may_handle: Callable[[dict[str, Any]], bool],
        responders: Callable[[], Awaitable[set[str]]],
        beds: BedStates,
    ) -> None:
        self._registry = registry
        self._records = FamilyRecords(store)
        self._clock = clock
        self._names = names
        self._may_handle = may_handle
        self._responders = responders
        self._beds = beds  # the board's and resident page's too

    def known(self, code: str) -> bool:
        return self._registry.data.find(Resident, (code,)) is not None

    async def residents(self, codes: Iterable[str]) -> list[dict[str, Any]]:
        """Each of `codes` that the registry knows, in the order given."""
        names = await self._names()
        return [await self._resident(code, names) for code in codes if self.known(code)]

    async def resident(self, code: str) -> dict[str, Any] | None:
        if not self.known(code):
            return None
        return await self._resident(code, await self._names())

    async def _resident(self, code: str, names: dict[str, str]) -> dict[str, Any]:
        person = self._registry.data.get(Resident, (code,))
        now = self._clock.now()
        alerts = await self._alerts(code, now - RECENT_DAYS * 86400)
        ids = [alert["id"] for alert in alerts]
        records = await answers(self._records, ids, await self._responders())
        service = self._care_service(code)
        call = service["phone"] if service else None
        views = [
            {
                **_alert_view(alert, names),
                **family_answers(records[alert["id"]], names),
                "staff_response": staff_response(alert, records[alert["id"]], names, call),
                "can_handle": alert["state"] in ACTIVE_STATES and self._may_handle(alert),
            }
            for alert in alerts
        ]
        return {
            "code": person.code,
            "name": person.name,
            "place": self._place(code),
            "state": await self._state(code, now),
            "active_alerts": [view for view in views if view["state"] in ACTIVE_STATES],
            "recent_alerts": views,
            "care_service": service,
            "contacts": [
                {"name": c.name, "relation": c.relation, "phone": c.phone} for c in person.contacts
            ],
        }

    def _care_service(self, code: str) -> dict[str, Any] | None:
        """The care service that looks after the resident's bed, and its number to call."""
        bed = self._bed(code)
        site = self._registry.sites.get(bed.site) if bed is not None else None
        return {"name": site.name, "phone": site.phone} if site is not None else None

    def _bed(self, code: str) -> Bed | None:
        binding = self._registry.data.current_binding(code)
        return self._registry.data.find(Bed, (binding.bed,)) if binding is not None else None

    def _place(self, code: str) -> dict[str, Any] | None:
        """Where the resident's bed is: `text` is what to show ("Room 101, Sunrise Care Home",
        "At home — cared for by Sunrise Care Home")."""
        bed = self._bed(code)
        if bed is None:
            return None
        words = bed_words(self._registry.data, bed)
        room = self._registry.data.find(Room, (bed.site, bed.room))
        return {
            "text": words.text,
            "at_home": words.at_home,
            "site_name": words.site,
            "room_name": room.name if room is not None else bed.room,
            "bed": bed.code,
        }

    # --- state ------------------------------------------------------------------------------

    async def _state(self, code: str, now: float) -> dict[str, Any]:
        """The state of the resident's bed: the one the bed board and the resident page show."""
        return (await self._beds.resident(code, now)).view()

    # --- alerts -----------------------------------------------------------------------------

    async def _alerts(self, code: str, since: float) -> list[dict[str, Any]]:
        """The resident's alerts opened since `since`, and any older ones still active."""
        return await self._records.resident_alerts(code, since, RECENT_LIMIT)


def _alert_view(alert: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    acknowledged_by = alert["acknowledged_by"]
    return {
        "id": alert["id"],
        "rule": alert["rule"],
        "priority": alert["priority"],
        "state": alert["state"],
        "opened_at": alert["opened_at"],
        "acknowledged_by": acknowledged_by,
        "acknowledged_by_name": names.get(acknowledged_by, acknowledged_by)
        if acknowledged_by
        else None,
        "acknowledged_at": alert["acknowledged_at"],
        "acknowledged_via": VIA_LABELS.get(alert["acknowledged_via"] or "", None),
        "resolved_at": alert["resolved_at"],
        "outcome": OUTCOMES.get(alert["outcome"] or "", None),
    }
