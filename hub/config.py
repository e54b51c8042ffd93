"""The hub's configuration file: broker, storage, web, users and the registry."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contract.yaml_documents import ConfigError, check_ca_file, validate_document
from hub.access.permissions import GrantFields
from hub.access.users import USERNAME_PATTERN, ConfigToken, ConfigUser
from hub.core.outbound import OutboundPolicy, ip_literal
from hub.escalation.policy import EscalationConfig
from hub.escalation.roster import RosterConfig
from hub.registry.index import Registry, RegistryError, SiteSpec
from hub.watch.settings import WatchConfig


class BrokerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None  # CA that signed the broker's certificate; None: system trust

    @field_validator("ca_file")
    @classmethod
    def _ca_file_exists(cls, value: str | None) -> str | None:
        return check_ca_file(value)

    client_id: str = "carewatch-hub"
    keepalive: int = Field(default=30, ge=5)


class RequestLimitSettings(BaseModel):
    """How much a caller may send (hub/http/request_limits.py, docs/configuration.md)."""

    model_config = ConfigDict(extra="forbid")

    max_body_kib: int = Field(default=256, ge=1, le=65536)
    max_public_body_kib: int = Field(default=8, ge=1, le=1024)
    max_import_body_kib: int = Field(default=4096, ge=1, le=262144)
    requests_per_minute: int = Field(default=600, ge=1)
    public_requests_per_minute: int = Field(default=60, ge=1)


class WebSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    secret_key: str = Field(min_length=32)
    secure_cookies: bool = False
    limits: RequestLimitSettings = Field(default_factory=lambda: RequestLimitSettings())


class _Scoped(GrantFields):
    @model_validator(mode="after")
    def _fits_role(self) -> _Scoped:
        problems = self.grant().problems()
        if problems:
            raise ValueError("; ".join(problems))
        return self


class UserSpec(_Scoped):
    """A user managed in this file: role and scope as in hub/access/permissions.py."""

    username: str = Field(pattern=USERNAME_PATTERN)
    display_name: str | None = None
    password_hash: str = Field(pattern=r"^\$argon2")

    def config_user(self) -> ConfigUser:
        return ConfigUser(self.username, self.display_name, self.password_hash, self.grant())


class TokenSpec(_Scoped):
    """An API token for an integration, with its own role and scope; only its SHA-256 is kept."""

    name: str = Field(pattern=USERNAME_PATTERN)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    def config_token(self) -> ConfigToken:
        return ConfigToken(self.name, self.sha256, self.grant())


class ProvisioningSettings(BaseModel):
    """Where `carewatch provision` writes broker credentials, and what it tells gateways."""

    model_config = ConfigDict(extra="forbid")

    password_file: Path = Path("/etc/mosquitto/carewatch.passwd")
    acl_file: Path = Path("/etc/mosquitto/carewatch.acl")
    broker_host: str | None = None  # the address gateways use; default: broker.host
    broker_port: int | None = Field(default=None, ge=1, le=65535)  # default: broker.port
    tls: bool | None = None  # default: broker.tls
    ca_file: str | None = None  # copied into each gateway's bundle as ca.crt
    public_url: str | None = None  # base of the bed labels' QR links; default: the web address

    @field_validator("ca_file")
    @classmethod
    def _ca_file_exists(cls, value: str | None) -> str | None:
        return check_ca_file(value)


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


# A host name, or "*.domain" for every host under it.
HOST_NAME = r"(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?"


class OutboundSettings(BaseModel):
    """Internal hosts the hub may send to after all (hub/core/outbound.py,
    docs/configuration.md)."""

    model_config = ConfigDict(extra="forbid")

    # Apprise services and push endpoints at loopback, private, link-local … addresses are
    # refused unless their host is listed here: exact names or addresses, or "*.domain".
    allowed_hosts: list[str] = Field(default_factory=list, max_length=100)

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            if ip_literal(host) is None and not re.fullmatch(HOST_NAME, host):
                raise ValueError(f"{host!r} is not a host name, an IP address or *.domain")
        return hosts

    def policy(self) -> OutboundPolicy:
        return OutboundPolicy.of(self.allowed_hosts)


class HubConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    database: Path = Path("carewatch.db")
    web: WebSettings
    users: list[UserSpec] = Field(default_factory=list)
    tokens: list[TokenSpec] = Field(default_factory=list)
    organisation: str = Field(default="carewatch", min_length=1, max_length=200)
    # Seeds the registry on the first start only; afterwards the database is the source of truth.
    sites: list[SiteSpec] | None = Field(default=None, min_length=1)
    watch: WatchConfig = Field(default_factory=WatchConfig)
    # escalation (hub/escalation/roster.py, hub/escalation/policy.py): who is on duty, who is told
    # when
    roster: RosterConfig = Field(default_factory=RosterConfig)
    escalation: EscalationConfig = Field(default_factory=EscalationConfig)
    provisioning: ProvisioningSettings = Field(default_factory=ProvisioningSettings)
    push: PushSettings = Field(default_factory=PushSettings)  # hub/notify/push.py
    outbound: OutboundSettings = Field(default_factory=OutboundSettings)  # hub/core/outbound.py

    @model_validator(mode="after")
    def _people_are_users(self) -> HubConfig:
        users = {user.username for user in self.users}
        problems = self.roster.unknown_users(users) + self.escalation.unknown_users(users)
        if problems:
            raise ValueError("; ".join(problems))
        return self


class HubConfigError(ValueError):
    pass


def load_hub_config(path: Path) -> HubConfig:
    """Read and check the hub's configuration, registry included; errors name line and field."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise HubConfigError(f"{path}: cannot read the file: {exc.strerror or exc}") from exc
    try:
        config = validate_document(text, str(path), HubConfig)
        if config.sites:
            Registry.from_specs(config.sites)
    except ConfigError as exc:
        raise HubConfigError(str(exc)) from None
    except RegistryError as exc:
        raise HubConfigError(f"{path}: {exc}") from None
    return config
