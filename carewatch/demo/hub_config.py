"""A hub for a simulated world, on this machine: the demo's, `carewatch sim scenario`'s and the
simulated walk test's."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from carewatch.demo.broker import EmbeddedBroker
from hub.config import HubConfig
from hub.notify.settings import PushSettings


def local_hub_config(
    broker: EmbeddedBroker,
    workdir: Path,
    sites: list[dict[str, Any]],
    *,
    web_port: int = 0,
    web_host: str = "127.0.0.1",
    users: list[dict[str, Any]] | None = None,
    watch: dict[str, Any] | None = None,
    roster: dict[str, Any] | None = None,
    escalation: dict[str, Any] | None = None,
    push_hosts: tuple[str, ...] = (),
) -> HubConfig:
    """A hub for a simulated world: its database in `workdir`, these sites; its web server on
    `web_host` (loopback unless told otherwise), its broker on loopback."""
    return HubConfig.model_validate(
        {
            "broker": {"host": broker.host, "port": broker.port, "client_id": "carewatch-hub-demo"},
            "database": str(workdir / "hub.db"),
            "web": {"host": web_host, "port": web_port, "secret_key": secrets.token_hex(32)},
            "users": users or [],
            "sites": sites,
            "watch": watch or {},
            "roster": roster or {},
            "escalation": escalation or {},
            # A lab's own push service (`--allow-push-host`), beside the browsers' own.
            "push": {"allowed_hosts": [*PushSettings().allowed_hosts, *push_hosts]},
            "outbound": {"allowed_hosts": list(push_hosts)},
        }
    )
