"""The MicRadar `53 59` UART protocol (Seeed MR60FDA1/MR60BHA1): framing and decoding. No I/O.

Frame: header `53 59`, control word, command word, big-endian u16 data length, data, checksum
(low 8 bits of the sum of every byte from `53` to the last data byte), tail `54 43`. Frames are
cut by the length field, never by looking for the tail: `43` and `53` occur in data and
checksums (reference section 2A).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from device_profiles.schema import DeviceProfile, FieldRule
from edge.decoders.base import DecodeError
from edge.decoders.framing import FramedSerialDecoder, SourceDecoder, StreamFramer

HEADER: Final = b"\x53\x59"
TAIL: Final = b"\x54\x43"
MAX_DATA: Final = 256
_PREFIX: Final = 6  # header, control, command, length
_SUFFIX: Final = 3  # checksum, tail
_MAX_VALUE_BYTES: Final = 4


@dataclass(frozen=True, slots=True)
class MicRadarFrame:
    ctrl: int
    cmd: int
    data: bytes

    @property
    def source(self) -> str:
        """The control/command pair as a profile rule names it, e.g. "83 01"."""
        return f"{self.ctrl:02X} {self.cmd:02X}"


def checksum(body: bytes | bytearray) -> int:
    """Low 8 bits of the sum of `body` (header through the last data byte)."""
    return sum(body) & 0xFF


def encode_frame(ctrl: int, cmd: int, data: bytes) -> bytes:
    """A complete frame with length, checksum and tail."""
    if len(data) > MAX_DATA:
        raise ValueError(f"{len(data)} data bytes is above the {MAX_DATA}-byte limit")
    body = HEADER + bytes([ctrl, cmd]) + len(data).to_bytes(2, "big") + data
    return body + bytes([checksum(body)]) + TAIL


class MicRadarFramer(StreamFramer[MicRadarFrame]):
    """Cuts a MicRadar byte stream into frames (see StreamFramer). Rejections: garbage,
    oversized, bad_checksum, bad_tail, truncated."""

    def __init__(self, label: str = "micradar") -> None:
        super().__init__(HEADER, label)

    def _cut(self, buffer: bytearray) -> tuple[MicRadarFrame, int] | None:
        if len(buffer) < _PREFIX:
            return None
        length = int.from_bytes(buffer[4:6], "big")
        if length > MAX_DATA:
            raise DecodeError("oversized", f"length field {length} above {MAX_DATA}")
        size = _PREFIX + length + _SUFFIX
        if len(buffer) < size:
            return None
        end = size - _SUFFIX
        expected = checksum(buffer[:end])
        if buffer[end] != expected:
            raise DecodeError(
                "bad_checksum", f"checksum {buffer[end]:02X}, expected {expected:02X}"
            )
        if buffer[end + 1 : size] != TAIL:
            raise DecodeError("bad_tail", f"tail {buffer[end + 1 : size].hex(' ')}")
        return MicRadarFrame(buffer[2], buffer[3], bytes(buffer[_PREFIX:end])), size


class MicRadarDecoder(SourceDecoder[MicRadarFrame]):
    """Turns frames into observations by the profile's rules ("83 01" etc.); a frame's data is
    one big-endian unsigned integer (see SourceDecoder)."""

    def _value(self, frame: MicRadarFrame, rule: FieldRule) -> int:
        if not 1 <= len(frame.data) <= _MAX_VALUE_BYTES:
            raise DecodeError("bad_length", f"{frame.source}: {len(frame.data)} data bytes")
        return int.from_bytes(frame.data, "big")


def make_micradar_decoder(
    profile: DeviceProfile, device_id: str
) -> FramedSerialDecoder[MicRadarFrame]:
    return FramedSerialDecoder(MicRadarFramer(device_id), MicRadarDecoder(profile, device_id))
