"""The hub's MQTT broker connection, as the `broker:` section of the hub configuration gives it
(docs/configuration.md)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contract.yaml_documents import check_ca_file


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
