"""The registry's data in memory, and every rule a change must pass before it is stored.

`RegistryData` is the one place that decides whether a change is allowed: the configuration
seed, the API, the CLI and the CSV import all go through its methods. Each method checks first
and changes nothing if it refuses, then returns the `Change`s to store.

Bindings are kept per bed and per resident in start order. A resident has at most one open
binding and a bed at most one; a new binding never starts before the last change of either.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, TypeVar

from device_profiles import ProfileError, load_profile
from hub.registry.models import (
    RECORD_KINDS,
    Bed,
    Binding,
    BindingReason,
    Conflict,
    Device,
    Gateway,
    NotFound,
    Record,
    RecordBase,
    RegistryError,
    Resident,
    Room,
    Site,
    SiteSpec,
    Zone,
    parse_record,
    record_fields,
)

Key = tuple[str, ...]
R = TypeVar("R", bound=RecordBase)

_MISSING: Final = {
    "site": "no site {0!r}",
    "zone": "site {0!r} has no zone {1!r}",
    "room": "site {0!r} has no room {1!r}",
    "bed": "no bed with code {0!r}",
    "resident": "no resident with elder code {0!r}",
    "gateway": "site {0!r} has no gateway {1!r}",
    "device": "no device {0!r}",
}


@dataclass(frozen=True, slots=True)
class Change:
    """One record to store: `created`, `updated`, or a binding `started` or `ended`."""

    action: str
    record: Record | Binding


def when(at: float) -> str:
    """A time as a person reads it, in the hub's local time zone."""
    return datetime.fromtimestamp(at).astimezone().strftime("%Y-%m-%d %H:%M:%S %z")


class RegistryData:
    def __init__(self) -> None:
        self.tables: dict[type[RecordBase], dict[Key, Any]] = {
            kind: {} for kind in RECORD_KINDS.values()
        }
        self.bed_history: dict[str, list[Binding]] = {}
        self.resident_history: dict[str, list[Binding]] = {}

    @classmethod
    def loaded(cls, records: Iterable[Record], bindings: Iterable[Binding]) -> RegistryData:
        """Data read back from the database, which only ever held checked changes."""
        data = cls()
        for record in records:
            data._put(record)
        for binding in sorted(bindings, key=lambda b: b.start):
            data.bed_history.setdefault(binding.bed, []).append(binding)
            data.resident_history.setdefault(binding.resident, []).append(binding)
        return data

    def copy(self) -> RegistryData:
        """A working copy to change; the original stays as it was if the change is refused."""
        new = RegistryData()
        new.tables = {kind: dict(table) for kind, table in self.tables.items()}
        new.bed_history = {code: list(h) for code, h in self.bed_history.items()}
        new.resident_history = {code: list(h) for code, h in self.resident_history.items()}
        return new

    # Queries.

    def is_empty(self) -> bool:
        return not self.tables[Site]

    def all(self, kind: type[R]) -> list[R]:
        return list(self.tables[kind].values())

    def find(self, kind: type[R], key: Key) -> R | None:
        found: R | None = self.tables[kind].get(key)
        return found

    def get(self, kind: type[R], key: Key) -> R:
        found = self.find(kind, key)
        if found is None:
            raise NotFound(_MISSING[kind.KIND].format(*key))
        return found

    def occupant(self, bed: str) -> Binding | None:
        """The open binding of a bed: who is in it now."""
        return _open(self.bed_history.get(bed))

    def current_binding(self, resident: str) -> Binding | None:
        """The open binding of a resident: which bed they are in now."""
        return _open(self.resident_history.get(resident))

    def zones_of_flagged(self, flag: str) -> dict[tuple[str, str], tuple[str, ...]]:
        """(site, zone) -> the codes of the residents now in a bed there flagged `flag`."""
        found: dict[tuple[str, str], list[str]] = {}
        for bed in self.all(Bed):
            binding = self.occupant(bed.code)
            resident = self.find(Resident, (binding.resident,)) if binding else None
            room = self.find(Room, (bed.site, bed.room))
            if resident is not None and room is not None and flag in resident.flags:
                found.setdefault((bed.site, room.zone), []).append(resident.code)
        return {zone: tuple(sorted(codes)) for zone, codes in found.items()}

    def devices_of_bed(self, bed: str) -> list[Device]:
        return [d for d in self.all(Device) if d.bed == bed]

    # Records.

    def create(self, record: Record) -> Change:
        existing = self.find(type(record), record.key)
        if existing is not None:
            raise Conflict(_already_exists(existing))
        self._check(record)
        self._put(record)
        return Change("created", record)

    def update(self, kind: type[R], key: Key, patch: dict[str, Any]) -> Change:
        old = self.get(kind, key)
        for name in kind.FIXED:
            if name in patch and patch[name] != getattr(old, name):
                raise RegistryError(f"{old.ref}: {name} cannot be changed")
        merged = {**record_fields(old), **patch}
        if kind is Device:
            _rebind(patch, merged)
        new: Record = parse_record(kind, merged)  # type: ignore[assignment]
        self._check(new)
        self._put(new)
        return Change("updated", new)

    def ensure(
        self, kind: type[Record], given: dict[str, Any], defaults: dict[str, Any] | None = None
    ) -> Change | None:
        """Create the record, or accept the existing one if the fields given agree with it."""
        record = parse_record(kind, {**(defaults or {}), **given})
        existing = self.find(kind, record.key)
        if existing is None:
            return self.create(record)
        for name in given:
            if getattr(existing, name) != getattr(record, name):
                raise RegistryError(
                    f"{existing.ref} exists with {name} {getattr(existing, name)!r}, "
                    f"not {getattr(record, name)!r}"
                )
        return None

    def _put(self, record: Record) -> None:
        self.tables[type(record)][record.key] = record

    def _check(self, record: Record) -> None:
        """The records it names must exist and agree with it."""
        try:
            self._check_references(record)
        except NotFound as exc:
            raise NotFound(f"{record.ref}: {exc}") from None

    def _check_references(self, record: Record) -> None:
        if isinstance(record, Site | Resident):
            return
        self.get(Site, (record.site,))
        if isinstance(record, Room):
            self.get(Zone, (record.site, record.zone))
        elif isinstance(record, Bed):
            self.get(Room, (record.site, record.room))
        elif isinstance(record, Device):
            self._check_device(record)

    def _check_device(self, device: Device) -> None:
        self.get(Gateway, (device.site, device.gateway))
        try:
            load_profile(device.profile)
        except ProfileError as exc:
            raise RegistryError(f"{device.ref}: {exc}") from None
        if device.room is not None:
            self.get(Room, (device.site, device.room))
            return
        bed = self.get(Bed, (str(device.bed),))
        if bed.site != device.site:
            raise RegistryError(
                f"{device.ref}: bed {bed.code} is in site {bed.site!r}, not {device.site!r}"
            )

    # Bindings.

    def admit(
        self, resident: str, bed: str, at: float, reason: BindingReason = "admission"
    ) -> list[Change]:
        person = self.get(Resident, (resident,))
        self.get(Bed, (bed,))
        current = self.current_binding(resident)
        if current is not None:
            raise Conflict(
                f"{_who(person)} is already in bed {current.bed} {_since(current)}; "
                "transfer or discharge them instead"
            )
        self._check_free(bed)
        self._check_order(resident, bed, at)
        return [self._start(resident, bed, at, reason)]

    def transfer(self, resident: str, bed: str, at: float) -> list[Change]:
        person = self.get(Resident, (resident,))
        self.get(Bed, (bed,))
        current = self._require_bound(person)
        if current.bed == bed:
            raise Conflict(f"{_who(person)} is already in bed {bed}")
        self._check_free(bed)
        self._check_order(resident, bed, at)
        return [self._end(current, at, "transfer"), self._start(resident, bed, at, "transfer")]

    def discharge(self, resident: str, at: float) -> list[Change]:
        person = self.get(Resident, (resident,))
        current = self._require_bound(person)
        self._check_order(resident, current.bed, at)
        return [self._end(current, at, "discharge")]

    def _require_bound(self, person: Resident) -> Binding:
        current = self.current_binding(person.code)
        if current is None:
            raise Conflict(f"{_who(person)} is not in any bed; admit them first")
        return current

    def _check_free(self, bed: str) -> None:
        occupant = self.occupant(bed)
        if occupant is not None:
            person = self.get(Resident, (occupant.resident,))
            raise Conflict(f"bed {bed} is occupied by {_who(person)} {_since(occupant)}")

    def _check_order(self, resident: str, bed: str, at: float) -> None:
        """A change may not go back before the last change of the resident or of the bed."""
        for what, history in (
            (f"resident {resident}", self.resident_history.get(resident)),
            (f"bed {bed}", self.bed_history.get(bed)),
        ):
            latest = _last_change(history)
            if latest is None:
                continue
            last, may_coincide = latest
            if at < last or (at == last and not may_coincide):
                raise RegistryError(
                    f"{when(at)} is not after the last change of {what} ({when(last)}); "
                    "bindings are recorded in time order"
                )

    def _start(self, resident: str, bed: str, at: float, reason: BindingReason) -> Change:
        binding = Binding(resident=resident, bed=bed, start=at, start_reason=reason)
        self.bed_history.setdefault(bed, []).append(binding)
        self.resident_history.setdefault(resident, []).append(binding)
        return Change("started", binding)

    def _end(self, binding: Binding, at: float, reason: BindingReason) -> Change:
        ended = binding.model_copy(update={"end": at, "end_reason": reason})
        self.bed_history[binding.bed][-1] = ended
        self.resident_history[binding.resident][-1] = ended
        return Change("ended", ended)


def data_from_specs(sites: list[SiteSpec]) -> RegistryData:
    """The registry described by the configuration's `sites:`, checked like any other change.

    A resident named under a bed is bound to it from time 0 (reason `config`): the admission
    time is not known, and an item sensed at any time must still name them.
    """
    data = RegistryData()
    for spec in sites:
        _seed_site(data, spec)
    return data


def _seed_site(data: RegistryData, spec: SiteSpec) -> None:
    data.create(Site(id=spec.id, name=spec.name, phone=spec.phone))
    for gateway in spec.gateways:
        data.create(Gateway(site=spec.id, id=gateway))
    for zone in spec.zones:
        data.create(Zone(site=spec.id, id=zone.id, name=zone.name, kind=zone.kind))
        for room in zone.rooms:
            data.create(
                Room(site=spec.id, id=room.id, zone=zone.id, name=room.name, kind=room.kind)
            )
            for bed in room.beds:
                data.create(Bed(code=bed.code, site=spec.id, room=room.id, label=bed.label))
                if bed.resident is not None:
                    data.create(bed.resident)
                    data.admit(bed.resident.code, bed.code, 0.0, reason="config")
    for device in spec.devices:
        data.create(parse_record(Device, {"site": spec.id, **device.model_dump()}))


def _open(history: list[Binding] | None) -> Binding | None:
    if history and history[-1].end is None:
        return history[-1]
    return None


def _last_change(history: list[Binding] | None) -> tuple[float, bool] | None:
    """The time of the last start or end, and whether a new binding may begin at that instant."""
    if not history:
        return None
    last = history[-1]
    return (last.start, False) if last.end is None else (last.end, True)


def _rebind(patch: dict[str, Any], merged: dict[str, Any]) -> None:
    """Moving a device to a bed unbinds it from its room, and the other way round."""
    if "bed" in patch and "room" not in patch:
        merged["room"] = None
    elif "room" in patch and "bed" not in patch:
        merged["bed"] = None


def _who(person: Resident) -> str:
    return f"{person.name} ({person.code})"


def _since(binding: Binding) -> str:
    if binding.start_reason == "config":
        return "since the hub's configuration"
    return f"since {when(binding.start)}"


def _already_exists(existing: Record) -> str:
    if isinstance(existing, Resident):
        return f"elder code {existing.code!r} is already used by {existing.name}"
    if isinstance(existing, Bed):
        where = f"site {existing.site}, room {existing.room}"
        return f"bed code {existing.code!r} is already used ({where})"
    return f"{existing.ref} already exists"
