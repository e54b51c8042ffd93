"""The alert lifecycle: open → acknowledged → resolved, one active alert per rule and subject.

Every change is written with its audit record in one transaction and then announced on the
alert bus, which feeds the consoles' live stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from hub.alerts.records import AlertRecords
from hub.core.audit import AuditEntry
from hub.core.clock import Clock
from hub.core.errors import DomainError
from hub.core.store import Store
from hub.core.timers import TimerKey
from hub.registry.index import Placement

log = logging.getLogger("carewatch.hub.alerts")

Priority = Literal["emergency", "routine", "trouble"]
AlertListener = Callable[[dict[str, Any]], Awaitable[None]]
ACTIVE_STATES: Final = ("open", "acknowledged")
OUTCOMES: Final = {
    "assisted_no_injury": "Attended: no injury",
    "assisted_injury": "Attended: injury, care given",
    "emergency_services": "Emergency services called",
    "false_alarm": "False alarm",
    "device_fault": "Device fault",
    "other": "Other (see note)",
}
# A trouble alert whose condition went away (device back online, battery replaced).
SELF_CLEARED: Final = "self_cleared"
# How long after sensing an alert counts as late: a backlog replay or a slow path.
LATE_AFTER_S: Final = 30.0


class AlertError(DomainError):
    """A request that does not fit the alert's state; `status` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Trigger:
    """What raised an alert, and about whom: a device's place, or a whole gateway."""

    rule: str
    priority: Priority
    site: str
    subject: str
    sensed_at: float
    received_at: float
    placement: Placement | None = None
    gateway: str | None = None
    historical: bool = False
    test: bool = False
    detail: dict[str, Any] = field(default_factory=dict)
    consumes: TimerKey | None = None
    # A site-wide alert about one zone (nobody covers it): the zone's name, for people. The
    # alert stays the site's (seen by the site's staff, told to everyone on duty there).
    zone_name: str | None = None


@dataclass(frozen=True, slots=True)
class Watcher:
    """Who holds a live subscription, and which alerts they are shown."""

    username: str | None
    sees: Callable[[dict[str, Any]], bool]


def _sees_everything(_: dict[str, Any]) -> bool:
    return True


class AlertBus:
    """Fan-out of alert changes to live subscribers; a subscriber too slow to keep up is cut."""

    def __init__(self, queue_size: int = 1000) -> None:
        self._queues: dict[asyncio.Queue[dict[str, Any] | None], Watcher] = {}
        self._queue_size = queue_size

    def subscribe(
        self,
        username: str | None = None,
        sees: Callable[[dict[str, Any]], bool] = _sees_everything,
    ) -> asyncio.Queue[dict[str, Any] | None]:
        """A live subscription; `username` and `sees` say who watches it and what they see
        (a console's signed-in user), so that the hub can say whom an alert is in front of."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(self._queue_size)
        self._queues[queue] = Watcher(username, sees)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        self._queues.pop(queue, None)

    def publish(self, alert: dict[str, Any]) -> None:
        for queue in list(self._queues):
            try:
                queue.put_nowait(alert)
            except asyncio.QueueFull:
                log.warning("live subscriber fell behind and was disconnected")
                self._queues.pop(queue, None)

    def close(self) -> None:
        """End every live subscription: each subscriber receives None and should finish."""
        for queue in list(self._queues):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
        self._queues.clear()

    @property
    def subscribers(self) -> int:
        return len(self._queues)

    def connected_users(self) -> dict[str, int]:
        """Signed-in users with a live console open, and how many each has open."""
        counts: dict[str, int] = {}
        for watcher in self._queues.values():
            if watcher.username is not None:
                counts[watcher.username] = counts.get(watcher.username, 0) + 1
        return counts

    def watching(self, alert: dict[str, Any]) -> list[str]:
        """The signed-in users whose open consoles show `alert`."""
        return list(
            dict.fromkeys(
                w.username
                for w in self._queues.values()
                if w.username is not None and w.sees(alert)
            )
        )


class AlertService:
    def __init__(self, store: Store, bus: AlertBus, clock: Clock) -> None:
        self.records = AlertRecords(store)
        self._bus = bus
        self._clock = clock
        # (rule, subject) of every active alert, so that "the condition cleared", which most
        # readings say, costs no query when there is nothing to clear.
        self._active: set[tuple[str, str]] = set()
        self._triggering = asyncio.Lock()
        self._listeners: list[AlertListener] = []

    def is_active(self, rule: str, subject: str) -> bool:
        return (rule, subject) in self._active

    def add_listener(self, listener: AlertListener) -> Callable[[], None]:
        """Call `listener` with the alert after every change (escalation, notification); the
        call that stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    async def load(self) -> None:
        await self.records.create()
        for alert in await self.records.page(ACTIVE_STATES, limit=None):
            self._active.add((alert["rule"], alert["subject"]))

    async def trigger(self, trigger: Trigger) -> dict[str, Any]:
        """Open an alert, or add the repeat to the one already active for this rule and subject.

        One at a time: ingest and the timers may trigger together (a device's silence timer and
        its gateway's report that it is offline), and must not open two alerts for one rule and
        subject. The listeners (escalation) run after, so that the next alarm does not wait for
        them."""
        async with self._triggering:
            alert = await self._open_or_repeat(trigger)
            self._track(alert)
        return await self._publish(alert)

    async def _open_or_repeat(self, trigger: Trigger) -> dict[str, Any]:
        # The set of active alerts is kept here: a new alarm asks the database nothing first.
        if (trigger.rule, trigger.subject) in self._active:
            active = await self.records.active(trigger.rule, trigger.subject)
            if active is not None:
                return await self._repeat(active, trigger)
        now = self._clock.now()
        delay = now - trigger.sensed_at
        fields: dict[str, Any] = {
            "rule": trigger.rule,
            "priority": trigger.priority,
            "state": "open",
            "subject": trigger.subject,
            "site": trigger.site,
            "gateway": trigger.gateway or _gateway_of(trigger.placement),
            "test": int(trigger.test),
            **_place_fields(trigger.placement),
            **_zone_fields(trigger),
            "sensed_at": trigger.sensed_at,
            "opened_at": now,
            "late_s": round(delay, 3) if trigger.historical or delay > LATE_AFTER_S else None,
            "last_triggered_at": trigger.sensed_at,
        }
        entry = AuditEntry(now, "system", "opened", None, trigger.detail)
        alert = await self.records.insert(fields, entry, trigger.consumes)
        alert_id = alert["id"]
        log.warning(
            "alert opened: %s",
            trigger.rule,
            extra={
                "site": trigger.site,
                "gateway": fields["gateway"],
                "device": fields["device"],
                "bed": fields["bed"],
                "rule": trigger.rule,
                "alert_id": alert_id,
            },
        )
        return alert

    async def _repeat(self, active: dict[str, Any], trigger: Trigger) -> dict[str, Any]:
        entry = AuditEntry(self._clock.now(), "system", "repeated", None, trigger.detail)
        await self.records.update(
            active["id"],
            {
                "count": active["count"] + 1,
                "last_triggered_at": max(active["last_triggered_at"], trigger.sensed_at),
                "cleared_at": None,  # it happened again: not cleared any more
            },
            ACTIVE_STATES,
            entry,
            trigger.consumes,
        )
        alert = await self.records.get(active["id"])
        if alert is None:
            raise AlertError(404, f"no alert {active['id']}")
        return alert

    async def condition_cleared(self, rule: str, subject: str, sensed_at: float) -> None:
        """Record that the condition cleared. Trouble alerts resolve by themselves; an
        emergency or routine alert still needs a person to close it."""
        if (rule, subject) not in self._active:
            return
        active = await self.records.active(rule, subject)
        if active is None or sensed_at < active["last_triggered_at"]:
            return  # sensed before the latest trigger: stale (a replay, or a late clearing)
        now = self._clock.now()
        if active["priority"] == "trouble":
            entry = AuditEntry(now, "system", "resolved", None, {"outcome": SELF_CLEARED})
            fields = {
                "state": "resolved",
                "cleared_at": sensed_at,
                "resolved_by": "system",
                "resolved_at": now,
                "outcome": SELF_CLEARED,
            }
        elif active["cleared_at"] is None:
            entry = AuditEntry(now, "system", "condition_cleared", None, {})
            fields = {"cleared_at": sensed_at}
        else:
            return
        await self.records.update(active["id"], fields, ACTIVE_STATES, entry)
        await self._announce(active["id"])

    async def acknowledge(self, alert_id: int, user: str, channel: str) -> dict[str, Any]:
        now = self._clock.now()
        entry = AuditEntry(now, user, "acknowledged", channel, {})
        changed = await self.records.update(
            alert_id,
            {
                "state": "acknowledged",
                "acknowledged_by": user,
                "acknowledged_at": now,
                "acknowledged_via": channel,
            },
            ("open",),
            entry,
        )
        if not changed:
            await self._refuse(alert_id, "acknowledged")
        return await self._announce(alert_id)

    async def resolve(
        self, alert_id: int, user: str, channel: str, outcome: str, note: str | None
    ) -> dict[str, Any]:
        if outcome not in OUTCOMES:
            raise AlertError(422, f"unknown outcome {outcome!r}; use one of {sorted(OUTCOMES)}")
        current = await self.records.get(alert_id)
        if current is None:
            raise AlertError(404, f"no alert {alert_id}")
        now = self._clock.now()
        fields: dict[str, Any] = {
            "state": "resolved",
            "resolved_by": user,
            "resolved_at": now,
            "outcome": outcome,
            "note": note,
        }
        if current["acknowledged_at"] is None:
            fields |= {"acknowledged_by": user, "acknowledged_at": now, "acknowledged_via": channel}
        entry = AuditEntry(now, user, "resolved", channel, {"outcome": outcome, "note": note})
        if not await self.records.update(alert_id, fields, ACTIVE_STATES, entry):
            await self._refuse(alert_id, "resolved")
        return await self._announce(alert_id)

    async def note(
        self, alert_id: int, entry: AuditEntry, fields: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Record what happened around an active alert (a relative saw it, nobody was reached)
        with `fields` changed in the same transaction, and show it on the live consoles. Not a
        change of state: the alert's listeners (escalation) are not called. AlertError 404 for
        no such alert, 409 for a resolved one."""
        now_fields = fields or {"id": alert_id}
        if not await self.records.update(alert_id, now_fields, ACTIVE_STATES, entry):
            current = await self.records.get(alert_id)
            if current is None:
                raise AlertError(404, f"no alert {alert_id}")
            raise AlertError(409, f"alert {alert_id} is resolved already")
        alert = await self.records.get(alert_id)
        if alert is None:
            raise AlertError(404, f"no alert {alert_id}")
        self._bus.publish(alert)
        return alert

    async def _refuse(self, alert_id: int, wanted: str) -> None:
        current = await self.records.get(alert_id)
        if current is None:
            raise AlertError(404, f"no alert {alert_id}")
        raise AlertError(409, f"alert {alert_id} is {current['state']} and cannot be {wanted} now")

    async def _announce(self, alert_id: int) -> dict[str, Any]:
        alert = await self.records.get(alert_id)
        if alert is None:
            raise AlertError(404, f"no alert {alert_id}")
        return await self._publish(alert)

    def _track(self, alert: dict[str, Any]) -> None:
        key = (alert["rule"], alert["subject"])
        if alert["state"] in ACTIVE_STATES:
            self._active.add(key)
        else:
            self._active.discard(key)

    async def _publish(self, alert: dict[str, Any]) -> dict[str, Any]:
        self._track(alert)
        self._bus.publish(alert)
        for listener in self._listeners:
            try:
                await listener(alert)
            except Exception:
                log.exception("alert listener failed for alert %s", alert["id"])
        return alert


def _place_fields(place: Placement | None) -> dict[str, Any]:
    if place is None:
        return dict.fromkeys(
            (
                "zone",
                "zone_name",
                "room",
                "room_name",
                "bed",
                "resident_code",
                "resident_name",
                "device",
            )
        )
    return {
        "zone": place.zone,
        "zone_name": place.zone_name,
        "room": place.room,
        "room_name": place.room_name,
        "bed": place.bed,
        "resident_code": place.resident_code,
        "resident_name": place.resident_name,
        "device": place.device,
    }


def _zone_fields(trigger: Trigger) -> dict[str, Any]:
    if trigger.placement is not None or trigger.zone_name is None:
        return {}
    return {"zone_name": trigger.zone_name}


def _gateway_of(place: Placement | None) -> str | None:
    return place.gateway if place is not None else None
