"""What the family app reads of the record, and all its SQL. The family folder owns no table: it
reads the alerts (hub/alerts/records.py), the escalation's delivered notifications and the audit
log's answers to an alert."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hub.alerts.records import ALERT_COLUMNS
from hub.core.store import Store


class FamilyRecords:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def resident_alerts(self, code: str, since: float, limit: int) -> list[dict[str, Any]]:
        """The resident's alerts (never a test) opened since `since`, and any older ones still
        active, newest first (the alerts' `alerts_resident` index)."""
        async with self._store.db.execute(
            f"SELECT {ALERT_COLUMNS} FROM alerts WHERE resident_code = ? AND test = 0 "
            "AND (opened_at >= ? OR state != 'resolved') ORDER BY opened_at DESC, id DESC "
            "LIMIT ?",
            (code, since, limit),
        ) as cur:
            return [dict(row) for row in await cur.fetchall()]

    async def deliveries(self, alert_ids: Sequence[int]) -> list[dict[str, Any]]:
        """The notifications delivered to a user about these alerts, oldest first: alert_id,
        recipient_user, recipient, channel, at."""
        marks = ", ".join("?" for _ in alert_ids)
        async with self._store.db.execute(
            f"SELECT alert_id, recipient_user, recipient, channel, at FROM notifications "
            f"WHERE alert_id IN ({marks}) AND result = 'delivered' AND recipient_kind = 'user' "
            "ORDER BY id",
            tuple(alert_ids),
        ) as cur:
            return [dict(row) for row in await cur.fetchall()]

    async def answers(self, alert_ids: Sequence[int]) -> list[dict[str, Any]]:
        """Who asked for someone to be sent, saw it or is handling it, for these alerts, oldest
        first: alert_id, actor, action, at."""
        marks = ", ".join("?" for _ in alert_ids)
        async with self._store.db.execute(
            f"SELECT alert_id, actor, action, at FROM audit WHERE alert_id IN ({marks}) "
            "AND action IN ('help_requested', 'family_seen', 'family_handling') ORDER BY id",
            tuple(alert_ids),
        ) as cur:
            return [dict(row) for row in await cur.fetchall()]
