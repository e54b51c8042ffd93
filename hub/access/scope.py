"""What of the registry a caller's scope reaches: whether they may read a record, the refusal
for one they may not know of (worded as for a missing one), and the check that refuses a
registry change touching a place outside their scope (docs/access.md)."""

from __future__ import annotations

from typing import Any

from hub.access.permissions import Principal, resident_visible
from hub.registry.data import Change, RegistryData
from hub.registry.index import Registry
from hub.registry.models import (
    Bed,
    Binding,
    Device,
    Gateway,
    NotFound,
    RecordBase,
    Resident,
    Room,
    Site,
    Zone,
)
from hub.registry.service import ChangeCheck, RegistryService

# An empty registry answers an unknown key with the very words a real one uses.
_NOTHING = RegistryData()


def missing(kind: type[RecordBase], key: tuple[str, ...]) -> NotFound:
    """The refusal for a record that does not exist, or that the caller may not know of."""
    try:
        _NOTHING.get(kind, key)
    except NotFound as exc:
        return exc
    raise AssertionError("an empty registry holds nothing")


def place_of(data: RegistryData, record: RecordBase) -> tuple[str, str | None]:
    """(site, zone) of a record; zone None for what belongs to the whole site."""
    if isinstance(record, Zone):
        return record.site, record.id
    if isinstance(record, Room):
        return record.site, record.zone
    if isinstance(record, Bed):
        room = data.find(Room, (record.site, record.room))
        return record.site, room.zone if room is not None else None
    if isinstance(record, Device):
        if record.bed is not None:
            bed = data.find(Bed, (record.bed,))
            return place_of(data, bed) if bed is not None else (record.site, None)
        room = data.find(Room, (record.site, str(record.room)))
        return record.site, room.zone if room is not None else None
    if isinstance(record, Binding):
        bed = data.find(Bed, (record.bed,))
        return place_of(data, bed) if bed is not None else ("", None)
    site = getattr(record, "site", None) or getattr(record, "id", "")
    return str(site), None


def readable(caller: Principal, registry: Registry, record: RecordBase) -> bool:
    if isinstance(record, Resident):
        code = record.code
        return resident_visible(caller, registry, code) or resident_reachable(
            caller, registry.data, code
        )
    site, zone = place_of(registry.data, record)
    if isinstance(record, Site | Gateway):
        return caller.touches_site(site)
    return caller.sees_place(site, zone)


def resident_reachable(caller: Principal, data: RegistryData, code: str) -> bool:
    """Who may change a resident: those who see their bed now; for a resident in no bed, those
    who saw their last bed, and anyone who may change residents if they never had one."""
    if not caller.can("residents.write"):
        return False
    binding = data.current_binding(code)
    if binding is None:
        past = data.resident_history.get(code)
        if caller.all_sites or not past:
            return True
        binding = past[-1]
    place = bed_place_in(data, binding.bed)
    return place is not None and caller.sees_place(*place)


def bed_place_in(data: RegistryData, code: str) -> tuple[str, str] | None:
    bed = data.find(Bed, (code,))
    if bed is None:
        return None
    site, zone = place_of(data, bed)
    return (site, zone) if zone is not None else None


def scope_check(caller: Principal) -> ChangeCheck:
    """Refuse, as if it were missing, a change that touches a place outside the caller's scope:
    a record's place before the change and after it must both be in scope."""

    def check(before: RegistryData, after: RegistryData, changes: list[Change]) -> None:
        for change in changes:
            record = change.record
            if isinstance(record, Resident):
                continue  # the route checked the resident; a new one belongs to no place yet
            if isinstance(record, Site) and change.action == "created":
                if not caller.all_sites:
                    raise missing(Site, record.key)
                continue
            old = None if isinstance(record, Binding) else before.find(type(record), record.key)
            for data, version in ((before, old), (after, record)):
                if version is not None and not _writable(caller, data, version):
                    raise _out_of_scope(caller, data, version)

    return check


def _writable(caller: Principal, data: RegistryData, record: RecordBase) -> bool:
    site, zone = place_of(data, record)
    if isinstance(record, Site | Gateway):
        return caller.sees_site(site)
    return caller.sees_place(site, zone)


def _out_of_scope(caller: Principal, data: RegistryData, record: RecordBase) -> NotFound:
    """Worded as the registry words a change that names a missing place."""
    site, _ = place_of(data, record)
    if isinstance(record, Binding):
        return missing(Bed, (record.bed,))
    parent: tuple[type[RecordBase], tuple[str, ...]] = (Site, (site,))
    if caller.touches_site(site):
        if isinstance(record, Room):
            parent = (Zone, (site, record.zone))
        elif isinstance(record, Bed):
            parent = (Room, (site, record.room))
        elif isinstance(record, Device):
            parent = (Bed, (record.bed,)) if record.bed else (Room, (site, str(record.room)))
        elif isinstance(record, Zone):
            parent = (Zone, record.key)
    return NotFound(f"{record.ref}: {missing(*parent)}")


def seen_bed(data: RegistryData, caller: Principal, code: object) -> None:
    """A bed named in a request (bed codes are unique across sites) must be in scope before
    the registry's checks say where it is or who is in it."""
    if not isinstance(code, str):
        return
    place = bed_place_in(data, code)
    if place is not None and not caller.sees_place(*place):
        raise missing(Bed, (code,))


def shown_record(
    caller: Principal, service: RegistryService, record: RecordBase, history: bool
) -> dict[str, Any]:
    """A record as the caller may see it: who is in a bed only for those reading health data."""
    fields = service.describe(record, history=history)
    if caller.can("health.read"):
        return fields
    if isinstance(record, Bed):
        fields.pop("resident", None)
        fields.pop("history", None)
    elif isinstance(record, Device) and fields.get("placement"):
        fields["placement"].update(resident_code=None, resident_name=None)
    return fields
