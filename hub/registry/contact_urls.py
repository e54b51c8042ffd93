"""Contacts' Apprise URLs as the registry keeps them: checked with Apprise itself when entered
(`url_problem`), refused when they point at an internal address (`private_url_problem`, with the
hub's outbound policy, hub/core/outbound.py), and masked wherever people see them (`masked`,
`masked_contacts`): a URL carries secrets (tokens, passwords), so a service is shown by its
scheme only. The Apprise channel (hub/notify/apprise_channel.py) reads URLs the same way.
"""

from __future__ import annotations

import re
from typing import Any, Final

import apprise
from apprise import plugins
from apprise.manager_plugins import NotificationManager

from hub.core.outbound import OutboundPolicy, private_refusal

SERVICES_PAGE: Final = "https://appriseit.com/services/"
_SCHEME: Final = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


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


def masked(url: str) -> str:
    """An Apprise URL as people may see it: its service, none of its secrets."""
    return f"{scheme_of(url)}://…"


def masked_contacts(fields: dict[str, Any]) -> dict[str, Any]:
    """A resident's fields with every contact's Apprise URLs masked."""
    contacts = fields.get("contacts")
    if not contacts:
        return fields
    shown = [{**c, "notify": [masked(url) for url in c.get("notify") or []]} for c in contacts]
    return {**fields, "contacts": shown}


def scheme_of(url: str) -> str:
    parts = url_parts(url)
    if parts is not None and parts.get("schema"):
        return str(parts["schema"])
    match = _SCHEME.match(url)
    return match[1].lower() if match else "url"


def url_parts(url: str) -> dict[str, Any] | None:
    """The URL's parts as Apprise's plugin for it reads them; None if no plugin can."""
    parts: dict[str, Any] | None = plugins.url_to_dict(url)  # type: ignore[no-untyped-call]
    return parts
