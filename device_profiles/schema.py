"""The schema of a device profile: one YAML file per supported device model."""

from __future__ import annotations

import re
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contract.wire import EVENTS, READINGS

MICRADAR_SOURCE: Final = re.compile(r"^[0-9A-Fa-f]{2} [0-9A-Fa-f]{2}$")
TINYFRAME_SOURCE: Final = re.compile(r"^[0-9A-Fa-f]{4}$")
LD2410_FIELDS: Final = (
    "target_state",
    "moving_distance",
    "moving_energy",
    "static_distance",
    "static_energy",
    "detection_distance",
)
DECODER_CONNECTION: Final = {
    "micradar": "serial",
    "tinyframe": "serial",
    "ld2410": "serial",
    "bthome": "ble",
    "xiaomi": "ble",
}
Decoder = Literal["micradar", "tinyframe", "ld2410", "bthome", "xiaomi"]
ValueFormat = Literal["u8", "u16", "u32", "i8", "i16", "i32", "f32"]


class SerialSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    baudrate: int = Field(default=115200, gt=0)


class FieldRule(BaseModel):
    """Maps one field of the device's own protocol onto a canonical reading or event.

    `source` names the field in the decoder's terms: a MicRadar control/command pair such as
    "83 01", a TinyFrame message type in hex such as "0E02" (with the `format` of its data), an
    LD2410 report field such as "target_state", or a bthome-ble / xiaomi-ble key such as
    "smoke", "battery" or "button". Raw values listed in `ignore` (as strings, "0" for 0.0 and
    false) mean "no reading" and make nothing. `values` translates raw values (keys as strings)
    into canonical ones; a raw value missing from it is rejected. Without `values`, the raw
    number is used, multiplied by `scale`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    reading: str | None = None
    event: str | None = None
    values: dict[str, bool | int | float | str | None] | None = None
    ignore: frozenset[str] = frozenset()
    scale: float = 1.0
    format: ValueFormat | None = None

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
    decoder: Decoder
    serial: SerialSettings | None = None
    firmware: str | None = None
    product_id: int | None = Field(default=None, ge=0, le=0xFFFF)
    trigger_based: bool = False
    supervision_s: int = Field(gt=0)
    battery_low: int | None = Field(default=None, ge=0, le=100)
    # When the device is bound to a bed, the reading that says whether someone is in it: a
    # pressure mat's or a bed radar's in-bed flag, or the presence seen by a radar mounted over
    # the bed. None: its readings say nothing about the bed (a fall radar's presence means
    # someone in the room). See docs/rules-and-devices.md.
    in_bed: Literal["occupancy", "presence"] | None = None
    rules: list[FieldRule] = Field(min_length=1)

    @property
    def readings(self) -> frozenset[str]:
        return frozenset(rule.reading for rule in self.rules if rule.reading is not None)

    def reports_zero(self, reading: str) -> bool:
        """True if a value of 0 of this reading is a reading, not "no reading"."""
        return any(rule.reading == reading and "0" not in rule.ignore for rule in self.rules)

    @model_validator(mode="after")
    def _consistent(self) -> DeviceProfile:
        needed = DECODER_CONNECTION[self.decoder]
        if needed != self.connection:
            raise ValueError(f"decoder {self.decoder!r} needs connection {needed!r}")
        if self.connection == "serial" and self.serial is None:
            raise ValueError("connection 'serial' needs 'serial' settings (baudrate)")
        if (self.decoder == "xiaomi") != (self.product_id is not None):
            raise ValueError("'product_id' is needed by decoder 'xiaomi' and only by it")
        for rule in self.rules:
            _check_rule(self.decoder, rule)
        if self.in_bed is not None and self.in_bed not in self.readings:
            raise ValueError(f"in_bed {self.in_bed!r} is not a reading this profile makes")
        return self


def _check_rule(decoder: Decoder, rule: FieldRule) -> None:
    if (decoder == "tinyframe") != (rule.format is not None):
        raise ValueError(
            f"{rule.source!r}: 'format' is needed by decoder 'tinyframe' and only by it"
        )
    if decoder == "micradar" and not MICRADAR_SOURCE.match(rule.source):
        raise ValueError(
            f"micradar source {rule.source!r} is not a control/command pair such as '83 01'"
        )
    if decoder == "tinyframe" and not TINYFRAME_SOURCE.match(rule.source):
        raise ValueError(
            f"tinyframe source {rule.source!r} is not a hex message type such as '0E02'"
        )
    if decoder == "ld2410" and rule.source not in LD2410_FIELDS:
        raise ValueError(f"ld2410 source {rule.source!r} is not one of {', '.join(LD2410_FIELDS)}")
