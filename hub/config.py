"""The hub's configuration file: broker, storage, web, users and the registry."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.registry import SiteSpec


class BrokerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    client_id: str = "carewatch-hub"
    keepalive: int = Field(default=30, ge=5)


class WebSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    secret_key: str = Field(min_length=32)
    secure_cookies: bool = False


class UserSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(pattern=r"^[A-Za-z0-9._@-]{1,64}$")
    display_name: str | None = None
    password_hash: str = Field(pattern=r"^\$argon2")


class TokenSpec(BaseModel):
    """An API token for an integration; only its SHA-256 is kept."""

    model_config = ConfigDict(extra="forbid")

    name: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class HubConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    database: Path = Path("carewatch.db")
    web: WebSettings
    users: list[UserSpec] = Field(default_factory=list)
    tokens: list[TokenSpec] = Field(default_factory=list)
    sites: list[SiteSpec] = Field(min_length=1)


class HubConfigError(ValueError):
    pass


def load_hub_config(path: Path) -> HubConfig:
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise HubConfigError(f"{path}: cannot read the file: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise HubConfigError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return HubConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise HubConfigError(f"{path}: {problems}") from exc
