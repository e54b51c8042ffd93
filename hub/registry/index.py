"""Who and what is where: the in-memory registry that ingest and the rules read on every item.

The registry lives in the hub's database (`hub.registry.records`) and is changed through
`hub.registry.service`; this module is the read side. `Registry.load` swaps in a new index built
from the data after each change, so `placement(device, at)` stays a dictionary lookup plus, for a
bed's device, a bisect over that bed's binding history.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, replace

from hub.registry.data import RegistryData, data_from_specs
from hub.registry.models import (
    Bed,
    BedSpec,
    Binding,
    Device,
    DeviceSpec,
    Gateway,
    RegistryError,
    Resident,
    ResidentSpec,
    Room,
    RoomSpec,
    Site,
    SiteSpec,
    Zone,
    ZoneSpec,
)

__all__ = [
    "BedCode",
    "BedSpec",
    "DeviceSpec",
    "Placement",
    "Registry",
    "RegistryError",
    "ResidentSpec",
    "RoomSpec",
    "SiteSpec",
    "ZoneSpec",
]

BedCode = str


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a device is and who it watches: what an alert must name."""

    site: str
    gateway: str
    device: str
    profile: str
    zone: str
    zone_name: str
    room: str
    room_name: str
    bed: str | None
    resident_code: str | None
    resident_name: str | None
    zone_kind: str = "care_home"
    room_kind: str = "bedroom"
    role: str | None = None

    @property
    def subject(self) -> str:
        """The subject of an alert raised by this device: its bed, or else its room."""
        return f"bed:{self.bed}" if self.bed is not None else f"room:{self.site}/{self.room}"


@dataclass(frozen=True, slots=True)
class _Timeline:
    """A device's placement for each binding of its bed, in start order, and when vacant."""

    starts: list[float]
    bindings: list[Binding]
    placements: list[Placement]
    vacant: Placement
    current: Placement

    def at(self, at: float) -> Placement:
        index = bisect.bisect_right(self.starts, at) - 1
        if index >= 0 and self.bindings[index].covers(at):
            return self.placements[index]
        return self.vacant


class RegistryIndex:
    """Everything `Registry` answers, precomputed from one version of the data."""

    def __init__(self, data: RegistryData) -> None:
        self.data = data
        self.gateways = frozenset((g.site, g.id) for g in data.all(Gateway))
        self.sites = {site.id: site for site in data.all(Site)}
        self.devices = {device.id: self._timeline(device) for device in data.all(Device)}

    def _timeline(self, device: Device) -> _Timeline:
        vacant = self._vacant(device)
        history = self.data.bed_history.get(device.bed, []) if device.bed is not None else []
        placements = [self._occupied(vacant, binding) for binding in history]
        occupant = self.data.occupant(device.bed) if device.bed is not None else None
        current = placements[-1] if occupant is not None else vacant
        return _Timeline([b.start for b in history], history, placements, vacant, current)

    def _vacant(self, device: Device) -> Placement:
        room_id = device.room
        if device.bed is not None:
            room_id = self.data.get(Bed, (device.bed,)).room
        room = self.data.get(Room, (device.site, str(room_id)))
        zone = self.data.get(Zone, (device.site, room.zone))
        return Placement(
            site=device.site,
            gateway=device.gateway,
            device=device.id,
            profile=device.profile,
            zone=zone.id,
            zone_name=zone.name,
            room=room.id,
            room_name=room.name,
            bed=device.bed,
            resident_code=None,
            resident_name=None,
            zone_kind=zone.kind,
            room_kind=room.kind,
            role=device.role,
        )

    def _occupied(self, vacant: Placement, binding: Binding) -> Placement:
        person = self.data.get(Resident, (binding.resident,))
        return replace(vacant, resident_code=person.code, resident_name=person.name)


class Registry:
    """The registry as ingest, rules and the API read it. Never changed in place: reloaded."""

    def __init__(self, data: RegistryData | None = None, organisation: str = "carewatch") -> None:
        self.organisation = organisation
        self._index = RegistryIndex(data or RegistryData())

    @classmethod
    def from_specs(cls, sites: list[SiteSpec], organisation: str = "carewatch") -> Registry:
        """A registry straight from configuration specs; raises RegistryError if they are wrong."""
        return cls(data_from_specs(sites), organisation)

    def load(self, data: RegistryData) -> None:
        self.install(RegistryIndex(data))

    def install(self, index: RegistryIndex) -> None:
        """Swap in a new index; readers see the old one or the new one, never a mix."""
        self._index = index

    @property
    def data(self) -> RegistryData:
        """The current data. Read it, never change it: changes go through a copy."""
        return self._index.data

    @property
    def sites(self) -> dict[str, Site]:
        return self._index.sites

    def has_gateway(self, site: str, gateway: str) -> bool:
        return (site, gateway) in self._index.gateways

    def gateways(self) -> Iterator[tuple[str, str]]:
        """Every registered gateway as (site, gateway)."""
        return iter(sorted(self._index.gateways))

    def placement(self, device: str, at: float | None = None) -> Placement | None:
        """Where the device is, naming the resident bound to its bed at `at` (default: now)."""
        timeline = self._index.devices.get(device)
        if timeline is None:
            return None
        return timeline.current if at is None else timeline.at(at)

    def devices(self) -> list[Placement]:
        return [timeline.current for timeline in self._index.devices.values()]

    def bed_count(self) -> int:
        return len(self._index.data.tables[Bed])
