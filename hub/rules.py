"""Instant rules: an item that is itself the emergency (a fall, a call, smoke) raises an alert.

A rule is data: which canonical reading or event triggers it and at what priority. A false value
(the radar's "fall cleared", the detector's "smoke gone") records that the condition cleared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from hub.alerts import AlertService, Priority, Trigger
from hub.registry import Placement
from hub.store import StoredItem


@dataclass(frozen=True, slots=True)
class InstantRule:
    rule: str
    priority: Priority


INSTANT_RULES: Final[dict[tuple[str, str], InstantRule]] = {
    ("event", "fall"): InstantRule("fall", "emergency"),
    ("event", "call_button"): InstantRule("call_button", "emergency"),
    ("reading", "smoke"): InstantRule("smoke", "emergency"),
}


class InstantRules:
    def __init__(self, alerts: AlertService) -> None:
        self._alerts = alerts

    async def evaluate(self, item: StoredItem, placement: Placement) -> None:
        rule = INSTANT_RULES.get((item.kind, item.name))
        if rule is None:
            return
        if item.value is False:
            await self._alerts.condition_cleared(rule.rule, placement, item.sensed_at)
            return
        detail: dict[str, object] = {item.kind: item.name}
        if item.value is not None:
            detail["value"] = item.value
        await self._alerts.trigger(
            Trigger(
                rule=rule.rule,
                priority=rule.priority,
                placement=placement,
                sensed_at=item.sensed_at,
                received_at=item.received_at,
                historical=item.historical,
                detail=detail,
            )
        )
