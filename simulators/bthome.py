"""Byte-exact BTHome v2 advertisements, plain or AES-CCM encrypted (reference sections 1.1-1.3).

An advert is raw advertising data: flags `02 01 06`, an optional local name, and service data
`LL 16 D2 FC <device info> <objects in ascending id order>`. Encrypted service data carries the
ciphertext, the 4-byte little-endian counter and a 4-byte MIC; the nonce is the MAC, `D2 FC`,
the device-info byte and the counter.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives.ciphers.aead import AESCCM

FLAGS: Final = bytes.fromhex("020106")
UUID_LE: Final = bytes.fromhex("d2fc")
AD_SERVICE_DATA_16: Final = 0x16
AD_COMPLETE_NAME: Final = 0x09
VERSION_2: Final = 0x40
ENCRYPTED: Final = 0x01
TRIGGER_BASED: Final = 0x04
MIC_BYTES: Final = 4
MAX_LEGACY_ADVERT: Final = 31

PACKET_ID: Final = 0x00
BATTERY: Final = 0x01
MOTION: Final = 0x21
SMOKE: Final = 0x29
WINDOW: Final = 0x2D
BUTTON: Final = 0x3A
BUTTON_EVENTS: Final = {
    "none": 0x00,
    "press": 0x01,
    "double_press": 0x02,
    "triple_press": 0x03,
    "long_press": 0x04,
    "long_double_press": 0x05,
    "long_triple_press": 0x06,
    "hold_press": 0x80,
}

BTHomeObject = tuple[int, bytes]


@dataclass(frozen=True, slots=True)
class Encryption:
    """How to encrypt: the 16-byte key, the sender's MAC ("54:48:E6:8F:80:A5") and counter."""

    key: bytes
    mac: str
    counter: int


def objects_payload(objects: Iterable[BTHomeObject]) -> bytes:
    """Object ids with their little-endian values, in ascending id order (repeats keep theirs)."""
    return b"".join(bytes([obj_id]) + value for obj_id, value in sorted(objects, key=_id))


def _id(obj: BTHomeObject) -> int:
    return obj[0]


def service_data(
    objects: Iterable[BTHomeObject],
    *,
    trigger_based: bool = False,
    encryption: Encryption | None = None,
) -> bytes:
    """The service data after the UUID: device info, then the objects (maybe encrypted)."""
    info = VERSION_2 | (TRIGGER_BASED if trigger_based else 0)
    payload = objects_payload(objects)
    if encryption is None:
        return bytes([info]) + payload
    info |= ENCRYPTED
    return bytes([info]) + encrypt(payload, info, encryption)


def encrypt(payload: bytes, info: int, encryption: Encryption) -> bytes:
    """ciphertext + counter (4, LE) + MIC (4), as BTHome v2 sends them."""
    counter = encryption.counter.to_bytes(4, "little")
    nonce = bytes.fromhex(encryption.mac.replace(":", "")) + UUID_LE + bytes([info]) + counter
    sealed = AESCCM(encryption.key, tag_length=MIC_BYTES).encrypt(nonce, payload, None)
    return sealed[:-MIC_BYTES] + counter + sealed[-MIC_BYTES:]


def advert(
    objects: Iterable[BTHomeObject],
    *,
    name: str | None = None,
    trigger_based: bool = False,
    encryption: Encryption | None = None,
) -> bytes:
    """A whole legacy advertisement (at most 31 bytes) carrying `objects`."""
    body = UUID_LE + service_data(objects, trigger_based=trigger_based, encryption=encryption)
    raw = FLAGS + _name_structure(name) + _ad_structure(AD_SERVICE_DATA_16, body)
    if len(raw) > MAX_LEGACY_ADVERT:
        raise ValueError(f"advert of {len(raw)} bytes exceeds {MAX_LEGACY_ADVERT}")
    return raw


def _name_structure(name: str | None) -> bytes:
    return b"" if name is None else _ad_structure(AD_COMPLETE_NAME, name.encode())


def _ad_structure(ad_type: int, data: bytes) -> bytes:
    return bytes([len(data) + 1, ad_type]) + data


def button_press(
    packet_id: int,
    battery: int,
    event: str = "press",
    *,
    name: str | None = None,
    encryption: Encryption | None = None,
) -> bytes:
    """A trigger-based call-button advert (Shelly BLU Button1 style): packet id, battery, 0x3A."""
    objects = [
        (PACKET_ID, bytes([packet_id])),
        (BATTERY, bytes([battery])),
        (BUTTON, bytes([BUTTON_EVENTS[event]])),
    ]
    return advert(objects, name=name, trigger_based=True, encryption=encryption)


def smoke(
    packet_id: int,
    detected: bool,
    battery: int,
    *,
    name: str | None = None,
    encryption: Encryption | None = None,
) -> bytes:
    """A smoke-detector advert: packet id, battery, smoke (0x29)."""
    return _binary_sensor(SMOKE, packet_id, detected, battery, name, encryption)


def door_window(
    packet_id: int,
    is_open: bool,
    battery: int,
    *,
    name: str | None = None,
    encryption: Encryption | None = None,
) -> bytes:
    """A door/window advert (Shelly BLU Door/Window): packet id, battery, window (0x2D)."""
    return _binary_sensor(WINDOW, packet_id, is_open, battery, name, encryption)


def motion(
    packet_id: int,
    detected: bool,
    battery: int,
    *,
    name: str | None = None,
    encryption: Encryption | None = None,
) -> bytes:
    """A motion advert (Shelly BLU Motion): packet id, battery, motion (0x21)."""
    return _binary_sensor(MOTION, packet_id, detected, battery, name, encryption)


def _binary_sensor(
    obj_id: int,
    packet_id: int,
    on: bool,
    battery: int,
    name: str | None,
    encryption: Encryption | None,
) -> bytes:
    objects = [
        (PACKET_ID, bytes([packet_id])),
        (BATTERY, bytes([battery])),
        (obj_id, bytes([int(on)])),
    ]
    return advert(objects, name=name, encryption=encryption)
