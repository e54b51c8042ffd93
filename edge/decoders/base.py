"""What every decoder shares: the advertisement shape and the rejection error."""

from __future__ import annotations

from dataclasses import dataclass, field


class DecodeError(ValueError):
    """Input that cannot be decoded. `reason` is a short, stable code used as a counter label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Advertisement:
    """One BLE advertisement as a scanner backend reports it (bleak's shape).

    `service_data` is keyed by the full 128-bit UUID string and holds the bytes after the
    16-bit UUID, exactly as bleak's `AdvertisementData.service_data`.
    """

    address: str
    rssi: int
    service_data: dict[str, bytes] = field(default_factory=dict)
    local_name: str | None = None
    manufacturer_data: dict[int, bytes] = field(default_factory=dict)
