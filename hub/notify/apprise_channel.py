"""Apprise: fallback channels of a resident's contacts (ntfy, Telegram, e-mail, SMS gateways).

A contact's `notify:` list holds up to five Apprise URLs (https://appriseit.com/services/), each
checked with Apprise itself when it is entered (hub/registry/contact_urls.py). The escalation
engine hands a contact to the `AppriseNotifier` (channel `apprise`) at the steps that allow that
channel; the notifier sends to each URL separately, so the attempt's detail says which services
accepted (`ntfy ok, mailto failed`), and the attempt counts as delivered when at least one did.

URLs carry secrets (tokens, passwords): they are never logged, written to an attempt or put in
a detail or an error message. A service is named by its scheme only.

A URL whose host is an internal address (loopback, private, link-local …) is refused when it is
saved (hub/registry/contact_urls.py) and again when it is used, and every connection a delivery
makes is checked while it is made (hub/core/outbound.py); Apprise is told not to follow redirects.
An administrator allows an internal host with `outbound.allowed_hosts`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import apprise

from hub.core.outbound import OutboundPolicy
from hub.notify.base import DeliveryResult, Notification, Recipient
from hub.registry.contact_urls import network_hosts, scheme_of, url_parts

log = logging.getLogger("carewatch.hub.notify.apprise")

CHANNEL: Final = "apprise"
CONNECT_TIMEOUT_S: Final = 4.0
READ_TIMEOUT_S: Final = 6.0
NOTIFY_TYPES: Final = {
    "emergency": apprise.NotifyType.FAILURE,
    "urgent": apprise.NotifyType.WARNING,
    "trouble": apprise.NotifyType.WARNING,
}
# Alerts that must wake someone: ntfy's highest priority ("max", also called "urgent").
WAKING: Final = frozenset({"emergency", "urgent"})
NTFY_SCHEMES: Final = frozenset({"ntfy", "ntfys"})

LocalTime = Callable[[dict[str, Any]], datetime]


class AppriseNotifier:
    """Delivers to a contact's Apprise URLs, one service at a time counted separately.

    `budget_s` bounds each service's try (Apprise blocks, so it runs in a worker thread); keep
    it under the engine's own limit so that every service gets its own result.
    """

    channel = CHANNEL

    def __init__(
        self,
        *,
        budget_s: float = 12.0,
        local_time: LocalTime | None = None,
        outbound: OutboundPolicy | None = None,
    ) -> None:
        self._budget_s = budget_s
        self._local_time = local_time or _utc_opening
        self._outbound = outbound or OutboundPolicy()

    def accepts(self, recipient: Recipient) -> bool:
        return bool(recipient.apprise)

    async def send(self, notification: Notification) -> DeliveryResult:
        urls = notification.recipient.apprise
        if not urls:
            return DeliveryResult(False, "no Apprise URL for this contact now")
        title, body = self.message(notification)
        priority = str(notification.alert.get("priority", ""))
        outcomes = await asyncio.gather(
            *(self._send_one(url, title, body, priority) for url in urls)
        )
        labels = _labels(urls)
        detail = ", ".join(
            f"{label} {outcome}" for label, outcome in zip(labels, outcomes, strict=True)
        )
        delivered = "ok" in outcomes
        log.log(
            logging.INFO if delivered else logging.WARNING,
            "Apprise for alert %s to %s: %s",
            notification.alert.get("id"),
            notification.recipient.id,
            detail,
            extra=_context(notification.alert),
        )
        return DeliveryResult(delivered, detail)

    def message(self, notification: Notification) -> tuple[str, str]:
        """The title and body: what happened, to whom, where and when."""
        alert = notification.alert
        who = alert.get("resident_name") or alert.get("bed") or alert.get("site")
        what = str(alert.get("rule", "alert")).replace("_", " ")
        title = f"{str(alert.get('priority', '')).upper()}: {what} · {who}"
        place = ", ".join(
            str(part)
            for part in (
                alert.get("bed"),
                alert.get("room_name") and f"room {alert['room_name']}",
                alert.get("zone_name"),
            )
            if part
        )
        opened = self._local_time(alert)
        lines = [
            notification.text,
            f"Resident: {alert['resident_name']}" if alert.get("resident_name") else "",
            f"Bed: {place}" if place else "",
            f"Since: {opened:%H:%M} on {opened:%d %b %Y} ({opened.tzname()})",
            f"Care service: {notification.call}" if notification.call else "",
        ]
        return title, "\n".join(line for line in lines if line)

    async def _send_one(self, url: str, title: str, body: str, priority: str) -> str:
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(_notify, url, title, body, priority, self._outbound),
                self._budget_s,
            )
        except TimeoutError:
            return "no answer"


def _notify(url: str, title: str, body: str, priority: str, outbound: OutboundPolicy) -> str:
    """One blocking delivery to one service (in a worker thread): `ok`, `failed`, or
    `refused (why)` when the service is, or leads to, an internal address."""
    service = apprise.Apprise.instantiate(_with_defaults(url, priority))
    if service is None:
        return "failed"
    hosts = network_hosts(service)
    for host in hosts:
        problem = outbound.host_problem(host)
        if problem is not None:
            return f"refused ({problem})"
    sender = apprise.Apprise()
    sender.add(service)
    with outbound.guard(hosts) as guard:
        accepted = sender.notify(
            body=body,
            title=title,
            notify_type=NOTIFY_TYPES.get(priority, apprise.NotifyType.INFO),
        )
    if accepted:
        return "ok"
    return f"refused (a connection to {guard.refused[0]})" if guard.refused else "failed"


def _with_defaults(url: str, priority: str) -> dict[str, Any] | str:
    """The URL's parts with our timeouts, no redirects, and ntfy's top priority for a waking
    alert, unless the URL sets them itself (a URL cannot ask for redirects)."""
    parts = url_parts(url)
    if parts is None:
        return url
    # A redirect could lead anywhere; the guard would stop it at an internal address, but a
    # service worth sending to answers where it is.
    parts["redirect"] = False
    given = {key.lower() for key in parts.get("qsd", {})}
    if "cto" not in given:
        parts["cto"] = CONNECT_TIMEOUT_S
    if "rto" not in given:
        parts["rto"] = READ_TIMEOUT_S
    if parts.get("schema") in NTFY_SCHEMES and priority in WAKING and "priority" not in given:
        parts["priority"] = "max"
    return parts


def _labels(urls: Sequence[str]) -> list[str]:
    """Each URL named by its scheme only; a scheme used twice gets its position (`json#2`)."""
    schemes = [scheme_of(url) for url in urls]
    return [
        f"{scheme}#{n}" if schemes.count(scheme) > 1 else scheme
        for n, scheme in enumerate(schemes, 1)
    ]


def _utc_opening(alert: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(float(alert.get("opened_at") or 0), UTC)


def _context(alert: dict[str, Any]) -> dict[str, Any]:
    return {"site": alert.get("site"), "bed": alert.get("bed"), "alert_id": alert.get("id")}
