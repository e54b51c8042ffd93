"""Xiaomi MiBeacon advertisements (service data 0xFE95), decoded with xiaomi-ble, mapped by a
device profile.

Layout (reference section 5.1): frame control u16 LE, product id u16 LE, frame counter u8,
[MAC reversed if bit 4], [capability byte if bit 5, plus an IO byte if capability & 0x20],
[objects if bit 6]. Encrypted (bit 3) v4/v5 objects are AES-CCM ciphertext, then a 3-byte
extended counter and a 4-byte MIC.

xiaomi-ble decrypts and parses the objects. This module adds what the BTHome decoder adds
(see edge.decoders.replay): a device configured with a bindkey must send encrypted adverts and
one without must not; the 32-bit counter (extended counter and frame counter) of encrypted
adverts must increase; a plaintext frame counter already seen yields nothing. It also checks
that the advert comes from the profile's product and, when the advert carries a MAC, from the
configured one. Adverts without objects (bit 6 clear) are heard but carry nothing. Legacy
v2/v3 encryption (12-byte keys, no MIC) is refused as unsupported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sensor_state_data import SensorUpdate
from xiaomi_ble import XiaomiBluetoothDeviceData

from contract.wire import Observation
from device_profiles.schema import DeviceProfile, FieldRule
from edge.decoders.adstructures import uuid16_to_128
from edge.decoders.base import Advertisement, DecodeError
from edge.decoders.bluetooth_data import raw_values, service_info
from edge.decoders.replay import CounterGuard, PacketIdWindow
from edge.decoders.rules import apply_rules

MIBEACON_UUID: Final = uuid16_to_128(0xFE95)
KEY_BYTES: Final = 16
ENCRYPTED: Final = 1 << 3
MAC_INCLUDED: Final = 1 << 4
CAPABILITY_INCLUDED: Final = 1 << 5
OBJECTS_INCLUDED: Final = 1 << 6
MESH: Final = 1 << 7
CAPABILITY_IO: Final = 0x20
MIN_VERSION: Final = 2
MIN_AES_CCM_VERSION: Final = 4
HEADER_BYTES: Final = 5  # frame control, product id, frame counter
MAC_BYTES: Final = 6
EXT_COUNTER_AND_MIC: Final = 7
MIN_OBJECT: Final = 4  # id u16, length u8, one value byte


@dataclass(frozen=True, slots=True)
class MiBeaconHeader:
    frame_control: int
    product_id: int
    frame_counter: int
    mac: str | None  # as printed, AA:BB:…, when the advert carries it
    objects_at: int  # where the (maybe encrypted) objects start

    @property
    def version(self) -> int:
        return self.frame_control >> 12

    @property
    def encrypted(self) -> bool:
        return bool(self.frame_control & ENCRYPTED)

    @property
    def has_objects(self) -> bool:
        return bool(self.frame_control & OBJECTS_INCLUDED)


def parse_header(data: bytes) -> MiBeaconHeader:
    """The MiBeacon header of `data` (service data after the UUID); DecodeError("malformed")."""
    if len(data) < HEADER_BYTES:
        raise DecodeError("malformed", f"MiBeacon frame of {len(data)} bytes")
    frame_control = int.from_bytes(data[0:2], "little")
    if frame_control & MESH or frame_control >> 12 < MIN_VERSION:
        raise DecodeError("malformed", f"frame control {frame_control:04X}: mesh or version < 2")
    offset = HEADER_BYTES
    mac = None
    if frame_control & MAC_INCLUDED:
        mac = ":".join(f"{byte:02X}" for byte in reversed(data[offset : offset + MAC_BYTES]))
        offset += MAC_BYTES
    if frame_control & CAPABILITY_INCLUDED:
        has_io = len(data) > offset and data[offset] & CAPABILITY_IO
        offset += 2 if has_io else 1
    if len(data) < offset:
        raise DecodeError("malformed", f"MiBeacon header runs past {len(data)} bytes")
    product_id = int.from_bytes(data[2:4], "little")
    return MiBeaconHeader(frame_control, product_id, data[4], mac, offset)


class XiaomiDecoder:
    """Decodes the adverts of one MiBeacon device (one instance per device: it keeps state)."""

    def __init__(
        self, profile: DeviceProfile, device_id: str, address: str, key: bytes | None
    ) -> None:
        if key is not None and len(key) != KEY_BYTES:
            raise ValueError(f"a MiBeacon v4/v5 bindkey is {KEY_BYTES} bytes, got {len(key)}")
        if profile.product_id is None:
            raise ValueError(f"profile {profile.model!r} has no MiBeacon product_id")
        self.device_id = device_id
        self.address = address.upper()
        self._product_id = profile.product_id
        self._key = key
        self._rules: list[FieldRule] = list(profile.rules)
        self._counter = CounterGuard()
        self._packets = PacketIdWindow()

    def decode(self, adv: Advertisement, at: float) -> list[Observation]:
        """The observations of a new advert; [] for a repeat or an advert without objects.
        DecodeError if refused."""
        data = adv.service_data.get(MIBEACON_UUID)
        if data is None:
            raise DecodeError("not_xiaomi", f"{adv.address}: no MiBeacon (0xFE95) service data")
        header = parse_header(data)
        self._check_sender(header)
        if not header.has_objects:
            return []
        self._check_encryption(header)
        counter = _counter(header, data) if header.encrypted else None
        if counter is not None and self._counter.is_repeat(counter, data):
            return []
        update = self._parse(adv, data, at, counter)
        if counter is None and self._packets.is_old(header.frame_counter, at):
            return []
        return apply_rules(self._rules, raw_values(update), self.device_id, at)

    def _parse(
        self, adv: Advertisement, data: bytes, at: float, counter: int | None
    ) -> SensorUpdate:
        parser = XiaomiBluetoothDeviceData(self._key)
        try:
            update = parser.update(service_info(adv, self.address, MIBEACON_UUID, data, at))
        except Exception as exc:  # third-party parsing of radio input: refuse, never crash
            raise DecodeError("malformed", f"xiaomi-ble failed: {exc!r}") from exc
        if counter is not None:
            self._counter.accept(parser.bindkey_verified, counter, data)
        if parser.last_service_info is None:
            raise DecodeError("malformed", f"xiaomi-ble found nothing in {data.hex()}")
        return update

    def _check_sender(self, header: MiBeaconHeader) -> None:
        if header.product_id != self._product_id:
            detail = f"product id {header.product_id:04X}, profile has {self._product_id:04X}"
            raise DecodeError("wrong_product", detail)
        if header.mac is not None and header.mac != self.address:
            raise DecodeError("wrong_address", f"advert carries {header.mac}, not {self.address}")

    def _check_encryption(self, header: MiBeaconHeader) -> None:
        if header.encrypted != (self._key is not None):
            sent = "encrypted" if header.encrypted else "plaintext"
            configured = "a bindkey" if self._key is not None else "no bindkey"
            raise DecodeError("encryption_mismatch", f"{sent} advert, device has {configured}")
        if header.encrypted and header.version < MIN_AES_CCM_VERSION:
            raise DecodeError("unsupported", f"MiBeacon v{header.version} legacy encryption")


def _counter(header: MiBeaconHeader, data: bytes) -> int:
    """The 32-bit counter of an encrypted advert: extended counter (3 bytes) and frame counter."""
    if len(data) < header.objects_at + MIN_OBJECT + EXT_COUNTER_AND_MIC:
        raise DecodeError("malformed", f"encrypted MiBeacon frame of {len(data)} bytes")
    extended = int.from_bytes(data[-EXT_COUNTER_AND_MIC:-4], "little")
    return extended << 8 | header.frame_counter
