"""One truth about a bed: where its resident is now, as the sensors say, and since when.

The console's bed board (hub/console/board.py), the family app (hub/family/view.py) and the resident
page
(hub/console/resident_history.py) all take a bed's state from here, from the same data at the same
moment, so that they agree.

A bed's state, first match wins:

- `device_trouble`: a sensor of the bed or of its room is offline (reported by its gateway, or
  not heard within its supervision window), has a low battery or was tampered with, or the
  gateway that carries one of them is offline; `activity` keeps what the sensors last said;
- `empty`: nobody is bound to the bed (the board's tiles; a family never follows an empty bed);
- `in_bed`: the bed's sensor says someone is in it;
- `up`: out of bed, or (with only a room sensor) someone in the room, for less than
  `AWAY_AFTER_S`;
- `away`: out of bed or out of the room for `AWAY_AFTER_S` or more, or not back in bed at night
  (an active bed-exit alert);
- `unknown`: no reading yet;
- `no_bed`: a resident who is not bound to a bed now (the family app and the resident page).

The bed's sensor is a device bound to the bed whose profile says which of its readings tells
that someone is in it (`in_bed`: a pressure pad's or a vital-signs radar's in-bed flag, the
presence seen by a radar mounted over the bed); the latest heard of them counts. Only a bed
without such a sensor falls back on the presence seen by a radar bound to it (a fall radar sees
the room around the bed). A room sensor is a device bound to the bed's
room that reports `presence`; it is used only when the bed has no sensor of its own.

An active alert about the bed that needs a person is not a state: the board paints the tile
red over the state, the family app lists the alert beside it. An alert about the bed's room (a
smoke detector or an exit door bound to the room, not to a bed) is kept apart, in
`room_alerts`: the board shows it on every bed tile of the room, the family app does not. A room
with devices of its own and no bed (a lounge, a corridor with an exit door) is a `RoomPlace` of
its zone, and its active alerts are given with the zone's states, for the board's room tiles.

"Since" is the time the value last *changed*, not the time it was last heard: the edge repeats
unchanged readings. That is kept per device in memory, fed by the watch's item observers
(`observe`), and seeded at first use from the readings of the last `SEED_WINDOW_S`; a value
unchanged for all that time has `since_exact` false ("for over 2 days").

One `BedStates` per hub, made by `Hub.start`, fed by the watch's item observers and handed to
the board, the family app and the resident page: what the store says (alerts, offline
devices and gateways) is read at most once per `REUSE_S`, each zone's states are worked out at
most once per `REUSE_S` for everyone who asks, and only the beds whose inputs changed are worked
out again. The board, the family app and the resident page asking within the same `REUSE_S`
get the very same answer; a state is at most `REUSE_S` older than the question.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar

from device_profiles import load_profile
from hub.alerts.lifecycle import ACTIVE_STATES
from hub.alerts.records import AlertRecords
from hub.core.store import Store, StoredItem
from hub.registry.data import RegistryData
from hub.registry.index import Placement, Registry
from hub.registry.labels import BedWords, bed_words, device_type, room_words
from hub.registry.labels import device_kind as device_kind  # walk tests' words come from here
from hub.registry.models import Bed, Device, Resident, Room, Zone
from hub.telemetry.records import TelemetryRecords

StateCode = Literal["in_bed", "up", "away", "device_trouble", "unknown", "empty", "no_bed"]
Activity = Literal["in_bed", "up", "away", "unknown"]
STATE_LABELS: Final[dict[str, str]] = {
    "in_bed": "In bed",
    "up": "Up",
    "away": "Away",
    "device_trouble": "Device trouble",
    "unknown": "No reading yet",
    "empty": "Empty",
    "no_bed": "Not in a monitored bed",
}
# A pressure pad says whether someone is in the bed; a radar bound to the bed says someone is there.
OCCUPANCY_READINGS: Final = ("occupancy", "presence")
AWAY_AFTER_S: Final = 30 * 60
SEED_WINDOW_S: Final = 2 * 86400.0
# Consoles poll the board every few seconds; one computation serves them all for this long.
REUSE_S: Final = 1.0
# The trouble alerts of a device, and how a relative says each.
DEVICE_TROUBLE: Final[dict[str, str]] = {
    "device_offline": "is not responding",
    "low_battery": "needs a new battery",
    "tamper": "has been tampered with",
}
STAFF_TROUBLE: Final[dict[str, str]] = {
    "device_offline": "not heard",
    "low_battery": "battery low",
    "tamper": "tampered with",
}
GATEWAY_WORDS: Final = "The gateway beside the bed has lost its connection"
PlaceKey = tuple[str, str]  # (site, zone)
PlaceFilter = Callable[[str, str | None], bool]
K = TypeVar("K")


@dataclass(slots=True)
class Seen:
    """A sensor's last value of a reading, since when it has had it, and when it was last heard.
    `exact` is false when the value has not changed within what the hub knows (the seed window)."""

    value: bool
    since: float
    last: float
    exact: bool = True


@dataclass(frozen=True, slots=True)
class Trouble:
    """Something that keeps a bed from being watched, or will soon."""

    words: str  # for anyone: "The call button needs a new battery"
    detail: str  # for staff, the device in their words: "call button battery low"
    since: float | None


@dataclass(frozen=True, slots=True)
class BedState:
    """A bed's state at one moment. `changes_at`: when it changes by time alone (up → away)."""

    code: StateCode
    since: float | None
    since_exact: bool = True
    activity: Activity = "unknown"
    in_bed: bool | None = None
    trouble: tuple[Trouble, ...] = ()
    alerts: tuple[dict[str, Any], ...] = ()  # active alerts about the bed that need a person
    changes_at: float | None = None
    room_alerts: tuple[dict[str, Any], ...] = ()  # the same about its room (smoke, exit door)

    @property
    def label(self) -> str:
        return STATE_LABELS[self.code]

    def view(self) -> dict[str, Any]:
        """The state as every page's API answers it (the family app's `state`, the board's
        `bed_state`, the resident page's `state`)."""
        return {
            "code": self.code,
            "label": self.label,
            "since": _finite(self.since),
            "since_exact": self.since_exact,
            "activity": self.activity,
            "activity_label": STATE_LABELS[self.activity],
            "in_bed": self.in_bed,
            "trouble": list(dict.fromkeys(t.words for t in self.trouble)),
        }


NO_BED: Final = BedState("no_bed", None)


def activity_from(
    in_bed: Seen | None, present: Seen | None, exit_alert: bool, now: float
) -> tuple[Activity, float | None]:
    """In bed, up or away, from the bed's sensor if there is one, else the room's."""
    seen = in_bed or present
    if exit_alert:
        return "away", in_bed.since if in_bed is not None and not in_bed.value else None
    if seen is None:
        return "unknown", None
    if seen.value:
        return ("in_bed" if in_bed is not None else "up"), seen.since
    return ("away" if now - seen.since >= AWAY_AFTER_S else "up"), seen.since


# --- what the registry says -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BedPlace:
    """What the registry says of a bed: the same until the registry changes."""

    bed: Bed
    room: Room
    words: BedWords
    sensors: tuple[tuple[Device, str], ...]  # bound to the bed, with the reading that says in bed
    near_bed: tuple[Device, ...]  # bound to the bed, reporting occupancy or presence
    room_sensors: tuple[Device, ...]  # bound to the bed's room, reporting presence
    devices: tuple[Device, ...]  # every device of the bed and of its room
    gateways: tuple[str, ...]  # the gateways that carry them
    resident: Resident | None
    emptied_at: float | None  # when the last resident left, for an empty bed

    @property
    def zone_key(self) -> PlaceKey:
        return (self.bed.site, self.room.zone)


@dataclass(frozen=True, slots=True)
class RoomPlace:
    """A room with devices of its own and no bed (a lounge, a corridor with an exit door)."""

    room: Room
    words: str  # "West lounge", "Room 110"
    zone: str  # the zone's name
    gateways: tuple[str, ...]  # the gateways that carry its devices

    @property
    def zone_key(self) -> PlaceKey:
        return (self.room.site, self.room.zone)


@dataclass(frozen=True, slots=True)
class Layout:
    data: RegistryData  # the registry version it was worked out from
    zones: dict[PlaceKey, list[BedPlace]]  # in board order: site, zone name; room name, bed
    beds: dict[str, BedPlace]
    beds_of_device: dict[str, tuple[str, ...]]
    beds_of_gateway: dict[tuple[str, str], set[str]]
    room_bound: set[str]  # devices bound to a room, not to a bed
    rooms: dict[PlaceKey, list[RoomPlace]] = field(default_factory=dict)  # rooms without beds
    beds_of_room: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    zone_names: dict[PlaceKey, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Live:
    """What the store says right now, read once per `REUSE_S` and indexed by device and bed."""

    offline_devices: dict[str, float]  # reported offline by their gateway, since
    offline_gateways: dict[tuple[str, str], float]  # death message, since
    silent_gateways: dict[tuple[str, str], float]  # active gateway_offline alert: last heard
    device_alerts: dict[str, dict[str, float]]  # device -> active trouble rule -> since
    bed_alerts: dict[str, list[dict[str, Any]]]  # active alerts that need a person, by bed
    room_alerts: dict[tuple[str, str], list[dict[str, Any]]]  # the same of rooms, not beds


@dataclass(frozen=True, slots=True)
class ZoneStates:
    """The states of one zone's beds as worked out at `at`, in board order."""

    site: str
    zone: str
    name: str
    at: float
    beds: tuple[tuple[BedPlace, BedState], ...]
    by_bed: dict[str, BedState] = field(default_factory=dict)
    # rooms without beds, each with its active alerts that need a person (oldest first)
    rooms: tuple[tuple[RoomPlace, tuple[dict[str, Any], ...]], ...] = ()


class BedStates:
    """The state of every bed of one hub (one per hub: every page asks the same one)."""

    def __init__(self, store: Store, registry: Registry) -> None:
        self._alerts = AlertRecords(store)
        self._telemetry = TelemetryRecords(store)
        self._registry = registry
        self._seen: dict[tuple[str, str], Seen] = {}
        self._seeded = False
        self._seed_lock = asyncio.Lock()
        self._layout: Layout | None = None
        self._live: tuple[float, _Live] | None = None
        self._live_lock = asyncio.Lock()
        self._states: dict[str, BedState] = {}  # bed -> its state, while still right
        self._zones: dict[PlaceKey, ZoneStates] = {}
        # (bed, room sensor?, reading) -> the device heard last, and when
        self._latest: dict[tuple[str, bool, str], tuple[str, float]] = {}

    # --- readings -------------------------------------------------------------------------

    async def observe(self, item: StoredItem, place: Placement) -> None:
        """A watch item observer: note the occupancy and presence readings."""
        if item.kind == "reading" and item.name in OCCUPANCY_READINGS:
            if isinstance(item.value, bool):
                self.note(item.device, item.name, item.value, item.sensed_at)

    def note(self, device: str, reading: str, value: bool, at: float) -> None:
        seen = self._seen.get((device, reading))
        if seen is None:
            self._seen[(device, reading)] = seen = Seen(value, at, at)
            changed = True
        elif at < seen.last:
            return  # a replay older than what is known changes nothing now
        else:
            seen.last = at
            changed = value != seen.value
            if changed:
                seen.value, seen.since, seen.exact = value, at, True
        layout = self._layout
        if layout is None or layout.data is not self._registry.data:
            return  # every state is worked out again with the new registry's layout
        room_sensor = device in layout.room_bound
        for bed in layout.beds_of_device.get(device, ()):
            # A bed follows the sensor heard last: it changes with that sensor's value, or
            # when another sensor is now the one heard last.
            key = (bed, room_sensor, reading)
            latest = self._latest.get(key)
            if latest is not None and at < latest[1]:
                continue
            self._latest[key] = (device, at)
            if changed or latest is None or latest[0] != device:
                self._states.pop(bed, None)

    async def seed(self, now: float) -> None:
        """Last values and their change times from the stored readings, once."""
        async with self._seed_lock:
            if self._seeded:
                return
            for row in await self._telemetry.presence_since(now - SEED_WINDOW_S):
                key = (str(row["device"]), str(row["name"]))
                value = json.loads(row["value"])
                if key in self._seen or not isinstance(value, bool):
                    continue  # heard live since the hub started: that is newer
                self._seen[key] = Seen(
                    value,
                    float(row["changed_at"]),
                    float(row["at"]),
                    exact=row["other_at"] is not None,
                )
            self._states.clear()
            self._seeded = True

    # --- states ---------------------------------------------------------------------------

    def layout(self) -> Layout:
        """What the registry says of every bed, worked out once per registry version."""
        data = self._registry.data
        if self._layout is None or self._layout.data is not data:
            self._layout = _layout_of(data)
            self._states.clear()
            self._zones.clear()
        return self._layout

    async def zones(self, now: float, visible: PlaceFilter) -> list[ZoneStates]:
        """Every zone with beds that `visible(site, zone)` admits, ordered by site and zone
        name; its beds ordered by room and bed."""
        layout = self.layout()
        places = [place for place in layout.zones if visible(*place)]
        if any(not self._zone_fresh(place, now) for place in places):
            read_at, live = await self._live_at(now, layout)
            layout = self.layout()  # the registry may have changed while the store was read
            places = [place for place in layout.zones if visible(*place)]
            for place in places:  # no await in here: a zone is worked out once for all
                if not self._zone_fresh(place, now):
                    # As old as what the store said: it goes stale with it, not a second later.
                    self._zones[place] = self._zone(place, layout, read_at, live)
        return [self._zones[place] for place in places]

    async def bed(self, code: str, now: float) -> BedState | None:
        """The bed's state, from the same answer its zone gives the board; None for no such bed."""
        place = self.layout().beds.get(code)
        if place is None:
            return None
        zones = await self.zones(now, lambda site, zone: (site, zone) == place.zone_key)
        return zones[0].by_bed.get(code) if zones else None

    async def resident(self, code: str, now: float) -> BedState:
        """The state of the resident's bed now; `no_bed` when they are not bound to one."""
        binding = self._registry.data.current_binding(code)
        found = await self.bed(binding.bed, now) if binding is not None else None
        return found or NO_BED

    def _zone_fresh(self, place: PlaceKey, now: float) -> bool:
        zone = self._zones.get(place)
        return zone is not None and abs(now - zone.at) < REUSE_S  # either way: clocks go back

    def _zone(self, key: PlaceKey, layout: Layout, at: float, live: _Live) -> ZoneStates:
        beds = layout.zones[key]
        states: list[tuple[BedPlace, BedState]] = []
        for place in beds:
            state = self._states.get(place.bed.code)
            if state is None or (state.changes_at is not None and at >= state.changes_at):
                state = self._states[place.bed.code] = self._state(place, live, at)
            states.append((place, state))
        name = layout.zone_names.get(key) or (beds[0].words.zone if beds else key[1])
        by_bed = {place.bed.code: state for place, state in states}
        rooms = tuple(
            (
                room,
                tuple(
                    sorted(live.room_alerts.get((room.room.site, room.room.id), ()), key=_opened)
                ),
            )
            for room in layout.rooms.get(key, ())
        )
        return ZoneStates(key[0], key[1], name, at, tuple(states), by_bed, rooms)

    def _state(self, place: BedPlace, live: _Live, now: float) -> BedState:
        in_bed = (
            self._latest_in_bed(place.sensors)
            if place.sensors
            else self._latest_seen(place.near_bed, OCCUPANCY_READINGS)
        )
        present = (
            None if in_bed is not None else self._latest_seen(place.room_sensors, ("presence",))
        )
        alerts = tuple(sorted(live.bed_alerts.get(place.bed.code, ()), key=_opened))
        room = (place.bed.site, place.room.id)
        room_alerts = tuple(sorted(live.room_alerts.get(room, ()), key=_opened))
        exit_alert = any(alert["rule"] == "bed_exit" for alert in alerts)
        activity, since = activity_from(in_bed, present, exit_alert, now)
        seen = in_bed or present
        exact = seen.exact if seen is not None and since == seen.since else True
        trouble = _trouble(place, live)
        facts: dict[str, Any] = {
            "activity": activity,
            "in_bed": None if in_bed is None else in_bed.value,
            "trouble": trouble,
            "alerts": alerts,
            "room_alerts": room_alerts,
        }
        if trouble:
            starts = [t.since for t in trouble if t.since is not None]
            return BedState("device_trouble", min(starts) if starts else None, **facts)
        if place.resident is None:
            return BedState("empty", place.emptied_at, **facts)
        changes_at = None
        if activity == "up" and seen is not None and not seen.value and since is not None:
            changes_at = since + AWAY_AFTER_S
        return BedState(activity, since, exact, changes_at=changes_at, **facts)

    def _latest_in_bed(self, sensors: Iterable[tuple[Device, str]]) -> Seen | None:
        heard = [s for d, reading in sensors if (s := self._seen.get((d.id, reading))) is not None]
        return max(heard, key=lambda s: s.last) if heard else None

    def _latest_seen(self, sensors: Iterable[Device], readings: Iterable[str]) -> Seen | None:
        """The latest heard sensor of the first reading any of them has said."""
        for reading in readings:
            heard = [s for d in sensors if (s := self._seen.get((d.id, reading))) is not None]
            if heard:
                return max(heard, key=lambda s: s.last)
        return None

    # --- the store ------------------------------------------------------------------------

    async def _live_at(self, now: float, layout: Layout) -> tuple[float, _Live]:
        """What the store says, read less than REUSE_S before `now`, and when it was read."""
        async with self._live_lock:
            if self._live is None or not abs(now - self._live[0]) < REUSE_S:
                await self.seed(now)
                live = await self._read_live()
                if self._live is not None:
                    for bed in _beds_changed(self._live[1], live, layout):
                        self._states.pop(bed, None)
                self._live = (now, live)
            return self._live

    async def _read_live(self) -> _Live:
        gateways = await self._telemetry.offline_gateways()
        bed_alerts: dict[str, list[dict[str, Any]]] = {}
        room_alerts: dict[tuple[str, str], list[dict[str, Any]]] = {}
        device_alerts: dict[str, dict[str, float]] = {}
        silent_gateways: dict[tuple[str, str], float] = {}
        for alert in await self._alerts.page(ACTIVE_STATES, None):
            if alert["test"]:
                continue  # walk tests and maintenance: not the state of anyone's bed
            if alert["rule"] in DEVICE_TROUBLE and alert["device"] is not None:
                rules = device_alerts.setdefault(alert["device"], {})
                rules[alert["rule"]] = float(alert["sensed_at"])
            elif alert["rule"] == "gateway_offline" and alert["gateway"] is not None:
                silent_gateways[(alert["site"], alert["gateway"])] = float(alert["sensed_at"])
            elif alert["priority"] == "trouble":
                continue
            elif alert["bed"] is not None:
                bed_alerts.setdefault(alert["bed"], []).append(alert)
            elif alert["room"] is not None:
                room_alerts.setdefault((alert["site"], alert["room"]), []).append(alert)
        offline = {
            device: float(health["last_seen"] or health["reported_at"])
            for device, health in (await self._telemetry.device_health()).items()
            if not health["online"]
        }
        return _Live(offline, gateways, silent_gateways, device_alerts, bed_alerts, room_alerts)


def _opened(alert: dict[str, Any]) -> float:
    return float(alert["opened_at"])


def _finite(at: float | None) -> float | None:
    """A time stored before the wire's bounds (Infinity) must not make an answer not JSON."""
    return at if at is None or math.isfinite(at) else None


def _trouble(place: BedPlace, live: _Live) -> tuple[Trouble, ...]:
    """Every sensor or gateway of the bed and its room that is not working now."""
    found: list[Trouble] = []
    for device in place.devices:
        rules = live.device_alerts.get(device.id, {})
        if not rules and device.id not in live.offline_devices:
            continue
        kind, staff = device_kind(device.profile), device_type(device.profile)
        if device.id in live.offline_devices:
            words = f"The {kind} {DEVICE_TROUBLE['device_offline']}"
            since = _finite(live.offline_devices[device.id])
            found.append(Trouble(words, f"{staff} offline", since))
        for rule, words in DEVICE_TROUBLE.items():
            if rule in rules and not (
                rule == "device_offline" and device.id in live.offline_devices
            ):
                detail = f"{staff} {STAFF_TROUBLE[rule]}"
                found.append(Trouble(f"The {kind} {words}", detail, _finite(rules[rule])))
    for gateway in place.gateways:
        key = (place.bed.site, gateway)
        if key in live.offline_gateways:
            since = _finite(live.offline_gateways[key])
            found.append(Trouble(GATEWAY_WORDS, "gateway offline", since))
        elif key in live.silent_gateways:
            since = _finite(live.silent_gateways[key])
            found.append(Trouble(GATEWAY_WORDS, "gateway not heard", since))
    return tuple(found)


def _layout_of(data: RegistryData) -> Layout:
    makes = _readings_of_profiles(data)
    bed_devices: dict[str, list[Device]] = {}
    room_devices: dict[tuple[str, str], list[Device]] = {}
    for device in data.all(Device):
        if device.bed is not None:
            bed_devices.setdefault(device.bed, []).append(device)
        elif device.room is not None:
            room_devices.setdefault((device.site, device.room), []).append(device)
    places: list[BedPlace] = []
    for bed in data.all(Bed):
        room = data.find(Room, (bed.site, bed.room))
        if room is None:
            continue
        own = bed_devices.get(bed.code, [])
        shared = room_devices.get((bed.site, bed.room), [])
        occupant = data.occupant(bed.code)
        history = data.bed_history.get(bed.code)
        places.append(
            BedPlace(
                bed,
                room,
                bed_words(data, bed),
                tuple((d, r) for d in own if (r := load_profile(d.profile).in_bed) is not None),
                tuple(d for d in own if makes[d.profile] & set(OCCUPANCY_READINGS)),
                tuple(d for d in shared if "presence" in makes[d.profile]),
                (*own, *shared),
                tuple(sorted({d.gateway for d in (*own, *shared)})),
                data.find(Resident, (occupant.resident,)) if occupant else None,
                history[-1].end if history else None,
            )
        )
    rooms = _bedless_rooms(data, room_devices, {(p.bed.site, p.room.id) for p in places})
    names = {key: p.words.zone for p in places for key in [p.zone_key]}
    names.update((room.zone_key, room.zone) for room in rooms)
    # In board order: site, zone name; a zone of rooms without beds among the others.
    order = sorted(names, key=lambda key: (key[0], names[key]))
    places.sort(key=lambda p: (p.bed.site, p.words.zone, p.room.name, p.bed.code))
    layout = Layout(
        data, {}, {}, {}, {}, {d.id for d in data.all(Device) if d.bed is None}, zone_names=names
    )
    for key in order:
        layout.zones[key] = []
    for bedless in rooms:
        layout.rooms.setdefault(bedless.zone_key, []).append(bedless)
    beds_of_room: dict[tuple[str, str], list[str]] = {}
    beds_of_device: dict[str, list[str]] = {}
    for place in places:
        layout.zones[place.zone_key].append(place)
        layout.beds[place.bed.code] = place
        beds_of_room.setdefault((place.bed.site, place.room.id), []).append(place.bed.code)
        for device in place.devices:
            beds_of_device.setdefault(device.id, []).append(place.bed.code)
            gateway = (place.bed.site, device.gateway)
            layout.beds_of_gateway.setdefault(gateway, set()).add(place.bed.code)
    layout.beds_of_device.update((d, tuple(beds)) for d, beds in beds_of_device.items())
    layout.beds_of_room.update((room, tuple(beds)) for room, beds in beds_of_room.items())
    return layout


def _bedless_rooms(
    data: RegistryData,
    room_devices: dict[tuple[str, str], list[Device]],
    with_beds: set[tuple[str, str]],
) -> list[RoomPlace]:
    """The rooms with devices of their own and no bed, in board order (room name)."""
    found: list[RoomPlace] = []
    for key, devices in room_devices.items():
        room = data.find(Room, key)
        if room is None or key in with_beds:
            continue
        zone = data.find(Zone, (room.site, room.zone))
        gateways = tuple(sorted({d.gateway for d in devices}))
        found.append(
            RoomPlace(room, room_words(room.name), zone.name if zone else room.zone, gateways)
        )
    return sorted(found, key=lambda r: (r.room.site, r.zone, r.room.name))


def _readings_of_profiles(data: RegistryData) -> dict[str, set[str]]:
    return {
        profile: {rule.reading for rule in load_profile(profile).rules if rule.reading}
        for profile in {device.profile for device in data.all(Device)}
    }


def _beds_changed(old: _Live, new: _Live, layout: Layout) -> set[str]:
    """The beds whose states may differ between two readings of the store."""
    beds = _changed_keys(old.bed_alerts, new.bed_alerts)
    for room in _changed_keys(old.room_alerts, new.room_alerts):
        beds.update(layout.beds_of_room.get(room, ()))
    for devices in (
        _changed_keys(old.offline_devices, new.offline_devices),
        _changed_keys(old.device_alerts, new.device_alerts),
    ):
        for device in devices:
            beds.update(layout.beds_of_device.get(device, ()))
    for gateways in (
        _changed_keys(old.offline_gateways, new.offline_gateways),
        _changed_keys(old.silent_gateways, new.silent_gateways),
    ):
        for gateway in gateways:
            beds.update(layout.beds_of_gateway.get(gateway, ()))
    return beds


def _changed_keys(old: Mapping[K, object], new: Mapping[K, object]) -> set[K]:
    if old == new:
        return set()
    return {key for key in old.keys() | new.keys() if old.get(key) != new.get(key)}
