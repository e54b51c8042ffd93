"""Hi-Link HLK-LD2410 report frames (LD2410/B/C, not LD2410S): framing and decoding. No I/O.

Frame (reference section 3.1): header `F4 F3 F2 F1`, data length u16 LE, then the data: report
type (0x02 basic, 0x01 engineering), head `AA`, target state u8, moving distance u16 LE (cm),
moving energy u8, static distance u16 LE (cm), static energy u8, detection distance u16 LE
(cm), [engineering: max moving gate N, max static gate M, N+1 moving and M+1 static gate
energies, and on newer firmware 2 more bytes], tail `55`, `00`; then footer `F8 F7 F6 F5`.
There is no checksum, so the header, the length (against the report type), the head, the
tail and the footer are all checked. The radar reports about 10 times a second.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from contract.wire import Observation
from device_profiles.schema import LD2410_FIELDS, DeviceProfile, FieldRule
from edge.decoders.base import DecodeError
from edge.decoders.framing import FramedSerialDecoder, StreamFramer
from edge.decoders.rules import apply_rules

HEADER: Final = bytes.fromhex("F4F3F2F1")
FOOTER: Final = bytes.fromhex("F8F7F6F5")
HEAD: Final = 0xAA
TAIL: Final = bytes.fromhex("5500")
ENGINEERING: Final = 0x01
BASIC: Final = 0x02
MAX_DATA: Final = 64  # engineering frames of 8+8 gates are 35 bytes
BASIC_FIELDS: Final = struct.Struct("<BHBHBH")  # the LD2410_FIELDS, in order
BASIC_LENGTH: Final = 2 + BASIC_FIELDS.size + len(TAIL)  # type, AA, fields, 55 00
_GATES_AT: Final = 2 + BASIC_FIELDS.size  # max moving gate, max static gate
_PREFIX: Final = len(HEADER) + 2


@dataclass(frozen=True, slots=True)
class LD2410Report:
    report_type: int
    fields: dict[str, int]


def basic_fields(
    target_state: int,
    moving_distance: int = 0,
    moving_energy: int = 0,
    static_distance: int = 0,
    static_energy: int = 0,
    detection_distance: int = 0,
) -> bytes:
    """The target-state block every report carries, from the state to the detection distance."""
    values = (
        target_state,
        moving_distance,
        moving_energy,
        static_distance,
        static_energy,
        detection_distance,
    )
    return BASIC_FIELDS.pack(*values)


def encode_frame(report_type: int, payload: bytes) -> bytes:
    """A complete report frame around `payload` (basic fields, then engineering data)."""
    data = bytes([report_type, HEAD]) + payload + TAIL
    return HEADER + len(data).to_bytes(2, "little") + data + FOOTER


class LD2410Framer(StreamFramer[LD2410Report]):
    """Cuts an LD2410 byte stream into reports (see StreamFramer). Rejections: garbage,
    oversized, bad_footer, bad_type, bad_head, bad_tail, bad_length, truncated."""

    def __init__(self, label: str = "ld2410") -> None:
        super().__init__(HEADER, label)

    def _cut(self, buffer: bytearray) -> tuple[LD2410Report, int] | None:
        if len(buffer) < _PREFIX:
            return None
        length = int.from_bytes(buffer[len(HEADER) : _PREFIX], "little")
        if length > MAX_DATA:
            raise DecodeError("oversized", f"length field {length} above {MAX_DATA}")
        size = _PREFIX + length + len(FOOTER)
        if len(buffer) < size:
            return None
        if buffer[size - len(FOOTER) : size] != FOOTER:
            raise DecodeError("bad_footer", buffer[size - len(FOOTER) : size].hex(" "))
        data = bytes(buffer[_PREFIX : size - len(FOOTER)])
        _check_data(data)
        fields = dict(zip(LD2410_FIELDS, BASIC_FIELDS.unpack_from(data, 2), strict=True))
        return LD2410Report(data[0], fields), size


def _check_data(data: bytes) -> None:
    if len(data) < BASIC_LENGTH:
        raise DecodeError("bad_length", f"{len(data)} data bytes, a report has {BASIC_LENGTH}+")
    if data[0] not in (BASIC, ENGINEERING):
        raise DecodeError("bad_type", f"report type {data[0]:02X}")
    if data[1] != HEAD:
        raise DecodeError("bad_head", f"head {data[1]:02X}, expected {HEAD:02X}")
    if data[-len(TAIL) :] != TAIL:
        raise DecodeError("bad_tail", f"tail {data[-len(TAIL) :].hex(' ')}")
    if len(data) not in _lengths(data):
        raise DecodeError("bad_length", f"{len(data)} data bytes for report type {data[0]:02X}")


def _lengths(data: bytes) -> tuple[int, ...]:
    """The data lengths the report type (and an engineering report's gate counts) allow."""
    if data[0] == BASIC:
        return (BASIC_LENGTH,)
    if len(data) < _GATES_AT + 2 + len(TAIL):
        return ()
    gates = data[_GATES_AT] + 1 + data[_GATES_AT + 1] + 1
    plain = BASIC_LENGTH + 2 + gates
    return (plain, plain + 2)  # newer firmware adds the light level and the OUT pin


class LD2410Decoder:
    """Turns reports into observations by the profile's rules, named by LD2410_FIELDS."""

    def __init__(self, profile: DeviceProfile, device_id: str) -> None:
        self.device_id = device_id
        self._rules: list[FieldRule] = list(profile.rules)

    def decode(self, report: LD2410Report, at: float) -> list[Observation]:
        return apply_rules(self._rules, report.fields, self.device_id, at)


def make_ld2410_decoder(
    profile: DeviceProfile, device_id: str
) -> FramedSerialDecoder[LD2410Report]:
    return FramedSerialDecoder(LD2410Framer(device_id), LD2410Decoder(profile, device_id))
