"""Notifiers: how a notification reaches a person, and what came of the attempt.

The escalation engine decides who must be told; a notifier delivers on one channel. Every
attempt and its result is recorded by the engine. Channels: `console` (here), `push`
(hub/notify/push.py) and `apprise` (hub/notify/apprise_channel.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

# "consoles": every live console that shows the alert (the fallback when nobody was reached).
RecipientKind = Literal["user", "contact", "consoles"]


@dataclass(frozen=True, slots=True)
class Recipient:
    """A hub user (staff, charge nurse) or a resident's contact."""

    kind: RecipientKind
    id: str  # the username, or the contact's name
    name: str
    phone: str | None = None
    email: str | None = None
    user: str | None = None  # the hub account that reaches this person (push); a user's own name
    apprise: tuple[str, ...] = ()  # fallback channels (Apprise URLs) of a contact


@dataclass(frozen=True, slots=True)
class Notification:
    alert: dict[str, Any]
    recipient: Recipient
    step: int
    phase: str  # "escalate", "repeat", "realert", "help" or "fallback"
    target: str
    call: str | None = None  # the care service's number, for a family contact to call

    @property
    def text(self) -> str:
        alert = self.alert
        where = " · ".join(
            str(part)
            for part in (alert.get("resident_name"), alert.get("bed"), alert.get("zone_name"))
            if part
        )
        opening = "Reminder: still not resolved" if self.phase == "realert" else "Alert"
        return f"{opening}: {alert['rule'].replace('_', ' ')} ({alert['priority']}) {where}".strip()


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    delivered: bool
    detail: str = ""


class Notifier(Protocol):
    channel: str

    def accepts(self, recipient: Recipient) -> bool:
        """Whether this channel can reach `recipient` at all."""
        ...

    async def send(self, notification: Notification) -> DeliveryResult: ...


class LiveConsoles(Protocol):
    def watching(self, alert: dict[str, Any]) -> list[str]:
        """The signed-in users whose open consoles show `alert`."""
        ...


class ConsoleNotifier:
    """Staff see alerts on the live console; this records whether the person had one open.

    An attempt counts as delivered only when the recipient is signed in on a live console
    that shows the alert: a console left open by someone else does not tell this person.
    """

    channel = "console"

    def __init__(self, consoles: LiveConsoles) -> None:
        self._consoles = consoles

    def accepts(self, recipient: Recipient) -> bool:
        return recipient.kind in ("user", "consoles")

    async def send(self, notification: Notification) -> DeliveryResult:
        watching = self._consoles.watching(notification.alert)
        if notification.recipient.kind == "consoles":
            if not watching:
                return DeliveryResult(False, "no console that shows this alert is open")
            return DeliveryResult(True, f"on the consoles of {', '.join(watching)}")
        if notification.recipient.id not in watching:
            return DeliveryResult(False, "no console open")
        return DeliveryResult(True, "on their live console")
