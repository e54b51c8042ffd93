"""The one place the edge agent gets a decoder for a device, by the device's profile."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Final, Protocol, TypeVar

from contract.wire import Observation
from device_profiles import DeviceProfile, ProfileError
from edge.decoders.base import Advertisement
from edge.decoders.ld2410 import make_ld2410_decoder
from edge.decoders.micradar import make_micradar_decoder
from edge.decoders.tinyframe import make_tinyframe_decoder

FactoryT = TypeVar("FactoryT")


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


SERIAL_DECODERS: Final[dict[str, Callable[[DeviceProfile, str], SerialDecoder]]] = {
    "micradar": make_micradar_decoder,
    "tinyframe": make_tinyframe_decoder,
    "ld2410": make_ld2410_decoder,
}


# The BLE parsers are imported only when a device needs them: xiaomi-ble alone brings in
# aiohttp, tens of megabytes that a gateway with only serial radars should not carry.
def _bthome(profile: DeviceProfile, device_id: str, address: str, key: bytes | None) -> BLEDecoder:
    from edge.decoders.bthome import BTHomeDecoder

    return BTHomeDecoder(profile, device_id, address, key)


def _xiaomi(profile: DeviceProfile, device_id: str, address: str, key: bytes | None) -> BLEDecoder:
    from edge.decoders.xiaomi import XiaomiDecoder

    return XiaomiDecoder(profile, device_id, address, key)


BLE_DECODERS: Final[dict[str, Callable[[DeviceProfile, str, str, bytes | None], BLEDecoder]]] = {
    "bthome": _bthome,
    "xiaomi": _xiaomi,
}


def make_serial_decoder(profile: DeviceProfile, device_id: str) -> SerialDecoder:
    return _pick(SERIAL_DECODERS, profile, "serial")(profile, device_id)


def make_ble_decoder(
    profile: DeviceProfile, device_id: str, address: str, key: bytes | None
) -> BLEDecoder:
    return _pick(BLE_DECODERS, profile, "ble")(profile, device_id, address, key)


def _pick(factories: dict[str, FactoryT], profile: DeviceProfile, connection: str) -> FactoryT:
    factory = factories.get(profile.decoder)
    if factory is None:
        raise ProfileError(
            f"profile {profile.model!r} uses decoder {profile.decoder!r} over "
            f"{profile.connection}, not {connection}"
        )
    return factory
