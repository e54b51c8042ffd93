"""The carewatch MQTT wire format, v1: topics, payloads and the canonical vocabulary.

The edge agent writes it, the hub reads it, and the fleet simulator speaks it. The exact format,
with examples, is in docs/wire-format.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

TOPIC_ROOT: Final = "carewatch/v1"
HUB_STATUS_TOPIC: Final = f"{TOPIC_ROOT}/_hub/status"
DATA_SUBSCRIPTION: Final = f"{TOPIC_ROOT}/+/+/data"
STATUS_SUBSCRIPTION: Final = f"{TOPIC_ROOT}/+/+/status"
DEVICES_SUBSCRIPTION: Final = f"{TOPIC_ROOT}/+/+/devices"
MAX_PAYLOAD_BYTES: Final = 256 * 1024
MAX_ITEMS_PER_BATCH: Final = 500

ID_PATTERN: Final = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_ID_RE: Final = re.compile(ID_PATTERN)

Identifier = Annotated[str, StringConstraints(pattern=ID_PATTERN)]

BOOL_READINGS: Final = frozenset({"occupancy", "presence", "motion", "contact_open", "smoke"})
NUMERIC_READINGS: Final = frozenset(
    {"heart_rate", "respiration_rate", "battery", "rssi", "temperature", "humidity"}
)
READINGS: Final = BOOL_READINGS | NUMERIC_READINGS
# Readings that are alarms in themselves: never dropped for disk space, never thinned out.
SAFETY_READINGS: Final = frozenset({"smoke", "contact_open"})
EVENTS: Final = frozenset({"fall", "call_button", "stillness", "tamper", "device_test"})

Channel = Literal["data", "status", "devices", "cmd"]


def is_identifier(value: str) -> bool:
    return bool(_ID_RE.match(value))


def data_topic(site: str, gateway: str) -> str:
    return f"{TOPIC_ROOT}/{site}/{gateway}/data"


def status_topic(site: str, gateway: str) -> str:
    return f"{TOPIC_ROOT}/{site}/{gateway}/status"


def devices_topic(site: str, gateway: str) -> str:
    return f"{TOPIC_ROOT}/{site}/{gateway}/devices"


def command_topic(site: str, gateway: str) -> str:
    return f"{TOPIC_ROOT}/{site}/{gateway}/cmd"


@dataclass(frozen=True, slots=True)
class TopicAddress:
    site: str
    gateway: str
    channel: Channel


def parse_topic(topic: str) -> TopicAddress | None:
    """Split a gateway topic into site, gateway and channel; None if it is not one."""
    parts = topic.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != TOPIC_ROOT:
        return None
    site, gateway, channel = parts[2], parts[3], parts[4]
    if not (is_identifier(site) and is_identifier(gateway)):
        return None
    if channel == "data":
        return TopicAddress(site, gateway, "data")
    if channel == "status":
        return TopicAddress(site, gateway, "status")
    if channel == "devices":
        return TopicAddress(site, gateway, "devices")
    if channel == "cmd":
        return TopicAddress(site, gateway, "cmd")
    return None


Value = bool | int | float | str | None


@dataclass(frozen=True, slots=True)
class Observation:
    """One canonical reading or event, as a decoder produces it at the edge."""

    device: str
    at: float
    kind: Literal["reading", "event"]
    name: str
    value: Value = None

    def to_wire(self, historical: bool = False) -> dict[str, object]:
        item: dict[str, object] = {
            "dev": self.device,
            "at": round(self.at, 3),
            self.kind: self.name,
        }
        if self.value is not None:
            item["value"] = self.value
        if historical:
            item["hist"] = True
        return item


class WireItem(BaseModel):
    """An item of a data batch: exactly one of `reading` or `event`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dev: Identifier
    at: float = Field(gt=0)
    reading: str | None = None
    event: str | None = None
    value: bool | int | float | str | None = None
    hist: bool = False

    @model_validator(mode="after")
    def _one_known_name(self) -> WireItem:
        if (self.reading is None) == (self.event is None):
            raise ValueError("an item has exactly one of 'reading' or 'event'")
        if self.reading is not None:
            if self.reading not in READINGS:
                raise ValueError(f"unknown reading {self.reading!r}")
            if self.reading in BOOL_READINGS and not isinstance(self.value, bool):
                raise ValueError(f"reading {self.reading!r} needs a boolean value")
            if self.reading in NUMERIC_READINGS and (
                isinstance(self.value, bool) or not isinstance(self.value, int | float)
            ):
                raise ValueError(f"reading {self.reading!r} needs a numeric value")
        if self.event is not None and self.event not in EVENTS:
            raise ValueError(f"unknown event {self.event!r}")
        return self

    @property
    def name(self) -> str:
        return self.reading if self.reading is not None else str(self.event)

    @property
    def kind(self) -> Literal["reading", "event"]:
        return "reading" if self.reading is not None else "event"


class WireBatch(BaseModel):
    """A data batch. Item i carries sequence number `seq + i` within the outbox `epoch`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epoch: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{8,32}$")]
    seq: int = Field(ge=1)
    bdseq: int = Field(ge=0)
    sent: float = Field(gt=0)
    items: list[WireItem] = Field(min_length=1, max_length=MAX_ITEMS_PER_BATCH)


class WireStatus(BaseModel):
    """A gateway's retained birth or death message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    state: Literal["online", "offline"]
    bdseq: int = Field(ge=0)
    at: float | None = None
    agent: str | None = None


class WireDeviceHealth(BaseModel):
    """How one device looks from its gateway: heard within its supervision window or not."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dev: Identifier
    online: bool
    last_seen: float | None = None
    battery: float | None = Field(default=None, ge=0, le=100)
    rssi: int | None = Field(default=None, ge=-127, le=20)


class WireDevicesReport(BaseModel):
    """A gateway's retained report of all its devices' health."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: float = Field(gt=0)
    devices: list[WireDeviceHealth] = Field(max_length=MAX_ITEMS_PER_BATCH)


def encode_devices_report(at: float, devices: list[WireDeviceHealth]) -> bytes:
    body = {
        "at": round(at, 3),
        "devices": [device.model_dump(exclude_none=True) for device in devices],
    }
    return json.dumps(body, separators=(",", ":")).encode()


def encode_batch(
    epoch: str, seq: int, bdseq: int, sent: float, items: list[dict[str, object]]
) -> bytes:
    body = {"epoch": epoch, "seq": seq, "bdseq": bdseq, "sent": round(sent, 3), "items": items}
    return json.dumps(body, separators=(",", ":")).encode()


def encode_status(
    state: Literal["online", "offline"], bdseq: int, at: float | None, agent: str
) -> bytes:
    body: dict[str, object] = {"state": state, "bdseq": bdseq, "agent": agent}
    if at is not None:
        body["at"] = round(at, 3)
    return json.dumps(body, separators=(",", ":")).encode()


def encode_command(command: Literal["rebirth"]) -> bytes:
    return json.dumps({"cmd": command}, separators=(",", ":")).encode()
