"""A resident's recent past for the console: a timeline, and vital signs and bed occupancy charted.

Both follow the resident, not the bed: the readings and events come from the devices of each bed
the resident was bound to, for the part of the window they were in it. The timeline also says
where the resident is now and the state of their bed: the bed's one truth (hub/watch/bed_state.py),
the same the bed board and the family app show; places in words as hub/registry/labels.py says them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from hub.access.records import people_names
from hub.console import records
from hub.core.store import Store
from hub.escalation.engine import RESULT_WORDS, target_words
from hub.registry.index import Registry
from hub.registry.labels import alert_place, bed_words, channel_words, device_name
from hub.registry.models import Bed, Binding, Device, Resident
from hub.telemetry.records import TelemetryRecords
from hub.telemetry.rollups import HOUR, MINUTE, NO_READING_WHEN_ZERO
from hub.watch.bed_state import OCCUPANCY_READINGS, BedStates

VITAL_READINGS: Final = ("heart_rate", "respiration_rate")
TIMELINE_LIMIT: Final = 500
# Alert actions the alert entry itself already says (opened) or that would flood (repeats).
QUIET_ACTIONS: Final = frozenset({"opened", "repeated"})
BINDING_WORDS: Final = {
    "config": ("In bed {bed}", "Left bed {bed}"),
    "admission": ("Admitted to bed {bed}", "Left bed {bed}"),
    "transfer": ("Moved to bed {bed}", "Moved out of bed {bed}"),
    "discharge": ("In bed {bed}", "Discharged from bed {bed}"),
}


@dataclass(frozen=True, slots=True)
class Stay:
    """A part of the window the resident spent bound to a bed, and that bed's devices."""

    bed: str
    start: float
    end: float
    devices: tuple[str, ...]


def stays(registry: Registry, code: str, start: float, end: float) -> list[Stay]:
    data = registry.data
    found = []
    for binding in data.resident_history.get(code, []):
        begin, finish = _overlap(binding, start, end)
        if begin < finish:
            devices = tuple(d.id for d in data.all(Device) if d.bed == binding.bed)
            found.append(Stay(binding.bed, begin, finish, devices))
    return found


def _overlap(binding: Binding, start: float, end: float) -> tuple[float, float]:
    return max(binding.start, start), min(binding.end if binding.end is not None else end, end)


def resident_view(registry: Registry, code: str) -> dict[str, Any]:
    data = registry.data
    person = data.find(Resident, (code,))
    current = data.current_binding(code)
    return {
        "code": code,
        "name": person.name if person else code,
        "bed": current.bed if current else None,
    }


async def resident_now(
    beds: BedStates, registry: Registry, code: str, now: float
) -> dict[str, Any]:
    """`resident_view` with where the resident is (`place`: `text`, `room`, `at_home`) and the
    state of their bed now (`state`, as the bed board's `bed_state` and the family app's)."""
    view = resident_view(registry, code)
    bed = registry.data.find(Bed, (view["bed"],)) if view["bed"] is not None else None
    words = bed_words(registry.data, bed) if bed is not None else None
    state = await beds.resident(code, now)
    return {
        **view,
        "place": {"text": words.text, "room": words.room, "at_home": words.at_home}
        if words is not None
        else None,
        "state": state.view(),
    }


async def chart(
    store: Store,
    registry: Registry,
    code: str,
    span: tuple[float, float],
    bucket_s: float,
) -> dict[str, Any]:
    """Mean heart and breathing rate and the share of readings saying "in bed", per bucket:
    from the rollups, and the raw readings they do not count yet."""
    start, end = span
    slots = int((end - start) // bucket_s) + (1 if (end - start) % bucket_s else 0)
    sums: dict[str, list[tuple[float, int]]] = {
        name: [(0.0, 0)] * slots for name in (*VITAL_READINGS, *OCCUPANCY_READINGS)
    }

    def add(name: str, at: float, total: float, n: int) -> None:
        slot = int((at - start) // bucket_s)
        if 0 <= slot < slots:
            old_total, old_n = sums[name][slot]
            sums[name][slot] = (old_total + total, old_n + n)

    telemetry = TelemetryRecords(store)
    names = (*VITAL_READINGS, *OCCUPANCY_READINGS)
    # Hour rollups where the buckets are whole hours, else minute rollups.
    resolution = HOUR if bucket_s % HOUR == 0 and start % HOUR == 0 else MINUTE
    visited = stays(registry, code, start, end)
    for stay in visited:
        if not stay.devices:
            continue
        rolled, fresh = await telemetry.chart_rows(
            stay.devices, names, resolution, stay.start, stay.end
        )
        for name, bucket, n, total in rolled:
            add(name, bucket, total, n)
        for name, at, value in fresh:
            if isinstance(value, bool | int | float) and not (
                name in NO_READING_WHEN_ZERO and value == 0
            ):
                add(name, at, float(value), 1)
    # The pressure pad's word if the resident's beds have one, else the radar's presence.
    source = next((n for n in OCCUPANCY_READINGS if any(c for _, c in sums[n])), "occupancy")
    points = [
        {
            "t": start + i * bucket_s,
            "heart_rate": _mean(sums["heart_rate"][i], 1),
            "respiration_rate": _mean(sums["respiration_rate"][i], 1),
            "occupancy": _mean(sums[source][i], 3),
        }
        for i in range(slots)
    ]
    return {
        "resident": resident_view(registry, code),
        "start": start,
        "end": end,
        "bucket_s": bucket_s,
        "occupancy_source": source,
        "stays": [{"bed": s.bed, "start": s.start, "end": s.end} for s in visited],
        "points": points,
    }


def _mean(total_count: tuple[float, int], digits: int) -> float | None:
    total, count = total_count
    return round(total / count, digits) if count else None


async def timeline(
    store: Store,
    beds: BedStates,
    registry: Registry,
    code: str,
    start: float,
    end: float,
    shown: Callable[[dict[str, Any]], bool],
) -> dict[str, Any]:
    """Bed changes, device events, alerts and what people did about them, newest first.

    `shown(alert)` says whether an alert belongs on the staff console (not a walk-test alert).
    `end` is now: the resident's `state` is their bed's at `end`.
    """
    entries = _binding_entries(registry, code, start, end)
    for stay in stays(registry, code, start, end):
        entries += await _event_entries(store, stay)
    alerts = [a for a in await _alerts_of(store, code, start, end) if shown(a)]
    for alert in alerts:
        place = alert_place(registry.data, alert)["headline"]
        entries.append({"at": alert["opened_at"], "kind": "alert", "alert": alert, "place": place})
    entries += await _action_entries(store, [a["id"] for a in alerts], start, end)
    entries.sort(key=lambda e: e["at"], reverse=True)
    await _in_words(store, registry, entries, {a["id"]: a for a in alerts})
    return {
        "resident": await resident_now(beds, registry, code, end),
        "start": start,
        "end": end,
        "entries": entries[:TIMELINE_LIMIT],
        "truncated": len(entries) > TIMELINE_LIMIT,
    }


def _binding_entries(
    registry: Registry, code: str, start: float, end: float
) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for binding in registry.data.resident_history.get(code, []):
        if start <= binding.start < end:
            entries.append(
                {
                    "at": binding.start,
                    "kind": "bed",
                    "action": binding.start_reason,
                    "bed": binding.bed,
                    "text": BINDING_WORDS[binding.start_reason][0].format(bed=binding.bed),
                }
            )
        if binding.end is not None and start <= binding.end < end:
            entries.append(
                {
                    "at": binding.end,
                    "kind": "bed",
                    "action": binding.end_reason,
                    "bed": binding.bed,
                    "text": BINDING_WORDS[binding.end_reason or "discharge"][1].format(
                        bed=binding.bed
                    ),
                }
            )
    return entries


async def _event_entries(store: Store, stay: Stay) -> list[dict[str, Any]]:
    if not stay.devices:
        return []
    rows = await records.events_of(store, stay.devices, stay.start, stay.end, TIMELINE_LIMIT)
    return [
        {
            "at": row["sensed_at"],
            "kind": "event",
            "event": row["name"],
            "value": json.loads(row["value"]),
            "device": row["device"],
            "bed": stay.bed,
        }
        for row in rows
    ]


async def _alerts_of(store: Store, code: str, start: float, end: float) -> list[dict[str, Any]]:
    return await records.resident_alerts(store, code, start, end, TIMELINE_LIMIT)


async def _action_entries(
    store: Store, alert_ids: list[int], start: float, end: float
) -> list[dict[str, Any]]:
    if not alert_ids:
        return []
    rows = await records.actions(store, alert_ids, start, end)
    return [
        {
            "at": row["at"],
            "kind": "action",
            "actor": row["actor"],
            "action": row["action"],
            "alert_id": row["alert_id"],
            "channel": row["channel"],
            "detail": json.loads(row["detail"]),
        }
        for row in rows
        if row["action"] not in QUIET_ACTIONS
    ]


async def _in_words(
    store: Store, registry: Registry, entries: list[dict[str, Any]], alerts: dict[int, Any]
) -> None:
    """Names where the record has codes: `actor_name` and `channel_name` of what people did,
    `recipient_name`, `target_name` and `result_name` of a notification, `targets_text` of an
    escalation step, `device_name` of a device's event ("fall radar in room 104")."""
    users = [e["actor"] for e in entries if e["kind"] == "action"]
    users += [
        e["detail"].get("recipient")
        for e in entries
        if e["kind"] == "action" and e["detail"].get("recipient_kind") == "user"
    ]
    names = await people_names(store, users)

    def name(user: str) -> str:
        return names.get(user, user)

    for entry in entries:
        if entry["kind"] == "event":
            entry["device_name"] = device_name(registry.data, entry["device"])
        if entry["kind"] != "action":
            continue
        detail, alert = entry["detail"], alerts.get(entry["alert_id"], {})
        entry["actor_name"] = "" if entry["actor"] == "system" else name(entry["actor"])
        entry["channel_name"] = channel_words(entry["channel"])
        if entry["action"] == "escalation_step":
            targets = detail.get("targets") or []
            entry["targets_text"] = [target_words(t, alert, name) for t in targets]
        elif entry["action"] == "notification":
            entry["recipient_name"] = _recipient_name(detail, name)
            entry["target_name"] = target_words(str(detail.get("target") or ""), alert, name)
            result = str(detail.get("result") or "")
            entry["result_name"] = RESULT_WORDS.get(result, result.replace("_", " "))


def _recipient_name(detail: dict[str, Any], name: Callable[[str], str]) -> str:
    recipient, kind = detail.get("recipient"), detail.get("recipient_kind")
    if not recipient:
        return ""
    if kind == "user":
        return name(str(recipient))
    return "every console at the site" if kind == "consoles" else str(recipient)
