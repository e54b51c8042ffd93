"""The carewatch MQTT wire format, v1: topics, payloads and the canonical vocabulary.

The edge agent writes it, the hub reads it, and the fleet simulator speaks it. The exact format,
with examples, is in docs/wire-format.md.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

TOPIC_ROOT: Final = "carewatch/v1"
HUB_STATUS_TOPIC: Final = f"{TOPIC_ROOT}/_hub/status"
DATA_SUBSCRIPTION: Final = f"{TOPIC_ROOT}/+/+/data"
STATUS_SUBSCRIPTION: Final = f"{TOPIC_ROOT}/+/+/status"
DEVICES_SUBSCRIPTION: Final = f"{TOPIC_ROOT}/+/+/devices"
MAX_PAYLOAD_BYTES: Final = 256 * 1024
MAX_ITEMS_PER_BATCH: Final = 500
# Bounds on every value, so that nothing a gateway sends can overflow the hub's store (SQLite's
# INTEGER is 64 bits) or make it emit something that is not JSON (Infinity, NaN).
MAX_SEQ: Final = 2**63 - 1  # largest sequence number and bdseq: SQLite's largest INTEGER
MAX_TIME: Final = 7_258_118_400.0  # 2200-01-01T00:00:00Z: times are Unix seconds below it
MAX_ABS_VALUE: Final = 1_000_000_000  # a numeric value lies within ±MAX_ABS_VALUE
MAX_NAME_CHARS: Final = 64  # a reading's or event's name
MAX_TEXT_CHARS: Final = 256  # a string value, an agent's name
# Payloads nest three levels deep (batch, items, item); the hub refuses anything deeper.
MAX_JSON_DEPTH: Final = 4

ID_PATTERN: Final = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_ID_RE: Final = re.compile(ID_PATTERN)

Identifier = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
# Unix seconds: finite, after 1970 and before 2200.
Time = Annotated[float, Field(gt=0, lt=MAX_TIME, allow_inf_nan=False)]
Seq = Annotated[int, Field(ge=1, le=MAX_SEQ)]
BdSeq = Annotated[int, Field(ge=0, le=MAX_SEQ)]
Name = Annotated[str, StringConstraints(max_length=MAX_NAME_CHARS)]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS)]

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
    at: Time
    reading: Name | None = None
    event: Name | None = None
    value: bool | int | float | str | None = None
    hist: bool = False

    @field_validator("value")
    @classmethod
    def _bounded(cls, value: Value) -> Value:
        """A boolean, a finite number within ±MAX_ABS_VALUE, a short string, or nothing."""
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, str):
            if len(value) > MAX_TEXT_CHARS:
                raise ValueError(f"a string value has at most {MAX_TEXT_CHARS} characters")
            return value
        if not (math.isfinite(value) and -MAX_ABS_VALUE <= value <= MAX_ABS_VALUE):
            raise ValueError(f"a number value is finite and within ±{MAX_ABS_VALUE}")
        return value

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


class WireEnvelope(BaseModel):
    """A data batch with its items not yet judged: the hub checks each item on its own, so one
    bad item does not take the others down with it. Item i carries sequence number `seq + i`
    within the outbox `epoch`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epoch: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{8,32}$")]
    seq: Seq
    bdseq: BdSeq
    sent: Time
    items: list[Any] = Field(min_length=1, max_length=MAX_ITEMS_PER_BATCH)

    @model_validator(mode="after")
    def _last_seq_fits(self) -> WireEnvelope:
        if self.seq + len(self.items) - 1 > MAX_SEQ:
            raise ValueError(f"the last item's sequence number is over {MAX_SEQ}")
        return self


class WireBatch(WireEnvelope):
    """A data batch with every item checked, as the edge agent writes it."""

    items: list[WireItem] = Field(min_length=1, max_length=MAX_ITEMS_PER_BATCH)


class WireStatus(BaseModel):
    """A gateway's retained birth or death message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    state: Literal["online", "offline"]
    bdseq: BdSeq
    at: Time | None = None
    agent: Text | None = None


class WireDeviceHealth(BaseModel):
    """How one device looks from its gateway: heard within its supervision window or not."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dev: Identifier
    online: bool
    last_seen: Time | None = None
    battery: float | None = Field(default=None, ge=0, le=100, allow_inf_nan=False)
    rssi: int | None = Field(default=None, ge=-127, le=20)


class WireDevicesReport(BaseModel):
    """A gateway's retained report of all its devices' health."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: Time
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
