"""Raw BLE advertising data (AD structures) and the simulated-air message that carries it.

AD structures are `length, type, data` with `length` counting the type byte and the data. A
zero length ends the data early (Core spec Vol 3 Part C §11); only zero padding may follow it.
"""

from __future__ import annotations

import json
import re
from typing import Final

from edge.decoders.base import Advertisement, DecodeError

AD_SERVICE_DATA_16: Final = 0x16
AD_SHORT_NAME: Final = 0x08
AD_COMPLETE_NAME: Final = 0x09
AD_MANUFACTURER: Final = 0xFF
MAC_PATTERN: Final = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2}){5}$")


def uuid16_to_128(uuid16: int) -> str:
    """The full Bluetooth base UUID string of a 16-bit UUID, as bleak keys service data."""
    return f"0000{uuid16:04x}-0000-1000-8000-00805f9b34fb"


def split_ad_structures(raw: bytes) -> list[tuple[int, bytes]]:
    """(type, data) of each AD structure; DecodeError("malformed_ad") if they do not fit."""
    structures: list[tuple[int, bytes]] = []
    offset = 0
    while offset < len(raw):
        length = raw[offset]
        if length == 0:
            _check_padding(raw, offset)
            break
        end = offset + 1 + length
        if end > len(raw):
            raise DecodeError("malformed_ad", f"AD structure at {offset} runs past the end")
        structures.append((raw[offset + 1], raw[offset + 2 : end]))
        offset = end
    return structures


def _check_padding(raw: bytes, offset: int) -> None:
    if any(raw[offset:]):
        raise DecodeError("malformed_ad", f"zero-length AD structure at {offset}")


def parse_advertising_data(address: str, rssi: int, raw: bytes) -> Advertisement:
    """An Advertisement (bleak's shape) from raw advertising data bytes."""
    service_data: dict[str, bytes] = {}
    manufacturer_data: dict[int, bytes] = {}
    names: dict[int, str] = {}
    for ad_type, data in split_ad_structures(raw):
        if ad_type == AD_SERVICE_DATA_16:
            uuid = _two_byte_id(data, "service data")
            service_data[uuid16_to_128(uuid)] = data[2:]
        elif ad_type == AD_MANUFACTURER:
            manufacturer_data[_two_byte_id(data, "manufacturer data")] = data[2:]
        elif ad_type in (AD_SHORT_NAME, AD_COMPLETE_NAME):
            names[ad_type] = data.decode("utf-8", errors="replace")
    local_name = names.get(AD_COMPLETE_NAME, names.get(AD_SHORT_NAME))
    return Advertisement(address, rssi, service_data, local_name, manufacturer_data)


def _two_byte_id(data: bytes, what: str) -> int:
    if len(data) < 2:
        raise DecodeError("malformed_ad", f"{what} shorter than its 2-byte id")
    return int.from_bytes(data[:2], "little")


def encode_air_message(address: str, rssi: int, raw: bytes) -> bytes:
    """One simulated advertisement as a datagram for the edge agent's simulated scanner."""
    message = {"address": address, "rssi": rssi, "adv": raw.hex()}
    return json.dumps(message, separators=(",", ":")).encode()


def decode_air_message(data: bytes) -> tuple[str, int, bytes]:
    """(address, rssi, raw advertising data) of a simulated-air datagram; ValueError if bad."""
    try:
        message = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"air message is not JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise ValueError("air message is not a JSON object")
    return _air_address(message), _air_rssi(message), _air_adv(message)


def _air_address(message: dict[str, object]) -> str:
    address = message.get("address")
    if not isinstance(address, str) or not MAC_PATTERN.match(address.upper()):
        raise ValueError(f"air message address {address!r} is not AA:BB:CC:DD:EE:FF")
    return address.upper()


def _air_rssi(message: dict[str, object]) -> int:
    rssi = message.get("rssi")
    if not isinstance(rssi, int) or isinstance(rssi, bool) or not -127 <= rssi <= 127:
        raise ValueError(f"air message rssi {rssi!r} is not an integer dBm")
    return rssi


def _air_adv(message: dict[str, object]) -> bytes:
    adv = message.get("adv")
    if not isinstance(adv, str):
        raise ValueError("air message has no 'adv' hex string")
    try:
        return bytes.fromhex(adv)
    except ValueError as exc:
        raise ValueError(f"air message 'adv' is not hex: {exc}") from exc
