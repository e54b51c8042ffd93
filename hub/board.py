"""The bed board: one tile per bed with its state, its resident and when that state began.

A tile's state, first match wins:

- `alert`: an active alert about the bed that needs a person (not a test, not a trouble alert);
- `offline`: a bed sensor reported offline or silent, or its gateway offline;
- `empty`: nobody is bound to the bed;
- `in_bed` / `out_of_bed`: what the bed's sensor last said (`occupancy` from a pressure pad,
  else `presence` from a radar over the bed);
- `unknown`: no reading yet.

The edge repeats unchanged readings, so "since" is the time the value last changed, not the time
it was last heard. The board keeps that per device in memory, fed by the watch's item observers,
and seeds it at its first use from the readings of the last `SEED_WINDOW_S`.

Fifty consoles polling every 3 s must not cost the hub a computation of every bed per request
(benchmarks/console_stream.py). What the registry says of each bed is worked out once per
registry version; what the store says (alerts, offline devices and gateways) once per `REUSE_S`;
a zone's answer once per `REUSE_S` for every console that sees it, and then only the tiles of
beds whose inputs changed are worked out and encoded again. A tile is at most `REUSE_S` older
than the request.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar

from device_profiles import load_profile
from hub.alerts import ACTIVE_STATES
from hub.registry import Placement, Registry
from hub.registry_data import RegistryData
from hub.registry_models import Bed, Device, Resident, Room, Zone
from hub.store import Store, StoredItem

TileState = Literal["alert", "offline", "empty", "in_bed", "out_of_bed", "unknown"]
# A pressure pad says whether someone is in the bed; a radar over the bed says someone is there.
OCCUPANCY_READINGS: Final = ("occupancy", "presence")
SEED_WINDOW_S: Final = 2 * 86400.0
# Consoles poll the board every few seconds; one computation serves them all for this long.
REUSE_S: Final = 1.0
PlaceFilter = Callable[[str, str | None], bool]
PlaceKey = tuple[str, str]  # (site, zone)
K = TypeVar("K")
HideAlert = Callable[[dict[str, Any]], bool]

SEED_QUERY = """
WITH recent AS (
    SELECT device, name, value, sensed_at FROM readings
    WHERE name IN ('occupancy', 'presence') AND sensed_at >= ?
),
last AS (
    SELECT device, name, value, max(sensed_at) AS at FROM recent GROUP BY device, name
),
flip AS (
    SELECT l.device, l.name, l.value, l.at,
        (SELECT max(r.sensed_at) FROM recent r
         WHERE r.device = l.device AND r.name = l.name AND r.value != l.value) AS other_at
    FROM last l
)
SELECT f.device, f.name, f.value, f.at, f.other_at,
    (SELECT min(r.sensed_at) FROM recent r
     WHERE r.device = f.device AND r.name = f.name
       AND r.sensed_at > coalesce(f.other_at, -1)) AS changed_at
FROM flip f
"""


@dataclass
class _Seen:
    """A device's last occupancy value, when it changed to that value, and when last heard."""

    value: bool
    changed_at: float
    heard_at: float
    exact: bool = True


@dataclass(frozen=True, slots=True)
class _Live:
    """What the store says right now, read once per `REUSE_S` and indexed for the tiles."""

    # device, or (site, gateway) -> since when, for those reported offline
    offline_devices: dict[str, float]
    offline_gateways: dict[tuple[str, str], float]
    bed_alerts: dict[str, list[dict[str, Any]]]
    # device, or (site, gateway) -> when it was last heard, for active offline alerts
    silent_devices: dict[str, float]
    silent_gateways: dict[tuple[str, str], float]


@dataclass(frozen=True, slots=True)
class _BedPlace:
    """What the registry says of a bed: the same until the registry changes."""

    bed: Bed
    room: Room
    zone_name: str
    sensors: tuple[Device, ...]
    resident: Resident | None
    emptied_at: float | None  # when the last resident left, for an empty bed


@dataclass(frozen=True, slots=True)
class _Layout:
    data: RegistryData  # the registry version it was worked out from
    zones: dict[PlaceKey, list[_BedPlace]]  # in board order: site, zone name; room name, bed
    bed_of_sensor: dict[str, str]
    beds_of_gateway: dict[tuple[str, str], set[str]]


@dataclass(frozen=True, slots=True)
class ZoneTiles:
    """The tiles of one zone as worked out at `at`, already encoded for the board's answer."""

    site: str
    zone: str
    name: str
    at: float
    json_items: str  # the tiles as the items of a JSON array, without the brackets


class BedBoard:
    def __init__(self, store: Store, registry: Registry, hide_alert: HideAlert | None = None):
        self._store = store
        self._registry = registry
        self._hidden = hide_alert or (lambda alert: False)
        self._seen: dict[tuple[str, str], _Seen] = {}
        self._seeded = False
        self._seed_lock = asyncio.Lock()
        self._layout: _Layout | None = None
        self._live: tuple[float, _Live] | None = None
        self._live_lock = asyncio.Lock()
        self._zones: dict[PlaceKey, ZoneTiles] = {}
        self._tile_json: dict[str, str] = {}  # bed -> its tile, encoded, while still right
        self._latest: dict[tuple[str, str], tuple[str, float]] = {}  # (bed, reading) -> heard

    # --- change tracking ------------------------------------------------------------------

    async def observe(self, item: StoredItem, place: Placement) -> None:
        """A watch item observer: note occupancy readings of bed devices."""
        if (
            item.kind == "reading"
            and item.name in OCCUPANCY_READINGS
            and isinstance(item.value, bool)
            and place.bed is not None
        ):
            self.note(item.device, item.name, item.value, item.sensed_at, place.bed)

    def note(self, device: str, reading: str, value: bool, at: float, bed: str) -> None:
        seen = self._seen.get((device, reading))
        if seen is None:
            seen = self._seen[(device, reading)] = _Seen(value, at, at)
            changed = True
        elif at < seen.heard_at:
            return  # a replay older than what is known changes nothing now
        else:
            seen.heard_at = at
            changed = value != seen.value
            if changed:
                seen.value, seen.changed_at, seen.exact = value, at, True
        # The bed's tile shows the sensor heard last: it changes with that sensor's value, or
        # when another sensor is now the one heard last.
        latest = self._latest.get((bed, reading))
        if latest is not None and at < latest[1]:
            return
        self._latest[(bed, reading)] = (device, at)
        if changed or latest is None or latest[0] != device:
            self._tile_json.pop(bed, None)

    async def seed(self, now: float) -> None:
        """Last values and their change times from the stored readings, once."""
        async with self._seed_lock:
            if self._seeded:
                return
            async with self._store.db.execute(SEED_QUERY, (now - SEED_WINDOW_S,)) as cur:
                rows = await cur.fetchall()
            for row in rows:
                key = (str(row["device"]), str(row["name"]))
                value = json.loads(row["value"])
                if key in self._seen or not isinstance(value, bool):
                    continue  # heard live since the hub started: that is newer
                self._seen[key] = _Seen(
                    value,
                    float(row["changed_at"]),
                    float(row["at"]),
                    exact=row["other_at"] is not None,
                )
            self._seeded = True

    # --- tiles ----------------------------------------------------------------------------

    async def zones(self, now: float, visible: PlaceFilter) -> list[ZoneTiles]:
        """Every zone with beds the caller may see, ordered by site and zone name; its tiles
        ordered by room and bed."""
        layout = self._current_layout()
        places = [place for place in layout.zones if visible(*place)]
        if any(not self._zone_fresh(place, now) for place in places):
            read_at, live = await self._live_at(now, layout)
            for place in places:  # no await in here: a zone is computed once for all callers
                if not self._zone_fresh(place, now):
                    # As old as what the store said: it goes stale with it, not a second later.
                    self._zones[place] = self._zone(place, layout.zones[place], read_at, live)
        return [self._zones[place] for place in places]

    def _zone_fresh(self, place: PlaceKey, now: float) -> bool:
        zone = self._zones.get(place)
        return zone is not None and _fresh(zone.at, now)

    def _zone(self, place: PlaceKey, beds: list[_BedPlace], at: float, live: _Live) -> ZoneTiles:
        items = []
        for bed in beds:
            encoded = self._tile_json.get(bed.bed.code)
            if encoded is None:
                # The separators and ensure_ascii of FastAPI's own JSON answers.
                encoded = json.dumps(
                    self._tile(bed, live), ensure_ascii=False, separators=(",", ":")
                )
                self._tile_json[bed.bed.code] = encoded
            items.append(encoded)
        return ZoneTiles(place[0], place[1], beds[0].zone_name, at, ",".join(items))

    def _current_layout(self) -> _Layout:
        data = self._registry.data
        if self._layout is None or self._layout.data is not data:
            self._layout = _layout_of(data)
            self._zones.clear()
            self._tile_json.clear()
        return self._layout

    async def _live_at(self, now: float, layout: _Layout) -> tuple[float, _Live]:
        """What the store says, read less than REUSE_S before `now`, and when it was read."""
        async with self._live_lock:
            if self._live is None or not _fresh(self._live[0], now):
                await self.seed(now)
                live = await self._read_live()
                if self._live is not None:
                    self._forget_tiles(_beds_changed(self._live[1], live, layout))
                self._live = (now, live)
            return self._live

    def _forget_tiles(self, beds: Iterable[str]) -> None:
        for bed in beds:
            self._tile_json.pop(bed, None)

    async def _read_live(self) -> _Live:
        async with self._store.db.execute(
            "SELECT site, gateway, changed_at FROM gateway_status WHERE state = 'offline'"
        ) as cur:
            gateways = {
                (str(r["site"]), str(r["gateway"])): float(r["changed_at"])
                for r in await cur.fetchall()
            }
        active = await self._store.alerts(ACTIVE_STATES, None)
        bed_alerts: dict[str, list[dict[str, Any]]] = {}
        silent_devices: dict[str, float] = {}
        silent_gateways: dict[tuple[str, str], float] = {}
        for alert in active:
            if alert["test"] or self._hidden(alert):
                continue
            if alert["rule"] == "device_offline" and alert["device"] is not None:
                silent_devices[alert["device"]] = float(alert["sensed_at"])
            elif alert["rule"] == "gateway_offline" and alert["gateway"] is not None:
                silent_gateways[(alert["site"], alert["gateway"])] = float(alert["sensed_at"])
            elif alert["bed"] is not None and alert["priority"] != "trouble":
                bed_alerts.setdefault(alert["bed"], []).append(alert)
        offline = {
            device: float(health["last_seen"] or health["reported_at"])
            for device, health in (await self._store.device_health()).items()
            if not health["online"]
        }
        return _Live(offline, gateways, bed_alerts, silent_devices, silent_gateways)

    def _tile(self, place: _BedPlace, live: _Live) -> dict[str, Any]:
        bed, room, resident, sensors = place.bed, place.room, place.resident, place.sensors
        alerts = live.bed_alerts.get(bed.code, [])
        offline = _offline(bed.site, sensors, live)
        seen = self._occupancy(sensors)
        state: TileState
        since: float | None
        exact = True
        if alerts:
            state, since = "alert", min(a["opened_at"] for a in alerts)
        elif offline:
            state, since = "offline", min(at for _, at in offline)
        elif resident is None:
            state, since = "empty", place.emptied_at
        elif seen is None:
            state, since = "unknown", None
        else:
            state = "in_bed" if seen.value else "out_of_bed"
            since, exact = seen.changed_at, seen.exact
        return {
            "bed": bed.code,
            "label": bed.label,
            "site": bed.site,
            "zone": room.zone,
            "zone_name": place.zone_name,
            "room": room.id,
            "room_name": room.name,
            "state": state,
            # A time stored before the wire's bounds (Infinity) must not make the board not JSON.
            "since": since if since is None or math.isfinite(since) else None,
            "since_exact": exact,
            "in_bed": None if seen is None else seen.value,
            "resident_code": resident.code if resident else None,
            "resident_name": resident.name if resident else None,
            "alerts": [
                {"id": a["id"], "rule": a["rule"], "priority": a["priority"], "state": a["state"]}
                for a in sorted(alerts, key=lambda a: a["opened_at"])
            ],
            "offline": [why for why, _ in offline],
            "sensors": [d.id for d in sensors],
        }

    def _occupancy(self, sensors: Iterable[Device]) -> _Seen | None:
        """A pressure pad's word first, else the radar's; the latest heard of each kind."""
        for reading in OCCUPANCY_READINGS:
            heard = [s for d in sensors if (s := self._seen.get((d.id, reading))) is not None]
            if heard:
                return max(heard, key=lambda s: s.heard_at)
        return None


def _fresh(computed_at: float, now: float) -> bool:
    """Computed less than REUSE_S ago (either way: a clock may be set back)."""
    return abs(now - computed_at) < REUSE_S


def _layout_of(data: RegistryData) -> _Layout:
    by_bed: dict[str, list[Device]] = {}
    for device in data.all(Device):
        if device.bed is not None and _senses_occupancy(device.profile):
            by_bed.setdefault(device.bed, []).append(device)
    places: list[_BedPlace] = []
    for bed in data.all(Bed):
        room = data.find(Room, (bed.site, bed.room))
        if room is None:
            continue
        zone = data.find(Zone, (bed.site, room.zone))
        occupant = data.occupant(bed.code)
        history = data.bed_history.get(bed.code)
        places.append(
            _BedPlace(
                bed,
                room,
                zone.name if zone else room.zone,
                tuple(by_bed.get(bed.code, ())),
                data.find(Resident, (occupant.resident,)) if occupant else None,
                history[-1].end if history else None,
            )
        )
    places.sort(key=lambda p: (p.bed.site, p.zone_name, p.room.name, p.bed.code))
    layout = _Layout(data, {}, {}, {})
    for place in places:
        layout.zones.setdefault((place.bed.site, place.room.zone), []).append(place)
        for sensor in place.sensors:
            layout.bed_of_sensor[sensor.id] = place.bed.code
            gateway = (place.bed.site, sensor.gateway)
            layout.beds_of_gateway.setdefault(gateway, set()).add(place.bed.code)
    return layout


def _beds_changed(old: _Live, new: _Live, layout: _Layout) -> set[str]:
    """The beds whose tiles may differ between two readings of the store."""
    beds = _changed_keys(old.bed_alerts, new.bed_alerts)
    for devices in (
        _changed_keys(old.offline_devices, new.offline_devices),
        _changed_keys(old.silent_devices, new.silent_devices),
    ):
        beds.update(layout.bed_of_sensor[d] for d in devices if d in layout.bed_of_sensor)
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


def _senses_occupancy(profile: str) -> bool:
    return any(rule.reading in OCCUPANCY_READINGS for rule in load_profile(profile).rules)


def _offline(site: str, sensors: Iterable[Device], live: _Live) -> list[tuple[str, float]]:
    """Why the bed cannot be watched now, and since when: (reason, time) pairs."""
    reasons: dict[str, float] = {}
    for device in sensors:
        gateway = (site, device.gateway)
        if gateway in live.offline_gateways:
            reasons[f"gateway {device.gateway} offline"] = live.offline_gateways[gateway]
        elif gateway in live.silent_gateways:
            reasons[f"gateway {device.gateway} not heard"] = live.silent_gateways[gateway]
        if device.id in live.offline_devices:
            reasons[f"sensor {device.id} offline"] = live.offline_devices[device.id]
        elif device.id in live.silent_devices:
            reasons[f"sensor {device.id} not heard"] = live.silent_devices[device.id]
    return list(reasons.items())
