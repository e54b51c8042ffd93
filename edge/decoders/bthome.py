"""BTHome v2 advertisements, decoded with bthome-ble, mapped by a device profile.

bthome-ble parses and decrypts. This module adds what a care home needs on top of it
(reference section 1.3): a device configured with a key must send encrypted adverts and a
device without one must not; the encryption counter must increase (bthome-ble allows a
decrease after a restart and below 100); a packet id already seen yields nothing; and every
refusal is a DecodeError with a stable reason.

A fresh bthome-ble parser is used for every advert: its SensorUpdate accumulates the values of
earlier adverts, so a long-lived one cannot tell what this advert carried.
"""

from __future__ import annotations

import logging
from typing import Final

from bleak.backends.device import BLEDevice
from bthome_ble import BTHomeBluetoothDeviceData, SensorUpdate
from habluetooth import BluetoothServiceInfoBleak

from device_profiles.schema import DeviceProfile, FieldRule
from edge.decoders.adstructures import uuid16_to_128
from edge.decoders.base import Advertisement, DecodeError
from edge.decoders.rules import Raw, apply_rule
from edge.wire import Observation

BTHOME_UUID: Final = uuid16_to_128(0xFCD2)
KEY_BYTES: Final = 16
ENCRYPTED_FLAG: Final = 0x01
COUNTER_AND_MIC: Final = 8
MIN_CIPHERTEXT: Final = 2  # bthome-ble's minimum
DUPLICATE_WINDOW_S: Final = 4.0  # as bthome-ble: a packet id seen longer ago may be a new one
PACKET_ID_WINDOW: Final = 64  # ids up to 63 ahead (mod 256) are new; the rest are old or repeats

_LOG = logging.getLogger(__name__)


class BTHomeDecoder:
    """Decodes the adverts of one BTHome v2 device (one instance per device: it keeps state)."""

    def __init__(
        self, profile: DeviceProfile, device_id: str, address: str, key: bytes | None
    ) -> None:
        if key is not None and len(key) != KEY_BYTES:
            raise ValueError(f"a BTHome key is {KEY_BYTES} bytes, got {len(key)}")
        self.device_id = device_id
        self.address = address.upper()
        self._key = key
        self._rules: list[FieldRule] = list(profile.rules)
        self._last_counter: tuple[int, bytes] | None = None  # counter, whole service data
        self._last_packet: tuple[int, float] | None = None  # packet id, when

    def decode(self, adv: Advertisement, at: float) -> list[Observation]:
        """The observations of a new advert; [] for a repeat. DecodeError if refused."""
        data = adv.service_data.get(BTHOME_UUID)
        if data is None:
            raise DecodeError("not_bthome", f"{adv.address}: no BTHome (0xFCD2) service data")
        if not data:
            raise DecodeError("malformed", "empty BTHome service data")
        self._check_encryption_flag(data)
        if self._key is not None and self._is_repeat(data):
            return []
        parser, update = self._parse(adv, data, at)
        if parser.packet_id is not None and self._is_old_packet(int(parser.packet_id), at):
            return []
        return self._observations(_raw_values(update), at)

    def _check_encryption_flag(self, data: bytes) -> None:
        encrypted = bool(data[0] & ENCRYPTED_FLAG)
        if encrypted != (self._key is not None):
            sent = "encrypted" if encrypted else "plaintext"
            configured = "a key" if self._key is not None else "no key"
            raise DecodeError("encryption_mismatch", f"{sent} advert, device has {configured}")

    def _is_repeat(self, data: bytes) -> bool:
        """True for a resend of the last accepted advert; DecodeError for a replayed counter."""
        if len(data) < 1 + MIN_CIPHERTEXT + COUNTER_AND_MIC:
            raise DecodeError("malformed", f"encrypted service data of {len(data)} bytes")
        if self._last_counter is None:
            return False
        counter = _counter(data)
        last, last_data = self._last_counter
        if data == last_data:
            return True
        if counter <= last:
            raise DecodeError("replay", f"counter {counter} after {last}")
        return False

    def _parse(
        self, adv: Advertisement, data: bytes, at: float
    ) -> tuple[BTHomeBluetoothDeviceData, SensorUpdate]:
        parser = BTHomeBluetoothDeviceData(self._key)
        try:
            update = parser.update(self._service_info(adv, data, at))
        except Exception as exc:  # third-party parsing of radio input: refuse, never crash
            raise DecodeError("malformed", f"bthome-ble failed: {exc!r}") from exc
        if self._key is not None:
            self._check_decrypted(parser, data)
        if parser.last_service_info is None:
            raise DecodeError("malformed", f"bthome-ble found nothing in {data.hex()}")
        return parser, update

    def _check_decrypted(self, parser: BTHomeBluetoothDeviceData, data: bytes) -> None:
        if not parser.bindkey_verified:
            if self._last_counter is not None:  # the key has worked before
                raise DecodeError("decrypt_failed", "message integrity check failed")
            raise DecodeError("bad_key", "does not decrypt with the configured key")
        self._last_counter = (_counter(data), data)

    def _service_info(
        self, adv: Advertisement, data: bytes, at: float
    ) -> BluetoothServiceInfoBleak:
        # The configured MAC, not adv.address: the nonce needs it (macOS reports a UUID).
        name = adv.local_name or self.address
        return BluetoothServiceInfoBleak(
            name=name,
            address=self.address,
            rssi=adv.rssi,
            manufacturer_data=adv.manufacturer_data,
            service_data={BTHOME_UUID: data},
            service_uuids=[BTHOME_UUID],
            source="carewatch",
            device=BLEDevice(self.address, name, None),
            advertisement=None,
            connectable=False,
            time=at,
            tx_power=None,
        )

    def _is_old_packet(self, packet_id: int, at: float) -> bool:
        last = self._last_packet
        if last is not None and at - last[1] <= DUPLICATE_WINDOW_S:
            ahead = (packet_id - last[0]) % 256
            if not 0 < ahead < PACKET_ID_WINDOW:
                _LOG.debug("%s: packet id %d already seen", self.device_id, packet_id)
                return True
        self._last_packet = (packet_id, at)
        return False

    def _observations(self, raw: dict[str, Raw], at: float) -> list[Observation]:
        observations = (
            apply_rule(rule, raw[rule.source], self.device_id, at)
            for rule in self._rules
            if rule.source in raw
        )
        return [obs for obs in observations if obs is not None]


def _counter(data: bytes) -> int:
    return int.from_bytes(data[-COUNTER_AND_MIC:-4], "little")


def _raw_values(update: SensorUpdate) -> dict[str, Raw]:
    """bthome-ble's values by key. A sensor wins over a binary sensor of the same key
    (battery % over battery-low); events give their type ("press")."""
    values: dict[str, Raw] = {key.key: event.event_type for key, event in update.events.items()}
    for key, binary in update.binary_entity_values.items():
        if binary.native_value is not None:
            values[key.key] = binary.native_value
    for key, sensor in update.entity_values.items():
        value = sensor.native_value
        if value is not None:
            values[key.key] = value if isinstance(value, int | float | str) else str(value)
    return values
