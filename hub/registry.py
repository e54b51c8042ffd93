"""Who and what is where: sites, zones, rooms, beds with their codes, residents, gateways, devices.

Loaded from the hub's configuration for now; the registry API and binding history come later.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, model_validator

from device_profiles import ProfileError, load_profile
from edge.wire import Identifier

BedCode = str


class ResidentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)


class BedSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: BedCode = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    resident: ResidentSpec | None = None


class RoomSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Identifier
    name: str
    beds: list[BedSpec] = Field(default_factory=list)


class ZoneSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Identifier
    name: str
    kind: str = "care_home"
    rooms: list[RoomSpec] = Field(default_factory=list)


class DeviceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Identifier
    gateway: Identifier
    profile: str
    bed: BedCode | None = None
    room: Identifier | None = None

    @model_validator(mode="after")
    def _bound_once(self) -> DeviceSpec:
        if (self.bed is None) == (self.room is None):
            raise ValueError(f"device {self.id!r} must be bound to exactly one of a bed or a room")
        return self


class SiteSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Identifier
    name: str
    zones: list[ZoneSpec] = Field(default_factory=list)
    gateways: list[Identifier] = Field(default_factory=list)
    devices: list[DeviceSpec] = Field(default_factory=list)


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

    @property
    def subject(self) -> str:
        """The subject of an alert raised by this device: its bed, or else its room."""
        return f"bed:{self.bed}" if self.bed is not None else f"room:{self.site}/{self.room}"


class RegistryError(ValueError):
    pass


class Registry:
    def __init__(self, sites: list[SiteSpec]) -> None:
        self.sites = {site.id: site for site in sites}
        self._gateways: set[tuple[str, str]] = set()
        self._devices: dict[str, Placement] = {}
        self._bed_codes: set[str] = set()
        for site in sites:
            self._index_site(site)

    def _index_site(self, site: SiteSpec) -> None:
        rooms: dict[str, tuple[ZoneSpec, RoomSpec]] = {}
        beds: dict[str, tuple[ZoneSpec, RoomSpec, BedSpec]] = {}
        for zone in site.zones:
            for room in zone.rooms:
                if room.id in rooms:
                    raise RegistryError(f"site {site.id}: room {room.id!r} is listed twice")
                rooms[room.id] = (zone, room)
                for bed in room.beds:
                    if bed.code in self._bed_codes:
                        raise RegistryError(f"bed code {bed.code!r} is used twice")
                    self._bed_codes.add(bed.code)
                    beds[bed.code] = (zone, room, bed)
        for gateway in site.gateways:
            self._gateways.add((site.id, gateway))
        for device in site.devices:
            self._devices[device.id] = self._place(site, device, rooms, beds)

    def _place(
        self,
        site: SiteSpec,
        device: DeviceSpec,
        rooms: dict[str, tuple[ZoneSpec, RoomSpec]],
        beds: dict[str, tuple[ZoneSpec, RoomSpec, BedSpec]],
    ) -> Placement:
        if device.id in self._devices:
            raise RegistryError(f"device {device.id!r} is listed twice")
        try:
            load_profile(device.profile)
        except ProfileError as exc:
            raise RegistryError(f"device {device.id!r}: {exc}") from None
        if device.gateway not in site.gateways:
            raise RegistryError(
                f"device {device.id!r}: gateway {device.gateway!r} is not a gateway of site "
                f"{site.id!r}"
            )
        bed: BedSpec | None = None
        if device.bed is not None:
            if device.bed not in beds:
                raise RegistryError(f"device {device.id!r}: no bed with code {device.bed!r}")
            zone, room, bed = beds[device.bed]
        else:
            if device.room not in rooms:
                raise RegistryError(f"device {device.id!r}: no room {device.room!r}")
            zone, room = rooms[str(device.room)]
        resident = bed.resident if bed is not None else None
        return Placement(
            site=site.id,
            gateway=device.gateway,
            device=device.id,
            profile=device.profile,
            zone=zone.id,
            zone_name=zone.name,
            room=room.id,
            room_name=room.name,
            bed=bed.code if bed is not None else None,
            resident_code=resident.code if resident else None,
            resident_name=resident.name if resident else None,
        )

    def has_gateway(self, site: str, gateway: str) -> bool:
        return (site, gateway) in self._gateways

    def placement(self, device: str) -> Placement | None:
        return self._devices.get(device)

    def devices(self) -> list[Placement]:
        return list(self._devices.values())

    def bed_count(self) -> int:
        return len(self._bed_codes)
