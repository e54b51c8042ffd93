"""Web Push as the `push:` section of the hub configuration sets it (docs/push.md), and what the
push service reads of the whole configuration (`PushConfig`, which HubConfig is)."""

from __future__ import annotations

import re
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hub.core.outbound import OutboundSettings

# What push services accept as a VAPID contact: a mailto: address, or an https origin.
VAPID_SUBJECT = (
    r"^(mailto:[^@\s]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+"
    r"|https://[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)$"
)


class PushSettings(BaseModel):
    """Web Push (hub/notify/push.py): who the hub says it is, how long pushes wait, where it may
    POST."""

    model_config = ConfigDict(extra="forbid")

    # The VAPID contact push services use when something goes wrong; default derived from
    # `organisation` (set a real address in production).
    subject: str | None = Field(default=None, pattern=VAPID_SUBJECT)
    ttl_s: int = Field(default=3600, ge=0, le=28 * 86400)
    emergency_ttl_s: int = Field(default=300, ge=0, le=86400)
    # Push services the hub may send to: exact hosts, or "*.domain" for any host under it.
    # Endpoints must be https; plain http only to a loopback host listed exactly (tests).
    allowed_hosts: list[str] = Field(
        default_factory=lambda: [
            "fcm.googleapis.com",
            "updates.push.services.mozilla.com",
            "*.notify.windows.com",
            "web.push.apple.com",
            "*.push.apple.com",
        ],
        max_length=100,
    )

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            if not re.fullmatch(r"(\*\.)?[a-z0-9]([a-z0-9.:-]*[a-z0-9])?", host):
                raise ValueError(f"{host!r} is not a host name (lower case) or *.domain")
        return hosts


class PushConfig(Protocol):
    """What the push service reads of the hub configuration (hub/config.py, HubConfig)."""

    @property
    def push(self) -> PushSettings: ...

    @property
    def organisation(self) -> str: ...

    @property
    def outbound(self) -> OutboundSettings: ...
