"""Byte-exact Xiaomi MiBeacon advertisements, plain or AES-CCM encrypted (reference section 5.1).

Service data (UUID 0xFE95): frame control u16 LE (version in bits 12-15, auth mode in 10-11,
registered bit 8, objects bit 6, MAC bit 4, encrypted bit 3), product id u16 LE, frame
counter u8, [MAC reversed], objects `id u16 LE | len u8 | value`. Encrypted v4/v5 objects are
sealed with AES-CCM (4-byte MIC, AAD 0x11) under the 12-byte nonce of the reversed MAC, product
id, frame counter and 3-byte extended counter, and followed by that extended counter and the MIC.
The `counter` below is the 32-bit whole: frame counter in its low byte, extended counter above.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from cryptography.hazmat.primitives.ciphers.aead import AESCCM

FLAGS: Final = bytes.fromhex("020106")
UUID_LE: Final = bytes.fromhex("95fe")
AD_SERVICE_DATA_16: Final = 0x16
ENCRYPTED: Final = 1 << 3
MAC_INCLUDED: Final = 1 << 4
OBJECTS_INCLUDED: Final = 1 << 6
REGISTERED: Final = 1 << 8
AUTH_STANDARD: Final = 2
AAD: Final = b"\x11"
MIC_BYTES: Final = 4

SMOKE: Final = 0x1015
PRESSURE_PRESENT: Final = 0x483C
BATTERY: Final = 0x100A
JTYJGD03MI: Final = 0x0997
PS1BB: Final = 0x3F4C

MiObject = tuple[int, bytes]


def objects_payload(objects: Iterable[MiObject]) -> bytes:
    """Each object as id (u16 LE), length, value."""
    return b"".join(
        obj_id.to_bytes(2, "little") + bytes([len(value)]) + value for obj_id, value in objects
    )


def service_data(
    product_id: int,
    counter: int,
    objects: Iterable[MiObject],
    *,
    mac: str,
    include_mac: bool = True,
    key: bytes | None = None,
    version: int = 5,
    auth_mode: int = AUTH_STANDARD,
    registered: bool = False,
) -> bytes:
    """The service data after the UUID; encrypted with `key` (16 bytes) if given."""
    mac_reversed = bytes.fromhex(mac.replace(":", ""))[::-1]
    control = version << 12 | auth_mode << 10 | OBJECTS_INCLUDED
    control |= (MAC_INCLUDED if include_mac else 0) | (ENCRYPTED if key is not None else 0)
    control |= REGISTERED if registered else 0
    head = (
        control.to_bytes(2, "little") + product_id.to_bytes(2, "little") + bytes([counter & 0xFF])
    )
    payload = objects_payload(objects)
    if key is not None:
        payload = _encrypt(payload, key, mac_reversed, head[2:5], counter)
    return head + (mac_reversed if include_mac else b"") + payload


def _encrypt(payload: bytes, key: bytes, mac_reversed: bytes, ids: bytes, counter: int) -> bytes:
    extended = (counter >> 8).to_bytes(3, "little")
    nonce = mac_reversed + ids + extended
    sealed = AESCCM(key, tag_length=MIC_BYTES).encrypt(nonce, payload, AAD)
    return sealed[:-MIC_BYTES] + extended + sealed[-MIC_BYTES:]


def advert(data: bytes) -> bytes:
    """A whole advertisement: flags and the MiBeacon service data."""
    body = UUID_LE + data
    return FLAGS + bytes([len(body) + 1, AD_SERVICE_DATA_16]) + body


def smoke(mac: str, counter: int, detected: bool, *, key: bytes | None = None) -> bytes:
    """A JTYJGD03MI smoke-detector advert: object 0x1015."""
    objects = [(SMOKE, bytes([int(detected)]))]
    return advert(service_data(JTYJGD03MI, counter, objects, mac=mac, key=key))


def pressure(mac: str, counter: int, present: bool, *, key: bytes | None = None) -> bytes:
    """A PS1BB pressure-mat advert: object 0x483C."""
    objects = [(PRESSURE_PRESENT, bytes([int(present)]))]
    return advert(service_data(PS1BB, counter, objects, mac=mac, key=key))
