"""What a family member sees of their residents: where they are now, recent alerts, whom to call.

The state is said in plain words, from the bed's and room's sensors (the live `device_state`
and the readings before it, for "since when") and the active alerts:

- device trouble: a sensor of the bed or room is offline, tampered with or low on battery, or
  the gateway that carries them is offline; what the sensors last said is kept as `activity`;
- in bed: the bed sensor says so;
- up: out of bed (or, without a bed sensor, out of the room) for less than `AWAY_AFTER_S`;
- away: out of bed or out of the room for longer, or not back in bed at night (a bed-exit alert);
- no reading yet, or not in a monitored bed (waiting, discharged).

A family member never sees test alerts, other residents, readings of vital signs, or how a
contact is notified (Apprise URLs hold secrets).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from device_profiles import load_profile
from hub.alerts import ACTIVE_STATES, OUTCOMES
from hub.clock import Clock
from hub.family_answers import answers, family_answers, staff_response
from hub.registry import Placement, Registry
from hub.registry_models import Bed, Resident, Room
from hub.store import ALERT_COLUMNS, Store

State = Literal["in_bed", "up", "away", "device_trouble", "unknown", "no_bed"]
Activity = Literal["in_bed", "up", "away", "unknown"]
STATE_LABELS: Final[dict[str, str]] = {
    "in_bed": "In bed",
    "up": "Up",
    "away": "Away",
    "device_trouble": "Device trouble",
    "unknown": "No reading yet",
    "no_bed": "Not in a monitored bed",
}
AWAY_AFTER_S: Final = 30 * 60
RECENT_DAYS: Final = 7
RECENT_LIMIT: Final = 50
# How far back to look for the last change of a reading ("in bed since …").
CHANGE_LOOKBACK_S: Final = 2 * 86400
DEVICE_TROUBLE: Final[dict[str, str]] = {
    "device_offline": "is not responding",
    "low_battery": "needs a new battery",
    "tamper": "has been tampered with",
}
VIA_LABELS: Final[dict[str, str]] = {
    "console": "at the nurses' station",
    "phone": "by phone",
    "api": "by the care system",
    "push": "from a notification",
    "family_app": "in the family app",
}
SCHEMA: Final = "CREATE INDEX IF NOT EXISTS alerts_resident ON alerts (resident_code, opened_at);\n"

Names = Callable[[], Awaitable[dict[str, str]]]


@dataclass(frozen=True, slots=True)
class Seen:
    """A bed or room reading now, and since when it has had this value."""

    value: bool
    since: float
    last: float


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
    ) -> None:
        self._registry = registry
        self._store = store
        self._clock = clock
        self._names = names
        self._may_handle = may_handle
        self._responders = responders
        self._indexed = False

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
        records = await answers(self._store, ids, await self._responders())
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
        bed = self._bed(code)
        if bed is None:
            return None
        site = self._registry.sites.get(bed.site)
        room = self._registry.data.find(Room, (bed.site, bed.room))
        return {
            "site_name": site.name if site is not None else bed.site,
            "room_name": room.name if room is not None else bed.room,
            "bed": bed.code,
        }

    def _devices(self, bed: Bed) -> list[Placement]:
        """The sensors of the bed, and of its room."""
        return [
            place
            for place in self._registry.devices()
            if place.site == bed.site
            and (place.bed == bed.code or (place.bed is None and place.room == bed.room))
        ]

    # --- state ------------------------------------------------------------------------------

    async def _state(self, code: str, now: float) -> dict[str, Any]:
        bed = self._bed(code)
        if bed is None:
            return _state("no_bed", None, [])
        devices = self._devices(bed)
        in_bed = await self._seen([d.device for d in devices if d.bed is not None], "occupancy")
        present = await self._seen([d.device for d in devices], "presence")
        exit_alert = await self._active_alert("bed_exit", f"bed:{bed.code}")
        activity, since = activity_from(in_bed, present, exit_alert, now)
        trouble = await self._trouble(devices)
        if trouble:
            return {**_state("device_trouble", None, trouble), "activity": activity}
        return {**_state(activity, since, []), "activity": activity}

    async def _seen(self, devices: Sequence[str], name: str) -> Seen | None:
        """The latest live value of `name` among `devices`, and since when it has held."""
        if not devices:
            return None
        marks = ", ".join("?" for _ in devices)
        async with self._store.db.execute(
            f"SELECT device, value, sensed_at FROM device_state WHERE name = ? "
            f"AND device IN ({marks}) ORDER BY sensed_at DESC LIMIT 1",
            (name, *devices),
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        value = json.loads(row["value"])
        if not isinstance(value, bool):
            return None
        since = await self._since(str(row["device"]), name, row["value"], float(row["sensed_at"]))
        return Seen(value, since, float(row["sensed_at"]))

    async def _since(self, device: str, name: str, value: str, last: float) -> float:
        """The first reading of `value` after the last reading of another value."""
        after = last - CHANGE_LOOKBACK_S
        async with self._store.db.execute(
            "SELECT sensed_at FROM readings WHERE device = ? AND name = ? AND value != ? "
            "AND sensed_at BETWEEN ? AND ? ORDER BY sensed_at DESC LIMIT 1",
            (device, name, value, after, last),
        ) as cur:
            row = await cur.fetchone()
        if row is not None:
            after = float(row["sensed_at"])
        async with self._store.db.execute(
            "SELECT min(sensed_at) FROM readings WHERE device = ? AND name = ? AND value = ? "
            "AND sensed_at > ? AND sensed_at <= ?",
            (device, name, value, after, last),
        ) as cur:
            first = await cur.fetchone()
        return float(first[0]) if first is not None and first[0] is not None else last

    async def _trouble(self, devices: Sequence[Placement]) -> list[str]:
        """Plain words for every sensor or gateway of the bed that is not working now."""
        offline = await self._reported_offline([place.device for place in devices])
        troubles: list[str] = []
        for place in devices:
            for rule, words in DEVICE_TROUBLE.items():
                gone = rule == "device_offline" and place.device in offline
                if gone or await self._active_alert(rule, f"device:{place.device}"):
                    troubles.append(f"The {device_kind(place.profile)} {words}")
        for site, gateway in sorted({(p.site, p.gateway) for p in devices}):
            status = await self._store.gateway_status(site, gateway)
            down = status is not None and status[0] == "offline"
            if down or await self._active_alert("gateway_offline", f"gateway:{site}/{gateway}"):
                troubles.append("The gateway beside the bed has lost its connection")
        return list(dict.fromkeys(troubles))

    async def _reported_offline(self, devices: Sequence[str]) -> set[str]:
        """Devices their gateway last reported offline (before the watch raises its alert)."""
        if not devices:
            return set()
        marks = ", ".join("?" for _ in devices)
        async with self._store.db.execute(
            f"SELECT device FROM device_health WHERE online = 0 AND device IN ({marks})",
            tuple(devices),
        ) as cur:
            return {str(row["device"]) for row in await cur.fetchall()}

    async def _active_alert(self, rule: str, subject: str) -> bool:
        alert = await self._store.active_alert(rule, subject)
        return alert is not None and not alert["test"]

    # --- alerts -----------------------------------------------------------------------------

    async def _alerts(self, code: str, since: float) -> list[dict[str, Any]]:
        """The resident's alerts opened since `since`, and any older ones still active."""
        if not self._indexed:
            await self._store.add_schema(SCHEMA)
            self._indexed = True
        async with self._store.db.execute(
            f"SELECT {ALERT_COLUMNS} FROM alerts WHERE resident_code = ? AND test = 0 "
            "AND (opened_at >= ? OR state != 'resolved') ORDER BY opened_at DESC, id DESC "
            "LIMIT ?",
            (code, since, RECENT_LIMIT),
        ) as cur:
            return [dict(row) for row in await cur.fetchall()]


def activity_from(
    in_bed: Seen | None, present: Seen | None, exit_alert: bool, now: float
) -> tuple[Activity, float | None]:
    """In bed, up or away, from the bed sensor if there is one, else the room sensor."""
    seen = in_bed or present
    if exit_alert:
        return "away", in_bed.since if in_bed is not None and not in_bed.value else None
    if seen is None:
        return "unknown", None
    if seen.value:
        return ("in_bed" if in_bed is not None else "up"), seen.since
    return ("away" if now - seen.since >= AWAY_AFTER_S else "up"), seen.since


def _state(code: State, since: float | None, trouble: list[str]) -> dict[str, Any]:
    return {"code": code, "label": STATE_LABELS[code], "since": since, "trouble": trouble}


def device_kind(profile: str) -> str:
    """What a family member calls a device: call button, bed sensor, smoke detector, …"""
    made = {rule.reading or rule.event for rule in load_profile(profile).rules}
    for name, kind in (
        ("smoke", "smoke detector"),
        ("call_button", "call button"),
        ("occupancy", "bed sensor"),
        ("heart_rate", "bed sensor"),
        ("fall", "fall sensor"),
        ("contact_open", "door sensor"),
    ):
        if name in made:
            return kind
    return "room sensor" if {"presence", "motion"} & made else "sensor"


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
