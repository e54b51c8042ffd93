"""The bed board: one tile per bed with its state, its resident, its place in words, and when
that state began.

The state is the bed's one truth (hub/watch/bed_state.py), the same the family app and the resident
page show: `bed_state` in each tile, with its `code` also in the tile's `state` unless an active
alert about the bed that needs a person paints the tile red (`state` "alert"; the bed's state
stays in `bed_state`). Places are said as hub/registry/labels.py says them: `place` ("Room 101",
"Okafor home"), `at_home`, and for each gateway that carries a device of the bed or its room, where
that gateway is (`gateways`), from which the console names a gateway alert's place and the beds
it leaves unwatched.

Alerts on a tile: every active alert about the bed that needs a person, and those about its
room (a smoke detector or an exit door bound to the room, not a bed: `about` "room"), oldest
first, each with its `state` and the device that raised it in words (`device_name`). The tile's
`alert_state` is "open" while any of them is unanswered, "acknowledged" when all are, else "".
A room with devices of its own and no bed (a lounge, a corridor with an exit door) has a tile
of its own (`kind` "room", `bed` null) in its zone, among the beds by room name, so that smoke
in the lounge shows on the board where it is.

Fifty consoles polling every 3 s must not cost the hub a computation of every bed per request
(benchmarks/console_stream.py). The states are worked out once per `REUSE_S` per zone for every
caller (hub/watch/bed_state.py), and a tile is encoded again only when its bed's state changed. A
tile is at most `REUSE_S` older than the request.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from hub.registry.data import RegistryData
from hub.registry.labels import device_name, gateway_places
from hub.watch.bed_state import (
    REUSE_S,
    BedPlace,
    BedState,
    BedStates,
    Layout,
    PlaceKey,
    RoomPlace,
    ZoneStates,
)

__all__ = ["REUSE_S", "BedBoard", "ZoneTiles"]

PlaceFilter = Callable[[str, str | None], bool]
HideAlert = Callable[[dict[str, Any]], bool]


@dataclass(frozen=True, slots=True)
class ZoneTiles:
    """The tiles of one zone as worked out at `at`, already encoded for the board's answer."""

    site: str
    zone: str
    name: str
    at: float
    json_items: str  # the tiles as the items of a JSON array, without the brackets


class BedBoard:
    """`hide_alert`: alerts kept off the staff console (walk-test alerts), never a tile's alert."""

    def __init__(self, beds: BedStates, hide_alert: HideAlert | None = None):
        self._beds = beds
        self._hidden = hide_alert or (lambda alert: False)
        self._layout: Layout | None = None
        self._gateways: dict[tuple[str, str], str] = {}
        self._tiles: dict[str, tuple[BedState, str]] = {}  # bed -> the state it was encoded from
        self._zones: dict[PlaceKey, tuple[ZoneStates, ZoneTiles]] = {}

    @property
    def beds(self) -> BedStates:
        return self._beds

    async def zones(self, now: float, visible: PlaceFilter) -> list[ZoneTiles]:
        """Every zone with beds the caller may see, ordered by site and zone name; its tiles
        ordered by room and bed."""
        states = await self._beds.zones(now, visible)
        layout = self._beds.layout()
        if layout is not self._layout:
            self._layout = layout
            self._gateways = gateway_places(layout.data, layout.beds_of_gateway)
            self._tiles.clear()
            self._zones.clear()
        found = []
        for zone in states:
            key = (zone.site, zone.zone)
            cached = self._zones.get(key)
            if cached is None or cached[0] is not zone:
                cached = self._zones[key] = (zone, self._encode(zone))
            found.append(cached[1])
        return found

    def _encode(self, zone: ZoneStates) -> ZoneTiles:
        items: list[tuple[str, str]] = []
        tiles: list[tuple[str, str]] = []  # (room name, encoded): room tiles among the beds
        for room, alerts in zone.rooms:
            tiles.append((room.room.name, _json(self._room_tile(room, alerts))))
        for place, state in zone.beds:
            cached = self._tiles.get(place.bed.code)
            if cached is None or cached[0] is not state:
                cached = self._tiles[place.bed.code] = (state, _json(self._tile(place, state)))
            items.append((place.room.name, cached[1]))
        if tiles:  # a stable sort by room name keeps the beds in board order
            items = sorted([*items, *tiles], key=lambda item: item[0])
        return ZoneTiles(
            zone.site, zone.zone, zone.name, zone.at, ",".join(item for _, item in items)
        )

    def _tile(self, place: BedPlace, state: BedState) -> dict[str, Any]:
        bed, room, resident, words = place.bed, place.room, place.resident, place.words
        alerts = [
            *self._alerts(state.alerts, "bed"),
            *self._alerts(state.room_alerts, "room"),
        ]
        return {
            "kind": "bed",
            "bed": bed.code,
            "label": bed.label,
            "site": bed.site,
            "zone": room.zone,
            "zone_name": words.zone,
            "room": room.id,
            "room_name": room.name,
            "place": words.room,
            "at_home": words.at_home,
            "state": "alert" if alerts else state.code,
            "alert_state": _alert_state(alerts),
            "bed_state": state.view(),
            "resident_code": resident.code if resident else None,
            "resident_name": resident.name if resident else None,
            "alerts": alerts,
            "trouble_detail": [t.detail for t in state.trouble],
            "gateways": [
                {"id": gateway, "where": self._gateways.get((bed.site, gateway), gateway)}
                for gateway in place.gateways
            ],
            "sensors": [d.id for d, _ in place.sensors] or [d.id for d in place.near_bed],
        }

    def _alerts(self, alerts: Iterable[dict[str, Any]], about: str) -> list[dict[str, Any]]:
        data = self._data()
        return [
            {
                "id": a["id"],
                "rule": a["rule"],
                "priority": a["priority"],
                "state": a["state"],
                "about": about,
                "device_name": device_name(data, a["device"]) if a["device"] else "",
            }
            for a in alerts
            if not self._hidden(a)
        ]

    def _data(self) -> RegistryData:
        return self._beds.layout().data

    def _room_tile(self, room: RoomPlace, alerts: tuple[dict[str, Any], ...]) -> dict[str, Any]:
        """A room without beds: its place, and its alerts (an empty room tile says all quiet)."""
        shown = self._alerts(alerts, "room")
        site = room.room.site
        return {
            "kind": "room",
            "bed": None,
            "label": room.words,
            "site": site,
            "zone": room.room.zone,
            "zone_name": room.zone,
            "room": room.room.id,
            "room_name": room.room.name,
            "place": room.words,
            "at_home": False,
            "state": "alert" if shown else "room",
            "alert_state": _alert_state(shown),
            "alerts": shown,
            "gateways": [
                {"id": gateway, "where": self._gateways.get((site, gateway), gateway)}
                for gateway in room.gateways
            ],
        }


def _alert_state(alerts: list[dict[str, Any]]) -> str:
    """ "open" while any alert is unanswered, "acknowledged" when all are, "" for none."""
    if not alerts:
        return ""
    return "open" if any(a["state"] == "open" for a in alerts) else "acknowledged"


def _json(tile: dict[str, Any]) -> str:
    """The separators and ensure_ascii of FastAPI's own JSON answers."""
    return json.dumps(tile, ensure_ascii=False, separators=(",", ":"))
