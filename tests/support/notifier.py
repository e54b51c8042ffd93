"""A notifier for the tests of the escalation: it keeps what it was asked to send and fails for
the recipients it is told to, so a test sees every attempt without a real channel."""

from __future__ import annotations

from dataclasses import dataclass, field

from hub.notify.base import DeliveryResult, Notification, Recipient, RecipientKind


@dataclass
class RecordingNotifier:
    """Keeps what it was asked to send; fails for the recipients in `fail_for`."""

    channel: str = "recording"
    kinds: tuple[RecipientKind, ...] = ("user", "contact")
    fail_for: set[str] = field(default_factory=set)
    sent: list[Notification] = field(default_factory=list)

    def accepts(self, recipient: Recipient) -> bool:
        return recipient.kind in self.kinds

    async def send(self, notification: Notification) -> DeliveryResult:
        self.sent.append(notification)
        if notification.recipient.id in self.fail_for:
            return DeliveryResult(False, "told to fail")
        return DeliveryResult(True, "recorded")

    def recipients(self) -> list[str]:
        return [n.recipient.id for n in self.sent]
