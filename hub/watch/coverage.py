"""Which rules of the watch each bed's devices can drive, and a warning in plain words for every
rule switched on that they cannot (docs/rules-and-devices.md).

The answer follows what the watch (hub/watch/rules.py) does with each reading, per device profile:

- **fall**, **call button**: a device bound to the bed or to its room that makes the event;
- **smoke**: a smoke detector anywhere in the bed's zone (its room included);
- **bed exit** and **not up**: a device bound to the bed that says whether someone is in it
  (its profile's `in_bed` reading; for bed exit also any `occupancy` reading);
- **inactivity**: a device bound to the bed whose motion, presence or in-bed reading shows
  activity (devices bound to the room do not count);
- **vital signs**: a device bound to the bed that measures heart or breathing rate, and an
  in-bed sensor on the bed (the signs are judged only while someone is in bed);
- **breathing pauses**: a breathing rate from a profile that passes a rate of 0 on, plus the
  in-bed sensor;
- **door at night** (per zone): a door contact with role `exit_door` in the zone;
- **too long in the bathroom** (per room of kind `bathroom`): a presence device bound to it,
  or a motion sensor plus a door contact bound to it.

Fall, call button, smoke and bathroom stays are always on. The others follow the watch
settings of the bed's site, zone and resident; door at night those of the zone, or a resident
of the zone flagged `wander_risk`. The registry API (`GET /api/registry/coverage`, and each
bed's `warnings`), `carewatch registry check` and the walk test show the warnings.
"""

from __future__ import annotations

import functools
import weakref
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal

from device_profiles import DeviceProfile, load_profile
from hub.registry.data import RegistryData
from hub.registry.labels import bed_words, room_words, site_name
from hub.registry.models import Bed, Device, Room, Zone
from hub.registry.service import Visible
from hub.watch.settings import WatchPolicy, WatchSettings

BED_RULES: Final = (
    "fall",
    "call_button",
    "smoke",
    "bed_exit",
    "not_up",
    "inactivity",
    "vital_signs",
    "breathing_pause",
    "door_at_night",
)
State = Literal["driven", "off", "cannot"]

IN_BED_ADVICE: Final = (
    "fit a bed radar such as the MR60BHA1 or MR60BHA2 over the bed, or a pressure mat such as "
    "the Linptech PS1BB"
)
VITALS_ADVICE: Final = "fit a breathing and heart-rate radar such as the MR60BHA1 or MR60BHA2"
ACTIVITY_READINGS: Final = frozenset({"motion", "presence", "occupancy"})
VITALS: Final = frozenset({"heart_rate", "respiration_rate"})


@dataclass(frozen=True, slots=True)
class CoverageWarning:
    """A rule switched on that the devices fitted cannot drive. `bed` for a bed's rule, `room`
    for a bathroom's, neither for a zone's (door at night); `text` says it all to an installer."""

    rule: str
    site: str
    zone: str
    bed: str | None
    room: str | None
    place: str
    text: str


@dataclass(frozen=True, slots=True)
class BedCoverage:
    """Each rule of one bed: `driven` by its devices, switched `off`, or on but `cannot` be."""

    bed: str
    site: str
    zone: str
    place: str
    rules: dict[str, State]


@dataclass(frozen=True, slots=True)
class Coverage:
    beds: list[BedCoverage] = field(default_factory=list)
    warnings: list[CoverageWarning] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "beds": [asdict(bed) for bed in self.beds],
            "warnings": [asdict(warning) for warning in self.warnings],
        }


@functools.cache
def _makes(model: str) -> frozenset[str]:
    """The readings and events a profile makes."""
    profile = load_profile(model)
    return profile.readings | {rule.event for rule in profile.rules if rule.event is not None}


@dataclass(frozen=True, slots=True)
class _Fitted:
    device: Device
    profile: DeviceProfile

    def makes(self, *names: str) -> bool:
        return not _makes(self.device.profile).isdisjoint(names)

    @property
    def tells_in_bed(self) -> bool:
        """Says in or out of bed when bound to a bed (the watch's in-bed sensor)."""
        return self.profile.in_bed is not None or "occupancy" in self.profile.readings


class _Fleet:
    """The registry's devices by bed and by room (those bound to it), the zones with a smoke
    detector or an exit-door contact, and the zones with a resident at risk of wandering."""

    def __init__(self, data: RegistryData) -> None:
        self.data = data
        self.rooms = {(room.site, room.id): room for room in data.all(Room)}
        self.on_bed: dict[str, list[_Fitted]] = {}
        self.in_room: dict[tuple[str, str], list[_Fitted]] = {}
        self.smoke_zones: set[tuple[str, str]] = set()
        self.exit_door_zones: set[tuple[str, str]] = set()
        self.gateways: dict[tuple[str, str], set[str]] = {}  # (site, room) -> gateways
        for device in data.all(Device):
            fitted = _Fitted(device, load_profile(device.profile))
            room_id = device.room
            if device.bed is not None:
                self.on_bed.setdefault(device.bed, []).append(fitted)
                bed = data.find(Bed, (device.bed,))
                room_id = bed.room if bed is not None else None
            else:
                self.in_room.setdefault((device.site, str(room_id)), []).append(fitted)
            room = data.find(Room, (device.site, str(room_id))) if room_id else None
            if room is None:
                continue
            self.gateways.setdefault((room.site, room.id), set()).add(device.gateway)
            if fitted.makes("smoke"):
                self.smoke_zones.add((room.site, room.zone))
            if device.role == "exit_door" and fitted.makes("contact_open"):
                self.exit_door_zones.add((room.site, room.zone))
        self.wanderers = set(data.zones_of_flagged("wander_risk"))

    def on_gateway(self, room: Room, gateway: str, bed: str | None = None) -> bool:
        """Whether a device of this bed (or, without a bed, of this room) is on the gateway."""
        if bed is not None:
            return any(f.device.gateway == gateway for f in self.on_bed.get(bed, []))
        return gateway in self.gateways.get((room.site, room.id), set())


# The registry's data is never changed in place once in use (RegistryService changes a copy and
# swaps it in), so what is worked out from one version holds as long as that version lives.
_FLEETS: weakref.WeakKeyDictionary[RegistryData, _Fleet] = weakref.WeakKeyDictionary()


def _fleet(data: RegistryData) -> _Fleet:
    found = _FLEETS.get(data)
    if found is None:
        found = _FLEETS[data] = _Fleet(data)
    return found


def coverage(
    data: RegistryData,
    policy: WatchPolicy,
    *,
    site: str | None = None,
    zone: str | None = None,
    bed: str | None = None,
    gateway: str | None = None,
    visible: Visible | None = None,
) -> Coverage:
    """The rules of every bed in scope and the warnings of its beds, bathrooms and zones.

    Scope: the beds, bathrooms and zones of `site` (and `zone`); with `gateway`, only the beds
    and bathrooms with a device on it and their zones; with `bed`, that bed and its zone.
    `visible` leaves out places the caller does not see."""
    fleet = _fleet(data)
    rooms = fleet.rooms

    def wanted(site_id: str, zone_id: str) -> bool:
        return (
            site in (None, site_id)
            and zone in (None, zone_id)
            and (visible is None or visible(site_id, zone_id))
        )

    if bed is None:
        candidates = sorted(data.all(Bed), key=lambda b: (b.site, b.code))
    else:
        candidates = [found] if (found := data.find(Bed, (bed,))) is not None else []
    beds: list[tuple[Bed, Room]] = []
    for each in candidates:
        room = rooms.get((each.site, each.room))
        if (
            room is not None
            and wanted(room.site, room.zone)
            and (gateway is None or fleet.on_gateway(room, gateway, each.code))
        ):
            beds.append((each, room))
    bathrooms = [
        room
        for room in (sorted(rooms.values(), key=lambda r: r.key) if bed is None else [])
        if room.kind == "bathroom"
        and wanted(room.site, room.zone)
        and (gateway is None or fleet.on_gateway(room, gateway))
    ]
    zones = {(room.site, room.zone) for _, room in beds} | {(r.site, r.zone) for r in bathrooms}
    if bed is None and gateway is None:
        zones |= {(z.site, z.id) for z in data.all(Zone) if wanted(z.site, z.id)}
    result = Coverage()
    for site_id, zone_id in sorted(zones):
        result.warnings.extend(_zone_warnings(fleet, policy, site_id, zone_id))
    for each, room in beds:
        covered, warnings = _bed(fleet, policy, each, room)
        result.beds.append(covered)
        result.warnings.extend(warnings)
    for room in bathrooms:
        result.warnings.extend(_bathroom_warnings(fleet, policy, room))
    result.warnings.sort(key=lambda w: (w.site, w.zone))  # place by place: zone, beds, bathrooms
    return result


@dataclass(frozen=True, slots=True)
class PolicyCoverage:
    """`coverage` under one watch policy: how the registry answers rule coverage
    (`RuleCoverage`, hub/registry/service.py)."""

    policy: WatchPolicy

    def __call__(
        self,
        data: RegistryData,
        *,
        site: str | None = None,
        zone: str | None = None,
        bed: str | None = None,
        gateway: str | None = None,
        visible: Visible | None = None,
    ) -> Coverage:
        return coverage(
            data, self.policy, site=site, zone=zone, bed=bed, gateway=gateway, visible=visible
        )


# --- beds ---------------------------------------------------------------------------------


def _bed(
    fleet: _Fleet, policy: WatchPolicy, bed: Bed, room: Room
) -> tuple[BedCoverage, list[CoverageWarning]]:
    data = fleet.data
    binding = data.occupant(bed.code)
    settings = policy.settings(bed.site, room.zone, binding.resident if binding else None)
    own = fleet.on_bed.get(bed.code, [])
    near = own + fleet.in_room.get((bed.site, room.id), [])
    in_bed = any(f.tells_in_bed for f in own)
    vitals = any(f.makes(*VITALS) for f in own)
    pauses = any(
        f.makes("respiration_rate") and f.profile.reports_zero("respiration_rate") for f in own
    )
    door_on, _ = _door_on(fleet, policy, bed.site, room.zone)
    on = {
        "fall": True,
        "call_button": True,
        "smoke": True,
        "bed_exit": settings.bed_exit,
        "not_up": settings.up_by is not None,
        "inactivity": settings.inactivity,
        "vital_signs": settings.vital_signs,
        "breathing_pause": settings.vital_signs,
        "door_at_night": door_on,
    }
    can = {
        "fall": any(f.makes("fall") for f in near),
        "call_button": any(f.makes("call_button") for f in near),
        "smoke": (bed.site, room.zone) in fleet.smoke_zones,
        "bed_exit": in_bed,
        "not_up": any(f.profile.in_bed is not None for f in own),
        "inactivity": any(f.makes(*ACTIVITY_READINGS) for f in own),
        "vital_signs": vitals and in_bed,
        "breathing_pause": pauses and in_bed,
        "door_at_night": (bed.site, room.zone) in fleet.exit_door_zones,
    }
    states: dict[str, State] = {
        rule: ("off" if not on[rule] else "driven" if can[rule] else "cannot") for rule in BED_RULES
    }
    place = _bed_place(data, bed)
    warnings = []
    for rule in BED_RULES:
        # A zone's door rule is warned about once, for the zone; breathing pauses only where
        # the vital signs themselves can be judged.
        if states[rule] != "cannot" or rule == "door_at_night":
            continue
        if rule == "breathing_pause" and states["vital_signs"] == "cannot":
            continue
        text = f"{place}: {_bed_rule_words(rule, settings)}, but {_why_not(rule, own, vitals)}"
        warnings.append(CoverageWarning(rule, bed.site, room.zone, bed.code, None, place, text))
    return BedCoverage(bed.code, bed.site, room.zone, place, states), warnings


def _bed_place(data: RegistryData, bed: Bed) -> str:
    words = bed_words(data, bed)
    return f"Bed {bed.code} ({words.text if words.at_home else f'{words.room}, {words.zone}'})"


def _bed_rule_words(rule: str, settings: WatchSettings) -> str:
    if rule == "not_up" and settings.up_by is not None:
        return f"not up by {settings.up_by:%H:%M} is on"
    return {
        "fall": "fall detection is always on",
        "call_button": "the call button rule is always on",
        "smoke": "the smoke alarm is always on",
        "bed_exit": "bed exit without return is on",
        "inactivity": f"inactivity ({settings.inactivity_hours:g} hours without activity by day)"
        " is on",
        "vital_signs": "vital signs (heart and breathing rate) are on",
        "breathing_pause": "breathing pauses are watched (with the vital signs)",
    }[rule]


def _why_not(rule: str, own: list[_Fitted], vitals: bool) -> str:
    if rule == "fall":
        return (
            "no device on this bed or in its room detects falls (fit a fall radar such as the "
            "MR60FDA1 or MR60FDA2)"
        )
    if rule == "call_button":
        return (
            "there is no call button on this bed or in its room (fit one such as the Shelly "
            "BLU Button1)"
        )
    if rule == "smoke":
        return (
            "there is no smoke detector in its room or its zone (fit one such as a BTHome smoke "
            "detector or the Xiaomi JTYJGD03MI)"
        )
    if rule in ("bed_exit", "not_up") or (rule == "vital_signs" and vitals):
        lead = (
            "vital signs are judged only while the bed's sensor says someone is in bed, and "
            if rule == "vital_signs"
            else ""
        )
        return (
            f"{lead}no device on this bed can tell whether someone is in it ({_in_bed_advice(own)})"
        )
    if rule == "inactivity":
        return (
            "no device on this bed senses activity: motion, presence, or getting in and out of "
            "bed (devices bound to the room do not count; bind a radar to the bed, such as an "
            "MR60BHA2 over it or an MR60FDA2)"
        )
    if rule == "vital_signs":
        return (
            f"no device on this bed measures heart or breathing rate ({VITALS_ADVICE} over the bed)"
        )
    return (
        "no device on this bed reports a breathing rate of 0 while someone is in bed "
        f"({VITALS_ADVICE} over the bed)"
    )


def _in_bed_advice(own: list[_Fitted]) -> str:
    """What to fit; and why a presence the bed already has does not say "in bed"."""
    present = sorted({f.profile.name for f in own if f.makes("presence") and not f.tells_in_bed})
    if not present:
        return IN_BED_ADVICE
    names = " and ".join(f"the {name}" for name in present)
    return (
        f"the presence seen by {names} means someone in the room, not in the bed; {IN_BED_ADVICE}"
    )


# --- zones: door at night -------------------------------------------------------------------


def _door_on(fleet: _Fleet, policy: WatchPolicy, site: str, zone: str) -> tuple[bool, str]:
    """Whether the night-door rule is on for the zone, and why. The door's own settings apply
    (a door has no resident), or a resident of the zone flagged wander risk."""
    if policy.settings(site, zone, None).door_at_night:
        return True, "set for the zone"
    if (site, zone) in fleet.wanderers:
        return True, "a resident of the zone is flagged wander risk"
    return False, ""


def _zone_warnings(
    fleet: _Fleet, policy: WatchPolicy, site: str, zone_id: str
) -> list[CoverageWarning]:
    on, reason = _door_on(fleet, policy, site, zone_id)
    if not on or (site, zone_id) in fleet.exit_door_zones:
        return []
    found = fleet.data.find(Zone, (site, zone_id))
    place = f"{found.name if found else zone_id} ({site_name(fleet.data, site)})"
    text = (
        f"{place}: door at night is on ({reason}), but no exit door of the zone has a door "
        "contact with role exit_door (fit one such as the Shelly BLU Door/Window on each exit "
        "door and give it the role exit_door)"
    )
    return [CoverageWarning("door_at_night", site, zone_id, None, None, place, text)]


# --- bathrooms: too long in the bathroom ---------------------------------------------------


def _bathroom_warnings(fleet: _Fleet, policy: WatchPolicy, room: Room) -> list[CoverageWarning]:
    """A stay starts at presence or motion and ends at presence false or the door opening; a
    motion sensor's "no motion" ends it only where nothing better can tell (contract item 4),
    and a still person makes no motion: motion alone cannot drive the rule."""
    fitted = fleet.in_room.get((room.site, room.id), [])
    if any(f.makes("presence") for f in fitted):
        return []
    motion = any(f.makes("motion") for f in fitted)
    if motion and any(f.makes("contact_open") for f in fitted):
        return []
    found = fleet.data.find(Zone, (room.site, room.zone))
    place = f"{room_words(room.name)} (bathroom, {found.name if found else room.zone})"
    limit = policy.settings(room.site, room.zone, None).bathroom_max_min
    if motion:
        why = (
            "a motion sensor alone cannot tell a still person from an empty room (add a door "
            "contact such as the Shelly BLU Door/Window on the bathroom door, or fit a presence "
            "radar such as the HLK-LD2410)"
        )
    else:
        why = (
            "no device bound to it senses someone there (fit a presence radar such as the "
            "HLK-LD2410, or a motion sensor such as the Shelly BLU Motion together with a door "
            "contact on the bathroom door)"
        )
    text = f"{place}: too long in the bathroom ({limit:g} min) is always on, but {why}"
    return [CoverageWarning("prolonged_stay", room.site, room.zone, None, room.id, place, text)]
