"""The hub's configuration file: broker, storage, web, users and the registry."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contract.yaml_documents import ConfigError, check_ca_file, validate_document
from hub.access.permissions import GrantFields
from hub.access.users import USERNAME_PATTERN, ConfigToken, ConfigUser
from hub.core.database import is_postgres
from hub.core.outbound import OutboundSettings
from hub.escalation.policy import EscalationConfig
from hub.escalation.roster import RosterConfig
from hub.ingest.settings import BrokerSettings
from hub.notify.settings import PushSettings
from hub.registry.index import Registry, RegistryError, SiteSpec
from hub.telemetry.settings import RetentionSettings
from hub.watch.settings import WatchConfig


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


class HubConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("database", mode="before")
    @classmethod
    def _database_path_or_url(cls, value: object) -> Path | str:
        text = str(value)
        if is_postgres(text):
            return text
        if "://" in text:
            raise ValueError(f"{text!r} is neither a SQLite file nor a postgresql:// URL")
        return Path(text)

    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    # A SQLite file, or a PostgreSQL server's URL (postgresql://user:password@host/database).
    database: Path | str = Path("carewatch.db")
    web: WebSettings
    users: list[UserSpec] = Field(default_factory=list)
    tokens: list[TokenSpec] = Field(default_factory=list)
    organisation: str = Field(default="carewatch", min_length=1, max_length=200)
    # Seeds the registry on the first start only; afterwards the database is the source of truth.
    sites: list[SiteSpec] | None = Field(default=None, min_length=1)
    watch: WatchConfig = Field(default_factory=WatchConfig)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)  # hub/telemetry
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
