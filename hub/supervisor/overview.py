"""The supervisor view's data: figures, open and overdue alerts, device trouble, bed coverage.

Everything is read from the hub's record for a set of sites (None: every site), so a
site-scoped supervisor is answered about their own sites only (see `hub.supervisor.routes`).

- Figures: the response-time figures of `hub.escalation.figures` for the alerts opened in the
period:
  staff acknowledgements, family responses apart, and the alerts that reached nobody.
- Nobody reached: every alert of the period whose escalation reached nobody (any priority),
  with the reason, counted per site, zone and shift.
- Overdue: an open alert waiting longer than its limit to be acknowledged: 60 s for an
  emergency and 180 s for a routine alert (the telecare code of practice), or the escalation
  policy's first escalation step (its first step after 0 min) when that comes sooner; a trouble
  alert has only the policy's step. An acknowledged alert is overdue once it has gone longer
  than the policy's re-alert time without being resolved.
- Devices offline: reported offline by their gateway (device health), not heard within their
  supervision window (an active `device_offline` alert), or behind a gateway that is offline.
  Low battery: the latest battery level below the profile's `battery_low`, or an active
  `low_battery` alert.
- Beds by type: per site and zone kind, the beds watched by each kind of sensor (a device
  bound to the bed or to its room), and the beds nothing watches.

Said in words for the page (hub/registry/labels.py): a device by kind and place (`device_name`:
"fall radar in room 102") and model (`model`), a gateway with where it is (`where`), who
acknowledged by display name (`acknowledged_by_name`). The codes stay beside them for the CSV
exports.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Final

from device_profiles import DeviceProfile, ProfileError, load_profile
from hub.access.records import people_names
from hub.alerts.lifecycle import ACTIVE_STATES
from hub.alerts.records import AlertRecords
from hub.core.store import Store
from hub.escalation.figures import (
    DEFAULT_PRIORITIES,
    NOBODY_REACHED_COLUMNS,
    TARGETS,
    Figures,
    Timing,
    compute,
    load_nobody_reached,
    load_timings,
    nobody_reached_counts,
    write_csv,
)
from hub.escalation.policy import EscalationPolicies, Period, Policy
from hub.escalation.roster import Roster
from hub.registry.index import Registry
from hub.registry.labels import device_name, gateway_where
from hub.registry.models import Bed, Device, Room, Zone
from hub.telemetry.records import TelemetryRecords
from hub.watch.settings import WatchPolicy

ACK_LIMIT_S: Final[Mapping[str, float]] = {"emergency": 60.0, "routine": 180.0}
WATCH_TYPES: Final = ("fall_radar", "vital_signs_radar", "bed_sensor", "call_button")
ALERT_COLUMNS: Final = (
    "id",
    "rule",
    "priority",
    "state",
    "overdue",
    "site",
    "zone",
    "room_name",
    "bed",
    "resident_code",
    "resident_name",
    "device",
    "gateway",
    "opened_at",
    "acknowledged_at",
    "acknowledged_by",
    "deadline",
    "overdue_s",
    "nobody_reached_at",
)
DEVICE_COLUMNS: Final = (
    "device",
    "profile",
    "site",
    "gateway",
    "zone",
    "room_name",
    "bed",
    "offline",
    "offline_why",
    "low_battery",
    "battery",
    "battery_low",
    "last_seen",
)
FIGURE_COLUMNS: Final = tuple(f.name for f in fields(Figures))
EXPORTS: Final[Mapping[str, tuple[str, tuple[str, ...]]]] = {
    "figures": ("figures", FIGURE_COLUMNS),
    "alerts": ("alerts", ALERT_COLUMNS),
    "devices": ("devices", DEVICE_COLUMNS),
    "nobody_reached": ("nobody_reached_alerts", NOBODY_REACHED_COLUMNS),
}


@dataclass(frozen=True, slots=True)
class Sources:
    """What the view reads: the record, the registry, and the policies that set deadlines."""

    store: Store
    registry: Registry
    roster: Roster
    escalation: EscalationPolicies
    watch: WatchPolicy


def in_sites(site: str, sites: frozenset[str] | None) -> bool:
    return sites is None or site in sites


# --- figures -----------------------------------------------------------------------------


async def figures(
    sources: Sources, sites: frozenset[str] | None, since: float, until: float, now: float
) -> list[dict[str, Any]]:
    """Total, per site, per zone and per shift, over the alerts of `sites` opened in the period."""
    db, roster = sources.store.db, sources.roster
    timings: list[Timing] = []
    if sites is None:
        timings = await load_timings(db, roster, since, until, None, DEFAULT_PRIORITIES)
    else:
        for site in sorted(sites):
            timings += await load_timings(db, roster, since, until, site, DEFAULT_PRIORITIES)
        timings.sort(key=lambda t: t.opened_at)
    return [asdict(f) for f in compute(timings, now)]


async def nobody_reached(
    sources: Sources, sites: frozenset[str] | None, since: float, until: float
) -> list[dict[str, Any]]:
    """The alerts of `sites` opened in the period whose escalation reached nobody, oldest first."""
    db, roster = sources.store.db, sources.roster
    if sites is None:
        return await load_nobody_reached(db, roster, since, until)
    listed: list[dict[str, Any]] = []
    for site in sorted(sites):
        listed += await load_nobody_reached(db, roster, since, until, site)
    listed.sort(key=lambda row: (row["opened_at"], row["id"]))
    return listed


# --- open and overdue alerts ---------------------------------------------------------------


def first_escalation_s(policy: Policy) -> float | None:
    """When the policy first reaches beyond the first recipients, in seconds after opening."""
    later = [step.after_min for step in policy.steps if step.after_min > 0]
    return later[0] * 60 if later else None


def deadline(alert: Mapping[str, Any], policy: Policy) -> float | None:
    """When the alert becomes overdue in its present state; None if it never does."""
    if alert["state"] == "open":
        limits = [ACK_LIMIT_S.get(alert["priority"]), first_escalation_s(policy)]
        known = [limit for limit in limits if limit is not None]
        return float(alert["opened_at"]) + min(known) if known else None
    if alert["state"] == "acknowledged" and policy.realert_after_min is not None:
        return float(alert["acknowledged_at"]) + policy.realert_after_min * 60
    return None


def _zone_of(alert: Mapping[str, Any]) -> str | None:
    """The zone an alert about a whole zone (nobody covers it) names in its subject."""
    subject = str(alert.get("subject") or "")
    return subject.partition("/")[2] or None if subject.startswith("zone:") else None


def _policy(sources: Sources, alert: Mapping[str, Any]) -> Policy:
    settings = sources.watch.settings(alert["site"], alert["zone"], alert["resident_code"])
    period: Period = "night" if settings.is_night(alert["opened_at"]) else "day"
    return sources.escalation.policy(alert["site"], alert["resident_code"], period)


async def active_alerts(
    sources: Sources, sites: frozenset[str] | None, now: float
) -> list[dict[str, Any]]:
    """Open and acknowledged alerts (test alerts left out), overdue first, then oldest first."""
    listed = await AlertRecords(sources.store).page(ACTIVE_STATES, limit=None)
    rows: list[dict[str, Any]] = []
    for alert in listed:
        if alert["test"] or not in_sites(alert["site"], sites):
            continue
        due = deadline(alert, _policy(sources, alert))
        overdue_s = None if due is None or now <= due else now - due
        row: dict[str, Any] = {key: alert.get(key) for key in ALERT_COLUMNS}
        row.update(
            zone=alert.get("zone") or _zone_of(alert),
            zone_name=alert.get("zone_name"),
            deadline=due,
            overdue=overdue_s is not None,
            overdue_s=overdue_s,
        )
        rows.append(row)
    rows.sort(key=lambda row: (not row["overdue"], row["opened_at"], row["id"]))
    return rows


# --- devices ------------------------------------------------------------------------------


def _profile(name: str) -> DeviceProfile | None:
    try:
        return load_profile(name)
    except ProfileError:
        return None


async def _latest_batteries(telemetry: TelemetryRecords) -> dict[str, tuple[float, float]]:
    """Each device's last battery reading as (level, sensed_at)."""
    levels = {}
    for device, (level, sensed_at) in (await telemetry.latest("battery")).items():
        if isinstance(level, int | float) and not isinstance(level, bool):
            levels[device] = (float(level), sensed_at)
    return levels


async def _gateways_down(
    telemetry: TelemetryRecords, active: Iterable[Mapping[str, Any]]
) -> dict[str, float]:
    """Offline gateways ("site/gateway") and since when: a death message or an active alert."""
    down = {
        f"{site}/{gateway}": changed_at
        for (site, gateway), changed_at in (await telemetry.offline_gateways()).items()
    }
    for alert in active:
        if alert["rule"] == "gateway_offline" and not alert["test"]:
            key = str(alert["subject"]).removeprefix("gateway:")
            down.setdefault(key, float(alert["sensed_at"]))
    return down


def _battery(health: Mapping[str, Any] | None, reading: tuple[float, float] | None) -> float | None:
    """The newer of the gateway's health report and the device's own battery reading."""
    reported = None
    if health is not None and health.get("battery") is not None:
        reported = (float(health["battery"]), float(health["reported_at"]))
    candidates = [c for c in (reported, reading) if c is not None]
    return max(candidates, key=lambda c: c[1])[0] if candidates else None


async def devices(
    sources: Sources, sites: frozenset[str] | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """(devices in trouble, offline gateways, devices counted) for `sites`."""
    telemetry = TelemetryRecords(sources.store)
    listed = await AlertRecords(sources.store).page(ACTIVE_STATES, limit=None)
    active = [a for a in listed if not a["test"]]
    trouble = {(a["rule"], str(a["subject"])) for a in active}
    health = await telemetry.device_health()
    batteries = await _latest_batteries(telemetry)
    down = await _gateways_down(telemetry, active)
    rows = []
    counted = 0
    for place in sorted(sources.registry.devices(), key=lambda p: (p.site, p.device)):
        if not in_sites(place.site, sites):
            continue
        counted += 1
        report = health.get(place.device)
        profile = _profile(place.profile)
        threshold = profile.battery_low if profile is not None else None
        level = _battery(report, batteries.get(place.device))
        why = _offline_why(place.site, place.gateway, place.device, report, trouble, down)
        low = (level is not None and threshold is not None and level < threshold) or (
            "low_battery",
            f"device:{place.device}",
        ) in trouble
        if why is None and not low:
            continue
        rows.append(
            {
                "device": place.device,
                "device_name": device_name(sources.registry.data, place.device),
                "profile": place.profile,
                "model": profile.name if profile is not None else place.profile,
                "site": place.site,
                "gateway": place.gateway,
                "zone": place.zone,
                "zone_name": place.zone_name,
                "room_name": place.room_name,
                "bed": place.bed,
                "offline": why is not None,
                "offline_why": why,
                "low_battery": low,
                "battery": level,
                "battery_low": threshold,
                "last_seen": report.get("last_seen") if report else None,
            }
        )
    data = sources.registry.data
    gateways = [
        {
            "site": site,
            "gateway": gateway,
            "where": gateway_where(data, site, gateway),
            "since": since,
        }
        for key, since in sorted(down.items())
        for site, _, gateway in [key.partition("/")]
        if in_sites(site, sites)
    ]
    return rows, gateways, counted


def _offline_why(
    site: str,
    gateway: str,
    device: str,
    report: Mapping[str, Any] | None,
    trouble: set[tuple[str, str]],
    down: Mapping[str, float],
) -> str | None:
    if f"{site}/{gateway}" in down:
        return "gateway offline"
    if report is not None and not report["online"]:
        return "reported offline by its gateway"
    if ("device_offline", f"device:{device}") in trouble:
        return "not heard within its supervision window"
    return None


# --- beds ---------------------------------------------------------------------------------


def watch_types(profile: DeviceProfile | None) -> set[str]:
    """What a device of this profile watches a bed for."""
    if profile is None:
        return set()
    makes = {rule.reading or rule.event for rule in profile.rules}
    found = set()
    if "fall" in makes:
        found.add("fall_radar")
    if makes & {"heart_rate", "respiration_rate"}:
        found.add("vital_signs_radar")
    if "occupancy" in makes:
        found.add("bed_sensor")
    if "call_button" in makes:
        found.add("call_button")
    return found


def beds_by_type(registry: Registry, sites: frozenset[str] | None) -> list[dict[str, Any]]:
    """Per site and zone kind: beds, beds watched by at least one sensor, and by each type."""
    data = registry.data
    by_bed: dict[str, set[str]] = {}
    by_room: dict[tuple[str, str], set[str]] = {}
    for device in data.all(Device):
        kinds = watch_types(_profile(device.profile))
        if device.bed is not None:
            by_bed.setdefault(device.bed, set()).update(kinds)
        elif device.room is not None:
            by_room.setdefault((device.site, device.room), set()).update(kinds)
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for bed in data.all(Bed):
        if not in_sites(bed.site, sites):
            continue
        room = data.get(Room, (bed.site, bed.room))
        kind = data.get(Zone, (bed.site, room.zone)).kind
        row = groups.setdefault(
            (bed.site, kind),
            {"site": bed.site, "zone_kind": kind, "beds": 0, "monitored": 0}
            | dict.fromkeys(WATCH_TYPES, 0)
            | {"none": 0},
        )
        watched = by_bed.get(bed.code, set()) | by_room.get((bed.site, bed.room), set())
        row["beds"] += 1
        row["monitored"] += int(bool(watched))
        row["none"] += int(not watched)
        for name in watched:
            row[name] += 1
    return [groups[key] for key in sorted(groups)]


# --- the whole view -----------------------------------------------------------------------


async def overview(
    sources: Sources, sites: frozenset[str] | None, *, since: float, until: float, now: float
) -> dict[str, Any]:
    """The supervisor view as a JSON-ready document."""
    alerts = await active_alerts(sources, sites, now)
    trouble, gateways, counted = await devices(sources, sites)
    unreached = await nobody_reached(sources, sites, since, until)
    await _named(sources.store, [*alerts, *unreached])
    return {
        "generated_at": now,
        "since": since,
        "until": until,
        "sites": [
            {"id": site.id, "name": site.name}
            for site in sorted(sources.registry.sites.values(), key=lambda s: s.id)
            if in_sites(site.id, sites)
        ],
        "zones": [
            {"site": zone.site, "id": zone.id, "name": zone.name, "kind": zone.kind}
            for zone in sorted(sources.registry.data.all(Zone), key=lambda z: z.key)
            if in_sites(zone.site, sites)
        ],
        "priorities": list(DEFAULT_PRIORITIES),
        "targets": {f"ack_within_{limit}s": goal for limit, goal in TARGETS.items()},
        "figures": await figures(sources, sites, since, until, now),
        "nobody_reached_alerts": unreached,
        "nobody_reached_counts": nobody_reached_counts(unreached),
        "alerts": alerts,
        "alert_counts": {
            "open": sum(a["state"] == "open" for a in alerts),
            "acknowledged": sum(a["state"] == "acknowledged" for a in alerts),
            "overdue": sum(bool(a["overdue"]) for a in alerts),
            "nobody_reached": sum(a["nobody_reached_at"] is not None for a in alerts),
        },
        "devices": trouble,
        "device_counts": {
            "devices": counted,
            "offline": sum(bool(d["offline"]) for d in trouble),
            "low_battery": sum(bool(d["low_battery"]) for d in trouble),
        },
        "gateways_offline": gateways,
        "beds": beds_by_type(sources.registry, sites),
    }


async def _named(store: Store, alerts: list[dict[str, Any]]) -> None:
    """`acknowledged_by_name`: who acknowledged, by their display name ("" for nobody)."""
    names = await people_names(store, [a["acknowledged_by"] or "" for a in alerts])
    for alert in alerts:
        who = alert["acknowledged_by"]
        alert["acknowledged_by_name"] = names.get(who, "the hub") if who else ""


def to_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    out = io.StringIO()
    write_csv(rows, columns, out)
    return out.getvalue()
