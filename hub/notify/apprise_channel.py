"""Apprise: fallback channels of a resident's contacts (ntfy, Telegram, e-mail, SMS gateways).

A contact's `notify:` list holds up to five Apprise URLs (https://appriseit.com/services/), each
checked with Apprise itself when it is entered. The escalation engine hands a contact to the
`AppriseNotifier` (channel `apprise`) at the steps that allow that channel; the notifier sends
to each URL separately, so the attempt's detail says which services accepted
(`ntfy ok, mailto failed`), and the attempt counts as delivered when at least one did.

URLs carry secrets (tokens, passwords): they are never logged, written to an attempt or put in
a detail or an error message. A service is named by its scheme only.

A URL whose host is an internal address (loopback, private, link-local …) is refused when it is
saved (`private_url_problem`, called by the registry) and again when it is used, and every
connection a delivery makes is checked while it is made (hub/notify/outbound.py); Apprise is told
not to follow redirects. An administrator allows an internal host with `outbound.allowed_hosts`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import apprise
from apprise import plugins
from apprise.manager_plugins import NotificationManager

from hub.notify.base import DeliveryResult, Notification, Recipient
from hub.notify.outbound import OutboundPolicy, private_refusal

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
SERVICES_PAGE: Final = "https://appriseit.com/services/"
_SCHEME: Final = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")

LocalTime = Callable[[dict[str, Any]], datetime]


def url_problem(url: str) -> str | None:
    """What is wrong with an Apprise URL, in words a person can act on; None if usable.

    The answer names the service's scheme and where its URL format is described, never the
    URL itself (it may hold a password or a token).
    """
    if not url or any(char.isspace() for char in url):
        return "an Apprise URL is one word without spaces, like ntfy://ntfy.sh/my-topic"
    scheme = _SCHEME.match(url)
    if scheme is None:
        return (
            "not an Apprise URL: it must start with a service, like ntfy://, tgram://, "
            f"mailto:// or json:// (see {SERVICES_PAGE})"
        )
    if apprise.Apprise.instantiate(url) is not None:
        return None
    name = scheme[1].lower()
    services = NotificationManager()  # type: ignore[no-untyped-call]
    if name not in services:
        return f"Apprise has no service {name}:// (the services and their URLs: {SERVICES_PAGE})"
    service = services[name]
    guide = getattr(service, "setup_url", None) or SERVICES_PAGE
    return (
        f"the {service.service_name} URL ({name}://…) is incomplete or has a wrong part; "
        f"its format is described at {guide}"
    )


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


def network_hosts(service: Any) -> list[str]:
    """The hosts an Apprise service connects to that its URL names: the host of self-hosted
    services (json://, ntfy://, mailto:// …), and a mail service's SMTP server. Services with a
    fixed address (Telegram, Slack …) name none: their URL's "host" is a token."""
    hosts: list[str] = []
    if "host" in (getattr(service, "template_tokens", None) or {}):
        hosts.append(getattr(service, "host", None) or "")
    hosts.append(getattr(service, "smtp_host", None) or "")
    return list(dict.fromkeys(host for host in hosts if isinstance(host, str) and host))


def private_url_problem(url: str, outbound: OutboundPolicy) -> str | None:
    """Why a usable Apprise URL must not be saved: it points at an internal address that
    `outbound.allowed_hosts` does not allow. Resolves host names: call it off the event loop."""
    service = apprise.Apprise.instantiate(url)
    if service is None:
        return None  # url_problem explains what is wrong with it
    for host in network_hosts(service):
        problem = outbound.host_problem(host)
        if problem is not None:
            return private_refusal(masked(url), problem)
    return None


def _with_defaults(url: str, priority: str) -> dict[str, Any] | str:
    """The URL's parts with our timeouts, no redirects, and ntfy's top priority for a waking
    alert, unless the URL sets them itself (a URL cannot ask for redirects)."""
    parts = _parts(url)
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
    schemes = [_scheme_of(url) for url in urls]
    return [
        f"{scheme}#{n}" if schemes.count(scheme) > 1 else scheme
        for n, scheme in enumerate(schemes, 1)
    ]


def masked(url: str) -> str:
    """An Apprise URL as people may see it: its service, none of its secrets."""
    return f"{_scheme_of(url)}://…"


def masked_contacts(fields: dict[str, Any]) -> dict[str, Any]:
    """A resident's fields with every contact's Apprise URLs masked."""
    contacts = fields.get("contacts")
    if not contacts:
        return fields
    shown = [{**c, "notify": [masked(url) for url in c.get("notify") or []]} for c in contacts]
    return {**fields, "contacts": shown}


def _scheme_of(url: str) -> str:
    parts = _parts(url)
    if parts is not None and parts.get("schema"):
        return str(parts["schema"])
    match = _SCHEME.match(url)
    return match[1].lower() if match else "url"


def _parts(url: str) -> dict[str, Any] | None:
    """The URL's parts as Apprise's plugin for it reads them; None if no plugin can."""
    parts: dict[str, Any] | None = plugins.url_to_dict(url)  # type: ignore[no-untyped-call]
    return parts


def _utc_opening(alert: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(float(alert.get("opened_at") or 0), UTC)


def _context(alert: dict[str, Any]) -> dict[str, Any]:
    return {"site": alert.get("site"), "bed": alert.get("bed"), "alert_id": alert.get("id")}
