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

from bthome_ble import BTHomeBluetoothDeviceData, SensorUpdate

from contract.wire import Observation
from device_profiles.schema import DeviceProfile, FieldRule
from edge.decoders.adstructures import uuid16_to_128
from edge.decoders.base import Advertisement, DecodeError
from edge.decoders.bluetooth_data import raw_values, service_info
from edge.decoders.replay import CounterGuard, PacketIdWindow
from edge.decoders.rules import apply_rules

BTHOME_UUID: Final = uuid16_to_128(0xFCD2)
KEY_BYTES: Final = 16
ENCRYPTED_FLAG: Final = 0x01
COUNTER_AND_MIC: Final = 8
MIN_CIPHERTEXT: Final = 2  # bthome-ble's minimum

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
        self._counter = CounterGuard()
        self._packets = PacketIdWindow()

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
        if parser.packet_id is not None and self._packets.is_old(int(parser.packet_id), at):
            _LOG.debug("%s: packet id %s already seen", self.device_id, parser.packet_id)
            return []
        return apply_rules(self._rules, raw_values(update), self.device_id, at)

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
        return self._counter.is_repeat(_counter(data), data)

    def _parse(
        self, adv: Advertisement, data: bytes, at: float
    ) -> tuple[BTHomeBluetoothDeviceData, SensorUpdate]:
        parser = BTHomeBluetoothDeviceData(self._key)
        try:
            update = parser.update(service_info(adv, self.address, BTHOME_UUID, data, at))
        except Exception as exc:  # third-party parsing of radio input: refuse, never crash
            raise DecodeError("malformed", f"bthome-ble failed: {exc!r}") from exc
        if self._key is not None:
            self._counter.accept(parser.bindkey_verified, _counter(data), data)
        if parser.last_service_info is None:
            raise DecodeError("malformed", f"bthome-ble found nothing in {data.hex()}")
        return parser, update


def _counter(data: bytes) -> int:
    return int.from_bytes(data[-COUNTER_AND_MIC:-4], "little")
