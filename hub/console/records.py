"""What the console reads of the record, and all its SQL: the handover's alerts, and a
resident's page (vital-sign buckets, events, alerts, what people did). The console owns no
table: it reads the telemetry (readings, events), the alerts and the audit log."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hub.alerts.records import ALERT_COLUMNS
from hub.core.store import Store


async def handover_alerts(
    store: Store, since: float, until: float, limit: int
) -> list[dict[str, Any]]:
    """Alerts opened, acknowledged or resolved in [since, until), and every alert still open,
    newest first."""
    async with store.db.execute(
        f"SELECT {ALERT_COLUMNS} FROM alerts WHERE state != 'resolved' "
        "OR (opened_at >= ? AND opened_at < ?) "
        "OR (acknowledged_at >= ? AND acknowledged_at < ?) "
        "OR (resolved_at >= ? AND resolved_at < ?) ORDER BY opened_at DESC, id DESC LIMIT ?",
        (since, until, since, until, since, until, limit),
    ) as cur:
        return [dict(row) for row in await cur.fetchall()]


async def events_of(
    store: Store, devices: Sequence[str], since: float, until: float, limit: int
) -> list[dict[str, Any]]:
    """The devices' events in [since, until), newest first."""
    marks = ", ".join("?" for _ in devices)
    async with store.db.execute(
        f"SELECT device, name, value, sensed_at FROM events WHERE device IN ({marks}) "
        "AND sensed_at >= ? AND sensed_at < ? ORDER BY sensed_at DESC LIMIT ?",
        (*devices, since, until, limit),
    ) as cur:
        return [dict(row) for row in await cur.fetchall()]


async def resident_alerts(
    store: Store, code: str, start: float, end: float, limit: int
) -> list[dict[str, Any]]:
    """The resident's alerts (never a test) open at some time in [start, end), newest first."""
    async with store.db.execute(
        f"SELECT {ALERT_COLUMNS} FROM alerts WHERE resident_code = ? "
        "AND opened_at < ? AND (opened_at >= ? OR resolved_at IS NULL OR resolved_at >= ?) "
        "AND test = 0 ORDER BY opened_at DESC LIMIT ?",
        (code, end, start, start, limit),
    ) as cur:
        return [dict(row) for row in await cur.fetchall()]


async def actions(
    store: Store, alert_ids: Sequence[int], start: float, end: float
) -> list[dict[str, Any]]:
    """What was recorded about these alerts in [start, end), oldest first (detail as JSON)."""
    marks = ", ".join("?" for _ in alert_ids)
    async with store.db.execute(
        f"SELECT at, actor, action, alert_id, channel, detail FROM audit "
        f"WHERE alert_id IN ({marks}) AND at >= ? AND at < ? ORDER BY id",
        (*alert_ids, start, end),
    ) as cur:
        return [dict(row) for row in await cur.fetchall()]
