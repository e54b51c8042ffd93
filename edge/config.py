"""The edge agent's configuration: one YAML file per gateway.

```yaml
site: sunrise
gateway: gw-east
broker: {host: 127.0.0.1, port: 1883, username: null, password: null, tls: false, keepalive: 30}
outbox: {path: /var/lib/carewatch/outbox.db, max_bytes: 50000000}   # disk budget, bytes
ble: {backend: bleak, adapter: hci0, scanning: auto}   # or simulated (with socket:), or none
devices:
  - {id: radar-b12, profile: seeed-mr60fda1, port: /dev/serial/by-id/usb-...}
  - {id: button-b12, profile: shelly-blu-button1, address: "B4:35:22:F5:3D:A4",
     key: "90bffd73cb6b26ef58a7a8eba9232036"}
```

`load_config` reports every mistake it finds, each naming the file, the line and the field:
`edge.yaml line 7, devices[1].key: BTHome key must be 32 hex characters`. An `EdgeConfig` can
also be built directly in Python; it is then checked the same way (without line numbers).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from contract.wire import Identifier
from contract.yaml_documents import ConfigError, Loc, check_ca_file, format_loc, validate_document
from device_profiles import ProfileError, load_profile
from edge.outbox import DEFAULT_MAX_BYTES, MIN_MAX_BYTES

_MAC_RE = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2}){5}$")
_KEY_RE = re.compile(r"^[0-9a-f]{32}$")
_DEFER_CHECKS = "defer_device_checks"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BrokerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None

    @field_validator("ca_file")
    @classmethod
    def _ca_file_exists(cls, value: str | None) -> str | None:
        return check_ca_file(value)

    keepalive: int = Field(default=30, ge=5, le=3600)


class OutboxConfig(_Strict):
    """Where the durable outbox lives and how much disk it may use (see edge/outbox.py).

    50 MB holds about 500,000 items (~95 bytes each): some 36 hours of a 20-device gateway's
    telemetry (benchmarks/outage_replay.py), a negligible share of any SD card, and quick to
    replay once the link is back. Over budget, the oldest routine readings are dropped; events
    and emergency readings (smoke, door) never are.
    """

    path: Path
    max_bytes: int = Field(default=DEFAULT_MAX_BYTES, ge=MIN_MAX_BYTES)


class BLEConfig(_Strict):
    """How BLE adverts are heard.

    `bleak`: a real adapter through BlueZ. `adapter` pins one (`hci0`; default: the first
    powered adapter); `scanning` is `auto` (passive where BlueZ supports it, else active with a
    warning), `passive` or `active`; while the adapter or BlueZ is missing the agent retries
    every `retry_s` seconds and reports its BLE devices offline. `simulated`: the simulators'
    Unix datagram `socket`. `none`: no BLE devices.
    """

    backend: Literal["bleak", "simulated", "none"] = "none"
    socket: Path | None = None
    adapter: str | None = None
    scanning: Literal["auto", "passive", "active"] = "auto"
    retry_s: float = Field(default=30.0, ge=1.0, le=3600.0)

    @field_validator("adapter")
    @classmethod
    def _adapter_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"hci[0-9]{1,3}", value):
            raise ValueError(f"a BlueZ adapter name looks like hci0, got {value!r}")
        return value

    @model_validator(mode="after")
    def _socket_for_simulated(self) -> BLEConfig:
        if self.backend == "simulated" and self.socket is None:
            raise ValueError("the simulated backend needs 'socket' (a Unix datagram socket path)")
        return self


class DeviceConfig(_Strict):
    id: Identifier
    profile: str = Field(min_length=1)
    port: str | None = None
    address: str | None = None
    key: str | None = None
    supervision_s: int | None = Field(default=None, gt=0)  # overrides the profile's window

    @field_validator("address")
    @classmethod
    def _mac_address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        upper = value.strip().upper()
        if not _MAC_RE.match(upper):
            raise ValueError(f"BLE address must look like B4:35:22:F5:3D:A4, got {value!r}")
        return upper

    @field_validator("key")
    @classmethod
    def _bthome_key(cls, value: str | None) -> str | None:
        if value is None:
            return None
        lower = value.strip().lower()
        if not _KEY_RE.match(lower):
            raise ValueError("BTHome key must be 32 hex characters")
        return lower

    @property
    def key_bytes(self) -> bytes | None:
        return bytes.fromhex(self.key) if self.key is not None else None


class EdgeConfig(_Strict):
    site: Identifier
    gateway: Identifier
    broker: BrokerConfig = BrokerConfig()
    outbox: OutboxConfig
    ble: BLEConfig = BLEConfig()
    devices: list[DeviceConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _devices_consistent(self, info: ValidationInfo) -> EdgeConfig:
        if isinstance(info.context, dict) and info.context.get(_DEFER_CHECKS):
            return self  # load_config runs the checks itself, to report line numbers
        problems = [f"{format_loc(loc)}: {message}" for loc, message in device_problems(self)]
        if problems:
            raise ValueError("; ".join(problems))
        return self


# --- cross-field checks -------------------------------------------------------------------


def device_problems(config: EdgeConfig) -> list[tuple[Loc, str]]:
    """Mistakes that involve a profile or more than one device, each with its field path."""
    problems: list[tuple[Loc, str]] = []
    for index, device in enumerate(config.devices):
        problems.extend(_device_problems(index, device, config.ble))
    problems.extend(_duplicates(config.devices, "id"))
    problems.extend(_duplicates(config.devices, "address"))
    problems.extend(_duplicates(config.devices, "port"))
    return problems


def _device_problems(index: int, device: DeviceConfig, ble: BLEConfig) -> list[tuple[Loc, str]]:
    here: Loc = ("devices", index)
    try:
        profile = load_profile(device.profile)
    except ProfileError as exc:
        return [((*here, "profile"), f"unknown device profile {device.profile!r}: {exc}")]
    if profile.connection == "serial":
        return _serial_problems(here, device)
    problems = _ble_problems(here, device)
    if ble.backend == "none":
        problems.append(((*here, "profile"), "a BLE device needs ble.backend other than 'none'"))
    return problems


def _serial_problems(here: Loc, device: DeviceConfig) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    if device.port is None:
        problems.append((here, f"profile {device.profile} connects over serial: 'port' is missing"))
    for name in ("address", "key"):
        if getattr(device, name) is not None:
            problems.append(((*here, name), f"profile {device.profile} is a serial device"))
    return problems


def _ble_problems(here: Loc, device: DeviceConfig) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    if device.address is None:
        problems.append((here, f"profile {device.profile} connects over BLE: 'address' is missing"))
    if device.port is not None:
        problems.append(((*here, "port"), f"profile {device.profile} is a BLE device"))
    return problems


def _duplicates(devices: Sequence[DeviceConfig], field: str) -> Iterator[tuple[Loc, str]]:
    first_seen: dict[str, int] = {}
    for index, device in enumerate(devices):
        value = getattr(device, field)
        if value is None:
            continue
        if value in first_seen:
            yield (
                ("devices", index, field),
                f"duplicate {field} {value!r} (also devices[{first_seen[value]}])",
            )
        else:
            first_seen[value] = index


# --- loading from YAML ----------------------------------------------------------------------


def load_config(path: str | Path) -> EdgeConfig:
    """Read and check an edge configuration file. Raises ConfigError naming line and field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
    return parse_config(text, str(path))


def parse_config(text: str, source: str = "<config>") -> EdgeConfig:
    return validate_document(
        text,
        source,
        EdgeConfig,
        must_be="a mapping (site:, gateway:, ...)",
        context={_DEFER_CHECKS: True},
        check=device_problems,
    )
