"""The one place the edge agent gets a decoder for a device, by the device's profile."""

from __future__ import annotations

from collections import Counter
from typing import Protocol

from device_profiles import DeviceProfile, ProfileError
from edge.decoders.base import Advertisement
from edge.decoders.bthome import BTHomeDecoder
from edge.decoders.micradar import MicRadarSerialDecoder
from edge.wire import Observation


class SerialDecoder(Protocol):
    """Bytes from a serial port in, observations out. Never raises on device input: each
    rejected frame or value is counted in `rejected` by reason and logged with the device id."""

    rejected: Counter[str]

    @property
    def pending(self) -> int:
        """Bytes held back as the start of a frame not yet complete."""

    def feed(self, data: bytes, at: float) -> list[Observation]: ...


class BLEDecoder(Protocol):
    """One advertisement in, observations out; raises DecodeError (with a `reason`) if refused."""

    def decode(self, adv: Advertisement, at: float) -> list[Observation]: ...


def make_serial_decoder(profile: DeviceProfile, device_id: str) -> SerialDecoder:
    _expect(profile, "micradar")
    return MicRadarSerialDecoder(profile, device_id)


def make_ble_decoder(
    profile: DeviceProfile, device_id: str, address: str, key: bytes | None
) -> BLEDecoder:
    _expect(profile, "bthome")
    return BTHomeDecoder(profile, device_id, address, key)


def _expect(profile: DeviceProfile, decoder: str) -> None:
    if profile.decoder != decoder:
        raise ProfileError(
            f"profile {profile.model!r} uses decoder {profile.decoder!r} over "
            f"{profile.connection}, not {decoder!r}"
        )
