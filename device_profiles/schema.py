"""The schema of a device profile: one YAML file per supported device model."""

from __future__ import annotations

import re
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge.wire import EVENTS, READINGS

MICRADAR_SOURCE: Final = re.compile(r"^[0-9A-Fa-f]{2} [0-9A-Fa-f]{2}$")
DECODER_CONNECTION: Final = {"micradar": "serial", "bthome": "ble"}


class SerialSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    baudrate: int = Field(default=115200, gt=0)


class FieldRule(BaseModel):
    """Maps one field of the device's own protocol onto a canonical reading or event.

    `source` names the field in the decoder's terms: a MicRadar control/command pair such as
    "83 01", or a bthome-ble key such as "smoke", "battery" or "button". `values` translates raw
    values (keys as strings) into canonical ones; a raw value missing from it is rejected. Without
    `values`, the raw number is used, multiplied by `scale`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    reading: str | None = None
    event: str | None = None
    values: dict[str, bool | int | float | str | None] | None = None
    scale: float = 1.0

    @model_validator(mode="after")
    def _one_target(self) -> FieldRule:
        if (self.reading is None) == (self.event is None):
            raise ValueError("a rule maps to exactly one of 'reading' or 'event'")
        if self.reading is not None and self.reading not in READINGS:
            raise ValueError(f"unknown reading {self.reading!r}; known: {sorted(READINGS)}")
        if self.event is not None and self.event not in EVENTS:
            raise ValueError(f"unknown event {self.event!r}; known: {sorted(EVENTS)}")
        return self


class DeviceProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    vendor: str
    name: str
    connection: Literal["serial", "ble"]
    decoder: Literal["micradar", "bthome"]
    serial: SerialSettings | None = None
    firmware: str | None = None
    trigger_based: bool = False
    supervision_s: int = Field(gt=0)
    battery_low: int | None = Field(default=None, ge=0, le=100)
    rules: list[FieldRule] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> DeviceProfile:
        needed = DECODER_CONNECTION[self.decoder]
        if needed != self.connection:
            raise ValueError(f"decoder {self.decoder!r} needs connection {needed!r}")
        if self.connection == "serial" and self.serial is None:
            raise ValueError("connection 'serial' needs 'serial' settings (baudrate)")
        if self.decoder == "micradar":
            _check_micradar_sources(self.rules)
        return self


def _check_micradar_sources(rules: list[FieldRule]) -> None:
    for rule in rules:
        if not MICRADAR_SOURCE.match(rule.source):
            raise ValueError(
                f"micradar source {rule.source!r} is not a control/command pair such as '83 01'"
            )
