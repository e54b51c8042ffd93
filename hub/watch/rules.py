"""The 24-hour watch: every rule of docs/watch.md, driven by items, gateway news and timers.

Instant rules turn an item straight into an alert (fall, call button, smoke, exit door at night,
tamper, low battery). Waiting rules start a durable timer and raise the alert only if the
condition still holds when it fires (not back in bed, no activity by day, still in bed at the
up-by time, too long in the bathroom, vital signs out of range, a device or gateway silent).
The hub's MQTT link reports its own broker session being taken over (`hub_takeover`).

Every rule reads its settings from the watch policy for the bed's site, zone and resident, so a
site, a zone or one resident can change a rule without code.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Final

from device_profiles import DeviceProfile, load_profile
from hub.alerts.lifecycle import AlertService, Priority, Trigger
from hub.core.clock import Clock
from hub.core.store import StoredItem
from hub.core.timers import Timer, Timers
from hub.registry.data import RegistryData
from hub.registry.index import Placement, Registry
from hub.registry.models import Device
from hub.watch.settings import WatchPolicy, WatchSettings
from hub.watch.takeovers import Takeovers

log = logging.getLogger("carewatch.hub.watch")

INSTANT_EVENTS: Final[dict[str, tuple[str, Priority]]] = {
    "fall": ("fall", "emergency"),
    "call_button": ("call_button", "emergency"),
    "tamper": ("tamper", "trouble"),
}
VITALS: Final = ("heart_rate", "respiration_rate")
BATTERY_HYSTERESIS: Final = 5.0
BACKSTOP_SILENCE_S: Final = 600.0
# How often at most a device's or gateway's silence timer is rewritten to the database.
SILENCE_WRITE_FRACTION: Final = 0.25
# Walk test (hub/commissioning/walktest.py): hears every item; says whether a site/gateway is under
# test.
ItemObserver = Callable[[StoredItem, Placement], Awaitable[None]]
UnderTest = Callable[[str, str | None], bool]


@dataclass
class _PlaceState:
    """What the watch remembers about a bed or room between items, and when it was sensed: a
    replayed reading older than what is known changes nothing now."""

    in_bed: bool | None = None
    in_bed_at: float = -math.inf
    present: bool | None = None
    present_at: float = -math.inf


@dataclass
class _Heard:
    last: float
    written_due: float


@dataclass
class _GatewayState:
    online: bool = True
    heard: _Heard | None = None


@dataclass
class _Memory:
    places: dict[str, _PlaceState] = field(default_factory=dict)
    devices: dict[str, _Heard] = field(default_factory=dict)
    gateways: dict[tuple[str, str], _GatewayState] = field(default_factory=dict)
    battery_low: dict[str, float] = field(default_factory=dict)
    vitals_raised: set[str] = field(default_factory=set)  # "bed/sign" keys that raised


@dataclass(frozen=True)
class _Fitted:
    """What the registry says that the rules need: who is at risk of wandering in each zone,
    and which bathrooms can tell that someone left (a presence radar or a door contact)."""

    data: RegistryData
    wanderers: dict[tuple[str, str], tuple[str, ...]]
    tells_leaving_rooms: frozenset[tuple[str, str]]

    @classmethod
    def of(cls, data: RegistryData) -> _Fitted:
        leaving = frozenset(
            (device.site, device.room)
            for device in data.all(Device)
            if device.room is not None
            and {"presence", "contact_open"} & load_profile(device.profile).readings
        )
        return cls(data, data.zones_of_flagged("wander_risk"), leaving)

    def tells_leaving(self, site: str, room: str) -> bool:
        return (site, room) in self.tells_leaving_rooms


class Watch:
    def __init__(
        self,
        registry: Registry,
        alerts: AlertService,
        timers: Timers,
        policy: WatchPolicy,
        clock: Clock,
        under_test: UnderTest,
    ) -> None:
        """`under_test`: whether a site's (or one gateway's) alerts are walk-test alerts now
        (hub/commissioning/walktest.py)."""
        self._registry = registry
        self._alerts = alerts
        self._timers = timers
        self._policy = policy
        self._clock = clock
        self._memory = _Memory()
        self._fitted: _Fitted | None = None
        self._started_at = clock.now()
        self._under_test = under_test
        self._observers: list[ItemObserver] = []
        for kind, handler in (
            ("bed_exit", self._bed_exit_due),
            ("inactivity", self._inactivity_due),
            ("not_up", self._not_up_due),
            ("bathroom", self._bathroom_due),
            ("vitals", self._vitals_due),
            ("device_silent", self._device_silent_due),
            ("gateway_silent", self._gateway_silent_due),
            ("battery_reminder", self._battery_reminder_due),
        ):
            timers.on(kind, handler)

    async def start(self) -> None:
        """Make sure every device, gateway and bed has its standing timers, written in one
        transaction (a 10,000-bed hub has a hundred thousand of them)."""
        now = self._clock.now()
        for place in self._registry.devices():
            if self._timers.pending("device_silent", place.device) is None:
                due = now + _silence_window(place)
                await self._timers.set("device_silent", place.device, due, {}, deferred=True)
            if place.bed is not None and self._timers.pending("not_up", place.bed) is None:
                await self._schedule_not_up(place, now, deferred=True)
        for site, gateway in self._registry.gateways():
            if self._timers.pending("gateway_silent", f"{site}/{gateway}") is None:
                due = now + self._policy.settings(site, None, None).gateway_keepalive_s
                await self._timers.set(
                    "gateway_silent", f"{site}/{gateway}", due, {}, deferred=True
                )
        await self._timers.flush()

    def observe(self, observer: ItemObserver) -> Callable[[], None]:
        """Call `observer` with every item after the rules saw it (the bed states, the walk
        test); answers the call that stops it."""
        self._observers.append(observer)
        return lambda: self._observers.remove(observer)

    def settings(self, place: Placement) -> WatchSettings:
        return self._policy.settings(place.site, place.zone, place.resident_code)

    # --- items ------------------------------------------------------------------------------

    async def on_item(self, item: StoredItem, place: Placement) -> None:
        await self._heard_device(place, item.received_at)
        if item.kind == "event":
            await self._on_event(item, place)
        else:
            await self._on_reading(item, place)
        for observer in self._observers:
            await observer(item, place)

    async def _on_event(self, item: StoredItem, place: Placement) -> None:
        rule = INSTANT_EVENTS.get(item.name)
        if rule is None:
            return
        if item.value is False:
            subject = _subject_for(rule[0], place)
            await self._alerts.condition_cleared(rule[0], subject, item.sensed_at)
        else:
            await self._raise(rule[0], rule[1], place, item, subject=_subject_for(rule[0], place))

    async def _on_reading(self, item: StoredItem, place: Placement) -> None:
        name, value = item.name, item.value
        if name == "smoke":
            await self._on_smoke(item, place)
        elif name == "contact_open":
            await self._on_door(item, place)
        elif name == "battery" and isinstance(value, int | float):
            await self._on_battery(float(value), item, place)
        elif name in VITALS and isinstance(value, int | float):
            await self._on_vital(name, float(value), item, place)
        if not isinstance(value, bool):
            return
        if self._is_activity(name, value, item, place):
            await self._on_activity(item, place)
        if _says_in_bed(place, name):
            await self._on_in_bed(value, item, place)
        elif name == "presence":
            await self._on_presence(value, item, place)
        elif name == "motion" and place.room_kind == "bathroom":
            await self._on_bathroom_motion(value, item, place)

    def _is_activity(self, name: str, value: bool, item: StoredItem, place: Placement) -> bool:
        """Motion, or a change of presence or of in/out of bed. Someone merely present and
        still (a radar repeating "present") is not activity: that is what the rule watches for.
        """
        if name == "motion":
            return value
        state = self._place(place)
        if _says_in_bed(place, name):
            previous, known_at = state.in_bed, state.in_bed_at
        elif name == "presence":
            previous, known_at = state.present, state.present_at
        else:
            return False
        return previous is not None and previous != value and item.sensed_at >= known_at

    async def _on_smoke(self, item: StoredItem, place: Placement) -> None:
        if item.value is True:
            await self._raise("smoke", "emergency", place, item, detail={"all_on_duty": True})
        else:
            await self._alerts.condition_cleared("smoke", place.subject, item.sensed_at)

    async def _on_door(self, item: StoredItem, place: Placement) -> None:
        subject = f"device:{place.device}"
        if item.value is False:
            await self._alerts.condition_cleared("door_at_night", subject, item.sensed_at)
            return
        if place.room_kind == "bathroom":
            await self._bathroom_left(place, item.sensed_at)  # the way out of a bathroom
        if place.role != "exit_door":
            return
        settings = self.settings(place)
        wanderers = self._fitted_now().wanderers.get((place.site, place.zone), ())
        if (settings.door_at_night or wanderers) and settings.is_night(item.sensed_at):
            detail = {"wander_risk": list(wanderers)} if wanderers else None
            await self._raise(
                "door_at_night", "emergency", place, item, subject=subject, detail=detail
            )

    async def _on_battery(self, level: float, item: StoredItem, place: Placement) -> None:
        threshold = _profile(place).battery_low
        if threshold is None:
            return
        subject = f"device:{place.device}"
        if level < threshold and place.device not in self._memory.battery_low:
            self._memory.battery_low[place.device] = level
            await self._raise(
                "low_battery",
                "trouble",
                place,
                item,
                subject=subject,
                detail={"battery": level, "below": threshold},
            )
            remind = item.sensed_at + self.settings(place).low_battery_remind_h * 3600
            await self._timers.set("battery_reminder", place.device, remind, {})
        elif level >= threshold + BATTERY_HYSTERESIS:
            self._memory.battery_low.pop(place.device, None)
            await self._timers.cancel("battery_reminder", place.device)
            await self._alerts.condition_cleared("low_battery", subject, item.sensed_at)

    async def _on_in_bed(self, in_bed: bool, item: StoredItem, place: Placement) -> None:
        state = self._place(place)
        if item.sensed_at < state.in_bed_at or place.bed is None:
            return
        previous, state.in_bed, state.in_bed_at = state.in_bed, in_bed, item.sensed_at
        if in_bed:
            await self._timers.cancel("bed_exit", place.bed)
            await self._alerts.condition_cleared("bed_exit", place.subject, item.sensed_at)
            return
        await self._cancel_vitals(place, item.sensed_at)
        settings = self.settings(place)
        if (
            previous is not False
            and settings.bed_exit
            and settings.is_night(item.sensed_at)
            and self._timers.pending("bed_exit", place.bed) is None
        ):
            due = item.sensed_at + settings.bed_exit_return_min * 60
            await self._timers.set("bed_exit", place.bed, due, _timer_payload(place, item))

    async def _on_presence(self, present: bool, item: StoredItem, place: Placement) -> None:
        state = self._place(place)
        if item.sensed_at < state.present_at:
            return
        state.present, state.present_at = present, item.sensed_at
        if place.room_kind != "bathroom":
            return
        if present:
            await self._bathroom_entered(place, item)
        else:
            await self._bathroom_left(place, item.sensed_at)

    async def _on_bathroom_motion(self, moving: bool, item: StoredItem, place: Placement) -> None:
        """Motion starts a stay. A motion sensor's "no motion" ends it only where nothing better
        can tell that someone left: a still person and an empty room look the same to it."""
        if moving:
            await self._bathroom_entered(place, item)
        elif not self._fitted_now().tells_leaving(place.site, place.room):
            await self._bathroom_left(place, item.sensed_at)

    async def _bathroom_entered(self, place: Placement, item: StoredItem) -> None:
        key = f"{place.site}/{place.room}"
        if self._timers.pending("bathroom", key) is None:
            due = item.sensed_at + self.settings(place).bathroom_max_min * 60
            await self._timers.set("bathroom", key, due, _timer_payload(place, item))

    async def _bathroom_left(self, place: Placement, at: float) -> None:
        await self._timers.cancel("bathroom", f"{place.site}/{place.room}")
        await self._alerts.condition_cleared("prolonged_stay", place.subject, at)

    async def _on_activity(self, item: StoredItem, place: Placement) -> None:
        if place.bed is None:
            return
        settings = self.settings(place)
        if not settings.inactivity:
            return
        due = item.sensed_at + settings.inactivity_hours * 3600
        pending = self._timers.pending("inactivity", place.bed)
        if item.historical and pending is None:
            return  # a replay may move the wait on, never start one in the past
        # Rewriting the durable timer on every reading would cost a write per item; moving it
        # once a minute keeps it within a minute of the truth.
        if pending is None or due - pending.due_at > 60:
            payload = _timer_payload(place, item)
            await self._timers.set("inactivity", place.bed, due, payload, deferred=True)
        await self._alerts.condition_cleared("inactivity", place.subject, item.sensed_at)

    async def _on_vital(self, name: str, value: float, item: StoredItem, place: Placement) -> None:
        """Each sign waits and clears on its own; the bed's one alert clears when no sign that
        raised it is still out of range. A heart rate of 0 is no reading; a breathing rate of 0
        while the bed's sensor says someone is in it is a breathing pause."""
        if place.bed is None or (value == 0 and name == "heart_rate"):
            return
        settings = self.settings(place)
        limits = settings.heart_rate if name == "heart_rate" else settings.respiration_rate
        key = f"{place.bed}/{name}"
        raised = self._memory.vitals_raised
        if value != 0 and limits.min <= value <= limits.max:
            await self._timers.cancel("vitals", key)
            raised.discard(key)
            if not any(f"{place.bed}/{sign}" in raised for sign in VITALS):
                await self._alerts.condition_cleared("vital_signs", place.subject, item.sensed_at)
            return
        if key in raised:
            return  # already raised: a new wait starts once the rate has been back in range
        if not settings.vital_signs or self._place(place).in_bed is not True:
            return
        wait = settings.breathing_pause_s if value == 0 else limits.for_s
        due = item.sensed_at + wait
        pending = self._timers.pending("vitals", key)
        if pending is None or pending.due_at > due:
            payload = {**_timer_payload(place, item), "reading": name, "value": value}
            if value == 0:
                payload["pause"] = True
            started = pending.payload["sensed_at"] if pending is not None else item.sensed_at
            payload["sensed_at"] = started
            await self._timers.set("vitals", key, due, payload)

    async def _cancel_vitals(self, place: Placement, at: float) -> None:
        for name in VITALS:
            await self._timers.cancel("vitals", f"{place.bed}/{name}")

    # --- gateways and device health --------------------------------------------------------

    async def on_gateway_status(self, site: str, gateway: str, online: bool, at: float) -> None:
        state = self._gateway(site, gateway)
        state.online = online
        subject = f"gateway:{site}/{gateway}"
        if online:
            await self._heard_gateway(site, gateway, at)
            await self._alerts.condition_cleared("gateway_offline", subject, at)
        else:
            await self._raise_gateway_offline(site, gateway, at, "death message")

    async def on_hub_takeover(self, report: Takeovers) -> None:
        """The broker keeps dropping the hub's own session (hub/ingest/mqtt_link.py): someone else
        is probably connecting with its client id. One trouble alert per site, as every site's
        gateways lose the hub; a person resolves it."""
        detail = {
            "why": "the broker keeps dropping the hub's session",
            "drops": report.drops,
            "window_s": report.window_s,
            "client_id": report.client_id,
            "severity": "high",
        }
        for site in sorted(self._registry.sites):
            await self._alerts.trigger(
                Trigger(
                    rule="hub_takeover",
                    priority="trouble",
                    site=site,
                    subject=f"hub:{site}",
                    sensed_at=report.at,
                    received_at=self._clock.now(),
                    detail=detail,
                )
            )

    async def on_gateway_heard(self, site: str, gateway: str, at: float) -> None:
        await self._heard_gateway(site, gateway, at)

    async def on_device_health(self, place: Placement, online: bool, at: float) -> None:
        if online:
            await self._heard_device(place, at)
        else:
            await self._raise_device_offline(place, at, "reported offline by its gateway")

    async def _heard_device(self, place: Placement, at: float) -> None:
        window = _silence_window(place)
        await self._heard(
            "device_silent", place.device, self._memory.devices, place.device, at, window
        )
        await self._alerts.condition_cleared("device_offline", f"device:{place.device}", at)

    async def _heard_gateway(self, site: str, gateway: str, at: float) -> None:
        state = self._gateway(site, gateway)
        window = self._policy.settings(site, None, None).gateway_keepalive_s
        key = f"{site}/{gateway}"
        heard = {key: state.heard} if state.heard is not None else {}
        await self._heard("gateway_silent", key, heard, key, at, window)
        state.heard = heard[key]
        if not state.online:
            return
        await self._alerts.condition_cleared("gateway_offline", f"gateway:{key}", at)

    async def _heard(
        self, kind: str, key: str, memory: dict[str, _Heard], name: str, at: float, window: float
    ) -> None:
        heard = memory.get(name)
        due = at + window
        if heard is None or due - heard.written_due > window * SILENCE_WRITE_FRACTION:
            await self._timers.set(kind, key, due, {}, deferred=True)
            memory[name] = _Heard(at, due)
        else:
            heard.last = max(heard.last, at)

    # --- timers ----------------------------------------------------------------------------

    async def _bed_exit_due(self, timer: Timer) -> None:
        place = self._registry.placement(timer.payload["device"], timer.payload["sensed_at"])
        if place is None or self._place(place).in_bed:
            return
        await self._raise_from_timer(
            "bed_exit", "emergency", place, timer, {"out_of_bed_since": timer.payload["sensed_at"]}
        )

    async def _inactivity_due(self, timer: Timer) -> None:
        place = self._registry.placement(timer.payload["device"], timer.payload["sensed_at"])
        if place is None:
            return
        settings = self.settings(place)
        now = self._clock.now()
        if settings.is_night(now):
            # Sleep is not inactivity: count the hours again from the end of the night.
            morning = settings.night.next_end(settings.local(now)).timestamp()
            due = morning + settings.inactivity_hours * 3600
            await self._timers.set("inactivity", timer.key, due, timer.payload)
            return
        await self._raise_from_timer(
            "inactivity",
            "emergency",
            place,
            timer,
            {"no_activity_since": timer.payload["sensed_at"]},
        )

    async def _not_up_due(self, timer: Timer) -> None:
        place = self._registry.placement(timer.payload["device"])
        if place is None:
            return
        if self._place(place).in_bed:
            await self._raise_from_timer("not_up", "emergency", place, timer, {})
        await self._schedule_not_up(place, self._clock.now() + 60)

    async def _schedule_not_up(
        self, place: Placement, after: float, *, deferred: bool = False
    ) -> None:
        settings = self.settings(place)
        if settings.up_by is None or place.bed is None or _profile(place).in_bed is None:
            return
        local = settings.local(after)
        candidate = datetime.combine(local.date(), settings.up_by, local.tzinfo)
        if candidate <= local:
            candidate += timedelta(days=1)
        payload = {"device": place.device, "sensed_at": after}
        await self._timers.set(
            "not_up", place.bed, candidate.timestamp(), payload, deferred=deferred
        )

    async def _bathroom_due(self, timer: Timer) -> None:
        place = self._registry.placement(timer.payload["device"], timer.payload["sensed_at"])
        if place is None or self._place(place).present is False:
            return
        await self._raise_from_timer(
            "prolonged_stay", "routine", place, timer, {"in_room_since": timer.payload["sensed_at"]}
        )

    async def _vitals_due(self, timer: Timer) -> None:
        place = self._registry.placement(timer.payload["device"], timer.payload["sensed_at"])
        if place is None:
            return
        detail = {
            "reading": timer.payload["reading"],
            "value": timer.payload["value"],
            "out_of_range_since": timer.payload["sensed_at"],
            **({"pause": True} if timer.payload.get("pause") else {}),
        }
        self._memory.vitals_raised.add(timer.key)
        await self._raise_from_timer("vital_signs", "emergency", place, timer, detail)

    async def _device_silent_due(self, timer: Timer) -> None:
        place = self._registry.placement(timer.key)
        if place is None:
            return
        window = _silence_window(place)
        heard = self._memory.devices.get(place.device)
        now = self._clock.now()
        last = heard.last if heard is not None else self._started_at
        if now < last + window:
            await self._timers.set("device_silent", place.device, last + window, {})
            return
        if not self._gateway_online(place):
            # Its gateway's alert covers it for now; look again a window later.
            await self._timers.set("device_silent", place.device, now + window, {})
            return
        await self._raise_device_offline(
            place,
            last,
            "not heard within its supervision window",
            consumes=("device_silent", timer.key),
        )

    async def _gateway_silent_due(self, timer: Timer) -> None:
        site, _, gateway = timer.key.partition("/")
        state = self._gateway(site, gateway)
        window = self._policy.settings(site, None, None).gateway_keepalive_s
        last = state.heard.last if state.heard is not None else self._started_at
        if self._clock.now() < last + window:
            await self._timers.set("gateway_silent", timer.key, last + window, {})
            return
        await self._raise_gateway_offline(
            site,
            gateway,
            last,
            "silent past its keep-alive",
            consumes=("gateway_silent", timer.key),
        )

    async def _battery_reminder_due(self, timer: Timer) -> None:
        place = self._registry.placement(timer.key)
        level = self._memory.battery_low.get(timer.key)
        if place is None or level is None:
            return
        now = self._clock.now()
        await self._device_trouble("low_battery", place, now, {"battery": level, "reminder": True})
        remind = now + self.settings(place).low_battery_remind_h * 3600
        await self._timers.set("battery_reminder", timer.key, remind, {})

    # --- raising ---------------------------------------------------------------------------

    async def _trigger(self, trigger: Trigger) -> None:
        """Every alert goes out here; a walk test in its scope makes it a test alert."""
        gateway = trigger.gateway or (trigger.placement.gateway if trigger.placement else None)
        if not trigger.test and self._under_test(trigger.site, gateway):
            trigger = replace(trigger, test=True)
        await self._alerts.trigger(trigger)

    async def _raise(
        self,
        rule: str,
        priority: Priority,
        place: Placement,
        item: StoredItem,
        *,
        subject: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        await self._trigger(
            Trigger(
                rule=rule,
                priority=priority,
                site=place.site,
                subject=subject or place.subject,
                sensed_at=item.sensed_at,
                received_at=item.received_at,
                placement=place,
                historical=item.historical,
                test=self.settings(place).maintenance,
                detail={
                    "device": place.device,
                    item.kind: item.name,
                    "value": item.value,
                    **(detail or {}),
                },
            )
        )

    async def _raise_from_timer(
        self,
        rule: str,
        priority: Priority,
        place: Placement,
        timer: Timer,
        detail: dict[str, Any],
    ) -> None:
        now = self._clock.now()
        await self._trigger(
            Trigger(
                rule=rule,
                priority=priority,
                site=place.site,
                subject=place.subject,
                sensed_at=timer.due_at,
                received_at=now,
                placement=place,
                test=self.settings(place).maintenance,
                detail={"device": place.device, **detail},
                consumes=(timer.kind, timer.key),
            )
        )

    async def _raise_device_offline(
        self, place: Placement, since: float, why: str, consumes: tuple[str, str] | None = None
    ) -> None:
        if not self.settings(place).device_offline or not self._gateway_online(place):
            return  # one gateway alert, not thirty device alerts
        if self._alerts.is_active("device_offline", f"device:{place.device}"):
            return  # still offline: the gateway's next report is not a new event
        detail = {"why": why, "last_heard": since}
        await self._device_trouble("device_offline", place, since, detail, consumes)

    async def _device_trouble(
        self,
        rule: str,
        place: Placement,
        since: float,
        detail: dict[str, Any],
        consumes: tuple[str, str] | None = None,
    ) -> None:
        """A trouble alert about a device itself (not its resident): subject is the device."""
        await self._trigger(
            Trigger(
                rule=rule,
                priority="trouble",
                site=place.site,
                subject=f"device:{place.device}",
                sensed_at=since,
                received_at=self._clock.now(),
                placement=place,
                test=self.settings(place).maintenance,
                detail=detail,
                consumes=consumes,
            )
        )

    async def _raise_gateway_offline(
        self,
        site: str,
        gateway: str,
        since: float,
        why: str,
        consumes: tuple[str, str] | None = None,
    ) -> None:
        self._gateway(site, gateway).online = False
        now = self._clock.now()
        await self._trigger(
            Trigger(
                test=self._policy.settings(site, None, None).maintenance,
                rule="gateway_offline",
                priority="trouble",
                site=site,
                subject=f"gateway:{site}/{gateway}",
                sensed_at=since,
                received_at=now,
                gateway=gateway,
                detail={"why": why, "severity": "high"},
                consumes=consumes,
            )
        )

    # --- memory ----------------------------------------------------------------------------

    def _place(self, place: Placement) -> _PlaceState:
        return self._memory.places.setdefault(place.subject, _PlaceState())

    def _fitted_now(self) -> _Fitted:
        data = self._registry.data
        if self._fitted is None or self._fitted.data is not data:
            self._fitted = _Fitted.of(data)
        return self._fitted

    def _gateway(self, site: str, gateway: str) -> _GatewayState:
        return self._memory.gateways.setdefault((site, gateway), _GatewayState())

    def _gateway_online(self, place: Placement) -> bool:
        """Online and heard since the hub started: a gateway that never came up raises its own
        alert, not one per device."""
        state = self._gateway(place.site, place.gateway)
        return state.online and state.heard is not None


def _silence_window(place: Placement) -> float:
    """How long the hub waits before calling a device silent.

    The gateway supervises each device against its profile's window and reports a device
    offline at once; readings that only repeat are sent now and then, and the gateway's device
    report comes every few minutes. The hub's own check is the backstop for a gateway that
    stopped telling, so it never waits less than BACKSTOP_SILENCE_S.
    """
    return max(_profile(place).supervision_s, BACKSTOP_SILENCE_S)


def _profile(place: Placement) -> DeviceProfile:
    return load_profile(place.profile)


def _says_in_bed(place: Placement, reading: str) -> bool:
    """True if this reading of this device says whether someone is in its bed: occupancy, or
    the reading its profile names (the presence seen by a radar mounted over the bed)."""
    return place.bed is not None and (reading == "occupancy" or _profile(place).in_bed == reading)


def _subject_for(rule: str, place: Placement) -> str:
    return f"device:{place.device}" if rule == "tamper" else place.subject


def _timer_payload(place: Placement, item: StoredItem) -> dict[str, Any]:
    return {"device": place.device, "sensed_at": item.sensed_at}
